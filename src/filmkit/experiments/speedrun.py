"""`filmkit speedrun`: a recipe trained for a wall-clock budget, then evaluated once on validation and on test.

The run directory holds the training run (``config.yaml``, ``metrics.jsonl``, ``last.pt``, ``best.pt``), then
``speedrun.json`` (every figure of the run: the learning curve, the final accuracy by question type and by final
function on the full validation and test splits, the minutes to 70, 80 and 90% on validation) and ``report.md``
with the curve as a plot. An interrupted speedrun resumes when the same command is run again.

Example::

    from filmkit.experiments.speedrun import run_speedrun

    result = run_speedrun("data/clevr-cpu", "runs/speedrun", minutes=60)
    result.record["validation"]["overall"]["accuracy"]      # percent
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from filmkit.analysis.baselines import question_only_accuracy, question_only_by_function
from filmkit.atomic import atomic_output
from filmkit.data.cache import list_splits
from filmkit.data.dataset import CachedSplit
from filmkit.experiments.recipes import get_recipe, recipe_config
from filmkit.train.config import apply_overrides
from filmkit.train.evaluate import EvalResult, evaluate
from filmkit.train.loop import LAST, StepReport, Trainer, TrainingError
from filmkit.train.scene_supervision import scene_accuracy, split_targets

THRESHOLDS = (0.70, 0.80, 0.90)
RECORD, REPORT = "speedrun.json", "report.md"


@dataclass
class SpeedrunResult:
    run_dir: Path
    record: dict  # what speedrun.json holds
    report: Path


def run_speedrun(
    data: str | Path,
    out: str | Path,
    *,
    minutes: float = 60.0,
    recipe: str = "cpu",
    architecture: str = "film",
    settings: list[str] = (),
    test_split: str | None = "test",
    overwrite: bool = False,
    title: str = "filmkit speedrun",
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> SpeedrunResult:
    """Train ``recipe`` on ``data`` (a dataset folder or a cache) for ``minutes``, evaluate, write the report.

    ``settings`` are ``key=value`` overrides on the recipe, as ``filmkit train --set`` takes them. A run directory
    that holds the same speedrun (same recipe, architecture, budget and settings) is resumed; one that holds
    another is refused unless ``overwrite``.
    """
    if minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {minutes:g}")
    get_recipe(recipe)  # an unknown recipe is an error before any work
    run_dir = Path(out)
    plan = {"recipe": recipe, "architecture": architecture, "minutes": minutes, "settings": list(settings)}
    stage = on_stage or (lambda text: None)
    if (run_dir / LAST).exists() and not overwrite:
        recorded = _read_plan(run_dir)
        if recorded != plan:
            held = f"another speedrun ({recorded})" if recorded else "a run that is not a speedrun"
            raise TrainingError(
                f"{run_dir} holds {held}; rerun it with the same options to resume, "
                "or pass --overwrite to start again there"
            )
        stage(f"resuming the speedrun in {run_dir}")
        trainer = Trainer.resume(run_dir, on_progress=on_step)
    else:
        base = recipe_config(recipe, architecture=architecture, time_limit_minutes=minutes, fit_steps_to_time=True)
        config = apply_overrides(base, list(settings))
        stage(f"training recipe {recipe!r} ({architecture}) for {minutes:g} minutes -> {run_dir}")
        trainer = Trainer(config, data, run_dir, overwrite=overwrite, on_progress=on_step)
        with atomic_output(run_dir / "speedrun-plan.json", "w") as handle:
            json.dump(plan, handle)
    trained = trainer.run()

    stage("evaluating on the full validation split" + (f" and, once, on {test_split}" if test_split else ""))
    model = trainer.model.eval()
    validation = evaluate(model, trainer.val_set)
    test = None
    if test_split and test_split in list_splits(trainer.cache):
        test = evaluate(model, CachedSplit(trainer.cache, test_split, trainer.vocab))
    curve = learning_curve(run_dir / "metrics.jsonl")
    scene = None
    if trainer.config.scene_loss_weight > 0:
        stage("reading the scene head's accuracy by attribute on the validation images")
        map_size = trainer.model_config.feature_map_size
        val_targets = split_targets(trainer.cache, trainer.config.val_split, map_size)
        scene = scene_accuracy(model, trainer.val_set, val_targets)
    record = {
        "benchmark": "speedrun",
        **plan,
        "dataset": str(trainer.cache),
        "resolution": [trainer.model_config.image_width, trainer.model_config.image_height],
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_config": trainer.config.to_dict(),
        "steps": trained.steps,
        "samples": trainer.samples_seen,
        "training_minutes": round(trained.seconds / 60, 2),
        "train_questions": len(trainer.train_set),
        "question_only_accuracy": round(100 * question_only_accuracy(trainer.train_set, trainer.val_set), 2),
        "question_only_by_function": {
            name: round(100 * value, 2)
            for name, value in question_only_by_function(trainer.train_set, trainer.val_set).items()
        },
        "validation": validation.to_json(),
        "test": test.to_json() if test is not None else None,
        "scene_accuracy": scene,
        "minutes_to": minutes_to(curve),
        "curve": curve,
        "machine": {"cores": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
        "torch": torch.__version__,
    }
    with atomic_output(run_dir / RECORD, "w") as handle:
        json.dump(record, handle, indent=1)
    plot_curve(curve, run_dir / "report" / "speedrun-curve.png", title)
    report = write_speedrun_report(run_dir, record, validation, test, title)
    return SpeedrunResult(run_dir, record, report)


def learned_table(record: dict) -> list[str]:
    """What the model learned: validation accuracy by final function beside the question-only guess's."""
    lines = [
        "## What the model learned",
        "",
        "Validation accuracy by the question's final function, beside the question-only guess for the same questions:",
        "",
        "| final function | questions | model (%) | question-only guess (%) | gain (points) |",
        "|---|---:|---:|---:|---:|",
    ]
    guesses = record["question_only_by_function"]
    for name, entry in record["validation"]["functions"].items():
        guess = guesses.get(name)
        gain = f"{entry['accuracy'] - guess:+.1f}" if guess is not None else "-"
        lines.append(
            f"| {name} | {entry['total']:,} | {entry['accuracy']:.1f} | {'-' if guess is None else f'{guess:.1f}'} "
            f"| {gain} |"
        )
    return lines


