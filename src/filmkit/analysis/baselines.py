"""The question-only guess: the most common training answer of each question family.

It is the paper's Q-type baseline and the bar a model must clear to show it looks at the image.
"""

from __future__ import annotations

import numpy as np

from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import FINAL_FUNCTIONS


def family_majority_answers(train: CachedSplit) -> dict[int, int]:
    """For each family in ``train``, its most common answer id (ties go to the smallest id)."""
    families, answers = train.arrays.families, train.arrays.answers
    majority = {}
    for family in np.unique(families):
        counts = np.bincount(answers[(families == family) & (answers >= 0)])
        if counts.size:
            majority[int(family)] = int(counts.argmax())
    return majority


def question_only_correct(train: CachedSplit, evaluation: CachedSplit) -> np.ndarray:
    """For each question of ``evaluation``, whether its family's majority answer in ``train`` is right.

    Families unseen in training fall back to the overall most common training answer. Questions without a
    family (CLEVR-Humans) all share that fallback; questions without an answer count as wrong.
    """
    majority = family_majority_answers(train)
    overall = int(np.bincount(train.arrays.answers[train.arrays.answers >= 0]).argmax())
    guesses = np.array([majority.get(int(f), overall) for f in evaluation.arrays.families])
    return (guesses == evaluation.arrays.answers) & (evaluation.arrays.answers >= 0)


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
