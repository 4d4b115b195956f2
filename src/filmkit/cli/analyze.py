"""`filmkit analyze`: what a FiLM model's gammas and betas do (statistics, t-SNE, ablations, heatmaps)."""

from __future__ import annotations

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, progress_bars, refuse_existing


@app.command("analyze")
def analyze_command(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="A FiLM checkpoint (.pt) written by training, or pretrained (the shipped model)."
    ),
    data: Path = typer.Option(..., "--data", help="A cache, or a dataset folder (cached on first use)."),
    split: str = typer.Option("val", "--split", help="The split to analyse."),
    train_split: str = typer.Option(
        "train", "--train-split", help="The split behind the ablations' means and spreads (CoGenT: trainA)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: analysis-SPLIT by the checkpoint)."),
    max_questions: int = typer.Option(5000, "--max-questions", min=10, help="Questions whose parameters are read."),
    ablation_questions: int = typer.Option(5000, "--ablation-questions", min=1, help="Questions scored per ablation."),
    noise: float = typer.Option(1.0, "--noise", min=0.0, help="Noise of the noise ablations, in parameter spreads."),
    examples: int = typer.Option(6, "--examples", min=0, help="Heatmaps of questions about one object."),
    arithmetic: bool = typer.Option(
        False, "--arithmetic", help="CoGenT: FiLM-parameter arithmetic on condition-B questions (use --split valB)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of an earlier analysis in --out (others there stay)."
    ),
    cache: Path | None = typer.Option(None, "--cache", help="Where to cache a dataset folder."),
) -> None:
    """FiLM statistics, t-SNE by final function, test-time ablations and max-pool heatmaps; PNG + JSON + Markdown."""
    from filmkit.analysis.analyze import AnalysisOptions, analyze
    from filmkit.atomic import atomic_folder
    from filmkit.train.evaluate import open_split
    from filmkit.vqa import load_checkpoint

    out = out or checkpoint.parent / f"analysis-{split}"
    refuse_existing(out, overwrite=overwrite)
    options = AnalysisOptions(
        max_questions=max_questions,
        ablation_questions=ablation_questions,
        noise_std=noise,
        examples=examples,
        arithmetic=arithmetic,
    )
    with progress_bars() as bar:
        bars = StepBars(bar)
        try:
            loaded = load_checkpoint(checkpoint)
            if not hasattr(loaded.model, "film_params"):
                fail(f"{checkpoint}: holds a baseline, not a FiLM model; there are no FiLM parameters to analyse")
            if loaded.model.generator is None:
                fail(f"{checkpoint}: this model has no FiLM generator (FiLM removed from every block)")
            opened = {
                name: open_split(loaded, data, name, cache_dir=cache, progress=bars.caching)
                for name in dict.fromkeys((train_split, split))
            }
            with atomic_folder(out, overwrite) as building:  # a failed analysis leaves no half folder behind
                summary = analyze(
                    loaded.model, opened[train_split], opened[split], building, options, bar.console.print
                )
        except (ValueError, OSError) as error:
            fail(str(error))
    ablations = summary["ablations"]
    typer.echo("accuracy: " + ", ".join(f"{name} {100 * value:.1f}%" for name, value in ablations.items()))
    if "arithmetic" in summary:
        found = summary["arithmetic"]
        typer.echo(
            f"arithmetic on {found['questions']} questions: {100 * found['before']:.1f}% -> {100 * found['after']:.1f}%"
        )
    typer.echo(f"wrote {out / 'analysis.md'} with its figures and JSON")
