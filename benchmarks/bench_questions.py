"""Question generation throughput: questions per second per core (goal: at least 500).

    python benchmarks/bench_questions.py --num-scenes 1000 --workers 0

Scenes are sampled by CLEVR's rules without the visibility render (only the question generator is timed). The
serial run gives questions per second of one core, both over wall time and over the CPU time the process used (the
second is steadier on a shared machine); the parallel run gives the throughput of every worker together, worker
start-up included. Prints one JSON line, then a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from filmkit.clevr.parallel import available_cores
from filmkit.clevr.properties import load_properties
from filmkit.clevr.questions import QuestionSettings, Vocabulary, generate_questions
from filmkit.clevr.scenes import SamplingRules, sample_scene


def sample_scenes(count: int) -> list[dict]:
    properties, rules = load_properties(), SamplingRules(min_pixels=0)
    return [
        sample_scene(np.random.default_rng(index), properties, rules, split="bench", image_index=index)
        for index in range(count)
    ]


def measure(scenes: list[dict], vocabulary: Vocabulary, workers: int) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    questions = generate_questions(scenes, QuestionSettings(seed=0), vocabulary, workers=workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {
        "workers": workers,
        "questions": len(questions),
        "seconds": round(wall, 2),
        "questions_per_s": round(len(questions) / wall, 1),
        "questions_per_s_per_core": round(len(questions) / wall / workers, 1),
        "families": len({q["question_family_index"] for q in questions}),
    }
    if workers == 1:  # CPU time is only this process's when nothing runs in workers
        row["questions_per_cpu_s"] = round(len(questions) / cpu, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-scenes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0, help="workers of the parallel run; 0 uses every core")
    args = parser.parse_args()
    scenes = sample_scenes(args.num_scenes)
    vocabulary = Vocabulary.load()
    runs = [measure(scenes, vocabulary, 1)]
    parallel = args.workers or available_cores()
    if parallel > 1:
        runs.append(measure(scenes, vocabulary, parallel))
    machine = {"cores": available_cores(), "cpu": platform.processor() or platform.machine()}
    print(json.dumps({"benchmark": "questions", "scenes": len(scenes), **machine, "runs": runs}), flush=True)
    print(f"\n{'workers':>7}{'questions':>11}{'seconds':>9}{'q/s':>9}{'q/s per core':>14}{'q per CPU s':>13}")
    for row in runs:
        print(
            f"{row['workers']:>7}{row['questions']:>11}{row['seconds']:>9}{row['questions_per_s']:>9}"
            f"{row['questions_per_s_per_core']:>14}{row.get('questions_per_cpu_s', '-'):>13}"
        )


if __name__ == "__main__":
    main()
