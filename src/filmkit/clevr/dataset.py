"""Whole datasets in the CLEVR v1.0 layout from a named preset: scenes, images and questions for every split.

``build_dataset("clevr-mini", "data/clevr-mini")`` writes ``images/<split>/``, ``scenes/CLEVR_<split>_scenes.json``
and ``questions/CLEVR_<split>_questions.json`` for each split, then ``dataset.json`` recording the preset, seeds and
versions. Every step resumes: images finished by an interrupted run are kept (`generate_split`), and a question
file whose recorded settings and scene file match is not generated again. A rerun of a finished build only checks.
A folder that holds another dataset (another preset or seed) is refused unless ``overwrite=True``, which deletes
that dataset's files (and the caches made from them under ``.filmkit/``) and nothing else in the folder.

Presets (see `PRESETS`):

- ``tiny``: 200/50/50 images at 64x64, for tests; builds in seconds on one core.
- ``demo``: 10,000/1,000 images at 64x64 with 3-5 objects and 10 questions each, what ``filmkit demo`` trains on.
- ``clevr-mini``: 10,000/1,000/1,000 images at 128x128 with 10 questions each; the project's standard benchmark.
- ``clevr-cpu``: CLEVR's 70,000 training images (~700,000 questions) at 64x64, what the speedrun trains on, with
  1,500 validation and 1,500 test images (~15,000 questions each) never trained on.
- ``clevr-full``: the release's 70,000/15,000/15,000 images at 480x320.
- ``cogent``: CoGenT's trainA, valA, valB, testA, testB (condition A or B) at the release's sizes.
- ``cogent-mini``: the same five splits at clevr-mini's sizes (10,000 trainA images, 1,000 for each other split).

Example::

    from filmkit.clevr.dataset import build_dataset

    report = build_dataset("tiny", "data/tiny", workers=2)
    report.splits["train"].questions   # ~2,000
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from filmkit import __version__
from filmkit.atomic import OVERWRITE_HINT, OutputExistsError, atomic_output
from filmkit.clevr.generate import SplitSpec, generate_split, remove_split
from filmkit.clevr.properties import load_properties
from filmkit.clevr.question_json import QuestionFileError, read_questions
from filmkit.clevr.questions import (
    QuestionSettings,
    Vocabulary,
    file_sha256,
    generate_question_file,
    question_record,
)
from filmkit.clevr.scenes import SamplingRules, load_condition

# progress(step, done, total), with steps such as "train images" and "train questions"
StepProgress = Callable[[str, int, int], None]
RECORD = "dataset.json"
CACHE_FOLDER = ".filmkit"  # where a dataset's own caches go (filmkit.data.locate.default_cache_dir)


@dataclass(frozen=True)
class SplitPlan:
    """One split of a preset: its name, image count and CoGenT condition (None, "A" or "B")."""

    name: str
    num_images: int
    condition: str | None = None


@dataclass(frozen=True)
class Preset:
    """A named dataset recipe: image size, splits and questions per image."""

    name: str
    description: str
    width: int
    height: int
    splits: tuple[SplitPlan, ...]
    per_image: int = 10
    min_objects: int = 3  # CLEVR's range; a preset may narrow it
    max_objects: int = 10


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "tiny",
            "200/50/50 images at 64x64: seconds to build, enough to run the pipeline end to end",
            64,
            64,
            (SplitPlan("train", 200), SplitPlan("val", 50), SplitPlan("test", 50)),
        ),
        Preset(
            "demo",
            "10,000/1,000 images at 64x64 with 3-5 objects: learnable from pixels within the demo's CPU minutes",
            64,
            64,
            (SplitPlan("train", 10_000), SplitPlan("val", 1_000)),
            min_objects=3,
            max_objects=5,
        ),
        Preset(
            "clevr-mini",
            "10,000/1,000/1,000 images at 128x128, ~100,000 training questions: the standard benchmark",
            128,
            128,
            (SplitPlan("train", 10_000), SplitPlan("val", 1_000), SplitPlan("test", 1_000)),
        ),
        Preset(
            "clevr-cpu",
            "CLEVR's size for CPU training: 70,000/1,500/1,500 images at 64x64, 3-10 objects, ~700,000 training "
            "questions",
            64,
            64,
            (SplitPlan("train", 70_000), SplitPlan("val", 1_500), SplitPlan("test", 1_500)),
        ),
        Preset(
            "clevr-full",
            "the CLEVR v1.0 release's sizes: 70,000/15,000/15,000 images at 480x320",
            480,
            320,
            (SplitPlan("train", 70_000), SplitPlan("val", 15_000), SplitPlan("test", 15_000)),
        ),
        Preset(
            "cogent",
            "CLEVR CoGenT: train and validate on condition A, test on A and on B (colours of cubes/cylinders swapped)",
            480,
            320,
            (
                SplitPlan("trainA", 70_000, "A"),
                SplitPlan("valA", 15_000, "A"),
                SplitPlan("valB", 15_000, "B"),
                SplitPlan("testA", 15_000, "A"),
                SplitPlan("testB", 15_000, "B"),
            ),
        ),
        Preset(
            "cogent-mini",
            "CoGenT at clevr-mini's size: 10,000 trainA images, 1,000 each for valA, valB, testA, testB, at 128x128",
            128,
            128,
            (
                SplitPlan("trainA", 10_000, "A"),
                SplitPlan("valA", 1_000, "A"),
                SplitPlan("valB", 1_000, "B"),
                SplitPlan("testA", 1_000, "A"),
                SplitPlan("testB", 1_000, "B"),
            ),
        ),
    )
}


@dataclass
class SplitReport:
    """What building one split did."""

    images_written: int
    images_reused: int
    questions: int
    questions_reused: bool
    seconds: float


@dataclass
class DatasetReport:
    """What `build_dataset` did, split by split, and where the record of it lies."""

    preset: str
    root: Path
    splits: dict[str, SplitReport] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def record_path(self) -> Path:
        return self.root / RECORD


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ValueError lists the known ones.

    >>> get_preset("tiny").width
    64
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


# Disk use, measured on generated data: a PNG at 64x64 takes one 4 KiB block, larger ones about 0.35 bytes a
# pixel; a scene record about 1.5 KB; a question with its program about 1 KB.
BLOCK, PNG_BYTES_PER_PIXEL, SCENE_BYTES, QUESTION_BYTES = 4096, 0.35, 1_500, 1_000


def estimated_bytes(plan: Preset) -> int:
    """About how many bytes building ``plan`` writes (images, scene and question files).

    >>> round(estimated_bytes(get_preset("clevr-cpu")) / 1e9, 1)
    1.4
    """
    image = max(BLOCK, -(-int(plan.width * plan.height * 3 * PNG_BYTES_PER_PIXEL) // BLOCK) * BLOCK)
    images = sum(split.num_images for split in plan.splits)
    return images * (image + SCENE_BYTES + plan.per_image * QUESTION_BYTES)


def check_disk_space(plan: Preset, root: Path) -> None:
    """Raise OSError before any work when the disk under ``root`` cannot hold what ``plan`` writes."""
    existing = next(parent for parent in (root, *root.parents) if parent.exists())
    free, needed = shutil.disk_usage(existing).free, estimated_bytes(plan)
    if free < needed:
        raise OSError(
            f"{root}: preset {plan.name!r} writes about {needed / 1e9:.1f} GB, but only {free / 1e9:.1f} GB are free "
            "there; free some space or choose another --out"
        )


def build_dataset(
    preset: str | Preset,
    out_dir: str | Path,
    *,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    progress: StepProgress | None = None,
) -> DatasetReport:
    """Build (or finish building) every split of a preset under ``out_dir`` and write ``dataset.json``.

    Scenes use ``seed``; each split's images draw from (seed, split, index), so splits differ. Questions use the
    same seed. Raises `filmkit.atomic.OutputExistsError` if ``out_dir`` holds a dataset or split made otherwise;
    ``overwrite=True`` deletes that dataset first (`remove_dataset`).

    Example::

        report = build_dataset("tiny", "data/tiny", workers=2)
        sorted(report.splits)      # ['test', 'train', 'val']
    """
    started = time.perf_counter()
    plan = preset if isinstance(preset, Preset) else get_preset(preset)
    root = Path(out_dir)
    if overwrite:
        remove_dataset(root, plan)
    else:
        _check_record(root, plan, seed)
    if not (root / RECORD).exists():  # a finished build only checks; it needs no new space
        check_disk_space(plan, root)
    properties = load_properties()
    vocabulary = Vocabulary.load(properties=properties)
    settings = QuestionSettings(per_image=plan.per_image, seed=seed)
    report = DatasetReport(plan.name, root)
    for split in plan.splits:
        split_started = time.perf_counter()
        spec = SplitSpec(
            split=split.name,
            num_images=split.num_images,
            width=plan.width,
            height=plan.height,
            seed=seed,
            rules=SamplingRules(min_objects=plan.min_objects, max_objects=plan.max_objects),
            condition=load_condition(split.condition, properties),
        )
        images = generate_split(
            spec, root, properties=properties, workers=workers, progress=_step(progress, f"{split.name} images")
        )
        questions_path = root / "questions" / f"CLEVR_{split.name}_questions.json"
        record = question_record(settings, vocabulary, file_sha256(images.scenes_path))
        reused = recorded_settings(questions_path) == record
        if reused:
            count = len(read_questions(questions_path)["questions"])
            _step(progress, f"{split.name} questions")(split.num_images, split.num_images)
        else:
            count = generate_question_file(
                images.scenes_path,
                questions_path,
                settings,
                workers=workers,
                progress=_step(progress, f"{split.name} questions"),
            ).questions
        report.splits[split.name] = SplitReport(
            images.images_written, images.images_reused, count, reused, time.perf_counter() - split_started
        )
    _write_record(report, plan, seed, vocabulary)
    report.seconds = time.perf_counter() - started
    return report


def remove_dataset(out_dir: str | Path, preset: str | Preset | None = None) -> None:
    """Delete the dataset built in ``out_dir``: the splits its ``dataset.json`` lists and those of ``preset``
    (images, scene and question files), that record, and the caches made from them; nothing else in the folder.
    """
    root = Path(out_dir)
    names = set(_read_record(root).get("splits", {}))
    if preset is not None:
        plan = preset if isinstance(preset, Preset) else get_preset(preset)
        names |= {split.name for split in plan.splits}
    for name in sorted(names):
        remove_split(root, name)
        (root / "questions" / f"CLEVR_{name}_questions.json").unlink(missing_ok=True)
    for cache in (root / CACHE_FOLDER).glob("cache-*"):
        shutil.rmtree(cache)  # built from the files just deleted: stale
    (root / RECORD).unlink(missing_ok=True)


def _read_record(root: Path) -> dict:
    try:
        record = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _check_record(root: Path, plan: Preset, seed: int) -> None:
    """Refuse a folder whose ``dataset.json`` records another preset or seed (their splits need not overlap, so
    `generate_split`'s own check would not see it)."""
    record = _read_record(root)
    if not record:
        return
    if (record.get("preset"), record.get("seed")) != (plan.name, seed):
        made = f"preset {record.get('preset')!r} with seed {record.get('seed')}"
        raise OutputExistsError(
            f"{root} already holds a dataset made otherwise ({made}); {OVERWRITE_HINT}, or choose another folder"
        )


def recorded_settings(path: str | Path) -> dict | None:
    """The settings a filmkit question file records (``info["filmkit"]``), or None for a missing or foreign one."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read_questions(path)["info"].get("filmkit")
    except QuestionFileError:
        return None  # unreadable (say, cut short by a crash outside filmkit): generate it again


def _write_record(report: DatasetReport, plan: Preset, seed: int, vocabulary: Vocabulary) -> None:
    record = {
        "preset": plan.name,
        "preset_settings": asdict(plan),
        "seed": seed,
        "splits": {
            name: {
                "images": split.images_written + split.images_reused,
                "questions": split.questions,
                "scenes": f"scenes/CLEVR_{name}_scenes.json",
                "questions_file": f"questions/CLEVR_{name}_questions.json",
            }
            for name, split in report.splits.items()
        },
        "templates_sha256": vocabulary.fingerprint(),
        "versions": {"filmkit": __version__, "python": platform.python_version(), "numpy": np.__version__},
    }
    with atomic_output(report.record_path, "w") as handle:
        json.dump(record, handle, indent=2)


def _step(progress: StepProgress | None, name: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)

    return report
