"""CoGenT's zero-shot FiLM-parameter arithmetic edits exactly the parameters it should."""

import pytest
import torch
from eval_data import make_cache, make_dataset, tiny_model

from filmkit.analysis.arithmetic import FiLMArithmetic, arithmetic_accuracies, question_variants, unseen_pair
from filmkit.data.dataset import CachedSplit
from filmkit.data.vocab import build_vocab, tokenize

QUESTIONS = [
    "Is there a cyan cube?",
    "Is there a brown cube?",
    "Is there a cyan sphere?",
    "Is there a brown sphere?",
    "Is there a gray metal cylinder?",
    "Are there more cyan cubes than gray cylinders?",
    "Is there a red ball?",
]


@pytest.mark.parametrize(
    "question, pair",
    [
        ("Is there a cyan cube?", (4, 5)),  # cubes are never cyan in condition A
        ("Is there a gray metal cylinder?", (4, 6)),  # nor cylinders gray; a material word may stand between
        ("Is there a brown cube?", None),  # condition A shows brown cubes
        ("Is there a cyan sphere?", None),  # spheres take every colour
        ("Are there more cyan cubes than gray cylinders?", None),  # two unseen pairs: the arithmetic is ambiguous
        ("What color is the cube?", None),
    ],
)
def test_unseen_pairs_are_found_only_where_the_arithmetic_applies(question, pair):
    assert unseen_pair(tokenize(question)) == pair


def test_the_arithmetic_replaces_exactly_the_edited_questions_parameters():
    vocab = build_vocab([{"question": text, "answer": answer} for text in QUESTIONS for answer in ("yes", "no")])
    model = tiny_model(vocab, module_dim=8)
    arithmetic = FiLMArithmetic(model, vocab)

    def ids(*texts):
        encoded = [vocab.encode_question(text)[0] for text in texts]
        width = max(map(len, encoded))
        return torch.tensor([row + [0] * (width - len(row)) for row in encoded])

    with torch.no_grad():
        batch = ids("Is there a brown cube?", "Is there a cyan cube?", "Is there a gray metal cylinder?")
        edited = arithmetic.arithmetic_params(batch)
        own = model.film_params(batch)
        cyan_cube = model.film_params(
            ids("Is there a cyan sphere?", "Is there a brown cube?", "Is there a brown sphere?")
        )
        gray_cylinder = model.film_params(
            ids("Is there a gray metal sphere?", "Is there a red metal cylinder?", "Is there a red metal sphere?")
        )
    assert arithmetic.applied == 2
    torch.testing.assert_close(edited[0], own[0])  # brown cubes are seen in condition A: untouched
    torch.testing.assert_close(edited[1], cyan_cube[0] + cyan_cube[1] - cyan_cube[2])
    torch.testing.assert_close(edited[2], gray_cylinder[0] + gray_cylinder[1] - gray_cylinder[2])


def test_questions_whose_variants_use_unknown_words_are_left_alone():
    vocab = build_vocab([{"question": "Is there a cyan cube?", "answer": "yes"}])  # no "sphere", no "brown"
    assert question_variants(tokenize("Is there a cyan cube?"), vocab) is None


def test_a_split_without_unseen_pairs_is_refused(tmp_path):
    make_dataset(tmp_path / "dataset")
    vocab = make_cache(tmp_path / "dataset", tmp_path / "cache")
    with pytest.raises(ValueError, match="no question names a colour-shape pair"):
        arithmetic_accuracies(tiny_model(vocab), CachedSplit(tmp_path / "cache", "val"))