def _test_sentence(test: dict | None) -> str:
    if test is None:
        return "; no test split was evaluated."
    if not test["has_answers"]:
        return f"; the test split's {test['questions']:,} questions have no answers (predictions only)."
    return f"; test accuracy **{test['overall']['accuracy']:.1f}%** on {test['scored']:,} questions."


def _scene_sentence(scene: dict | None) -> list[str]:
    if scene is None:
        return []
    named = ", ".join(f"{name} {value:.1f}%" for name, value in scene.items() if name != "objectness")
    return [
        f"Scene supervision: on the validation images the scene head names {named} of the object centres "
        f"(object or empty right in {scene['objectness']:.1f}% of the cells).",
        "",
    ]


def _read_plan(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "speedrun-plan.json").read_text())
    except (OSError, ValueError):
        return None


def learning_curve(metrics_path: Path) -> list[dict]:
    """Validation-subset accuracy against minutes, with the training accuracy since the previous validation."""
    curve, recent = [], []
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if "kind" not in record:
            recent.append(record["accuracy"])
        elif record["kind"] == "val_subset":
            curve.append(
                {
                    "step": record["step"],
                    "minutes": round(record["elapsed_s"] / 60, 2),
                    "val_accuracy": round(100 * record["val_accuracy"], 2),
                    "train_accuracy": round(100 * sum(recent) / len(recent), 2) if recent else None,
                }
            )
            recent = []
    return curve


def minutes_to(curve: list[dict]) -> dict[str, float | None]:
    """Minutes of training until the validation subset first reached 70, 80 and 90% (None: not reached).

    >>> minutes_to([{"minutes": 5.0, "val_accuracy": 71.0}, {"minutes": 9.5, "val_accuracy": 82.0}])
    {'70%': 5.0, '80%': 9.5, '90%': None}
    """
    reached = {}
    for threshold in THRESHOLDS:
        hits = [point["minutes"] for point in curve if point["val_accuracy"] >= 100 * threshold]
        reached[f"{threshold:.0%}"] = hits[0] if hits else None
    return reached


def plot_curve(curve: list[dict], path: Path, title: str) -> Path:
    """Validation-subset and training accuracy against minutes, with the 70/80/90% lines, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    axis.plot([p["minutes"] for p in curve], [p["val_accuracy"] for p in curve], "o-", label="validation subset")
    trained = [p for p in curve if p["train_accuracy"] is not None]
    axis.plot(
        [p["minutes"] for p in trained],
        [p["train_accuracy"] for p in trained],
        "--",
        color="grey",
        label="training batches",
    )
    for threshold in THRESHOLDS:
        axis.axhline(100 * threshold, color="tab:green", alpha=0.25, linewidth=1)
    axis.set(xlabel="minutes of training", ylabel="accuracy (%)", title=title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return path


def write_speedrun_report(
    run_dir: Path, record: dict, validation: EvalResult, test: EvalResult | None, title: str
) -> Path:
    """``run_dir/report.md``: the facts, the headline, the curve, and the tables by type and final function."""
    overall = record["validation"]["overall"]["accuracy"]
    reached = ", ".join(
        f"{key}: {value:g} min" if value is not None else f"{key}: not reached"
        for key, value in record["minutes_to"].items()
    )
    lines = [
        f"# {title}",
        "",
        "| | |",
        "|---|---|",
        f"| recipe | `{record['recipe']}` ({record['architecture']}), settings {record['settings'] or 'as defined'} |",
        f"| data | {record['dataset']}: {record['train_questions']:,} training questions at "
        f"{record['resolution'][0]}x{record['resolution'][1]} |",
        f"| model | {record['parameters']:,} parameters |",
        f"| training | {record['steps']:,} steps, {record['samples']:,} questions seen, "
        f"{record['training_minutes']} minutes (budget {record['minutes']:g}) |",
        f"| machine | {record['machine']['cores']} torch threads, torch {record['torch']} |",
        "",
        f"Validation accuracy **{overall:.1f}%** on {record['validation']['scored']:,} questions against "
        f"**{record['question_only_accuracy']:.1f}%** for the best question-only guess (the most common training "
        "answer of each question family)" + _test_sentence(record["test"]),
        "",
        f"Minutes to the validation subset's first {reached}.",
        "",
        *_scene_sentence(record["scene_accuracy"]),
        "![learning curve](report/speedrun-curve.png)",
        "",
        *learned_table(record),
        "",
        validation.to_markdown(title="Validation accuracy by question type"),
    ]
    if test is not None:
        lines += ["", test.to_markdown(title="Test accuracy by question type")]
    path = run_dir / REPORT
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
