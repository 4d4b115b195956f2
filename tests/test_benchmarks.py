"""The benchmark scripts run end to end on the CPU with tiny settings and print well-formed rows."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def bench_model():
    """benchmarks/bench_model.py as a module (it imports its neighbour machine.py)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("bench_model")


def run_script(name: str, *arguments: str) -> list[dict]:
    """Run benchmarks/NAME with ``arguments``; return its JSON lines (the table after them is for people)."""
    command = [sys.executable, str(BENCHMARKS / name), *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]


def test_training_step_rows_name_speed_memory_and_the_reference_ratio():
    rows = run_script("bench_model.py", "--presets", "cpu", "paper", "--batch", "2", "--steps", "1", "--warmup", "0")
    by_preset = {row["preset"]: row for row in rows}
    assert set(by_preset) == {"cpu", "paper"}
    for row in rows:
        assert row["samples_per_s"] > 0 and row["peak_memory_mib"] > 0 and row["device"] == "cpu"
    # Only the paper's presets have a reference figure to compare with (its arithmetic: the test below).
    assert "x_reference" not in by_preset["cpu"]
    paper = by_preset["paper"]
    assert paper["x_reference"] == bench_model().reference_ratio("paper", "fp32", "cpu", paper["samples_per_s"])


def test_a_grouped_batch_shares_its_images():
    (row,) = run_script("bench_model.py", "--batch", "4", "--images", "2", "--steps", "1", "--warmup", "0")
    assert row["batch"] == 4 and row["images"] == 2 and row["samples_per_s"] > 0


def test_the_reference_ratio_divides_by_the_reference_speed_of_that_preset():
    ratio = bench_model().reference_ratio
    # The reference trains 7.6 samples/s from features (paper), 5.0 from pixels (paper-pixels), in fp32 on the CPU.
    assert ratio("paper", "fp32", "cpu", 15.2) == 2.0 and ratio("paper", "bf16", "cpu", 3.8) == 0.5
    assert ratio("paper-pixels", "fp32", "cpu", 15.2) == 3.04 and ratio("paper-pixels", "bf16", "cpu", 5.0) == 1.0
    assert ratio("cpu", "fp32", "cpu", 15.2) is None  # no reference figure for the cpu preset
    assert ratio("paper", "fp16", "cpu", 15.2) is None and ratio("paper", "fp32", "cuda", 15.2) is None


def test_inference_rows_give_latency_throughput_and_ask():
    rows = run_script("bench_inference.py", "--presets", "cpu", "--repeats", "2", "--large-batch", "4")
    forward, ask = rows
    assert forward["latency_ms"] > 0 and forward["samples_per_s"] > 0 and forward["large_batch"] == 4
    assert ask["benchmark"] == "ask" and ask["latency_ms"] > 0


def test_flop_counts_cover_the_visual_network_and_the_whole_model():
    tiny = ["--batch", "2", "--steps", "1", "--matmul-size", "256"]
    rows = run_script("bench_flops.py", "--presets", "cpu", "--precision", "fp32", "bf16", *tiny)
    ceiling, row, bf16_row = rows
    assert ceiling["benchmark"] == "cpu_peak" and ceiling["matmul_gflops_fp32"] > 0
    assert ceiling["matmul_gflops_fp32_onednn"] > 0
    # The question encoder and the generator add work on top of the visual network.
    assert row["gflop_per_sample"] > row["visual_gflop_per_sample"] > 0
    # The same math in either precision, whichever library multiplies (fp32 GRU products go through oneDNN).
    assert row["gflop_per_sample"] == bf16_row["gflop_per_sample"]
    if ceiling["peak_gflops_fp32"]:
        assert row["visual_share_of_peak"] == pytest.approx(
            row["visual_gflops"] / ceiling["peak_gflops_fp32"], abs=1e-3
        )


def test_the_gpu_benchmark_runs_on_the_cpu_and_keeps_its_budget():
    arguments = ["--device", "cpu", "--presets", "cpu", "--batches", "2", "4", "--precision", "fp32"]
    rows = run_script("bench_gpu.py", *arguments, "--steps", "1", "--warmup", "0")
    assert [row["batch"] for row in rows] == [2, 4]
    rows = run_script("bench_gpu.py", *arguments, "--steps", "1", "--warmup", "0", "--budget-minutes", "0")
    assert rows == [{"skipped_over_budget": ["cpu batch 2 fp32", "cpu batch 4 fp32"]}]
