"""`filmkit generate scenes` and `filmkit render`: CLEVR-style images and scenes on disk.

`generate` is a sub-app so that later data steps (questions, a whole dataset) attach to it as siblings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from filmkit.clevr.generate import OutputExistsError, RunReport, SplitSpec, generate_split, render_scene_file
from filmkit.clevr.properties import Properties, load_properties
from filmkit.clevr.scene_json import SceneFileError
from filmkit.clevr.scenes import ConditionError, SamplingRules, SceneSamplingError, load_condition
from filmkit.cli.app import app
from filmkit.cli.common import fail, parse_resolution, progress_bars

generate_app = typer.Typer(
    name="generate",
    help="Generate CLEVR-compatible data in the CLEVR v1.0 layout: scenes and images, questions, whole datasets.",
    no_args_is_help=True,
)
app.add_typer(generate_app, name="generate")

# Problems with what the user asked for: reported as one line and exit code 2, never a traceback.
USER_ERRORS = (OutputExistsError, SceneSamplingError, SceneFileError, ConditionError)

WORKERS_HELP = "Worker processes; 0 uses every core."
RESOLUTION_HELP = "Image size WIDTHxHEIGHT, e.g. 480x320 (CLEVR) or 128x128."


@generate_app.command("scenes")
def scenes(
    out: Path = typer.Option(..., "--out", help="Dataset folder: writes images/<split>/ and scenes/ under it."),
    split: str = typer.Option("train", help="Split name, used in file names (train, val, trainA, ...)."),
    num_images: int = typer.Option(10, "--num-images", min=1, help="Number of images (and scenes)."),
    resolution: str = typer.Option("480x320", help=RESOLUTION_HELP),
    seed: int = typer.Option(0, min=0, help="Random seed: the same seed gives the same files."),
    workers: int = typer.Option(0, min=0, help=WORKERS_HELP),
    condition: str | None = typer.Option(
        None, help="Shape-colour rule: A or B (CoGenT), or a JSON file {shape: [allowed colours]}."
    ),
    min_objects: int = typer.Option(3, "--min-objects", help="Fewest objects per scene."),
    max_objects: int = typer.Option(10, "--max-objects", help="Most objects per scene."),
    properties: Path | None = typer.Option(None, help="A clevr-dataset-gen style properties.json."),
    overwrite: bool = typer.Option(False, help="Replace this split's existing images and scenes."),
) -> None:
    """Sample scenes by CLEVR's rules and render them; an interrupted run resumes when rerun."""
    width, height = parse_resolution(resolution)
    world = _load_world(properties)
    try:
        spec = SplitSpec(
            split=split,
            num_images=num_images,
            width=width,
            height=height,
            seed=seed,
            rules=SamplingRules(min_objects=min_objects, max_objects=max_objects),
            condition=load_condition(condition, world),
        )
    except ValueError as error:  # ConditionError included: bad settings, said in one line
        fail(str(error))
    report = _with_progress(
        f"{split} {width}x{height}",
        lambda progress: generate_split(
            spec, out, properties=world, workers=workers or None, overwrite=overwrite, progress=progress
        ),
    )
    _summarize(report, f"scenes in {report.scenes_path}")


@app.command("render")
def render(
    scenes_file: Path = typer.Option(..., "--scenes", help="A CLEVR scene file (filmkit-made or released)."),
    out: Path = typer.Option(..., "--out", help="Folder: writes images/<split>/<image_filename> under it."),
    resolution: str = typer.Option("480x320", help=RESOLUTION_HELP),
    workers: int = typer.Option(0, min=0, help=WORKERS_HELP),
    properties: Path | None = typer.Option(None, help="A clevr-dataset-gen style properties.json."),
    overwrite: bool = typer.Option(False, help="Replace existing images."),
) -> None:
    """Render the scenes of a scene file at any resolution."""
    width, height = parse_resolution(resolution)
    world = _load_world(properties)
    report = _with_progress(
        f"render {width}x{height}",
        lambda progress: render_scene_file(
            scenes_file,
            out,
            width,
            height,
            properties=world,
            workers=workers or None,
            overwrite=overwrite,
            progress=progress,
        ),
    )
    _summarize(report, f"images in {report.images_dir}")


def _load_world(path: Path | None) -> Properties:
    try:
        return load_properties(path)
    except (OSError, ValueError) as error:
        fail(str(error))


def _with_progress(description: str, run: Callable[[Callable[[int, int], None]], RunReport]) -> RunReport:
    try:
        with _progress_bar(description) as progress:
            return run(progress)
    except USER_ERRORS as error:
        fail(str(error))


@contextlib.contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar whose rate counts only the images made by this run (a resumed run starts part-way)."""
    with progress_bars() as bar:
        task = bar.add_task(description, total=None, info="")
        started, first_done = time.perf_counter(), None

        def update(done: int, total: int) -> None:
            nonlocal first_done
            first_done = done if first_done is None else first_done
            elapsed = time.perf_counter() - started
            rate = f"{(done - first_done) / elapsed:.1f} images/s" if done > first_done and elapsed > 0 else ""
            bar.update(task, completed=done, total=total, info=rate)

        yield update


def _summarize(report: RunReport, where: str) -> None:
    if report.images_written == 0:
        typer.echo(f"nothing to do: all {report.images_reused} images were already made; {where}")
        return
    rate = report.images_written / report.seconds if report.seconds > 0 else 0.0
    reused = f" ({report.images_reused} already done)" if report.images_reused else ""
    typer.echo(f"wrote {report.images_written} images{reused} in {report.seconds:.1f} s ({rate:.1f} images/s); {where}")
