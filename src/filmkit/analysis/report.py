"""A Markdown report of a training run: learning curves, accuracy by question type, examples with heatmaps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from filmkit.analysis.heatmap import heatmap_examples  # noqa: E402
from filmkit.atomic import atomic_output  # noqa: E402
from filmkit.data.dataset import CachedSplit  # noqa: E402
from filmkit.train.evaluate import EvalResult  # noqa: E402


@dataclass
class ReportInputs:
    """Everything the report shows, gathered by the caller (the demo, or anyone with a finished run)."""

    run_dir: Path
    title: str
    result: EvalResult  # full validation of the final model
    question_only_accuracy: float
    val_set: CachedSplit
    model: object  # a FiLMVQA in eval mode
    facts: dict[str, str]  # shown as a two-column table: dataset, model, time, ...
    sections: tuple[str, ...] = ()  # Markdown lines shown after the headline (e.g. what the model learned)


def plot_learning_curves(metrics_path: Path, out_path: Path) -> Path:
    """Training loss, training accuracy and validation-subset accuracy against steps, as a PNG."""
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if r.get("kind") == "val_subset" and r.get("val_accuracy") is not None]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:red")
    loss_axis.set(xlabel="step", ylabel="training loss", title="Loss")
    accuracy_axis.plot(
        [r["step"] for r in train],
        [100 * r["accuracy"] for r in train],
        label="training batches",
        color="tab:blue",
        alpha=0.6,
    )
    accuracy_axis.plot(
        [r["step"] for r in val],
        [100 * r["val_accuracy"] for r in val],
        "o-",
        label="validation subset",
        color="tab:green",
    )
    accuracy_axis.set(xlabel="step", ylabel="accuracy (%)", title="Accuracy")
    accuracy_axis.legend(loc="lower right")
    figure.tight_layout()
    with atomic_output(out_path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return out_path


def example_rows(inputs: ReportInputs, count: int, out_dir: Path) -> list[str]:
    """Markdown rows for ``count`` validation questions: image with heatmap, question, answer, prediction."""
    split = inputs.val_set
    labelled = np.flatnonzero(split.arrays.answers >= 0)
    chosen = np.random.default_rng(0).choice(labelled, size=min(count, len(labelled)), replace=False)
    rows = []
    for record in heatmap_examples(inputs.model, split, chosen, out_dir):
        mark = "yes" if record["answer"] == record["truth"] else "no"
        rows.append(
            f"| ![]({record['picture'].relative_to(inputs.run_dir)}) | {record['question']} | {record['truth']} "
            f"| {record['answer']} ({record['confidence']:.0%}) | {mark} |"
        )
    return rows


def write_report(inputs: ReportInputs, num_examples: int = 6) -> Path:
    """Write ``run_dir/report.md`` (and its pictures under ``run_dir/report/``); return its path."""
    run_dir = inputs.run_dir
    pictures = run_dir / "report"
    curves = plot_learning_curves(run_dir / "metrics.jsonl", pictures / "learning-curves.png")
    accuracy = inputs.result.accuracy or 0.0
    margin = 100 * (accuracy - inputs.question_only_accuracy)
    lines = [f"# {inputs.title}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in inputs.facts.items()]
    lines += [
        "",
        "## Does the model look at the image?",
        "",
        f"Validation accuracy **{accuracy:.1%}** against **{inputs.question_only_accuracy:.1%}** for the best "
        "question-only guess (the most common training answer of each question family, the paper's Q-type "
        f"baseline): **{margin:+.1f} points**.",
        "",
        *inputs.sections,
        "",
        "## Learning curves",
        "",
        f"![learning curves]({curves.relative_to(run_dir)})",
        "",
        "## Examples",
        "",
        "The overlay shows where the classifier's global max-pool fires: for each location, how many of its "
        "feature maps peak there.",
        "",
        "| image | question | answer | model (confidence) | right |",
        "|---|---|---|---|---|",
        *example_rows(inputs, num_examples, pictures),
        "",
        inputs.result.to_markdown(title="Validation accuracy by question type"),
        "",
    ]
    path = run_dir / "report.md"
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines))
    return path
