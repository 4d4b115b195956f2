"""The preprocessed cache: what is in it, and reading one split of it fast.

A cache directory holds ``vocab.json``, a ``cache.json`` manifest, and per split ``<split>_questions.h5``
(the reference implementation's dataset names: ``questions``, ``image_idxs``, ``orig_idxs``, ``programs``,
``question_families``, ``answers``, ``types``, plus ``final_functions``) and an image file: ``<split>_images.h5``
with uint8 ``images`` (N, 3, H, W), or ``<split>_features.h5`` with float ``features`` (N, C, H, W).
``image_idxs`` indexes rows of the image file. A directory made by the reference preprocessing (questions.h5 +
features.h5 + vocab.json, no manifest) reads the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from filmkit.data.question_types import FINAL_FUNCTIONS, NO_TYPE, type_codes
from filmkit.data.vocab import Vocab

CACHE_FORMAT = "filmkit-cache"
CACHE_VERSION = 1
MANIFEST = "cache.json"


def questions_file(cache_dir: Path, split: str) -> Path:
    return cache_dir / f"{split}_questions.h5"


def image_file(cache_dir: Path, split: str) -> Path:
    """The split's image file: uint8 pixels if present, else (reference-style) float features."""
    pixels = cache_dir / f"{split}_images.h5"
    return pixels if pixels.exists() else cache_dir / f"{split}_features.h5"


def read_manifest(cache_dir: str | Path) -> dict | None:
    """The cache's manifest, or None for a reference-implementation cache (which has none)."""
    path = Path(cache_dir) / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise ValueError(f"{path}: not a filmkit cache manifest")
    return manifest


def list_splits(cache_dir: str | Path) -> list[str]:
    """Splits that have both a questions file and an image file."""
    cache_dir = Path(cache_dir)
    names = sorted(path.name[: -len("_questions.h5")] for path in cache_dir.glob("*_questions.h5"))
    return [name for name in names if image_file(cache_dir, name).exists()]


@dataclass
class SplitArrays:
    """One split's question arrays in memory and the location of its images (memory-mapped on demand)."""

    questions: np.ndarray  # (N, T) int, 0-padded
    image_rows: np.ndarray  # (N,) row of each question's image in the image file
    answers: np.ndarray  # (N,) answer ids, -1 where unknown (test splits)
    categories: np.ndarray  # (N,) paper category code, -1 without a program
    functions: np.ndarray  # (N,) final-function code, -1 without a program
    families: np.ndarray  # (N,) template family, -1 when unknown
    orig_idxs: np.ndarray  # (N,) position of the question in its source file
    image_path: Path
    image_key: str  # "images" (uint8, scaled to [0, 1] when served) or "features" (float, served as is)
    image_shape: tuple[int, ...]  # (M, C, H, W)


def read_split(cache_dir: str | Path, split: str, vocab: Vocab) -> SplitArrays:
    """Load a split's question arrays; raise a ValueError naming the file when something is missing."""
    cache_dir = Path(cache_dir)
    qpath, ipath = questions_file(cache_dir, split), image_file(cache_dir, split)
    for path in (qpath, ipath):
        if not path.exists():
            raise ValueError(f"{cache_dir}: split {split!r} has no {path.name} (splits here: {list_splits(cache_dir)})")
    with h5py.File(qpath, "r") as handle:
        for key in ("questions", "image_idxs"):
            if key not in handle:
                raise ValueError(f"{qpath}: no {key!r} dataset")
        questions = handle["questions"][()]
        count = len(questions)

        def column(key: str, fill: int = -1) -> np.ndarray:
            return handle[key][()].astype(np.int64) if key in handle else np.full(count, fill, dtype=np.int64)

        image_rows = column("image_idxs")
        answers = column("answers")
        families = column("question_families")
        orig_idxs = column("orig_idxs") if "orig_idxs" in handle else np.arange(count)
        if "final_functions" in handle:
            functions, categories = column("final_functions"), column("types")
        else:  # a reference cache: its type codes are unstable, so derive ours from the program's root token
            categories, functions = _types_from_programs(handle, vocab, count)
    with h5py.File(ipath, "r") as handle:
        key = "images" if "images" in handle else "features"
        if key not in handle:
            raise ValueError(f"{ipath}: no 'images' or 'features' dataset")
        shape = tuple(handle[key].shape)
    if count == 0:
        raise ValueError(f"{qpath}: the split {split!r} has no questions")
    if image_rows.min() < 0 or image_rows.max() >= shape[0]:
        raise ValueError(f"{qpath}: image_idxs point outside the {shape[0]} rows of {ipath.name}")
    return SplitArrays(
        questions=questions.astype(np.int64),
        image_rows=image_rows,
        answers=answers,
        categories=categories,
        functions=functions,
        families=families,
        orig_idxs=orig_idxs,
        image_path=ipath,
        image_key=key,
        image_shape=shape,
    )


def _types_from_programs(handle: h5py.File, vocab: Vocab, count: int) -> tuple[np.ndarray, np.ndarray]:
    categories = np.full(count, NO_TYPE, dtype=np.int64)
    functions = np.full(count, NO_TYPE, dtype=np.int64)
    if "programs" not in handle:
        return categories, functions
    index_to_token = {index: token for token, index in vocab.program_token_to_idx.items()}
    programs = handle["programs"][()]
    for row, program in enumerate(programs):
        # Prefix order: <START> then the root, which is the function that produces the answer.
        root = index_to_token.get(int(program[1])) if len(program) > 1 else None
        if root in FINAL_FUNCTIONS:
            categories[row], functions[row] = type_codes([{"function": root}])
    return categories, functions


def open_image_array(arrays: SplitArrays):
    """A read-only array over the split's images: a numpy memmap when the HDF5 dataset is contiguous and
    uncompressed (the usual case, fast and shared between worker processes), else the h5py dataset."""
    handle = h5py.File(arrays.image_path, "r")
    dataset = handle[arrays.image_key]
    offset = dataset.id.get_offset()
    if dataset.chunks is None and dataset.compression is None and offset is not None:
        memmap = np.memmap(arrays.image_path, mode="r", dtype=dataset.dtype, offset=offset, shape=dataset.shape)
        handle.close()
        return memmap
    return dataset


def read_rows(images, rows: np.ndarray) -> np.ndarray:
    """Rows of an image array in the requested order (h5py needs increasing unique indices)."""
    if isinstance(images, np.ndarray):
        return images[rows]
    unique, inverse = np.unique(rows, return_inverse=True)
    return images[unique][inverse]
