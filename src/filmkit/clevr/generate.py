"""Generate a split of CLEVR-style images and scenes on disk: parallel, deterministic and resumable.

Output follows the released layout: ``out/images/<split>/CLEVR_<split>_000000.png`` and
``out/scenes/CLEVR_<split>_scenes.json``. Image i draws from its own random stream, seeded by (seed, split, i),
so one seed gives the same bytes whatever the number of workers and whichever images a previous run finished.
While a run is under way each finished image leaves its scene in ``out/.filmkit-work/<split>/``; a rerun with
the same settings skips those images, and once all exist the scene file is assembled and the work folder removed.
Every file is written to a temporary name and renamed, so an interruption never leaves half a file.

Example::

    from filmkit.clevr.generate import SplitSpec, generate_split

    report = generate_split(SplitSpec(split="val", num_images=20, width=128, height=128), "out/clevr-mini")
    print(report.images_written, report.scenes_path)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from filmkit.atomic import OVERWRITE_HINT, OutputExistsError
from filmkit.clevr.camera import Camera
from filmkit.clevr.parallel import run_parallel
from filmkit.clevr.properties import Properties, load_properties
from filmkit.clevr.render import render_scene, save_png
from filmkit.clevr.scene_json import read_json, read_scenes, write_json_atomic, write_scenes
from filmkit.clevr.scenes import SamplingRules, SamplingStats, image_filename, sample_scene
from filmkit.jsonfiles import gc_paused

Progress = Callable[[int, int], None]
STAGES = ("sample", "visibility", "render", "write")
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
WORK_FOLDER = ".filmkit-work"


@dataclass(frozen=True)
class SplitSpec:
    """Everything that decides the content of a generated split (and so must match for a run to resume).

    ``condition`` maps allowed shapes to allowed colours (see `filmkit.clevr.scenes.load_condition`).

    >>> SplitSpec(split="trainA", num_images=4, width=128, height=128).image_size
    (128, 128)
    """

    split: str = "train"
    num_images: int = 10
    width: int = 480
    height: int = 320
    seed: int = 0
    rules: SamplingRules = field(default_factory=SamplingRules)
    condition: dict[str, list[str]] | None = None
    supersample: int = 2
    shadows: bool = True

    def __post_init__(self) -> None:
        if not SPLIT_NAME.fullmatch(self.split):
            raise ValueError(f"split name {self.split!r} must be letters, digits, '_' or '-' (e.g. train, valA)")
        if self.num_images < 1 or self.width < 1 or self.height < 1 or self.supersample < 1:
            raise ValueError("num_images, width, height and supersample must be positive")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass
class RunReport:
    """What a run did: images written now, images found done, wall time and per-stage seconds (summed)."""

    images_written: int
    images_reused: int
    seconds: float
    stage_seconds: dict[str, float]
    scenes_path: Path | None
    images_dir: Path


@dataclass(frozen=True)
class SplitPaths:
    """Where a split's files go under ``root``."""

    root: Path
    split: str

    @property
    def images_dir(self) -> Path:
        return self.root / "images" / self.split

    @property
    def scenes_path(self) -> Path:
        return self.root / "scenes" / f"CLEVR_{self.split}_scenes.json"

    @property
    def work_dir(self) -> Path:
        return self.root / WORK_FOLDER / self.split

    def image(self, index: int) -> Path:
        return self.images_dir / image_filename(self.split, index)

    def fragment(self, index: int) -> Path:
        return self.work_dir / "scenes" / f"{index:06d}.json"


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image, the worker and the run.

    >>> float(image_rng(0, "train", 5).random()) == float(image_rng(0, "train", 5).random())
    True
    """
    split_key = int.from_bytes(hashlib.sha256(split.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_key, index)))


def generate_split(
    spec: SplitSpec,
    out_dir: str | Path,
    *,
    properties: Properties | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Generate (or finish generating) ``spec.num_images`` images and their scene file under ``out_dir``.

    Raises `OutputExistsError` when ``out_dir`` holds this split's files from something other than an unfinished
    run with the same settings (``overwrite=True`` deletes them first), and `SceneSamplingError` for an
    impossible request. A run that fails before any image is finished leaves nothing behind.
    ``progress(done, total)`` is called as images finish.

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> report = generate_split(SplitSpec(split="val", num_images=3, width=32, height=32), out, workers=1)
    >>> report.images_written, report.scenes_path.name
    (3, 'CLEVR_val_scenes.json')
    """
    started = time.perf_counter()
    properties = properties or load_properties()
    paths = SplitPaths(Path(out_dir), spec.split)
    record = settings_record(spec, properties)
    total = spec.num_images
    if _prepare_output(paths, record, total, overwrite) == "complete":
        _notify(progress, total, total)
        return RunReport(
            0, total, time.perf_counter() - started, dict.fromkeys(STAGES, 0.0), paths.scenes_path, paths.images_dir
        )
    todo = [i for i in range(total) if not (paths.fragment(i).exists() and paths.image(i).exists())]
    paths.images_dir.mkdir(parents=True, exist_ok=True)
    for leftover in paths.images_dir.glob(f".CLEVR_{spec.split}_*.tmp"):
        leftover.unlink()  # a temporary image of a run that was killed mid-write
    tally = _Tally(progress, total, done=total - len(todo))
    try:
        run_parallel(_SceneJob(spec, properties, paths), todo, workers, on_result=tally.add)
    except BaseException:
        if not any(paths.fragment(i).exists() for i in range(total)):
            _clear_split(paths)  # nothing finished, nothing to resume: leave nothing that would block a rerun
            _remove_if_empty(paths.images_dir)
            _remove_if_empty(paths.work_dir.parent)
        raise
    with gc_paused():  # 70,000 scenes of small dicts and lists
        scenes = [read_json(paths.fragment(i)) for i in range(total)]
        write_scenes(paths.scenes_path, scenes, {"split": spec.split, "version": "1.0", "filmkit": record}, properties)
    shutil.rmtree(paths.work_dir)
    _remove_if_empty(paths.work_dir.parent)
    return RunReport(
        len(todo),
        total - len(todo),
        time.perf_counter() - started,
        tally.stage_seconds,
        paths.scenes_path,
        paths.images_dir,
    )


