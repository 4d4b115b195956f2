"""`filmkit generate questions`, `filmkit generate dataset` and `filmkit stats`: questions, whole datasets, and
what is in them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from filmkit.atomic import OutputExistsError, atomic_output
from filmkit.clevr.dataset import PRESETS, build_dataset, get_preset, recorded_settings
from filmkit.clevr.question_json import QuestionFileError
from filmkit.clevr.questions import QuestionSettings, Vocabulary, file_sha256, generate_question_file, question_record
from filmkit.clevr.scene_json import SceneFileError
from filmkit.clevr.scenes import ConditionError, SceneSamplingError
from filmkit.clevr.stats import dataset_stats
from filmkit.clevr.templates import TemplateError
from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, progress_bars, refuse_existing
from filmkit.cli.generate import WORKERS_HELP, generate_app

# Problems with the user's input: one line on stderr and exit code 2, never a traceback.
USER_ERRORS = (
    OutputExistsError,
    SceneFileError,
    TemplateError,
    QuestionFileError,
    ConditionError,
    SceneSamplingError,
    FileNotFoundError,
)


@generate_app.command("questions")
def questions(
    scenes: Path = typer.Option(..., "--scenes", help="A CLEVR scene file (filmkit-made or released)."),
    out: Path = typer.Option(..., "--out", help="Question file to write (CLEVR v1.0 layout)."),
    templates: Path | None = typer.Option(None, "--templates", help="Folder of template files (default: filmkit's)."),
    per_image: int = typer.Option(10, "--per-image", min=1, help="Questions per image (CLEVR: 10)."),
    seed: int = typer.Option(0, min=0, help="Random seed: the same seed gives the same file."),
    workers: int = typer.Option(0, min=0, help=WORKERS_HELP),
    no_answers: bool = typer.Option(False, "--no-answers", help="Leave answers out, as in a released test split."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """Generate questions, answers and programs for the scenes of a scene file; a rerun of the same command only
    checks."""
    settings = QuestionSettings(per_image=per_image, seed=seed)
    try:
        if out.exists() and not overwrite:
            wanted = question_record(settings, Vocabulary.load(templates), file_sha256(scenes), not no_answers)
            if recorded_settings(out) == wanted:
                typer.echo(f"nothing to do: {out} already holds these questions (same scenes, settings, templates)")
                return
            refuse_existing(out, overwrite=overwrite)
        with _progress() as step:
            report = generate_question_file(
                scenes,
                out,
                settings,
                templates_dir=templates,
                workers=workers or None,
                with_answers=not no_answers,
                progress=lambda done, total: step("questions", done, total),
            )
    except USER_ERRORS as error:
        fail(str(error))
    rate = report.questions / report.seconds if report.seconds > 0 else 0.0
    typer.echo(
        f"wrote {report.questions} questions about {report.images} images ({report.families} families) "
        f"in {report.seconds:.1f} s ({rate:.0f} questions/s) to {report.path}"
    )


@generate_app.command("dataset")
def dataset(
    preset: str = typer.Option(..., "--preset", help=f"One of: {', '.join(PRESETS)}."),
    out: Path = typer.Option(..., "--out", help="Dataset folder (images/, scenes/, questions/, dataset.json)."),
    seed: int = typer.Option(0, min=0, help="Random seed for scenes and questions."),
    workers: int = typer.Option(0, min=0, help=WORKERS_HELP),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the dataset in --out (its splits and caches; nothing else there)."
    ),
) -> None:
    """Make scenes, images and questions for every split of a preset; an interrupted run resumes when rerun."""
    try:
        plan = get_preset(preset)
    except ValueError as error:
        fail(str(error))
    typer.echo(f"{plan.name}: {plan.description}", err=True)
    try:
        with _progress() as step:
            report = build_dataset(plan, out, seed=seed, workers=workers or None, overwrite=overwrite, progress=step)
    except USER_ERRORS as error:
        fail(str(error))
    table = Table(title=f"{plan.name} in {out} ({report.seconds:.0f} s)")
    for column in ("split", "images", "made now", "questions", "seconds"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, split in report.splits.items():
        made = split.images_written
        table.add_row(name, str(made + split.images_reused), str(made), str(split.questions), f"{split.seconds:.0f}")
    Console().print(table)
    typer.echo(f"recorded in {report.record_path}")


@app.command("stats")
def stats(
    directory: Path | None = typer.Argument(None, help="The dataset folder (or give it as --data, like elsewhere)."),
    data: Path | None = typer.Option(
        None, "--data", help="A dataset folder in the CLEVR v1.0 layout (generated or released)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the statistics to this JSON file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
) -> None:
    """Answer and question-type distributions, families, objects per scene, and the question-only baseline."""
    if (directory is None) == (data is None):
        fail("give the dataset folder once: filmkit stats --data DATASET (or filmkit stats DATASET)")
    refuse_existing(json_out, overwrite=overwrite)
    try:
        result = dataset_stats(data or directory)
    except USER_ERRORS as error:
        fail(str(error))
    console = Console()
    for table in _stats_tables(result):
        console.print(table)
    if json_out is not None:
        with atomic_output(json_out, "w") as handle:
            json.dump(result, handle, indent=2)
        typer.echo(f"wrote {json_out}")


def _stats_tables(result: dict) -> list[Table]:
    overview = Table(title="splits")
    for column in ("split", "images", "questions", "families", "objects/scene", "top answers"):
        overview.add_column(column, justify="left" if column in ("split", "top answers") else "right")
    types = Table(title="question types: share of questions, and of the type's most common answer")
    for column in ("split", "type", "questions", "share", "top answer", "top share"):
        types.add_column(column, justify="left" if column in ("split", "type", "top answer") else "right")
    for name, split in result["splits"].items():
        objects = split.get("objects_per_scene", {}).get("mean")
        total = max(split["questions"], 1)
        top = ", ".join(f"{a} {n / total:.0%}" for a, n in list(split["answers"].items())[:5])
        overview.add_row(
            name,
            str(split["images"]),
            str(split["questions"]),
            str(split["families_covered"]),
            "-" if objects is None else f"{objects:.2f}",
            top or "(no answers)",
        )
        for kind, row in split["types"].items():
            share = row.get("top_answer_share")
            types.add_row(
                name,
                kind,
                str(row["questions"]),
                f"{row['share']:.1%}",
                row.get("top_answer", "-"),
                "-" if share is None else f"{share:.1%}",
            )
    tables = [overview, types]
    baseline = result["question_only"]
    evaluated = [name for name in baseline if name != "fit_on"]
    if evaluated:
        kinds = sorted({kind for name in evaluated for kind in baseline[name]["by_type"]})
        guess = Table(title=f"question-only guess (most common answer per family on {baseline['fit_on']})")
        guess.add_column("split")
        guess.add_column("overall", justify="right")
        for kind in kinds:
            guess.add_column(kind, justify="right")
        for name in evaluated:
            by_type = baseline[name]["by_type"]
            cells = [f"{by_type[kind]:.1%}" if kind in by_type else "-" for kind in kinds]
            guess.add_row(name, f"{baseline[name]['accuracy']:.1%}", *cells)
        tables.append(guess)
    return tables


@contextlib.contextmanager
def _progress() -> Iterator:
    """One display with a bar per step ("train images", "train questions", ...), added as each step starts."""
    with progress_bars() as bar:
        yield StepBars(bar).update


@generate_app.command("humans-like")
def humans_like(
    data: Path = typer.Option(..., "--data", help="A dataset folder in the CLEVR layout (generated or released)."),
    out: Path = typer.Option(..., "--out", help="Folder for the reworded questions (questions/ only; no images)."),
    splits: list[str] = typer.Option(["train", "val"], "--split", help="Splits to reword (repeat the option)."),
    rate: float = typer.Option(0.5, "--rate", min=0.0, max=1.0, help="Chance that each phrase or word is reworded."),
    seed: int = typer.Option(0, min=0, help="Random seed: the same seed gives the same files."),
    overwrite: bool = typer.Option(False, help="Replace reworded question files already in --out."),
) -> None:
    """Reword generated questions with held-out phrasings and synonyms: a synthetic CLEVR-Humans-like shift."""
    from filmkit.clevr.reword import LABEL, write_humans_like

    refuse_existing(*(out / "questions" / f"CLEVR_{split}_questions.json" for split in splits), overwrite=overwrite)
    try:
        counts = write_humans_like(data, out, splits, seed=seed, rate=rate)
    except (ValueError, OSError, QuestionFileError) as error:
        fail(str(error))
    typer.echo(f"{LABEL}: " + ", ".join(f"{count} {split}" for split, count in counts.items()) + f" -> {out}")
    typer.echo(f"images stay in {data}: pass --images-root {data} to preprocess or finetune")
