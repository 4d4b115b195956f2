"""`filmkit demo`: the default end-to-end run (what `make demo` starts)."""

from __future__ import annotations

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, progress_bars


@app.command()
def demo(
    dataset: str = typer.Option(
        "demo", "--dataset", help="Dataset preset: demo (10,000 images), or tiny (300) to check the path in minutes."
    ),
    data: Path | None = typer.Option(
        None, help="Where the dataset is generated (default data/DATASET; reused if there, finished if interrupted)."
    ),
    out: Path = typer.Option(
        Path("runs/demo"), help="Run directory; a new one (runs/demo-2, ...) if it is taken, unless --overwrite."
    ),
    minutes: float = typer.Option(14.0, help="Training budget in minutes (the learning rate decays over it)."),
    settings: list[str] = typer.Option(None, "--set", help="key=value override of the recipe, e.g. lr=1e-3."),
    workers: int = typer.Option(2, min=1, help="Processes for generating and preprocessing data."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Regenerate the dataset at --data and train in --out itself, replacing both."
    ),
) -> None:
    """Generate a CLEVR-style dataset, train the speedrun's recipe for --minutes, evaluate, write RUN_DIR/report.md."""
    if minutes <= 0:
        fail(f"--minutes must be positive, got {minutes:g}")
    from filmkit.clevr.dataset import get_preset
    from filmkit.experiments.demo import run_demo

    try:
        get_preset(dataset)
    except ValueError as error:
        fail(str(error))

    with progress_bars() as bar:
        bars = StepBars(bar)

        def on_step(report) -> None:
            val = f" val {report.val_accuracy:.1%}" if report.val_accuracy is not None else ""
            info = f"loss {report.loss:.3f}{val} {report.samples_per_s:.0f} samples/s"
            bars.update("train", report.step, report.max_steps if report.max_steps < 10**9 else None, info)

        try:
            result = run_demo(
                data or Path("data") / dataset,
                out,
                dataset=dataset,
                minutes=minutes,
                settings=list(settings or []),
                workers=workers,
                overwrite=overwrite,
                on_stage=bar.console.print,
                on_data=bars.update,
                on_step=on_step,
            )
        except (ValueError, OSError) as error:
            fail(str(error))
    typer.echo(
        f"validation accuracy {result.val_accuracy:.1%} against {result.question_only_accuracy:.1%} for the "
        f"question-only guess, in {result.minutes:.1f} minutes; report: {result.report}"
    )
