"""A synthetic stand-in for CLEVR-Humans: generated questions reworded with phrasings and synonyms held out of
CLEVR's templates.

CLEVR-Humans asks about CLEVR images in people's own words; a model trained on template questions meets new words
and new sentence shapes there. This module makes the same kind of shift on any generated dataset, by rules: every
rewording keeps the question's meaning, so its answer (and program) stay valid. It is synthetic and labelled so
in every file it writes; it measures adaptation to new wording, not to human reasoning.

>>> import random
>>> reword("Are there any gray metal cubes?", random.Random(0), rate=1.0)
'Can you spot any grey steel boxes?'
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from filmkit.clevr.question_json import read_questions, write_questions

# Whole-question openings of CLEVR's templates, and held-out ones with the same meaning.
OPENINGS = [
    ("Are there any ", "Can you spot any "),
    ("Is there a ", "Can you find a "),
    ("Is there an ", "Can you find an "),
    ("How many ", "Tell me how many "),
    ("What number of ", "Tell me how many "),
    ("What color is ", "Which colour is "),
    ("What is the color of ", "Name the colour of "),
    ("What shape is ", "Which form has "),
    ("What is the shape of ", "Name the form of "),
    ("What material is ", "Which substance is "),
]
# Single words, none of them in CLEVR's question vocabulary.
SYNONYMS = {
    "cube": "box", "cubes": "boxes", "block": "box", "blocks": "boxes",
    "sphere": "globe", "spheres": "globes", "ball": "globe", "balls": "globes",
    "cylinder": "tube", "cylinders": "tubes",
    "gray": "grey", "metal": "steel", "metallic": "steel", "shiny": "glossy", "matte": "dull", "rubber": "plastic",
    "object": "item", "objects": "items", "thing": "item", "things": "items",
    "large": "huge", "big": "huge", "small": "little", "tiny": "little", "color": "colour",
}  # fmt: skip
LABEL = "humans-like: generated questions reworded by filmkit's rules (synthetic, not CLEVR-Humans)"


def reword(question: str, rng: random.Random, rate: float = 0.5) -> str:
    """``question`` with its opening and each known word replaced, each with probability ``rate``.

    Replacements keep the capitalisation of the first letter and all punctuation.
    """
    for old, new in OPENINGS:
        if question.startswith(old):
            if rng.random() < rate:
                question = new + question[len(old) :]
            break

    def swap(match: re.Match) -> str:
        word = match.group(0)
        replacement = SYNONYMS.get(word.lower())
        if replacement is None or rng.random() >= rate:
            return word
        return replacement.capitalize() if word[0].isupper() else replacement

    return re.sub(r"[A-Za-z]+", swap, question)


def write_humans_like(
    data_dir: str | Path, out_dir: str | Path, splits: list[str], seed: int = 0, rate: float = 0.5
) -> dict[str, int]:
    """Reword the questions of ``splits`` of ``data_dir`` into ``out_dir/questions``; return questions per split.

    Images are not copied: point ``--images-root`` (preprocess, finetune) at ``data_dir``. Programs, families and
    answers are kept, so per-type accuracy still works (the real CLEVR-Humans has none of them).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    reworded = {}
    for split in splits:  # every split read and reworded before the first is written: a failure writes nothing
        source = data_dir / "questions" / f"CLEVR_{split}_questions.json"
        if not source.exists():
            raise ValueError(f"{source} does not exist: no {split!r} split in {data_dir}")
        document = read_questions(source)
        rng = random.Random(f"{seed}-{split}")
        questions = [{**entry, "question": reword(entry["question"], rng, rate)} for entry in document["questions"]]
        info = {**document.get("info", {}), "split": split, "synthetic": LABEL, "reworded_from": str(source)}
        reworded[split] = (questions, info)
    for split, (questions, info) in reworded.items():
        write_questions(out_dir / "questions" / f"CLEVR_{split}_questions.json", questions, info)
    return {split: len(questions) for split, (questions, _) in reworded.items()}
