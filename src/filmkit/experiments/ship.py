"""Export a finished speedrun as a shippable model: a weights-only checkpoint and its model card.

The checkpoint keeps what answering needs (config, weights, vocabulary, resolution, accuracy) and drops the
optimizer and RNG states that only resuming needs, which makes it about a third of ``last.pt``. The card gives the
data, the command, accuracy by question type and by final function, and the minutes it took, read from the run's
``speedrun.json``.

Example::

    from filmkit.experiments.ship import export_model

    export_model("runs/speedrun", "model.pt", "model.md")
"""

from __future__ import annotations

import json
from pathlib import Path

from filmkit.atomic import atomic_output
from filmkit.data.cache import read_manifest
from filmkit.data.question_types import CATEGORY_TITLES
from filmkit.experiments.speedrun import RECORD
from filmkit.train.loop import LAST
from filmkit.vqa import load_checkpoint, save_checkpoint


def export_model(run_dir: str | Path, weights: str | Path, card: str | Path) -> tuple[Path, Path]:
    """Write the final model of the speedrun in ``run_dir`` to ``weights`` and its model card to ``card``."""
    run_dir = Path(run_dir)
    record_path = run_dir / RECORD
    if not record_path.exists():
        raise ValueError(f"{run_dir}: no {RECORD}; export a finished speedrun")
    record = json.loads(record_path.read_text())
    loaded = load_checkpoint(run_dir / LAST)
    metadata = {
        key: loaded.metadata[key] for key in ("kind", "image_kind", "resolution", "step") if key in loaded.metadata
    }
    metadata["val_accuracy"] = record["validation"]["overall"]["accuracy"] / 100
    metadata["source"] = f"filmkit speedrun --recipe {record['recipe']} --minutes {record['minutes']:g}"
    text = model_card(record)  # before either file: a record the card cannot be made from writes neither
    save_checkpoint(weights, loaded.model, vocab=loaded.vocab, metadata=metadata)
    try:
        with atomic_output(card, "w") as handle:
            handle.write(text)
    except BaseException:
        Path(weights).unlink(missing_ok=True)  # both files or none: a half export would block the next one
        raise
    return Path(weights), Path(card)


def model_card(record: dict) -> str:
    """The Markdown model card of a speedrun record."""
    width, height = record["resolution"]
    settings = " ".join(f"--set {item}" for item in record["settings"])
    lines = [
        f"# FiLM on CLEVR-style scenes at {width}x{height}, trained on 2 CPU cores in {record['minutes']:g} minutes",
        "",
        "| | |",
        "|---|---|",
        f"| model | FiLM (`{record['train_config']['preset']}` preset): GRU question encoder, linear FiLM generator, "
        f"4 FiLMed ResBlocks; {record['parameters']:,} parameters |",
        f"| data | `{_dataset_name(record['dataset'])}`: "
        f"{record['train_questions']:,} training questions "
        f"(CLEVR's rules: 3-10 objects, 90 question families), images at {width}x{height} |",
        f"| command | `filmkit generate dataset --preset clevr-cpu --out data/clevr-cpu` then "
        f"`filmkit speedrun --data data/clevr-cpu --recipe {record['recipe']} --minutes {record['minutes']:g}"
        f"{' ' + settings if settings else ''}` |",
        f"| training | {record['steps']:,} steps, {record['samples']:,} questions seen, "
        f"{record['training_minutes']} minutes, torch {record['torch']} |",
        f"| validation | **{record['validation']['overall']['accuracy']:.1f}%** on "
        f"{record['validation']['scored']:,} questions (question-only guess {record['question_only_accuracy']:.1f}%) |",
    ]
    if record.get("test") and record["test"]["has_answers"]:
        lines.append(
            f"| test | {record['test']['overall']['accuracy']:.1f}% on {record['test']['scored']:,} questions |"
        )
    lines += [
        "",
        "## Validation accuracy by question type",
        "",
        "| type | accuracy (%) | questions |",
        "|---|---:|---:|",
    ]
    for name, entry in record["validation"]["categories"].items():
        lines.append(f"| {CATEGORY_TITLES[name]} | {_percent(entry['accuracy'])} | {entry['total']:,} |")
    lines += ["", "| final function | accuracy (%) | questions |", "|---|---:|---:|"]
    for name, entry in record["validation"]["functions"].items():
        lines.append(f"| {name} | {_percent(entry['accuracy'])} | {entry['total']:,} |")
    lines += [
        "",
        "## Use",
        "",
        "```",
        'filmkit ask --checkpoint pretrained --image IMAGE.png --question "How many spheres are there?"',
        "filmkit eval --checkpoint pretrained --data DATASET --split val",
        "```",
        "",
        f"It reads {width}x{height} RGB images; any image is resized to that (a CLEVR 480x320 image is squeezed, "
        "as the training images were rendered). Its vocabulary is CLEVR's; unknown words are read as <UNK>.",
        "",
    ]
    return "\n".join(lines)


def _dataset_name(cache: str) -> str:
    """The dataset folder a cache was made from (its manifest's source), else the cache's own name."""
    source = (read_manifest(cache) or {}).get("source")
    return Path(source or cache).name


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
