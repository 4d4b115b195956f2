"""Find the splits of a dataset on disk and read their questions: CLEVR v1.0, CoGenT, CLEVR-Humans, generated.

All of them share one layout, which is why one reader serves them:
``<root>/questions/CLEVR_<split>_questions.json`` and ``<root>/images/<split>/CLEVR_<split>_<6 digits>.png``
(CoGenT's splits are trainA, valA, valB, testA, testB; filmkit writes the same layout). CLEVR-Humans ships
``CLEVR-Humans-<split>.json`` (or ``CLEVR_humans_<split>.json``) with no programs, over the CLEVR v1.0 images,
which ``images_root`` points to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from filmkit.clevr import question_json
from filmkit.jsonfiles import gc_paused

QUESTION_FILE = re.compile(r"^CLEVR_(?P<split>.+)_questions\.json$")
HUMANS_FILE = re.compile(r"^CLEVR[-_][Hh]umans[-_](?P<split>[A-Za-z]+)\.json$")
IMAGE_NAME = re.compile(r"^CLEVR_(?P<split>.+)_\d+\.png$")


@dataclass
class QuestionRecord:
    """One question, normalised: string answers (None in test splits), programs with ``function`` keys."""

    question: str
    answer: str | None
    program: list[dict] | None
    family: int
    image_index: int
    image_filename: str
    orig_index: int


@dataclass
class SplitSource:
    """Where a split's questions and images are."""

    name: str
    questions_path: Path
    images_root: Path  # the folder holding images/<split>/

    def image_path(self, record: QuestionRecord) -> Path:
        # The file name says which image folder it lives in (CLEVR-Humans train questions use train images).
        match = IMAGE_NAME.match(record.image_filename)
        folder = match.group("split") if match else self.name
        return self.images_root / "images" / folder / record.image_filename


def find_splits(data_dir: str | Path, images_root: str | Path | None = None) -> dict[str, SplitSource]:
    """The splits of a dataset directory, by name.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "questions").mkdir()
    >>> _ = (root / "questions" / "CLEVR_valA_questions.json").write_text('{"questions": []}')
    >>> list(find_splits(root))
    ['valA']
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ValueError(f"{data_dir}: no such dataset directory")
    images = Path(images_root) if images_root else data_dir
    splits: dict[str, SplitSource] = {}
    for folder in (data_dir / "questions", data_dir):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            match = QUESTION_FILE.match(path.name) or HUMANS_FILE.match(path.name)
            if match and match.group("split") not in splits:
                splits[match.group("split")] = SplitSource(match.group("split"), path, images)
    if not splits:
        raise ValueError(
            f"{data_dir}: no question files found (expected questions/CLEVR_<split>_questions.json "
            "or CLEVR-Humans-<split>.json)"
        )
    return splits


@gc_paused()  # hundreds of thousands of records, none in a cycle
def read_questions(source: SplitSource) -> list[QuestionRecord]:
    """All questions of a split, in file order; errors name the file, the question and the field."""
    document = question_json.read_questions(source.questions_path)
    return [_record(source, position, entry) for position, entry in enumerate(document["questions"])]


def _record(source: SplitSource, position: int, entry: dict) -> QuestionRecord:
    image_index = entry["image_index"]
    return QuestionRecord(
        question=entry["question"],
        answer=entry.get("answer"),
        program=entry.get("program") or None,
        family=int(entry.get("question_family_index", -1)),
        image_index=image_index,
        image_filename=entry.get("image_filename") or f"CLEVR_{source.name}_{image_index:06d}.png",
        orig_index=int(entry.get("question_index", position)),
    )
