"""Find the splits of a dataset on disk and read their questions: CLEVR v1.0, CoGenT, CLEVR-Humans, generated.

All of them share one layout, which is why one reader serves them:
``<root>/questions/CLEVR_<split>_questions.json`` and ``<root>/images/<split>/CLEVR_<split>_<6 digits>.png``
(CoGenT's splits are trainA, valA, valB, testA, testB; filmkit writes the same layout). CLEVR-Humans ships
``CLEVR-Humans-<split>.json`` (or ``CLEVR_humans_<split>.json``) with no programs, over the CLEVR v1.0 images,
which ``images_root`` points to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

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


def load_json(path: Path) -> object:
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from None


def _answer_string(value) -> str | None:
    # Generator output may hold bools and ints; the released files hold strings.
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _normalise_program(program: list[dict] | None) -> list[dict] | None:
    if not program:
        return None
    return [
        {
            "function": node.get("function", node.get("type")),
            "inputs": list(node.get("inputs", [])),
            "value_inputs": list(node.get("value_inputs", node.get("side_inputs", []))),
        }
        for node in program
    ]


def read_questions(source: SplitSource) -> list[QuestionRecord]:
    """All questions of a split, in file order, with errors that name the file and the question."""
    content = load_json(source.questions_path)
    entries = content.get("questions") if isinstance(content, dict) else content
    if not isinstance(entries, list):
        raise ValueError(f"{source.questions_path}: expected {{'questions': [...]}} at the top level")
    records = []
    for position, entry in enumerate(entries):
        where = f"{source.questions_path}: questions[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("question"), str):
            raise ValueError(f"{where}: needs a 'question' string")
        image_index = entry.get("image_index")
        filename = entry.get("image_filename")
        if image_index is None and filename is None:
            raise ValueError(f"{where}: needs 'image_index' or 'image_filename'")
        if image_index is None:
            digits = re.findall(r"\d+", filename)
            if not digits:
                raise ValueError(f"{where}: cannot read an image index from image_filename {filename!r}")
            image_index = int(digits[-1])
        if filename is None:
            filename = f"CLEVR_{source.name}_{int(image_index):06d}.png"
        records.append(
            QuestionRecord(
                question=entry["question"],
                answer=_answer_string(entry.get("answer")),
                program=_normalise_program(entry.get("program")),
                family=int(entry.get("question_family_index", -1)),
                image_index=int(image_index),
                image_filename=filename,
                orig_index=int(entry.get("question_index", position)),
            )
        )
    return records
