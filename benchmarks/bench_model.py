"""Training-step throughput of the model presets: forward + backward + Adam step on random data.

    python benchmarks/bench_model.py --presets cpu paper --batch 64 --steps 5 --precision fp32 bf16

Prints one JSON line per preset and a table. Questions are random right-padded token ids of CLEVR-like
lengths (10-40 tokens); images are random inputs of the preset's shape.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch
import torch.nn.functional as F

from filmkit.train.devices import autocast_context
from filmkit.vqa import FiLMVQA, build_config, count_parameters


def random_batch(config, batch: int, generator: torch.Generator):
    images = torch.rand(batch, config.in_channels, config.image_height, config.image_width, generator=generator)
    lengths = torch.randint(10, 41, (batch,), generator=generator)
    questions = torch.randint(1, config.vocab_size, (batch, int(lengths.max())), generator=generator)
    questions[torch.arange(questions.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    answers = torch.randint(0, config.num_answers, (batch,), generator=generator)
    return images, questions, answers


def measure(preset: str, batch: int, steps: int, warmup: int, precision: str) -> dict:
    config = build_config(preset, vocab_size=93, num_answers=32)
    model = FiLMVQA(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=1e-5)
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(config, batch, generator) for _ in range(warmup + steps)]
    timings = []
    for images, questions, answers in batches:
        start = time.perf_counter()
        with autocast_context(torch.device("cpu"), precision):
            loss = F.cross_entropy(model(images, questions).float(), answers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    measured = timings[warmup:]
    seconds = sum(measured) / len(measured)
    return {
        "benchmark": "train_step",
        "preset": preset,
        "precision": precision,
        "batch": batch,
        "parameters": count_parameters(model)["total"],
        "seconds_per_step": round(seconds, 4),
        "samples_per_s": round(batch / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        for precision in args.precision:
            row = measure(preset, args.batch, args.steps, args.warmup, precision)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(
        f"\n{'preset':<14}{'precision':>10}{'params':>12}{'batch':>7}{'s/step':>9}{'samples/s':>11}{'peak RSS MiB':>14}"
    )
    for row in rows:
        print(
            f"{row['preset']:<14}{row['precision']:>10}{row['parameters']:>12,}{row['batch']:>7}{row['seconds_per_step']:>9}"
            f"{row['samples_per_s']:>11}{row['peak_rss_mib']:>14}"
        )


if __name__ == "__main__":
    main()
