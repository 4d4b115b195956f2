"""The paper's Tables 1-3 on filmkit data: every row trained for the same budget, our numbers beside the paper's.

    filmkit generate dataset --preset clevr-mini --out data/clevr-mini
    filmkit preprocess --data data/clevr-mini --out cache/mini64 --resolution 64x64
    python benchmarks/reproduce.py --data cache/mini64 --minutes 15 --out runs/reproduce --doc docs/reproduction.md

Table 1: the question-only guess, the four baselines and FiLM; Table 2: FiLM's ablations (config switches of
the model); Table 3: the number of ResBlocks. Each trained row runs `filmkit train`'s Trainer with the same recipe
(the `cpu` preset's widths, Adam 1e-3 with warmup and cosine decay, bf16 where the CPU has it) for ``--minutes``
of training, then its best checkpoint is scored on the full validation split. Finished rows are kept in
OUT/results.jsonl and skipped when the script runs again, so an interrupted reproduction continues. The Markdown
report is rewritten after every row. ``--rows`` picks rows by name; ``--steps`` caps each run (for smoke tests).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from filmkit.analysis.baselines import question_only_accuracy
from filmkit.atomic import atomic_output
from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import CATEGORIES, CATEGORY_TITLES
from filmkit.train.config import TrainConfig
from filmkit.train.devices import fastest_precision, resolve_device
from filmkit.train.evaluate import evaluate
from filmkit.train.loop import Trainer
from filmkit.vqa import load_checkpoint

# (table, row name, architecture, model overrides, the paper's accuracy: Table 1 on CLEVR test, Tables 2-3 on val)
ROWS = [
    ("1", "Q-type baseline", "qtype", {}, 41.8),
    ("1", "LSTM", "lstm", {}, 46.8),
    ("1", "CNN+LSTM", "cnn-lstm", {}, 52.3),
    ("1", "CNN+LSTM+SA", "cnn-lstm-sa", {}, 76.6),
    ("1", "CNN+LSTM+RN", "cnn-lstm-rn", {}, 95.5),
    ("1", "FiLM", "film", {}, 97.6),
    ("2", "beta := 0", "film", {"use_beta": False}, 96.9),
    ("2", "gamma := 1", "film", {"use_gamma": False}, 95.9),
    ("2", "gamma := sigmoid", "film", {"gamma_activation": "sigmoid"}, 95.9),
    ("2", "gamma := tanh", "film", {"gamma_activation": "tanh"}, 96.3),
    ("2", "gamma := exp", "film", {"gamma_activation": "exp"}, 96.3),
    ("2", "FiLM after residual", "film", {"film_placement": "block-output-film"}, 96.6),
    ("2", "FiLM after ReLU", "film", {"film_placement": "relu-film"}, 97.7),
    ("2", "FiLM after conv (before BN)", "film", {"film_placement": "conv-film"}, 97.1),
    ("2", "FiLM before conv-1", "film", {"film_placement": "block-input-film"}, 95.0),
    ("2", "no FiLM in block 4", "film", {"condition_pattern": [True, True, True, False]}, 96.8),
    ("2", "no FiLM in blocks 3-4", "film", {"condition_pattern": [True, True, False, False]}, 96.5),
    ("2", "no FiLM in blocks 2-4", "film", {"condition_pattern": [True, False, False, False]}, 97.3),
    ("2", "no FiLM in blocks 1-4", "film", {"condition_pattern": [False, False, False, False]}, 21.4),
    ("2", "no coordinate maps", "film", {"coords": "none"}, 95.3),
    ("2", "no residual", "film", {"residual": False}, 94.0),
    ("2", "no batch norm", "film", {"block_batchnorm": False}, 93.7),
    ("3", "1 ResBlock", "film", {"num_blocks": 1}, 93.5),
    ("3", "2 ResBlocks", "film", {"num_blocks": 2}, 97.1),
    ("3", "6 ResBlocks", "film", {"num_blocks": 6}, 97.7),
    ("3", "8 ResBlocks", "film", {"num_blocks": 8}, 97.6),
]
RECIPE = {"preset": "cpu", "batch_size": 64, "lr": 1e-3, "warmup_steps": 200, "schedule": "cosine",
          "min_lr_ratio": 0.05, "augment_shift": 4, "val_every": 1000, "val_subset": 2000}  # fmt: skip
SAMPLES_PER_S = 1150  # FiLM's training speed here, to size the cosine decay to the budget (other models differ)


def run_row(name: str, architecture: str, overrides: dict, args, out: Path) -> dict:
    """Train one row for the budget (or score the question-only guess) and return its accuracies."""
    cache = args.data
    val = CachedSplit(cache, "val")
    if architecture == "qtype":
        return {"overall": question_only_accuracy(CachedSplit(cache, "train"), val), "categories": {}, "minutes": 0.0}
    steps = args.steps or int(args.minutes * 60 * SAMPLES_PER_S / RECIPE["batch_size"])
    precision = fastest_precision(resolve_device("auto"))
    config = TrainConfig(**RECIPE, architecture=architecture, model=dict(overrides), max_steps=steps,
                         time_limit_minutes=args.minutes, precision=precision)  # fmt: skip
    run_dir = out / name.replace(" ", "-").replace(":=", "is").replace("+", "-")
    started = time.perf_counter()
    Trainer(config, cache, run_dir, overwrite=True).run()
    result = evaluate(load_checkpoint(run_dir / "best.pt").model, val)
    return {
        "overall": result.accuracy,
        "categories": dict(zip(CATEGORIES, result.category_accuracy.values(), strict=True)),
        "minutes": (time.perf_counter() - started) / 60,
    }


def write_report(path: Path, results: dict[str, dict], args) -> None:
    """docs/reproduction.md: one table per paper table, ours beside the paper's."""
    lines = ["# Reproducing the paper's tables", ""]
    command = f"python benchmarks/reproduce.py --data {args.data} --minutes {args.minutes:g}"
    lines += [f"Each trained row ran for at most {args.minutes:g} minutes on this machine (`{command}`), then its",
              "best checkpoint was scored on the full validation split. The paper trained for days on CLEVR: compare",
              "orderings, not levels. FiLM with 4 ResBlocks is Table 1's FiLM row.", ""]  # fmt: skip
    for table, title in (("1", "Table 1: models"), ("2", "Table 2: ablations"), ("3", "Table 3: ResBlocks")):
        lines += [f"## {title}", ""]
        header = "| row | ours | paper |"
        if table == "1":
            header += "".join(f" {CATEGORY_TITLES[c]} |" for c in CATEGORIES)
        lines += [header, "|---|" + "---:|" * (header.count("|") - 2)]
        for row_table, name, _, _, paper in ROWS:
            if row_table != table:
                continue
            found = results.get(name)
            ours = f"{100 * found['overall']:.1f}" if found and found["overall"] is not None else "not run"
            cells = f"| {name} | {ours} | {paper} |"
            if table == "1":
                categories = found["categories"] if found else {}
                cells += "".join(
                    f" {100 * categories[c]:.1f} |" if categories.get(c) is not None else " - |" for c in CATEGORIES
                )
            lines.append(cells)
        lines.append("")
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a cache (filmkit preprocess) of clevr-mini or CLEVR")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--doc", type=Path, default=Path("docs/reproduction.md"))
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget of each row")
    parser.add_argument("--steps", type=int, help="cap on each row's steps (smoke tests)")
    parser.add_argument("--rows", nargs="+", help="row names to run (default: all)")
    args = parser.parse_args()
    known = {name for _, name, _, _, _ in ROWS}
    unknown = sorted(set(args.rows or []) - known)
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    args.out.mkdir(parents=True, exist_ok=True)
    ledger = args.out / "results.jsonl"
    results = {}
    if ledger.exists():
        results = {row["name"]: row for row in map(json.loads, ledger.read_text().splitlines())}
    for _, name, architecture, overrides, paper in ROWS:
        if (args.rows and name not in args.rows) or name in results:
            continue
        row = {"name": name, "paper": paper, **run_row(name, architecture, overrides, args, args.out)}
        results[name] = row
        with ledger.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        write_report(args.doc, results, args)
    write_report(args.doc, results, args)


if __name__ == "__main__":
    main()
