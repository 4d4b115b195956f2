"""How long `filmkit serve` takes to answer, after the model is loaded: the ask and compare requests, end to end.

    python benchmarks/bench_serve.py --repeats 50

Requests go through Starlette's test client (no network), so the figure is the server's own work: reading the
JSON, the forward pass, the top-5, the heatmap blended and encoded as PNG, the FiLM parameters as JSON. The model is
the shipped one (the cpu preset); the image is a scene drawn by the generator. The goal is 100 ms per answer.
"""

from __future__ import annotations

import argparse
import json

import torch
from starlette.testclient import TestClient

from bench_inference import median_seconds
from filmkit.serve.app import create_app
from filmkit.vqa import load_checkpoint
from machine import environment, print_table

QUESTIONS = ("What color is the large metal sphere?", "How many cubes are behind the small cylinder?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))  # as filmkit serve does
    client = TestClient(create_app(load_checkpoint("pretrained"), name="pretrained"))
    image = client.post("/api/generate", json={"seed": 1}).json()["id"]

    def ask_once():
        reply = client.post("/api/ask", json={"image": image, "question": QUESTIONS[0]})
        reply.raise_for_status()

    def compare_once():
        reply = client.post("/api/compare", json={"image": image, "questions": list(QUESTIONS)})
        reply.raise_for_status()

    def median_ms(request) -> float:
        return round(1000 * median_seconds(request, args.repeats, warmup=3), 1)

    rows = [
        {"request": "ask (one question)", "median_ms": median_ms(ask_once)},
        {"request": "compare (two questions)", "median_ms": median_ms(compare_once)},
    ]
    print(json.dumps({"environment": environment(), "repeats": args.repeats, "rows": rows}, indent=1))
    print_table("filmkit serve, after the model is loaded", rows, [("request", "request"), ("median ms", "median_ms")])


if __name__ == "__main__":
    main()
