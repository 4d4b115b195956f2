"""`filmkit models`: the named model presets and their sizes."""

import typer
from rich.console import Console
from rich.table import Table

from filmkit.cli.app import app


@app.command()
def models(
    vocab_size: int = typer.Option(93, help="Question vocabulary size (CLEVR: 93)."),
    num_answers: int = typer.Option(32, help="Answer vocabulary size (CLEVR: 28 answers + 4 special tokens)."),
) -> None:
    """List the model presets with their input and parameter counts, and the baselines' sizes."""
    from filmkit.vqa import PRESETS, FiLMVQA, build_config, count_parameters
    from filmkit.vqa.baselines import BASELINES, baseline_config, build_model

    table = Table(title=f"FiLM presets (vocab {vocab_size}, {num_answers} answers)")
    for column in ("preset", "input", "generator params", "network params", "total params"):
        table.add_column(column, justify="right" if "params" in column else "left")
    for name in PRESETS:
        config = build_config(name, vocab_size=vocab_size, num_answers=num_answers)
        counts = count_parameters(without_memory(lambda config=config: FiLMVQA(config)))
        shape = f"{config.in_channels}x{config.image_height}x{config.image_width} {config.input_kind}"
        table.add_row(name, shape, f"{counts['generator']:,}", f"{counts['network']:,}", f"{counts['total']:,}")
    baselines = Table(title="Baselines (filmkit train --model NAME), total params on each preset")
    baselines.add_column("baseline")
    for name in PRESETS:
        baselines.add_column(name, justify="right")
    for architecture in BASELINES:
        counts = []
        for preset in PRESETS:
            config = baseline_config(architecture, preset, vocab_size=vocab_size, num_answers=num_answers)
            model = without_memory(lambda config=config: build_model(config))
            counts.append(f"{sum(p.numel() for p in model.parameters()):,}")
        baselines.add_row(architecture, *counts)
    console = Console()
    console.print(table)
    console.print(baselines)
    console.print(shipped_models_table())


def without_memory(build):
    """``build()`` on torch's meta device: every parameter's shape and none of its memory (the paper's 59 million
    parameters would take seconds to allocate and initialise only to be counted)."""
    import torch

    with torch.device("meta"):
        return build()


def shipped_models_table() -> Table:
    """The models inside the package (``--checkpoint NAME``), with their data, resolution and accuracy."""
    from filmkit.pretrained import PRETRAINED, model_card, pretrained_path
    from filmkit.vqa import load_checkpoint

    table = Table(title="Shipped models (--checkpoint NAME in ask, eval and analyze)")
    for column in ("name", "resolution", "params", "validation accuracy", "file", "model card"):
        table.add_column(column, justify="right" if column in ("params", "validation accuracy") else "left")
    for name in PRETRAINED:
        path = pretrained_path(name)
        if not path.exists():
            table.add_row(name, "-", "-", "-", f"{path.name} (not in this install)", "-")
            continue
        loaded = load_checkpoint(path)
        width, height = loaded.metadata.get("resolution", ("?", "?"))
        accuracy = loaded.metadata.get("val_accuracy")
        table.add_row(
            name,
            f"{width}x{height}",
            f"{sum(p.numel() for p in loaded.model.parameters()):,}",
            "-" if accuracy is None else f"{100 * accuracy:.1f}%",
            f"{path.name} ({path.stat().st_size / 2**20:.1f} MiB)",
            str(model_card(name)),
        )
    return table
