"""Statistics of a dataset in the CLEVR v1.0 layout: what is asked, what is answered, and how much the image matters.

`dataset_stats` reads every ``questions/CLEVR_<split>_questions.json`` (and the matching scene file, when there is
one) and reports per split: question and image counts, the answer distribution, question types with the share
of each type's most common answer, the question families present, and objects per scene. It also fits the best
"question-only" guess, the most common answer of each question family on the training split, and measures it on
the other splits: the accuracy a model reaches without looking at the image (about 42% on CLEVR).

Works as well on the released CLEVR v1.0 and CoGenT folders as on generated ones.

Example::

    from filmkit.clevr.stats import dataset_stats

    stats = dataset_stats("data/clevr-mini")
    stats["question_only"]["val"]["accuracy"]   # ~0.42
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filmkit.clevr.programs import question_type
from filmkit.clevr.question_json import read_questions
from filmkit.clevr.scene_json import read_json

NUM_FAMILIES = 90


def dataset_stats(root: str | Path) -> dict[str, Any]:
    """Per-split statistics and the question-only baseline of the dataset under ``root`` (JSON-ready).

    Raises FileNotFoundError when ``root/questions`` holds no question file.

    Example::

        dataset_stats("data/clevr-mini")["splits"]["train"]["families_covered"]     # 90
    """
    root = Path(root)
    files = sorted((root / "questions").glob("CLEVR_*_questions.json"), key=_split_order)
    if not files:
        raise FileNotFoundError(f"{root / 'questions'}: no CLEVR_<split>_questions.json files")
    questions = {
        path.name[len("CLEVR_") : -len("_questions.json")]: read_questions(path)["questions"] for path in files
    }
    splits = {
        name: split_stats(items, root / "scenes" / f"CLEVR_{name}_scenes.json") for name, items in questions.items()
    }
    return {"root": str(root), "splits": splits, "question_only": question_only_baseline(questions)}


def _split_order(path: Path) -> tuple[int, str]:
    """train* first, then val*, then test*, then anything else; by name within each."""
    name = path.name[len("CLEVR_") :]
    rank = next((i for i, prefix in enumerate(("train", "val", "test")) if name.startswith(prefix)), 3)
    return rank, name


def split_stats(questions: list[dict[str, Any]], scenes_path: Path | None = None) -> dict[str, Any]:
    """Counts, answers, types, families and (when ``scenes_path`` exists) objects per scene of one split.

    >>> q = {"question": "?", "image_index": 0, "answer": "yes", "question_family_index": 85,
    ...      "program": [{"function": "scene"}, {"function": "exist"}]}
    >>> split_stats([q, dict(q, image_index=1, answer="no")])["types"]["exist"]
    {'questions': 2, 'share': 1.0, 'top_answer': 'yes', 'top_answer_share': 0.5}
    """
    answers = Counter(q["answer"] for q in questions if "answer" in q)
    by_type: dict[str, Counter] = defaultdict(Counter)
    for q in questions:
        by_type[_type_of(q)][q.get("answer")] += 1
    families = {q["question_family_index"] for q in questions if "question_family_index" in q}
    stats: dict[str, Any] = {
        "questions": len(questions),
        "images": len({q["image_index"] for q in questions}),
        "answers": dict(answers.most_common()),
        "types": {name: _type_summary(counts, len(questions)) for name, counts in sorted(by_type.items())},
        "families_covered": len(families),
        "families_missing": sorted(set(range(NUM_FAMILIES)) - families) if families else [],
    }
    if scenes_path is not None and scenes_path.exists():
        sizes = Counter(len(scene["objects"]) for scene in read_json(scenes_path)["scenes"])
        total = sum(sizes.values())
        stats["objects_per_scene"] = {
            "mean": sum(n * count for n, count in sizes.items()) / total if total else 0.0,
            "histogram": {str(n): sizes[n] for n in sorted(sizes)},
        }
    return stats


def _type_of(question: dict[str, Any]) -> str:
    return question_type(question["program"]) if question.get("program") else "unknown"


def _type_summary(counts: Counter, total: int) -> dict[str, Any]:
    size = sum(counts.values())
    answered = Counter({answer: n for answer, n in counts.items() if answer is not None})
    summary: dict[str, Any] = {"questions": size, "share": size / total if total else 0.0}
    if answered:
        top, top_count = answered.most_common(1)[0]
        summary.update(top_answer=top, top_answer_share=top_count / sum(answered.values()))
    return summary


def question_only_guesses(train_families: Iterable, train_answers: Iterable, families: Iterable) -> list:
    """The question-only guess for questions of ``families``: the paper's Q-type baseline, defined once.

    Each family's most common training answer (a tie goes to the smallest answer), and for a family never seen in
    training the most common training answer overall. Answers may be words (`filmkit stats`, on question files)
    or ids (the speedrun and reports, on caches): vocabularies number answers in sorted order, so both agree.

    >>> question_only_guesses([1, 1, 1, 2], ["2", "3", "3", "yes"], [1, 2, 7])
    ['3', 'yes', '3']
    """
    by_family: dict[Any, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for family, answer in zip(train_families, train_answers, strict=True):
        by_family[family][answer] += 1
        overall[answer] += 1
    if not overall:
        raise ValueError("the question-only guess needs training questions with answers")

    def most_common(counts: Counter):
        best = max(counts.values())
        return min(answer for answer, count in counts.items() if count == best)

    majority = {family: most_common(counts) for family, counts in by_family.items()}
    fallback = most_common(overall)
    return [majority.get(family, fallback) for family in families]


def question_only_baseline(questions: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Accuracy of the question-only guess (`question_only_guesses`) on each split but the training one.

    Fitted on the split named ``train`` (else the first whose name starts with ``train``). Splits without answers
    are skipped.

    >>> train = [{"question_family_index": 1, "answer": a, "program": [{"function": "count"}]} for a in "2 2 3".split()]
    >>> question_only_baseline({"train": train, "val": train[1:]})["val"]["accuracy"]
    0.5
    """
    fit_on = "train" if "train" in questions else next((name for name in questions if name.startswith("train")), None)
    if fit_on is None:
        return {}
    answered = [q for q in questions[fit_on] if "answer" in q]
    if not answered:
        return {}
    fitted = ([q.get("question_family_index", -1) for q in answered], [q["answer"] for q in answered])
    result: dict[str, Any] = {"fit_on": fit_on}
    for name, items in questions.items():
        scored = [q for q in items if "answer" in q]
        if name == fit_on or not scored:
            continue
        guesses = question_only_guesses(*fitted, [q.get("question_family_index", -1) for q in scored])
        right: Counter = Counter()
        seen: Counter = Counter()
        for q, guess in zip(scored, guesses, strict=True):
            kind = _type_of(q)
            seen[kind] += 1
            right[kind] += guess == q["answer"]
        result[name] = {
            "accuracy": sum(right.values()) / len(scored),
            "by_type": {kind: right[kind] / seen[kind] for kind in sorted(seen)},
        }
    return result
