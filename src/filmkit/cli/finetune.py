"""`filmkit finetune`: new questions for a trained FiLM model; only the question side learns."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, progress_bars, refuse_existing


@app.command()
def finetune(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The trained FiLM checkpoint (.pt) to start from."),
    data: Path = typer.Option(..., "--data", help="Dataset folder of the new questions (CLEVR layout, e.g. Humans)."),
    out: Path = typer.Option(..., "--out", help="Folder for the cache, the grown model, the run and finetune.json."),
    min_word_count: int = typer.Option(
        2, "--min-word-count", min=1, help="New words seen this often in training join the vocabulary; rarer: <UNK>."
    ),
    images_root: Path | None = typer.Option(
        None, "--images-root", help="Folder holding images/<split>/ when --data has questions only (CLEVR-Humans)."
    ),
    train_split: str = typer.Option("train", "--train-split", help="Split of --data to fine-tune on."),
    val_split: str = typer.Option("val", "--val-split", help="Split of --data to score before and after."),
    steps: int = typer.Option(2000, "--steps", min=1, help="Training steps."),
    settings: list[str] = typer.Option(None, "--set", help="key=value training override, e.g. lr=1e-4."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a finished fine-tuning in --out (an unfinished one is redone anyway)."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes decoding images when caching."),
) -> None:
    """Fine-tune the FiLM generator on new questions with the visual network frozen; accuracy before and after."""
    from filmkit.atomic import atomic_output
    from filmkit.data.dataset import CachedSplit
    from filmkit.data.preprocess import CacheConflictError
    from filmkit.train.config import TrainConfig, apply_overrides
    from filmkit.train.evaluate import evaluate
    from filmkit.train.finetune import prepare_finetune
    from filmkit.train.loop import Trainer
    from filmkit.vqa import load_checkpoint

    summary_path = out / "finetune.json"  # written last: without it, --out holds an unfinished fine-tuning
    refuse_existing(summary_path, overwrite=overwrite)
    with progress_bars() as bar:
        bars = StepBars(bar)
        try:

            def prepare(replace: bool):
                return prepare_finetune(
                    checkpoint,
                    data,
                    out,
                    min_word_count=min_word_count,
                    train_split=train_split,
                    images_root=images_root,
                    workers=workers,
                    overwrite=replace,
                    progress=bars.caching,
                )

            try:
                prepared = prepare(overwrite)
            except CacheConflictError:  # the cache of an unfinished fine-tuning made otherwise: redo it
                prepared = prepare(True)
            bar.console.print(f"{len(prepared.added_words)} new words: {' '.join(prepared.added_words) or '-'}")
            val = CachedSplit(prepared.cache, val_split)
            if not val.has_answers:
                fail(f"split {val_split!r} of {data} has no answers to score; choose another --val-split")
            before = evaluate(load_checkpoint(prepared.init_checkpoint).model, val).accuracy
            start = TrainConfig(
                init_checkpoint=str(prepared.init_checkpoint),
                freeze="visual",
                max_steps=steps,
                train_split=train_split,
                val_split=val_split,
            )
            config = apply_overrides(start, list(settings or []))

            def show(report) -> None:
                bars.update("fine-tune", report.step, report.max_steps, f"loss {report.loss:.3f}")

            # Reached only without a finished fine-tuning in --out (or with --overwrite): its run is redone.
            result = Trainer(config, prepared.cache, out / "run", overwrite=True, on_progress=show).run()
            after = evaluate(load_checkpoint(result.run_dir / "best.pt").model, val).accuracy
        except (ValueError, OSError) as error:
            fail(str(error))
    summary = {"checkpoint": str(checkpoint), "data": str(data), "added_words": prepared.added_words,
               "val_accuracy_before": before, "val_accuracy_after": after, "steps": result.steps}  # fmt: skip
    with atomic_output(summary_path, "w") as handle:
        json.dump(summary, handle, indent=2)
    typer.echo(f"validation accuracy {100 * before:.1f}% -> {100 * after:.1f}%; run in {result.run_dir}")
