"""`filmkit eval` (accuracy tables and predictions) and `filmkit ask` (one image, one question)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from filmkit.cli.app import app
from filmkit.cli.common import StepBars, fail, progress_bars, refuse_existing


def accuracy_tables(result) -> list[Table]:
    """Rich tables: Table 1 columns (accuracy and question counts), then accuracy per final function."""
    from filmkit.data.question_types import CATEGORIES, CATEGORY_TITLES, FINAL_FUNCTIONS

    def percent(pair) -> str:
        return f"{100.0 * pair[0] / pair[1]:.1f}" if pair[1] else "–"

    summary = Table(title="Accuracy (%) by question type, as in the paper's Table 1")
    summary.add_column("")
    for column in ("Overall", *(CATEGORY_TITLES[name] for name in CATEGORIES)):
        summary.add_column(column, justify="right")
    pairs = [result.overall, *result.categories]
    summary.add_row("accuracy", *(percent(pair) for pair in pairs))
    summary.add_row("questions", *(str(int(pair[1])) for pair in pairs))
    functions = Table(title="Accuracy (%) by final function")
    for column in ("function", "accuracy", "correct", "questions"):
        functions.add_column(column, justify="left" if column == "function" else "right")
    for name, pair in zip(FINAL_FUNCTIONS, result.functions, strict=True):
        if pair[1]:
            functions.add_row(name, percent(pair), str(int(pair[0])), str(int(pair[1])))
    return [summary, functions] if functions.row_count else [summary]


@app.command("eval")
def eval_command(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="A filmkit checkpoint (.pt) written by training, or pretrained (the shipped model)."
    ),
    data: Path = typer.Option(
        ..., "--data", help="A cache, or a dataset folder (cached at the checkpoint's resolution on first use)."
    ),
    split: str = typer.Option("val", "--split", help="The split to evaluate (test splits without answers work)."),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Also write one predicted answer per line, in the question file's order."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for eval-<split>.json and eval-<split>.md (default: beside the checkpoint)."
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Questions per forward pass."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 or fp16 (autocast)."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Where to cache a dataset folder (default: inside it, under .filmkit/)."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes decoding images when caching a dataset."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing eval-<split>.json and .md in --out, and --predictions."
    ),
) -> None:
    """Accuracy overall, by the paper's Table 1 question types, by final function and by family."""
    from filmkit.atomic import atomic_output
    from filmkit.train.devices import PRECISIONS, resolve_device
    from filmkit.train.evaluate import evaluate, open_split, write_predictions
    from filmkit.vqa import load_checkpoint

    out = out or checkpoint.parent
    paths = [out / f"eval-{split}.json", out / f"eval-{split}.md"]
    refuse_existing(*paths, predictions, overwrite=overwrite)
    if precision not in PRECISIONS:
        fail(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    try:
        device = resolve_device(device)
    except ValueError as error:
        fail(str(error))
    with progress_bars() as bar:
        bars = StepBars(bar)
        try:
            loaded = load_checkpoint(checkpoint)
            questions = open_split(loaded, data, split, cache_dir=cache, workers=workers, progress=bars.caching)
            task = bar.add_task(f"eval {split}", total=len(questions), info="")
            result = evaluate(
                loaded.model.to(device),
                questions,
                batch_size=batch_size,
                device=device,
                precision=precision,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        except (ValueError, OSError) as error:
            fail(str(error))

    step = loaded.metadata.get("step")
    title = f"{split} of {questions.cache_dir}, checkpoint {checkpoint.name}"
    title += f" (step {step})" if step is not None else ""
    report = {"checkpoint": str(checkpoint), "cache": str(questions.cache_dir), "split": split, "step": step}
    report.update(result.to_json())
    try:
        with atomic_output(paths[0], "w") as handle:
            json.dump(report, handle, indent=1)
        with atomic_output(paths[1], "w") as handle:
            handle.write(result.to_markdown(title) + "\n")
        if predictions:
            paths.append(write_predictions(predictions, result, questions))
    except OSError as error:
        fail(str(error))

    typer.echo(title)
    if result.has_answers:
        for table in accuracy_tables(result):
            Console().print(table)
    else:
        hint = "" if predictions else " (add --predictions FILE to write them)"
        typer.echo(f"{result.questions} questions, none with an answer: predictions only, no accuracy{hint}")
    if result.has_answers and result.scored < result.questions:
        typer.echo(f"{result.questions - result.scored} questions have no known answer and are not scored")
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("ask")
def ask_command(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="A filmkit checkpoint (.pt), or pretrained (the shipped model)."
    ),
    image: Path = typer.Option(..., "--image", help="The image (PNG or any format Pillow reads)."),
    question: str = typer.Option(..., "--question", help="The question, in words."),
    heatmap: Path | None = typer.Option(
        None,
        "--heatmap",
        help="Write a figure: the image, the places that win the classifier's max-pool, the question and answer "
        "(.png, .jpg, .pdf or .svg).",
    ),
    top: int = typer.Option(5, "--top", min=1, help="How many answers to list with their probabilities."),
    weights: Path | None = typer.Option(
        None, "--weights", help="ResNet-101 ImageNet weights (local file), for checkpoints that read its features."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --heatmap file."),
) -> None:
    """Answer one question about one image: the answer, the top probabilities, unknown words, a heatmap."""
    import numpy as np
    from PIL import Image

    from filmkit.analysis.heatmap import FIGURE_FORMATS, answer_caption, heatmap_figure
    from filmkit.data.features import resnet101_encoder
    from filmkit.train.ask import ask
    from filmkit.vqa import load_checkpoint

    refuse_existing(heatmap, overwrite=overwrite)

    if not image.is_file():
        fail(f"{image}: no such image file")
    if heatmap and heatmap.suffix.lower() not in FIGURE_FORMATS:
        fail(f"--heatmap {heatmap}: write it as {', '.join(FIGURE_FORMATS)}")  # before the model is loaded
    try:
        loaded = load_checkpoint(checkpoint)
        if not loaded.vocab:
            fail(f"{checkpoint}: the checkpoint holds no vocabulary to read the question with")
        encoder = None
        if loaded.model.config.input_kind == "features":
            if weights is None:
                fail(f"{checkpoint}: this model reads ResNet-101 features; pass --weights FILE (ImageNet weights)")
            encoder = resnet101_encoder(weights)
        result = ask(loaded.model, loaded.vocab, image, question, top_k=top, encoder=encoder)
        if heatmap:
            with Image.open(image) as picture:
                pixels = np.asarray(picture.convert("RGB"))
            caption = answer_caption(question, result.answer, result.top[0][1])
            heatmap_figure(pixels, result.heatmap, heatmap, caption)
    except (ValueError, OSError) as error:
        fail(str(error))

    typer.echo(f"answer: {result.answer}")
    table = Table()
    table.add_column("answer")
    table.add_column("probability", justify="right")
    for answer, probability in result.top:
        table.add_row(answer, f"{probability:.3f}")
    Console().print(table)
    if result.unknown_words:
        typer.echo(f"unknown words (read as <UNK>): {', '.join(result.unknown_words)}")
    if heatmap:
        typer.echo(f"heatmap: {heatmap}")
