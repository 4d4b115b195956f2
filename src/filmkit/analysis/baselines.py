"""The question-only guess: the most common training answer of each question family.

It is the paper's Q-type baseline and the bar a model must clear to show it looks at the image.
"""

from __future__ import annotations

import numpy as np

from filmkit.clevr.stats import question_only_guesses
from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import FINAL_FUNCTIONS


def question_only_correct(train: CachedSplit, evaluation: CachedSplit) -> np.ndarray:
    """For each question of ``evaluation``, whether the question-only guess fitted on ``train`` is right.

    The guess is `filmkit.clevr.stats.question_only_guesses` (also what `filmkit stats` reports): each family's
    most common training answer, the overall one for a family unseen in training. Questions without a family
    (CLEVR-Humans) form one family; questions without an answer count as wrong.
    """
    labelled = train.arrays.answers >= 0
    families = train.arrays.families[labelled].tolist()
    guesses = question_only_guesses(
        families, train.arrays.answers[labelled].tolist(), evaluation.arrays.families.tolist()
    )
    return (np.array(guesses) == evaluation.arrays.answers) & (evaluation.arrays.answers >= 0)


def question_only_accuracy(train: CachedSplit, evaluation: CachedSplit) -> float:
    """Accuracy on ``evaluation`` of answering each question with its family's majority answer in ``train``.

    Example::

        question_only_accuracy(CachedSplit(cache, "train"), CachedSplit(cache, "val"))   # about 0.42 on CLEVR
    """
    labelled = evaluation.arrays.answers >= 0
    if not labelled.any():
        raise ValueError(f"split {evaluation.split!r} has no answers to score a guess against")
    return float(question_only_correct(train, evaluation)[labelled].mean())


def question_only_by_function(train: CachedSplit, evaluation: CachedSplit) -> dict[str, float]:
    """The question-only guess's accuracy for each final function (count, query_shape, ...) of ``evaluation``."""
    correct = question_only_correct(train, evaluation)
    labelled = evaluation.arrays.answers >= 0
    by_function = {}
    for code, name in enumerate(FINAL_FUNCTIONS):
        chosen = labelled & (evaluation.arrays.functions == code)
        if chosen.any():
            by_function[name] = float(correct[chosen].mean())
    return by_function
