"""FLOPs per training sample of each preset, the GFLOP/s achieved, and their share of this CPU's peak.

    python benchmarks/bench_flops.py --presets cpu paper paper-pixels --precision fp32 bf16

FLOPs are counted with torch.utils.flop_counter over one forward + backward pass at batch 64 (a multiply-add is
2 FLOPs). The "visual" part is the FiLMed network (stem, ResBlocks, classifier: convolutions and the classifier's
linear layers), timed on its own with the FiLM parameters as an input that receives gradients; "whole" adds the
question encoder and the FiLM generator. Peak FLOP/s: cores x FLOPs per cycle x clock (see machine.py; pass the
clock benchmarks/clock.c measures as --clock-mhz), next to the rate of a large matrix multiply (torch.mm, and for
fp32 also oneDNN's product, which the CPU GRU uses: filmkit.vqa.cpu_matmul).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from filmkit.train.allocator import tune_memory
from filmkit.train.devices import autocast_context
from filmkit.vqa import FiLMVQA, build_config, cpu_matmul
from machine import cpu_description, cpu_peak_gflops, environment, measured_matmul_gflops, print_table, random_batch


def onednn_product_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of oneDNN's ``a @ b.T`` (filmkit.vqa.cpu_matmul), which torch's counter does not know."""
    rows, inner = a_shape
    return 2 * rows * inner * b_shape[0]


def counted_flops(run) -> int:
    """FLOPs of the operations ``run()`` dispatches (matrix multiplies and convolutions, forward and backward)."""
    onednn = {torch.ops.mkldnn._linear_pointwise: onednn_product_flops} if cpu_matmul.onednn_route() else {}
    with FlopCounterMode(display=False, custom_mapping=onednn) as counter:
        run()
    return counter.get_total_flops()


def timed(run, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps


def measure(preset: str, precision: str, batch: int, steps: int, mhz: float | None = None) -> dict:
    config = build_config(preset, vocab_size=93, num_answers=32)
    model = FiLMVQA(config).train()
    images, questions, answers = random_batch(config, batch, torch.Generator().manual_seed(0))
    film_params = model.film_params(questions).detach().requires_grad_()

    def visual_step():
        model.zero_grad(set_to_none=True)
        with autocast_context(torch.device("cpu"), precision):
            loss = F.cross_entropy(model.answer_with_film(images, film_params).float(), answers)
        loss.backward()

    def whole_step():
        model.zero_grad(set_to_none=True)
        with autocast_context(torch.device("cpu"), precision):
            loss = F.cross_entropy(model(images, questions).float(), answers)
        loss.backward()

    visual_flops, whole_flops = counted_flops(visual_step), counted_flops(whole_step)
    visual_seconds, whole_seconds = timed(visual_step, steps), timed(whole_step, steps)
    peak = cpu_peak_gflops(precision, mhz=mhz)
    visual_gflops = visual_flops / visual_seconds / 1e9
    return {
        "benchmark": "flops",
        "preset": preset,
        "precision": precision,
        "batch": batch,
        "gflop_per_sample": round(whole_flops / batch / 1e9, 4),
        "visual_gflop_per_sample": round(visual_flops / batch / 1e9, 4),
        "visual_gflops": round(visual_gflops, 1),
        "whole_gflops": round(whole_flops / whole_seconds / 1e9, 1),
        "peak_gflops": round(peak, 1) if peak else None,
        "visual_share_of_peak": round(visual_gflops / peak, 3) if peak else None,
        **environment(),
    }


COLUMNS = [
    ("preset", "preset"),
    ("precision", "precision"),
    ("GFLOP/sample", "gflop_per_sample"),
    ("visual GFLOP/sample", "visual_gflop_per_sample"),
    ("visual GFLOP/s", "visual_gflops"),
    ("whole GFLOP/s", "whole_gflops"),
    ("peak GFLOP/s", "peak_gflops"),
    ("visual share of peak", "visual_share_of_peak"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the ceiling's matrices (0 skips)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock-mhz", type=float, help="the cores' real clock (benchmarks/clock.c); default: reported")
    args = parser.parse_args()
    tune_memory()  # as the filmkit command does; FILMKIT_TUNE_MEMORY=0 measures without
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = cpu_description()
    ceiling = {"benchmark": "cpu_peak", **cpu, "clock_mhz_used": args.clock_mhz or cpu["mhz"]}
    for precision in args.precision:
        ceiling[f"peak_gflops_{precision}"] = round(cpu_peak_gflops(precision, cpu, args.clock_mhz), 1)
        if args.matmul_size:
            ceiling[f"matmul_gflops_{precision}"] = round(measured_matmul_gflops(precision, args.matmul_size), 1)
    if args.matmul_size and "fp32" in args.precision:
        onednn_gflops = measured_matmul_gflops("fp32", args.matmul_size, onednn=True)
        ceiling["matmul_gflops_fp32_onednn"] = round(onednn_gflops, 1)
    print(json.dumps(ceiling), flush=True)
    rows = []
    for preset in args.presets:
        for precision in args.precision:
            rows.append(measure(preset, precision, args.batch, args.steps, args.clock_mhz))
            print(json.dumps(rows[-1]), flush=True)
    print_table("FLOPs per sample (forward + backward) and the rate achieved", rows, COLUMNS)


if __name__ == "__main__":
    main()
