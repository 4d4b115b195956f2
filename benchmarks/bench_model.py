"""Training-step throughput and peak memory of the model presets: forward + backward + Adam on random data.

    python benchmarks/bench_model.py --presets cpu paper paper-pixels --precision fp32 bf16
    python benchmarks/bench_model.py --presets cpu --batch 60 --images 12   # 12 images, 5 questions each

Prints one JSON line per (preset, precision) and a table. Each row runs in a fresh process, so its peak memory
(resident set on the CPU, allocated memory on CUDA) is its own. Questions are random right-padded token ids of
CLEVR-like lengths (10-40 tokens); images are random inputs of the preset's shape, one per question, or ``--images``
of them shared by the questions as the trainer's grouped batches share them (``questions_per_image``). Rows of the
paper's presets in fp32 on the CPU also give the ratio to the reference implementation's speed on the project's
2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

from filmkit.train.allocator import tune_memory
from filmkit.train.devices import autocast_context, resolve_device
from filmkit.train.loop import make_adam
from filmkit.vqa import FiLMVQA, build_config, count_parameters
from machine import environment, print_table, random_batch

# The reference implementation's training speed, batch 64, fp32, on the project's 2-core machine: 8.5 s per step
# from ResNet features, 12.7 s from raw pixels (what issue 9 of the tracker measured). Only meaningful there.
REFERENCE_SAMPLES_PER_S = {"paper": 7.6, "paper-pixels": 5.0}


def reference_ratio(preset: str, precision: str, device: str, samples_per_s: float) -> float | None:
    """``samples_per_s`` as a multiple of the reference implementation's speed; None where it has no figure.

    Only the paper's presets on the CPU in fp32 or bf16 have one: the reference's fp32 speed on the project's
    2-core machine.
    """
    if device != "cpu" or precision not in ("fp32", "bf16") or preset not in REFERENCE_SAMPLES_PER_S:
        return None
    return round(samples_per_s / REFERENCE_SAMPLES_PER_S[preset], 2)


def measure(
    preset: str,
    batch: int,
    steps: int,
    warmup: int,
    precision: str,
    device: str = "cpu",
    threads: int = 0,
    compiled: bool = False,
    shared_images: int = 0,
) -> dict:
    """Seconds per training step of ``preset`` at ``batch``, averaged over ``steps`` after ``warmup`` steps."""
    tune_memory()  # as the filmkit command does; FILMKIT_TUNE_MEMORY=0 measures without
    if threads:
        torch.set_num_threads(threads)
    where = resolve_device(device)
    config = build_config(preset, vocab_size=93, num_answers=32)
    model = FiLMVQA(config).to(where).train()
    if where.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_model = torch.compile(model) if compiled else model
    optimizer = make_adam(model.parameters(), lr=3e-4, weight_decay=1e-5)  # as the trainer makes it
    generator = torch.Generator().manual_seed(0)
    batches = [[t.to(where) for t in random_batch(config, batch, generator)] for _ in range(min(warmup + steps, 4))]
    shared = {}
    if shared_images:  # a grouped batch: the stem sees each image once, image_index says which one a question is about
        batches = [[pictures[:shared_images], questions, answers] for pictures, questions, answers in batches]
        shared["image_index"] = (torch.arange(batch) % shared_images).to(where)
    scaler = torch.amp.GradScaler(enabled=precision == "fp16")
    timings = []
    for step in range(warmup + steps):
        images, questions, answers = batches[step % len(batches)]
        start = time.perf_counter()
        with autocast_context(where, precision):
            loss = F.cross_entropy(step_model(images, questions, **shared).float(), answers)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if where.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    seconds = sum(timings[warmup:]) / steps
    if where.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "benchmark": "train_step",
        "preset": preset,
        "precision": precision,
        "device": where.type,
        "batch": batch,
        "images": shared_images or batch,
        "compiled": compiled,
        "parameters": count_parameters(model)["total"],
        "seconds_per_step": round(seconds, 4),
        "samples_per_s": round(batch / seconds, 1),
        "peak_memory_mib": round(peak_mib, 1),
        **environment(),
    }
    ratio = reference_ratio(preset, precision, where.type, row["samples_per_s"])
    if ratio is not None:
        row["x_reference"] = ratio
    return row


def measure_in_fresh_process(*args) -> dict:
    """``measure`` in its own process: peak memory per row, and no warm caches carried between rows."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, *args).result()


COLUMNS = [
    ("preset", "preset"),
    ("precision", "precision"),
    ("device", "device"),
    ("parameters", "parameters"),
    ("batch", "batch"),
    ("images", "images"),
    ("s/step", "seconds_per_step"),
    ("samples/s", "samples_per_s"),
    ("x reference", "x_reference"),
    ("peak MiB", "peak_memory_mib"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (warm-up includes compiling)")
    parser.add_argument("--images", type=int, default=0, help="images the batch's questions share (0: one each)")
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        for precision in args.precision:
            row = measure_in_fresh_process(
                preset,
                args.batch,
                args.steps,
                args.warmup,
                precision,
                args.device,
                args.threads,
                args.compile,
                args.images,
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    print_table("training step: forward + backward + Adam", rows, COLUMNS)


if __name__ == "__main__":
    main()