def render_scene_file(
    scenes_path: str | Path,
    out_dir: str | Path,
    width: int,
    height: int,
    *,
    properties: Properties | None = None,
    supersample: int = 2,
    shadows: bool = True,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Render every scene of a scene file at ``width`` x ``height`` into ``out_dir/images/<split>/``.

    Scenes made by filmkit carry their camera and lights, so a re-render at the generation size reproduces the
    generated image exactly. Raises `OutputExistsError` if an image exists, unless ``overwrite``.

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> _ = generate_split(SplitSpec(split="val", num_images=2, width=32, height=32), out, workers=1)
    >>> report = render_scene_file(f"{out}/scenes/CLEVR_val_scenes.json", f"{out}/big", 64, 64, workers=1)
    >>> sorted(path.name for path in report.images_dir.glob("val/*.png"))
    ['CLEVR_val_000000.png', 'CLEVR_val_000001.png']
    """
    started = time.perf_counter()
    properties = properties or load_properties()
    scenes = read_scenes(scenes_path, properties)["scenes"]
    root = Path(out_dir)
    targets = [root / "images" / scene["split"] / scene["image_filename"] for scene in scenes]
    existing = [path for path in targets if path.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{existing[0]} already exists ({len(existing)} of {len(targets)} images do); "
            "pass --overwrite to replace them"
        )
    for folder in {path.parent for path in targets}:
        folder.mkdir(parents=True, exist_ok=True)
    job = _RenderJob(properties, root, width, height, supersample, shadows)
    tally = _Tally(progress, len(scenes))
    try:
        run_parallel(job, scenes, workers, on_result=tally.add)
    except BaseException:
        for path in set(targets) - set(existing):  # what this run made: a rerun starts clean, not refused
            path.unlink(missing_ok=True)
        raise
    return RunReport(len(scenes), 0, time.perf_counter() - started, tally.stage_seconds, None, root / "images")


def settings_record(spec: SplitSpec, properties: Properties) -> dict:
    """The JSON form of a run's settings, stored in the scene file's ``info["filmkit"]``."""
    record = json.loads(json.dumps(dataclasses.asdict(spec)))
    world = json.dumps(dataclasses.asdict(properties), sort_keys=True)
    record["properties_sha256"] = hashlib.sha256(world.encode()).hexdigest()
    return record


@dataclass(frozen=True)
class _SceneJob:
    """Sample, check, render and save one image; runs in a worker process."""

    spec: SplitSpec
    properties: Properties
    paths: SplitPaths

    def __call__(self, index: int) -> tuple[int, dict[str, float]]:
        spec, stats = self.spec, SamplingStats()
        started = time.perf_counter()
        scene = sample_scene(
            image_rng(spec.seed, spec.split, index),
            self.properties,
            spec.rules,
            constraint=spec.condition,
            split=spec.split,
            image_index=index,
            stats=stats,
        )
        sampled = time.perf_counter()
        image = _render(scene, self.properties, spec.width, spec.height, spec.supersample, spec.shadows)
        rendered = time.perf_counter()
        save_png(self.paths.image(index), image)
        write_json_atomic(self.paths.fragment(index), scene)  # last: its presence marks the image as done
        return index, {
            "sample": sampled - started - stats.visibility_seconds,
            "visibility": stats.visibility_seconds,
            "render": rendered - sampled,
            "write": time.perf_counter() - rendered,
        }


@dataclass(frozen=True)
class _RenderJob:
    """Render and save one scene of a scene file; runs in a worker process."""

    properties: Properties
    root: Path
    width: int
    height: int
    supersample: int
    shadows: bool

    def __call__(self, scene: dict) -> tuple[int, dict[str, float]]:
        started = time.perf_counter()
        image = _render(scene, self.properties, self.width, self.height, self.supersample, self.shadows)
        rendered = time.perf_counter()
        save_png(self.root / "images" / scene["split"] / scene["image_filename"], image)
        return scene["image_index"], {"render": rendered - started, "write": time.perf_counter() - rendered}


def _render(scene: dict, properties: Properties, width: int, height: int, supersample: int, shadows: bool):
    camera = Camera.from_scene(scene, width, height, properties)
    result = render_scene(scene, properties, width, height, supersample=supersample, shadows=shadows, camera=camera)
    return result.image


def _prepare_output(paths: SplitPaths, record: dict, total: int, overwrite: bool) -> str:
    """Decide between a fresh run, a resumed one and one already complete; refuse to clobber anything else."""
    manifest = paths.work_dir / "run.json"
    if overwrite:
        _clear_split(paths)
    elif manifest.exists():
        previous = read_json(manifest)
        if previous == record:
            return "resume"
        raise OutputExistsError(
            f"{paths.work_dir} holds an unfinished run with other settings ({_differences(previous, record)}); "
            f"rerun with its settings to resume it, or {OVERWRITE_HINT}"
        )
    elif paths.scenes_path.exists() or any(paths.images_dir.glob(f"CLEVR_{paths.split}_*.png")):
        made_with = read_json(paths.scenes_path).get("info", {}).get("filmkit") if paths.scenes_path.exists() else None
        if made_with == record and all(paths.image(i).exists() for i in range(total)):
            return "complete"
        origin = (
            f"a finished {paths.split} split made with other settings ({_differences(made_with, record)})"
            if isinstance(made_with, dict) and made_with != record
            else f"{paths.split} images or scenes that this run did not start"
        )
        raise OutputExistsError(
            f"{paths.root} already holds {origin}; pass --overwrite to replace them, or choose another output folder"
        )
    write_json_atomic(manifest, record)
    return "fresh"


def remove_split(out_dir: str | Path, split: str) -> None:
    """Delete what generating ``split`` wrote under ``out_dir`` (its images, scene file and work folder), no more.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> _ = generate_split(SplitSpec(split="val", num_images=1, width=16, height=16), out, workers=1)
    >>> remove_split(out, "val")
    >>> sorted(path.name for path in out.rglob("*.png")), (out / "scenes" / "CLEVR_val_scenes.json").exists()
    ([], False)
    """
    _clear_split(SplitPaths(Path(out_dir), split))


def _clear_split(paths: SplitPaths) -> None:
    """Delete only what a run of this split writes: its work folder, its images and its scene file."""
    if paths.work_dir.exists():
        shutil.rmtree(paths.work_dir)
    for image in paths.images_dir.glob(f"CLEVR_{paths.split}_*.png"):
        image.unlink()
    paths.scenes_path.unlink(missing_ok=True)


def _differences(previous: dict, current: dict) -> str:
    keys = sorted(set(previous) | set(current))
    changed = [
        f"{key} {previous.get(key)!r} -> {current.get(key)!r}" for key in keys if previous.get(key) != current.get(key)
    ]
    return "; ".join(changed) or "unknown"


def _remove_if_empty(folder: Path) -> None:
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()


class _Tally:
    """Counts finished images, sums their stage times and reports progress."""

    def __init__(self, progress: Progress | None, total: int, done: int = 0) -> None:
        self.progress, self.total, self.done = progress, total, done
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        _notify(progress, done, total)

    def add(self, result: tuple[int, dict[str, float]]) -> None:
        for stage, seconds in result[1].items():
            self.stage_seconds[stage] += seconds
        self.done += 1
        _notify(self.progress, self.done, self.total)


def _notify(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
