"""Zero-shot FiLM-parameter arithmetic on CLEVR CoGenT (the paper's section 6.4).

A model trained on condition A never sees cyan cubes (A's cubes are gray, blue, brown or yellow; its cylinders red,
green, purple or cyan; condition B swaps the two sets). For a condition-B question about a cyan cube, the paper
builds FiLM parameters for the unseen pair from seen ones:

    params("... cyan cube ...") := params("... cyan sphere ...") + params("... brown cube ...")
                                   - params("... brown sphere ...")

where each term is the question with its words replaced (spheres take every colour in both conditions). This
module finds the questions where that applies (exactly one colour-shape pair unseen in A), builds the three
variants, and answers with the combined parameters.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from filmkit.data.dataset import CachedSplit
from filmkit.data.vocab import Vocab
from filmkit.train.evaluate import evaluate

COLOURS = {"gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"}
MATERIAL_WORDS = {"metal", "metallic", "shiny", "rubber", "matte"}
SHAPE_OF_WORD = {"cube": "cube", "cubes": "cube", "block": "cube", "blocks": "cube",
                 "cylinder": "cylinder", "cylinders": "cylinder"}  # fmt: skip
SPHERE_WORD = {"cube": "sphere", "cubes": "spheres", "block": "ball", "blocks": "balls",
               "cylinder": "sphere", "cylinders": "spheres"}  # fmt: skip
CONDITION_A_COLOURS = {"cube": {"gray", "blue", "brown", "yellow"}, "cylinder": {"red", "green", "purple", "cyan"}}
DONOR_COLOUR = {"cube": "brown", "cylinder": "red"}  # a colour condition A shows with the shape (brown: the paper's)


def unseen_pair(tokens: list[str]) -> tuple[int, int] | None:
    """Positions (colour word, shape word) of a question's only colour-shape pair that condition A never shows.

    A pair is a colour followed by the shape, with at most a material word between ("cyan metal cube"), as
    CLEVR's templates write them. None when the question has no such pair, or more than one.

    >>> unseen_pair("<START> is there a cyan metal cube ? <END>".split())
    (4, 6)
    >>> unseen_pair("<START> is there a brown cube ? <END>".split()) is None
    True
    """
    found = []
    for position, word in enumerate(tokens):
        if word not in COLOURS:
            continue
        shape_at = position + 1 + (position + 1 < len(tokens) and tokens[position + 1] in MATERIAL_WORDS)
        shape = SHAPE_OF_WORD.get(tokens[shape_at]) if shape_at < len(tokens) else None
        if shape and word not in CONDITION_A_COLOURS[shape]:
            found.append((position, shape_at))
    return found[0] if len(found) == 1 else None


def arithmetic_variants(tokens: list[str], pair: tuple[int, int]) -> dict[str, list[str]]:
    """The three questions whose FiLM parameters are combined: with a sphere, with the donor colour, with both.

    >>> variants = arithmetic_variants("is there a cyan cube".split(), (3, 4))
    >>> [" ".join(words) for words in variants.values()]
    ['is there a cyan sphere', 'is there a brown cube', 'is there a brown sphere']
    """
    colour_at, shape_at = pair
    donor = DONOR_COLOUR[SHAPE_OF_WORD[tokens[shape_at]]]

    def replaced(**changes: str) -> list[str]:
        words = list(tokens)
        if "colour" in changes:
            words[colour_at] = changes["colour"]
        if "shape" in changes:
            words[shape_at] = changes["shape"]
        return words

    sphere = SPHERE_WORD[tokens[shape_at]]
    return {"plus sphere": replaced(shape=sphere), "plus donor": replaced(colour=donor),
            "minus donor sphere": replaced(colour=donor, shape=sphere)}  # fmt: skip


def question_variants(words: list[str], vocab: Vocab) -> dict[str, list[str]] | None:
    """:func:`arithmetic_variants` of a question where the arithmetic applies and ``vocab`` knows every word."""
    pair = unseen_pair(words)
    if pair is None:
        return None
    variants = arithmetic_variants(words, pair)
    known = vocab.question_token_to_idx
    return variants if all(word in known for words in variants.values() for word in words) else None


class FiLMArithmetic(nn.Module):
    """``model`` answering with arithmetic FiLM parameters wherever :func:`question_variants` finds them.

    Other questions keep their own parameters. ``applied`` counts the questions edited in the last call.
    """

    def __init__(self, model: nn.Module, vocab: Vocab):
        super().__init__()
        self.model, self.vocab = model, vocab
        self.applied = 0

    def _ids(self, rows: list[list[str]], device: torch.device) -> torch.Tensor:
        index = self.vocab.question_token_to_idx
        width = max(len(row) for row in rows)
        return torch.tensor([[index[word] for word in row] + [0] * (width - len(row)) for row in rows], device=device)

    def arithmetic_params(self, questions: torch.Tensor) -> torch.Tensor:
        params = self.model.film_params(questions)
        tokens = self.vocab.question_tokens
        edited, variants = [], {"plus sphere": [], "plus donor": [], "minus donor sphere": []}
        for row, ids in enumerate(questions.tolist()):
            found = question_variants([tokens[i] for i in ids if i != 0], self.vocab)
            if found is None:
                continue
            edited.append(row)
            for name, variant in found.items():
                variants[name].append(variant)
        self.applied = len(edited)
        if edited:
            parts = {name: self.model.film_params(self._ids(rows, questions.device)) for name, rows in variants.items()}
            params = params.clone()
            params[edited] = parts["plus sphere"] + parts["plus donor"] - parts["minus donor sphere"]
        return params

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.model.answer_with_film(images, self.arithmetic_params(questions))


def arithmetic_questions(split: CachedSplit) -> np.ndarray:
    """Indices of the labelled questions of ``split`` where the arithmetic applies (one unseen pair)."""
    tokens = split.vocab.question_tokens
    return np.array(
        [
            index
            for index, ids in enumerate(split.arrays.questions)
            if split.arrays.answers[index] >= 0
            and question_variants([tokens[i] for i in ids if i != 0], split.vocab) is not None
        ],
        dtype=np.int64,
    )


def arithmetic_accuracies(model: nn.Module, split: CachedSplit) -> dict:
    """Accuracy on the questions where the arithmetic applies, with the model's own and with arithmetic parameters.

    Meant for a model trained on CoGenT's condition A and a condition-B split (valB, testB).

    Example::

        arithmetic_accuracies(checkpoint.model, CachedSplit("cache/cogent", "valB", vocab))
        # {'questions': 2711, 'before': 0.71, 'after': 0.74}
    """
    indices = arithmetic_questions(split)
    if not len(indices):
        raise ValueError(f"split {split.split!r}: no question names a colour-shape pair that condition A never shows")
    return {
        "questions": len(indices),
        "before": evaluate(model, split, indices=indices).accuracy,
        "after": evaluate(FiLMArithmetic(model, split.vocab), split, indices=indices).accuracy,
    }
