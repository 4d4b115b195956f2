"""`filmkit speedrun`: train a named recipe for a wall-clock budget, evaluate once, write the report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import fail, progress_bars, refuse_existing


@app.command()
def speedrun(
    data: Path = typer.Option(..., "--data", help="A dataset folder (cached on first use) or a cache."),
    out: Path = typer.Option(Path("runs/speedrun"), "--out", help="Run directory; a rerun resumes it."),
    minutes: float = typer.Option(60.0, "--minutes", help="Wall-clock budget for training (validations included)."),
    recipe: str = typer.Option("cpu", "--recipe", help="Named recipe (filmkit.experiments.recipes)."),
    model: str = typer.Option("film", "--model", help="film, or a baseline on the same recipe: lstm, cnn-lstm, ..."),
    settings: list[str] = typer.Option(None, "--set", help="key=value override of the recipe, e.g. lr=1e-3."),
    test_split: str = typer.Option("test", "--test-split", help="Split evaluated once at the end ('' for none)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in a run directory that holds a run."),
) -> None:
    """Train a recipe for --minutes, evaluate on the full validation split and once on test, write report.md.

    The learning rate decays over the budget: the first steps are timed and the schedule is sized to what this
    machine can do in the time. Rerun the same command to resume an interrupted speedrun.
    """
    if minutes <= 0:
        fail(f"--minutes must be positive, got {minutes:g}")
    from filmkit.experiments.speedrun import run_speedrun
    from filmkit.train.interrupt import TrainingInterrupted

    with progress_bars() as bar:
        task = bar.add_task("train", total=None, info="")

        def show(report) -> None:
            val = f" val {report.val_accuracy:.1%}" if report.val_accuracy is not None else ""
            info = f"loss {report.loss:.3f} acc {report.accuracy:.1%}{val} {report.samples_per_s:.0f} samples/s"
            total = report.max_steps if report.max_steps < 10**9 else None  # unknown until the speed is measured
            bar.update(task, completed=report.step, total=total, info=info)

        try:
            result = run_speedrun(
                data,
                out,
                minutes=minutes,
                recipe=recipe,
                architecture=model,
                settings=list(settings or []),
                test_split=test_split or None,
                overwrite=overwrite,
                on_stage=bar.console.print,
                on_step=show,
            )
        except TrainingInterrupted as stop:
            rerun = [word for word in sys.argv[1:] if word != "--overwrite"]  # an overwrite now would start again
            stop.resume_command = shlex.join(["filmkit", *rerun])
            raise
        except (ValueError, OSError) as error:
            fail(str(error))
    record = result.record
    test = record["test"]["overall"]["accuracy"] if record["test"] and record["test"]["has_answers"] else None
    typer.echo(
        f"validation {record['validation']['overall']['accuracy']:.1f}% (question-only guess "
        f"{record['question_only_accuracy']:.1f}%)"
        + (f", test {test:.1f}%" if test is not None else "")
        + f" after {record['training_minutes']} minutes; report: {result.report}"
    )


@app.command()
def export(
    run: Path = typer.Option(..., "--run", help="A finished speedrun's run directory."),
    out: Path = typer.Option(..., "--out", help="Weights-only checkpoint to write (.pt); its model card goes beside."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out and its model card."),
) -> None:
    """Write a speedrun's final model as a weights-only checkpoint (no optimizer state) with a model card (.md)."""
    from filmkit.experiments.ship import export_model

    card = out.with_suffix(".md")
    refuse_existing(out, card, overwrite=overwrite)
    try:
        weights, card = export_model(run, out, card)
    except (ValueError, OSError) as error:
        fail(str(error))
    typer.echo(f"wrote {weights} ({weights.stat().st_size / 2**20:.1f} MiB) and {card}")
