"""Preprocess a dataset on disk into a cache: vocabulary, encoded questions and resized uint8 images.

Images are decoded and resized once (in worker processes) into one contiguous HDF5 array per split, which the
training loader memory-maps. Every file appears atomically; an interrupted run resumes from the images it had
already written. Everything is checked before the first file is written, so a request that fails leaves nothing
that blocks the next run; a cache made otherwise is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from filmkit import __version__
from filmkit.atomic import OVERWRITE_HINT, OutputExistsError, atomic_output
from filmkit.clevr.questions import file_sha256
from filmkit.data.cache import CACHE_FORMAT, CACHE_VERSION, MANIFEST, questions_file
from filmkit.data.features import RESNET_INPUT, FeatureEncoder, resnet101_encoder
from filmkit.data.question_types import type_codes
from filmkit.data.readers import QuestionRecord, SplitSource, find_splits, read_questions
from filmkit.data.scene_maps import SCENE_MAPS, scenes_for_images, write_scene_maps
from filmkit.data.vocab import END, NULL, START, UNK, Vocab, build_vocab, program_tokens
from filmkit.jsonfiles import gc_paused

Progress = Callable[[str, str, int, int], None]  # (split, stage, done, total)
BLOCK = 256  # images decoded per write; also how often progress is saved for resuming
# A worker process costs seconds to start (it imports this package); one decodes about 1,000 images in that time.
# Below this many images per worker a pool loses: a 300-image split took 24-29 s with 2 workers, 4 s with one.
IMAGES_PER_WORKER = 2000


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Decode a PNG as RGB, resize it to ``size`` = (W, H) with bicubic filtering, return uint8 (3, H, W).

    A file that is missing, not an image or truncated is a ValueError naming it (Pillow's own message does not).
    """
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    if rgb.size != size:
        rgb = rgb.resize(size, Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def _load_image_job(job: tuple[Path, tuple[int, int]]) -> np.ndarray:
    return load_image(*job)


def choose_vocab_split(splits: dict[str, SplitSource]) -> str:
    """The split the vocabulary is built from: train, else the first split whose name starts with train."""
    if "train" in splits:
        return "train"
    for name in sorted(splits):
        if name.startswith("train"):
            return name
    raise ValueError(
        f"no training split among {sorted(splits)} to build the vocabulary from; pass an existing vocab.json"
    )


@gc_paused()  # builds a list per question; see gc_paused
def encode_split(records: list[QuestionRecord], vocab: Vocab) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays for ``<split>_questions.h5`` and a summary (unknown words and answers) for the manifest."""
    count = len(records)
    encoded, unknown_words = [], Counter()
    for record in records:
        ids, unknown = vocab.encode_question(record.question)
        encoded.append(ids)
        unknown_words.update(unknown)
    questions = np.zeros((count, max(len(ids) for ids in encoded)), dtype=np.int32)
    for row, ids in enumerate(encoded):
        questions[row, : len(ids)] = ids
    answers = np.array([vocab.answer_token_to_idx.get(r.answer, -1) if r.answer else -1 for r in records], np.int32)
    codes = np.array([type_codes(r.program) for r in records], dtype=np.int32).reshape(count, 2)
    arrays = {
        "questions": questions,
        "orig_idxs": np.array([r.orig_index for r in records], dtype=np.int32),
        "image_index": np.array([r.image_index for r in records], dtype=np.int32),
        "question_families": np.array([r.family for r in records], dtype=np.int32),
        "types": codes[:, 0],
        "final_functions": codes[:, 1],
    }
    with_answers = sum(r.answer is not None for r in records)
    if with_answers:
        arrays["answers"] = answers
    programs = [program_tokens(r.program) if r.program else [] for r in records]
    if any(programs):
        longest = max(len(tokens) for tokens in programs) + 2
        encoded_programs = np.full((count, longest), NULL, dtype=np.int32)
        for row, tokens in enumerate(programs):
            ids = [START] + [vocab.program_token_to_idx.get(t, UNK) for t in tokens] + [END]
            encoded_programs[row, : len(ids)] = ids
        arrays["programs"] = encoded_programs
    summary = {
        "questions": count,
        "with_answers": with_answers,
        "unknown_answers": int(((answers < 0) & np.array([r.answer is not None for r in records])).sum()),
        "unknown_words": dict(unknown_words.most_common(20)),
    }
    return arrays, summary


def _write_questions(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_output(path, "w+b") as handle, h5py.File(handle, "w") as h5:
        for key, values in arrays.items():
            h5.create_dataset(key, data=values)


def _write_images(
    split: str,
    paths: list[Path],
    out_path: Path,
    size: tuple[int, int],
    workers: int,
    progress: Progress | None,
    encoder: FeatureEncoder | None = None,
) -> None:
    """Decode and resize ``paths`` (then encode them, with ``encoder``) into one contiguous array, resuming a
    partial file if one is there."""
    width, height = size
    key, dtype, row_shape = ("images", np.uint8, (3, height, width))
    if encoder is not None:
        key, dtype, row_shape = ("features", np.float32, encoder.output_shape)
    shape = (len(paths), *row_shape)
    partial = out_path.with_name(out_path.name + ".partial")
    done = 0
    if partial.exists():
        with h5py.File(partial, "r") as h5:
            if key in h5 and h5[key].shape == shape:
                done = int(h5.attrs.get("rows_done", 0))
    if done == 0:
        with h5py.File(partial, "w") as h5:
            h5.create_dataset(key, shape=shape, dtype=dtype)  # contiguous: memory-mappable
            h5.attrs["rows_done"] = 0
    workers = min(workers, max(1, (len(paths) - done) // IMAGES_PER_WORKER))
    pool = get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        with h5py.File(partial, "r+") as h5:
            array = h5[key]
            for start in range(done, len(paths), BLOCK):
                jobs = [(path, size) for path in paths[start : start + BLOCK]]
                decoded = np.stack(pool.map(_load_image_job, jobs) if pool else [_load_image_job(j) for j in jobs])
                array[start : start + len(decoded)] = encoder(decoded) if encoder else decoded
                h5.attrs["rows_done"] = start + len(decoded)
                h5.flush()
                if progress:
                    progress(split, key, start + len(decoded), len(paths))
    finally:
        if pool:
            pool.close()
            pool.join()
    partial.replace(out_path)


class CacheConflictError(OutputExistsError, ValueError):
    """The folder holds a cache made otherwise: another source, resolution, image kind, vocabulary or question file."""


def preprocess(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    resolution: tuple[int, int] = (128, 128),
    splits: list[str] | None = None,
    images_root: str | Path | None = None,
    vocab_path: str | Path | None = None,
    min_token_count: int = 1,
    workers: int = 1,
    features: str | None = None,
    weights: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Build (or finish building) the cache of ``data_dir`` in ``out_dir``; return its manifest.

    ``resolution`` is (W, H). The vocabulary comes from ``vocab_path`` if given, else from the training split.
    ``features="resnet101"`` (with ``weights``, a local file) stores ResNet-101 conv4 features of 224 x 224
    images instead of pixels; ``features="scene-maps"`` the true scene at ``resolution`` cells, read from the
    scene files (:mod:`filmkit.data.scene_maps`). Splits already complete in ``out_dir`` are kept and an
    interrupted run resumes; a cache of another source, resolution, feature kind, vocabulary or question file
    there is refused unless ``overwrite``, which replaces it (deleting only the cache's own files). Every
    question, image path and answer is checked before anything is written, so a request that fails leaves
    nothing behind.

    Example::

        preprocess("data/clevr-mini", "cache/clevr-mini", resolution=(128, 128), workers=2)
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    encoder = None
    if features not in (None, "resnet101", SCENE_MAPS):
        raise ValueError(f"unknown features {features!r}; choose resnet101 or {SCENE_MAPS}")
    if features == "resnet101":
        if weights is None:
            raise ValueError("--features resnet101 needs --weights FILE (ImageNet weights; nothing is downloaded)")
        encoder = resnet101_encoder(weights)
        resolution = RESNET_INPUT
    sources = find_splits(data_dir, images_root)
    chosen = splits or sorted(sources)
    for name in chosen:
        if name not in sources:
            raise ValueError(f"{data_dir}: no split {name!r} (found {', '.join(sorted(sources))})")
    fresh = _fresh_manifest(data_dir, resolution, features or "pixels")
    existing = _existing_manifest(out_dir, fresh, overwrite)
    manifest = existing or fresh
    vocab_file = out_dir / "vocab.json"
    fingerprints = {name: file_sha256(sources[name].questions_path) for name in chosen}
    finished = all(manifest["splits"].get(name, {}).get("questions_sha256") == fingerprints[name] for name in chosen)
    if (
        existing
        and finished
        and (vocab_path is None or Vocab.load(vocab_path).to_json() == Vocab.load(vocab_file).to_json())
    ):
        return manifest  # every split is cached from these very files: no need to read 700,000 questions again

    # First every check, with nothing written: a request that fails here leaves out_dir as it was.
    records = {name: read_questions(sources[name]) for name in chosen}
    for name, split_records in records.items():
        if not split_records:
            raise ValueError(f"{sources[name].questions_path}: the split {name!r} has no questions")
    kept_vocab = Vocab.load(vocab_file) if existing and vocab_file.exists() else None
    if vocab_path:
        vocab = Vocab.load(vocab_path)
        if kept_vocab is not None and kept_vocab.to_json() != vocab.to_json():
            raise CacheConflictError(
                f"{out_dir}: already encoded with another vocabulary than {vocab_path}; {OVERWRITE_HINT} "
                "(re-encoding every split), or choose a new cache directory"
            )
    elif kept_vocab is not None:
        vocab = kept_vocab
    else:
        vocab_split = choose_vocab_split(records)
        vocab = build_vocab((r.__dict__ for r in records[vocab_split]), min_token_count)
        manifest["vocab_split"] = vocab_split
    todo = []
    for name in chosen:
        source, split_records, fingerprint = sources[name], records[name], fingerprints[name]
        if name in manifest["splits"]:  # finished by an earlier run, from the same question file?
            if manifest["splits"][name].get("questions_sha256") != fingerprint:
                raise CacheConflictError(
                    f"{out_dir}: split {name!r} was cached from another version of {source.questions_path}; "
                    f"the questions changed since, so {OVERWRITE_HINT} (rebuilding the cache), or use a new "
                    "cache directory"
                )
            continue
        image_indices = sorted({r.image_index for r in split_records})
        row_of = {index: row for row, index in enumerate(image_indices)}
        first_record = {}
        for record in split_records:
            first_record.setdefault(record.image_index, record)
        paths = [source.image_path(first_record[index]) for index in image_indices]
        missing = [path for path in paths if not path.is_file()]
        if missing:
            raise ValueError(
                f"{source.questions_path}: {len(missing)} question image(s) missing on disk, first {missing[0]}"
            )
        arrays, summary = encode_split(split_records, vocab)
        if summary["unknown_answers"] and name.startswith("train"):
            # Training needs a target for every question; elsewhere an unknown answer just scores as wrong.
            raise ValueError(
                f"{source.questions_path}: {summary['unknown_answers']} answers missing from the answer vocabulary"
            )
        arrays["image_idxs"] = np.array([row_of[r.image_index] for r in split_records], dtype=np.int32)
        scenes = scenes_for_images(data_dir, name, paths) if features == SCENE_MAPS else None
        summary = {**summary, "images": len(paths), "questions_sha256": fingerprint}
        todo.append((name, paths, scenes, arrays, summary))

    # Then the writes; each file appears atomically, and an interruption resumes from the manifest and .partial.
    if overwrite:
        remove_cache(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_manifest(out_dir, manifest)
    if kept_vocab is None:
        vocab.save(vocab_file)
    for name, paths, scenes, arrays, summary in todo:
        image_path = out_dir / f"{name}_{'features' if features else 'images'}.h5"
        if scenes is not None:
            width, height = resolution
            write_scene_maps(scenes, image_path, (height, width), source=f"{data_dir}/scenes ({name})")
        else:
            _write_images(name, paths, image_path, resolution, workers, progress, encoder)
        _write_questions(questions_file(out_dir, name), arrays)
        manifest["splits"][name] = summary
        _save_manifest(out_dir, manifest)
    return manifest


CACHE_FILES = (MANIFEST, "vocab.json", "*_questions.h5", "*_images.h5", "*_features.h5", "*.h5.partial")


def remove_cache(out_dir: str | Path) -> None:
    """Delete the files a cache is made of (manifest, vocabulary, questions, images, partial files) in ``out_dir``,
    and nothing else there."""
    out_dir = Path(out_dir)
    for pattern in CACHE_FILES:
        for path in out_dir.glob(pattern):
            path.unlink()


def _fresh_manifest(data_dir: Path, resolution: tuple[int, int], image_kind: str) -> dict:
    return {
        "format": CACHE_FORMAT,
        "format_version": CACHE_VERSION,
        "filmkit_version": __version__,
        "source": str(data_dir.resolve()),
        "resolution": list(resolution),
        "image_kind": image_kind,
        "splits": {},
    }


def _existing_manifest(out_dir: Path, fresh: dict, overwrite: bool) -> dict | None:
    """The manifest of the cache in ``out_dir`` to resume or extend (checked to match ``fresh``), or None for a
    new cache; refuses a folder that is not a filmkit cache, and (unless ``overwrite``) a cache made otherwise."""
    path = out_dir / MANIFEST
    if not path.exists():
        if out_dir.exists() and any(p.name != MANIFEST and not p.name.endswith(".partial") for p in out_dir.iterdir()):
            raise ValueError(f"{out_dir}: exists and is not a filmkit cache; choose an empty or new directory")
        return None
    if overwrite:
        return None
    manifest = json.loads(path.read_text())
    for key in ("source", "resolution", "image_kind"):
        if manifest.get(key) != fresh[key]:
            raise CacheConflictError(
                f"{out_dir} already holds a cache of {manifest.get('source')} ({manifest.get('image_kind')} at "
                f"{manifest.get('resolution')}); {OVERWRITE_HINT}, or choose another directory for "
                f"{fresh['source']} ({fresh['image_kind']} at {fresh['resolution']})"
            )
    return manifest


def _save_manifest(out_dir: Path, manifest: dict) -> None:
    with atomic_output(out_dir / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=1)
