"""`filmkit train`: train a model on a cache or a dataset folder; `--resume` continues a run."""

from __future__ import annotations

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import fail, is_main_process, progress_bars


@app.command("train")
def train_command(
    data: Path | None = typer.Option(None, "--data", help="A cache, or a dataset folder (preprocessed first)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory for checkpoints, metrics and config."),
    model: str | None = typer.Option(
        None, help="Model to train: film (default), or a baseline: lstm, cnn-lstm, cnn-lstm-sa, cnn-lstm-rn."
    ),
    preset: str | None = typer.Option(None, help="Model preset: cpu, paper, paper-pixels or scene-maps (default cpu)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of training settings."),
    settings: list[str] = typer.Option(None, "--set", help="key=value override, e.g. lr=1e-3 or model.num_blocks=6."),
    device: str | None = typer.Option(None, help="cpu, cuda or auto."),
    precision: str | None = typer.Option(None, help="fp32, bf16 or fp16 (fp16 on CUDA only)."),
    compile: bool = typer.Option(False, "--compile", help="Compile the model with torch.compile."),
    resume: Path | None = typer.Option(
        None, help="Continue the run in this directory from its last checkpoint (Ctrl-C saves one and says so)."
    ),
    more_steps: int = typer.Option(
        0, "--more-steps", help="With --resume: train this many steps past the planned end; the learning rate goes on."
    ),
    overwrite: bool = typer.Option(False, help="Start again in a run directory that already holds a run."),
    workers: int = typer.Option(
        2, "--workers", min=1, help="Processes decoding images when --data is a dataset folder cached first."
    ),
) -> None:
    """Train FiLM or a baseline (paper defaults: Adam 3e-4, weight decay 1e-5, batch 64). torchrun for several."""
    from filmkit.train.config import load_config
    from filmkit.train.loop import Trainer, TrainingError

    overrides = list(settings or [])
    for key, value in (("architecture", model), ("preset", preset), ("device", device), ("precision", precision)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if compile:
        overrides.append("compile=true")
    with progress_bars() as bar:
        task = bar.add_task("train", total=None, info="")

        def show(report) -> None:
            val = f" val {report.val_accuracy:.1%}" if report.val_accuracy is not None else ""
            info = f"loss {report.loss:.3f} acc {report.accuracy:.1%}{val} {report.samples_per_s:.0f} samples/s"
            bar.update(task, completed=report.step, total=report.max_steps, info=info)

        # What the user gave (settings, data, run directory) is read here: its errors are theirs to fix, in one line.
        try:
            if resume is not None:
                trainer = Trainer.resume(resume, overrides, more_steps=more_steps, on_progress=show)
            else:
                if more_steps:
                    fail("--more-steps extends a run: pass it with --resume RUN_DIR")
                if data is None or out is None:
                    fail("--data and --out are required (or --resume RUN_DIR)")
                trainer = Trainer(
                    load_config(config, overrides),
                    data,
                    out,
                    overwrite=overwrite,
                    on_progress=show,
                    cache_workers=workers,
                )
        except (ValueError, OSError) as error:
            fail(str(error))
        bar.update(task, completed=trainer.step, total=trainer.max_steps)
        # Once training runs, only filmkit's own errors (a diverged loss, say) and the disk's are one line; any
        # other error is a bug and keeps its traceback.
        try:
            result = trainer.run()
        except (TrainingError, OSError) as error:
            fail(str(error))
    if not is_main_process():
        return  # under torchrun the summary is rank 0's to print, once
    final = "n/a" if result.final_val_accuracy is None else f"{result.final_val_accuracy:.2%}"
    best = "n/a" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.2%}"
    typer.echo(
        f"{result.steps} steps in {result.seconds / 60:.1f} min; validation accuracy {final} "
        f"(best on the validation subset {best}); run in {result.run_dir}"
    )
