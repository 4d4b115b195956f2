"""The prepared GPU benchmark: training samples/s of every preset on one CUDA GPU, within a time budget.

    python benchmarks/bench_gpu.py                       # on a CUDA machine; about 3 minutes on a recent GPU
    python benchmarks/bench_gpu.py --device cpu --presets cpu --batches 8 --precision fp32 --steps 2   # anywhere

For each preset, batch size and precision (fp32, bf16 autocast, fp16 autocast with loss scaling) it measures a
training step (forward + backward + Adam) with bench_model.measure, prints one JSON line per row and a table at
the end. Rows that would start after ``--budget-minutes`` are skipped and listed, so the script always ends in
time; a configuration that runs out of GPU memory is recorded as such and the rest go on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch

from bench_model import COLUMNS, measure
from machine import print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper", "paper-pixels"])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16", "fp16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure each row under torch.compile")
    parser.add_argument("--budget-minutes", type=float, default=4.5, help="start no row after this")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("torch sees no CUDA device; pass --device cpu to try the script on the CPU")
    if args.device == "cpu" and "fp16" in args.precision:
        parser.error("fp16 autocast needs CUDA; on the CPU pass --precision fp32 bf16")
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest convolution
    started, rows, skipped = time.perf_counter(), [], []
    compile_options = (False, True) if args.compile else (False,)
    for preset, batch, precision, compiled in itertools.product(
        args.presets, args.batches, args.precision, compile_options
    ):
        name = f"{preset} batch {batch} {precision}{' compiled' if compiled else ''}"
        if time.perf_counter() - started > args.budget_minutes * 60:
            skipped.append(name)
            continue
        try:
            row = measure(preset, batch, args.steps, args.warmup, precision, args.device, 0, compiled)
        except torch.cuda.OutOfMemoryError:
            row = {"benchmark": "train_step", "preset": preset, "batch": batch, "precision": precision,
                   "compiled": compiled, "error": "out of memory"}  # fmt: skip
            torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)
        rows.append(row)
    if skipped:
        print(json.dumps({"skipped_over_budget": skipped}), flush=True)
    print_table("training step on one device", rows, COLUMNS)


if __name__ == "__main__":
    main()
