"""The end-to-end demo: generate a CLEVR-style dataset, run the speedrun's recipe for a few minutes, report.

It is `filmkit speedrun` at a smaller size: the `demo` dataset (fewer, simpler scenes, so that it builds in minutes)
and a wall-clock training budget, so that it ends on time on a slower machine too. The dataset and its cache are
built once and reused; each run gets a new run directory, so nothing a previous run wrote is overwritten (unless
``overwrite``, which regenerates the dataset and trains in the run directory named).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filmkit.analysis.report import ReportInputs, write_report
from filmkit.clevr.dataset import Preset, build_dataset, get_preset
from filmkit.data.dataset import CachedSplit
from filmkit.data.locate import locate_cache
from filmkit.experiments.speedrun import learned_table, run_speedrun
from filmkit.train.evaluate import evaluate
from filmkit.train.loop import StepReport
from filmkit.vqa import load_checkpoint

DEMO_DATASET = "demo"
DEMO_MINUTES = 14.0  # of training: with generation, caching and installation the demo takes about 25 minutes here


@dataclass
class DemoResult:
    run_dir: Path
    report: Path
    val_accuracy: float
    question_only_accuracy: float
    minutes: float


def free_run_dir(base: Path) -> Path:
    """``base`` if it is free, else ``base-2``, ``base-3``, ...: a demo never overwrites an earlier run."""
    candidate, number = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def run_demo(
    data_dir: Path = Path("data/demo"),
    runs_dir: Path = Path("runs/demo"),
    *,
    minutes: float = DEMO_MINUTES,
    recipe: str = "cpu",
    settings: list[str] = (),
    workers: int = 2,
    dataset: str | Preset = DEMO_DATASET,
    overwrite: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_data: Callable[[str, int, int], None] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> DemoResult:
    """Run the whole demo and return where its report is and the two accuracies it compares.

    The dataset in ``data_dir`` is reused (a folder holding another is refused) and the run goes to a free
    directory beside ``runs_dir``; ``overwrite=True`` regenerates the dataset and trains in ``runs_dir`` itself.

    Example::

        result = run_demo(minutes=2)
        print(result.report, result.val_accuracy, result.question_only_accuracy)
    """
    started = time.perf_counter()

    def stage(text: str) -> None:
        if on_stage:
            on_stage(text)

    preset = dataset if isinstance(dataset, Preset) else get_preset(dataset)
    stage(f"dataset: {preset.description} -> {data_dir}")
    build_dataset(preset, data_dir, workers=workers, overwrite=overwrite, progress=on_data)
    stage("cache: questions encoded, images stored for fast loading")
    cache = locate_cache(data_dir, (preset.width, preset.height), workers=workers)
    run = run_speedrun(
        cache,
        Path(runs_dir) if overwrite else free_run_dir(Path(runs_dir)),
        minutes=minutes,
        recipe=recipe,
        settings=list(settings),
        test_split=None,
        title="filmkit demo",
        overwrite=overwrite,
        on_stage=on_stage,
        on_step=on_step,
    )
    stage("writing the report")
    record, run_dir = run.record, run.run_dir
    model = load_checkpoint(run_dir / "last.pt").model  # the final weights, which the speedrun evaluated
    val_set = CachedSplit(cache, "val")
    result = evaluate(model, val_set)
    baseline = record["question_only_accuracy"] / 100
    reached = ", ".join(
        f"{key} at {value:g} min" if value is not None else f"{key} not reached"
        for key, value in record["minutes_to"].items()
    )
    facts = {
        "dataset": f"`{preset.name}`: {preset.description}",
        "questions": f"{record['train_questions']:,} training, {record['validation']['questions']:,} validation",
        "model": f"FiLM, `{record['train_config']['preset']}` preset at {preset.width}x{preset.height}: "
        f"{record['parameters']:,} parameters",
        "training": f"recipe `{recipe}`: {record['steps']:,} steps, {record['samples']:,} questions seen, "
        f"{record['training_minutes']} minutes (budget {minutes:g})",
        "validation subset": reached,
        "whole demo": f"{(time.perf_counter() - started) / 60:.1f} minutes on this machine",
    }
    learned = tuple(learned_table(record))
    report = write_report(ReportInputs(run_dir, "filmkit demo", result, baseline, val_set, model, facts, learned))
    return DemoResult(run_dir, report, result.accuracy or 0.0, baseline, (time.perf_counter() - started) / 60)
