"""Loader throughput from a preprocessed cache, and memory while iterating.

    python benchmarks/bench_loader.py --cache CACHE_DIR --split train      # a real cache
    python benchmarks/bench_loader.py                                       # a synthetic 128x128 cache

Without --cache it writes a synthetic dataset (PNG images and CLEVR question files) to a temporary folder,
times `preprocess` on it, then times the loader. Prints one JSON line and a table. Memory is reported as the
process's anonymous resident memory (RssAnon): memory-mapped image pages are file-backed and shared, so they do
not count, which is the point.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from filmkit.data.dataset import CachedSplit, make_loader
from filmkit.data.preprocess import preprocess


def anonymous_memory_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_dataset(root: Path, images: int, questions_per_image: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "images" / "train"
    folder.mkdir(parents=True)
    gradient = np.linspace(0, 255, size, dtype=np.float32)
    questions = []
    for index in range(images):
        tint = rng.integers(0, 256, 3)
        pixels = (gradient[None, :, None] * 0.5 + tint[None, None, :] * 0.5).repeat(size, axis=0)
        name = f"CLEVR_train_{index:06d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
        for q in range(questions_per_image):
            words = " ".join(rng.choice(["red", "cube", "big", "left", "of", "the", "metal"], rng.integers(5, 30)))
            questions.append(
                {
                    "question": f"How many {words}?",
                    "answer": str(q % 4),
                    "image_index": index,
                    "image_filename": name,
                    "question_family_index": q,
                }
            )
    (root / "questions").mkdir()
    (root / "questions" / "CLEVR_train_questions.json").write_text(json.dumps({"questions": questions}))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--images", type=int, default=2000, help="synthetic images (without --cache)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    row: dict = {"benchmark": "loader", "batch": args.batch, "workers": args.workers}
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache
        if cache is None:
            data = synthetic_dataset(Path(scratch) / "data", args.images, 10, args.size)
            start = time.perf_counter()
            preprocess(data, Path(scratch) / "cache", resolution=(args.size, args.size), workers=2)
            seconds = time.perf_counter() - start
            row.update(preprocess_images_per_s=round(args.images / seconds, 1), preprocess_s=round(seconds, 2))
            cache = Path(scratch) / "cache"
        dataset = CachedSplit(cache, args.split)
        loader, sampler = make_loader(dataset, args.batch, seed=0, num_workers=args.workers)
        memory = [anonymous_memory_mib()]
        samples, start = 0, time.perf_counter()
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            for batch in loader:
                samples += len(batch["answers"])
            memory.append(anonymous_memory_mib())  # flat after the first epoch: nothing accumulates
        seconds = time.perf_counter() - start
        row.update(
            split=args.split,
            samples=samples,
            image_shape=list(dataset.image_shape),
            samples_per_s=round(samples / seconds, 1),
            rss_anon_before_mib=round(memory[0], 1),
            rss_anon_after_first_epoch_mib=round(memory[1], 1),
            rss_anon_after_last_epoch_mib=round(memory[-1], 1),
        )
    print(json.dumps(row))
    print(f"\n{'what':<34}{'value':>14}")
    for key, value in row.items():
        print(f"{key:<34}{value!s:>14}")


if __name__ == "__main__":
    main()
