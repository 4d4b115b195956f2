"""Tokenizer and vocabularies, compatible with the reference implementation's vocab.json.

Rules: ';' and ',' become tokens of their own, '?' and '.' are dropped, the text is split on spaces with case
kept, and <START> / <END> wrap the question. Every vocabulary starts with <NULL>=0, <START>=1, <END>=2, <UNK>=3,
then the remaining tokens sorted. A vocab.json holds ``question_token_to_idx``, ``program_token_to_idx`` and
``answer_token_to_idx``, so files written here are read by the reference code and the other way round.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from filmkit.atomic import atomic_output
from filmkit.jsonfiles import read_json

SPECIAL_TOKENS = ("<NULL>", "<START>", "<END>", "<UNK>")
NULL, START, END, UNK = range(4)
VOCAB_KEYS = ("question_token_to_idx", "program_token_to_idx", "answer_token_to_idx")


def tokenize(text: str, add_start: bool = True, add_end: bool = True) -> list[str]:
    """Split a question into tokens the way the reference preprocessing does.

    >>> tokenize("Is there a big cube; what color is it?")
    ['<START>', 'Is', 'there', 'a', 'big', 'cube', ';', 'what', 'color', 'is', 'it', '<END>']
    """
    for mark in (";", ","):
        text = text.replace(mark, f" {mark}")
    for mark in ("?", "."):
        text = text.replace(mark, "")
    tokens = [token for token in text.split(" ") if token]
    return (["<START>"] if add_start else []) + tokens + (["<END>"] if add_end else [])


def token_index(tokens: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Special tokens first, then every token seen at least ``min_count`` times, sorted."""
    counts = Counter(tokens)
    index = {token: position for position, token in enumerate(SPECIAL_TOKENS)}
    for token in sorted(counts):
        if counts[token] >= min_count and token not in index:
            index[token] = len(index)
    return index


def program_tokens(program: list[dict]) -> list[str]:
    """Tokens of a CLEVR program in prefix order (root first), e.g. ``query_color``, ``filter_size[large]``.

    Nodes may use ``function`` or ``type`` for the function name, as the released and generated files do.
    """

    def name(node: dict) -> str:
        function = node.get("function", node.get("type"))
        values = node.get("value_inputs") or node.get("side_inputs") or []
        return f"{function}[{','.join(values)}]" if values else str(function)

    def prefix(position: int) -> list[str]:
        node = program[position]
        return [name(node)] + [token for child in node.get("inputs", []) for token in prefix(child)]

    return prefix(len(program) - 1) if program else []


@dataclass
class Vocab:
    """The three vocabularies of a dataset, with encoding helpers.

    >>> vocab = build_vocab([{"question": "Is there a cube?", "answer": "yes"}])
    >>> vocab.encode_question("Is there a sphere?")
    ([1, 4, 7, 5, 3, 2], ['sphere'])
    >>> vocab.answer_token_to_idx["yes"]
    4
    """

    question_token_to_idx: dict[str, int]
    answer_token_to_idx: dict[str, int]
    program_token_to_idx: dict[str, int] = field(default_factory=lambda: token_index([]))

    def __post_init__(self) -> None:
        for key in VOCAB_KEYS:
            mapping = getattr(self, key)
            if sorted(mapping.values()) != list(range(len(mapping))):
                raise ValueError(f"vocab {key}: indices must be 0..{len(mapping) - 1} without gaps or repeats")
            for token, expected in zip(SPECIAL_TOKENS, range(4), strict=True):
                if mapping.get(token) != expected:
                    raise ValueError(f"vocab {key}: {token} must have index {expected}")
        self.answer_tokens = sorted(self.answer_token_to_idx, key=self.answer_token_to_idx.get)
        self.question_tokens = sorted(self.question_token_to_idx, key=self.question_token_to_idx.get)

    def encode_question(self, text: str) -> tuple[list[int], list[str]]:
        """Token ids of ``text`` and the words that were not in the vocabulary (mapped to <UNK>)."""
        ids, unknown = [], []
        for token in tokenize(text):
            if token in self.question_token_to_idx:
                ids.append(self.question_token_to_idx[token])
            else:
                ids.append(UNK)
                unknown.append(token)
        return ids, unknown

    def decode_question(self, ids: Iterable[int]) -> str:
        words = [self.question_tokens[i] for i in ids if i not in (NULL, START, END)]
        return " ".join(words)

    def to_json(self) -> dict:
        return {key: dict(getattr(self, key)) for key in VOCAB_KEYS}

    def save(self, path: str | os.PathLike) -> Path:
        """Write vocab.json atomically."""
        with atomic_output(path, "w") as handle:
            json.dump(self.to_json(), handle, indent=1)
        return Path(path)

    @classmethod
    def from_json(cls, values: dict, source: str = "vocab") -> Vocab:
        missing = [key for key in ("question_token_to_idx", "answer_token_to_idx") if key not in values]
        if missing:
            raise ValueError(f"{source}: missing {', '.join(missing)}")
        try:
            return cls(
                question_token_to_idx=dict(values["question_token_to_idx"]),
                answer_token_to_idx=dict(values["answer_token_to_idx"]),
                program_token_to_idx=dict(values.get("program_token_to_idx") or token_index([])),
            )
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocab.json written by filmkit or by the reference preprocessing."""
        path = Path(path)
        return cls.from_json(read_json(path), source=str(path))


def build_vocab(questions: Iterable[dict], min_token_count: int = 1) -> Vocab:
    """Vocabularies from question records (dicts with ``question``, optional ``answer`` and ``program``)."""
    words: list[str] = []
    answers: list[str] = []
    programs: list[str] = []
    for record in questions:
        words += tokenize(record["question"])
        if record.get("answer") is not None:
            answers.append(str(record["answer"]))
        if record.get("program"):
            programs += program_tokens(record["program"])
    return Vocab(token_index(words, min_token_count), token_index(answers), token_index(programs))


def expand_vocab(vocab: Vocab, texts: Iterable[str], min_count: int = 1) -> tuple[Vocab, list[str]]:
    """Add the words of ``texts`` seen at least ``min_count`` times as new question tokens (fine-tuning).

    Old tokens keep their indices, so a model's embedding only needs new rows appended. Rarer words stay
    unknown and map to <UNK>. Returns the new vocabulary and the added words in index order.

    >>> vocab = build_vocab([{"question": "Is there a cube?", "answer": "yes"}])
    >>> bigger, added = expand_vocab(vocab, ["Is there a block?", "Any block here?"], min_count=2)
    >>> added, bigger.question_token_to_idx["block"]
    (['block'], 8)
    """
    counts = Counter(token for text in texts for token in tokenize(text, add_start=False, add_end=False))
    added = sorted(t for t, c in counts.items() if c >= min_count and t not in vocab.question_token_to_idx)
    questions = dict(vocab.question_token_to_idx)
    for token in added:
        questions[token] = len(questions)
    return Vocab(questions, dict(vocab.answer_token_to_idx), dict(vocab.program_token_to_idx)), added
