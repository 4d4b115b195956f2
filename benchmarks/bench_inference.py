"""Inference speed: latency of one question at batch 1, throughput at batch 256, and `filmkit ask` end to end.

    python benchmarks/bench_inference.py --presets cpu paper --precision fp32 bf16

The model runs in eval mode under torch.inference_mode. Latency is the median of ``--repeats`` single-question
forward passes; throughput is batch 256 divided by the median batch time. The `ask` row times
:func:`filmkit.train.ask.ask` on a 480x320 PNG after the model is loaded: resizing, tokenising, the forward pass,
the softmax and the max-pool heatmap, which is what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from filmkit.data.vocab import build_vocab
from filmkit.train.allocator import tune_memory
from filmkit.train.ask import ask
from filmkit.train.devices import autocast_context, resolve_device
from filmkit.vqa import FiLMVQA, build_config
from machine import environment, print_table, random_batch

QUESTION = "Are there more red cubes than metal spheres behind the large cylinder?"


def median_seconds(run, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def measure_forward(preset: str, precision: str, device: str, repeats: int, large_batch: int) -> dict:
    where = resolve_device(device)
    config = build_config(preset, vocab_size=93, num_answers=32)
    model = FiLMVQA(config).to(where).eval()
    generator = torch.Generator().manual_seed(0)
    row = {"benchmark": "inference", "preset": preset, "precision": precision, "device": where.type}
    for batch, key in ((1, "latency_ms"), (large_batch, "samples_per_s")):
        images, questions, _ = (t.to(where) for t in random_batch(config, batch, generator))

        def forward(images=images, questions=questions):
            with torch.inference_mode(), autocast_context(where, precision):
                model(images, questions)
            if where.type == "cuda":
                torch.cuda.synchronize()

        seconds = median_seconds(forward, repeats if batch == 1 else max(2, repeats // 10))
        row[key] = round(seconds * 1000, 2) if batch == 1 else round(batch / seconds, 1)
    row["large_batch"] = large_batch
    return {**row, **environment()}


def measure_ask(preset: str, repeats: int) -> dict:
    """`ask` after loading: a real PNG on disk, a vocabulary, the heatmap; the model is the preset's, untrained."""
    vocab = build_vocab([{"question": QUESTION, "answer": answer} for answer in ("yes", "no", "2", "cube")])
    config = build_config(preset, vocab_size=len(vocab.question_tokens), num_answers=len(vocab.answer_tokens))
    model = FiLMVQA(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        png = Path(folder) / "scene.png"
        pixels = np.random.default_rng(0).integers(0, 256, (320, 480, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(png)
        seconds = median_seconds(lambda: ask(model, vocab, png, QUESTION), repeats)
    return {"benchmark": "ask", "preset": preset, "precision": "fp32", "device": "cpu",
            "latency_ms": round(seconds * 1000, 2), **environment()}  # fmt: skip


COLUMNS = [
    ("benchmark", "benchmark"),
    ("preset", "preset"),
    ("precision", "precision"),
    ("device", "device"),
    ("batch-1 latency ms", "latency_ms"),
    ("samples/s", "samples_per_s"),
    ("at batch", "large_batch"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--large-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50, help="batch-1 repeats (the large batch runs a tenth)")
    parser.add_argument("--ask-preset", default="cpu", help="preset for the `ask` row ('none' skips it)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    tune_memory()  # as the filmkit command does; FILMKIT_TUNE_MEMORY=0 measures without
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for preset in args.presets:
        for precision in args.precision:
            rows.append(measure_forward(preset, precision, args.device, args.repeats, args.large_batch))
            print(json.dumps(rows[-1]), flush=True)
    if args.ask_preset != "none":
        rows.append(measure_ask(args.ask_preset, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    print_table("inference", rows, COLUMNS)


if __name__ == "__main__":
    main()
