"""The lever table: the speedrun's recipe with one setting changed at a time, each for the same wall-clock budget.

    python benchmarks/levers.py --data data/clevr-cpu --minutes 4 --record benchmarks/results/levers.jsonl

Each lever is a `filmkit speedrun` (same command, same data, seeded) with `--set` overrides; the runs go one after the
other, never side by side, so their timings compare. Every finished run appends one JSON line to --record (the
recipe, the overrides, steps, questions seen, the final full-validation accuracy, the curve); a rerun skips levers
already recorded there, so an interrupted table resumes. Prints a table at the end.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from filmkit.atomic import atomic_output
from filmkit.experiments.speedrun import run_speedrun
from filmkit.train.allocator import tune_memory
from filmkit.train.denormals import flush_denormals

# (name, architecture, overrides of the recipe)
LEVERS = [
    ("recipe", "film", []),
    ("one question per image (the paper's sampling)", "film", ["questions_per_image=1"]),
    ("cnn-lstm baseline", "cnn-lstm", []),
    ("peak lr 1e-3", "film", ["lr=1e-3"]),
    ("peak lr 4e-3", "film", ["lr=4e-3"]),
    ("scene supervision (not in the paper)", "film", ["scene_loss_weight=1"]),
    ("curriculum by objects (first epoch)", "film", ["curriculum=objects"]),
    ("curriculum by program length (first epoch)", "film", ["curriculum=program"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder or cache")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of each lever")
    parser.add_argument("--out", type=Path, default=Path("runs/levers"))
    parser.add_argument("--record", type=Path, default=Path("benchmarks/results/levers.jsonl"))
    parser.add_argument("--only", nargs="*", help="names of the levers to run (default: all)")
    args = parser.parse_args()
    tune_memory()
    flush_denormals()  # before torch's threads start, as the filmkit command does
    done = {}
    if args.record.exists():
        for line in args.record.read_text().splitlines():
            row = json.loads(line)
            done[(row["lever"], row["minutes"])] = row
    for name, architecture, overrides in LEVERS:
        if args.only and name not in args.only or (name, args.minutes) in done:
            continue
        slug = "".join(c if c.isalnum() else "-" for c in name.split(" (")[0])
        run_dir = args.out / f"{args.minutes:g}min-{slug}"
        result = run_speedrun(
            args.data, run_dir, minutes=args.minutes, architecture=architecture, settings=overrides, test_split=None,
            overwrite=True,
        )  # fmt: skip
        record = result.record
        row = {
            "lever": name,
            "architecture": architecture,
            "overrides": overrides,
            "minutes": args.minutes,
            "steps": record["steps"],
            "samples": record["samples"],
            "training_minutes": record["training_minutes"],
            "val_accuracy": record["validation"]["overall"]["accuracy"],
            "question_only_accuracy": record["question_only_accuracy"],
            "categories": {k: v["accuracy"] for k, v in record["validation"]["categories"].items()},
            "curve": record["curve"],
        }
        done[(name, args.minutes)] = row
        args.record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(args.record, "w") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in done.values())
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    print(f"\n{'lever':<50}{'minutes':>8}{'steps':>8}{'samples':>10}{'val %':>8}")
    for row in done.values():
        print(f"{row['lever']:<50}{row['minutes']:>8g}{row['steps']:>8}{row['samples']:>10}{row['val_accuracy']:>8.1f}")


if __name__ == "__main__":
    main()
