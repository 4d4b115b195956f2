"""`filmkit preprocess`: a dataset on disk -> a cache the training loader reads fast."""

from __future__ import annotations

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, parse_resolution, progress_bars


@app.command("preprocess")
def preprocess_command(
    data: Path = typer.Option(..., "--data", help="Dataset folder in the CLEVR v1.0 layout (also CoGenT, Humans)."),
    out: Path = typer.Option(
        ..., "--out", help="Cache folder to write (a rerun resumes it, or adds the splits it lacks)."
    ),
    resolution: str = typer.Option("128x128", help="Stored image size WIDTHxHEIGHT."),
    splits: list[str] = typer.Option(None, "--split", help="Only these splits (repeatable); default all."),
    images_root: Path | None = typer.Option(
        None, "--images-root", help="Folder holding images/<split>/ when it is not --data (CLEVR-Humans)."
    ),
    vocab: Path | None = typer.Option(None, help="Use this vocab.json instead of building one from train."),
    workers: int = typer.Option(
        2, min=1, help="Processes decoding images (at most one per 2,000 images of a split: starting one costs more)."
    ),
    features: str | None = typer.Option(
        None,
        help="resnet101: store ResNet-101 conv4 features, not pixels; scene-maps: the true scene (object, colour, "
        "shape, material, size per cell of --resolution cells, from the scene files): reasoning without vision.",
    ),
    weights: Path | None = typer.Option(None, help="Local ResNet-101 ImageNet weights for --features."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a cache in --out made otherwise (only the cache's files are deleted)."
    ),
) -> None:
    """Encode questions and resize images into an HDF5 cache (vocab.json, <split>_questions.h5, images).

    Everything is checked before the first file is written, so a failed run leaves nothing in the way of the next.
    """
    from filmkit.data.preprocess import preprocess  # imported here so that `filmkit --help` stays fast

    width, height = parse_resolution(resolution)
    with progress_bars() as bar:
        bars = StepBars(bar)

        def progress(split: str, stage: str, done: int, total: int) -> None:
            bars.update(f"{split} {stage}", done, total)

        try:
            manifest = preprocess(
                data,
                out,
                resolution=(width, height),
                splits=splits or None,
                images_root=images_root,
                vocab_path=vocab,
                workers=workers,
                features=features,
                weights=weights,
                overwrite=overwrite,
                progress=progress,
            )
        except (ValueError, OSError) as error:
            fail(str(error))
    for name, summary in manifest["splits"].items():
        unknown = summary["unknown_words"]
        note = f"; unknown words: {', '.join(unknown)}" if unknown else ""
        typer.echo(f"{name}: {summary['questions']} questions, {summary['images']} images{note}")
    typer.echo(f"cache in {out}")
