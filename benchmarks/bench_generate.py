"""Image generation throughput: `generate_split` end to end, with every worker, at 128x128 and 480x320.

    python benchmarks/bench_generate.py --num-images 200 --workers 0

Prints one JSON line with every measurement, then a table: images/s over the whole run (worker start-up and
the final scene file included) and the time each image spends, on average, in each stage: sampling (placement
and restarts), the visibility check (instance masks at 480x320), shading and rendering, and writing the PNG and
its scene fragment. Stage times are per image inside one worker, so with K workers they add up to about K times
the wall time per image.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

from filmkit.clevr.generate import STAGES, SplitSpec, generate_split
from filmkit.clevr.parallel import available_cores

SIZES = ((128, 128), (480, 320))


def measure(width: int, height: int, num_images: int, workers: int) -> dict:
    spec = SplitSpec(split="bench", num_images=num_images, width=width, height=height, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        report = generate_split(spec, folder, workers=workers or None)
        seconds = time.perf_counter() - started
    return {
        "resolution": f"{width}x{height}",
        "images": num_images,
        "workers": workers or available_cores(),
        "seconds": round(seconds, 2),
        "images_per_s": round(num_images / seconds, 1),
        "ms_per_image": {stage: round(1000 * report.stage_seconds[stage] / num_images, 2) for stage in STAGES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="0 uses every core")
    args = parser.parse_args()
    rows = [measure(width, height, args.num_images, args.workers) for width, height in SIZES]
    machine = {"cores": available_cores(), "cpu": platform.processor() or platform.machine()}
    print(json.dumps({"benchmark": "generate", **machine, "runs": rows}), flush=True)
    print(f"\n{'resolution':<12}{'images':>7}{'workers':>8}{'images/s':>10}  ms per image in one worker: ", end="")
    print("  ".join(STAGES))
    for row in rows:
        stages = "".join(f"{row['ms_per_image'][stage]:>{len(stage) + 2}}" for stage in STAGES)
        print(f"{row['resolution']:<12}{row['images']:>7}{row['workers']:>8}{row['images_per_s']:>10}  {stages}")


if __name__ == "__main__":
    main()
