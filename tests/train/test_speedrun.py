"""The speedrun script runs end to end and reports its curve (a few steps on the tiny cache)."""

import json
import subprocess
import sys
from pathlib import Path

from train_fixtures import tiny_cache

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "speedrun.py"


def test_speedrun_reports_a_curve_with_training_accuracy_and_plots_it(tmp_path):
    cache = tiny_cache(tmp_path)
    out, plot = tmp_path / "run", tmp_path / "curve.png"
    command = [sys.executable, str(SCRIPT), "--data", str(cache), "--resolution", "16", "--steps", "3"]
    command += ["--out", str(out), "--plot", str(plot)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    row = json.loads(finished.stdout.splitlines()[0])
    assert row["steps"] == 3 and row["recipe"]["augment_shift"] == 4
    assert [point["step"] for point in row["curve"]] == [3]
    assert 0.0 <= row["curve"][0]["train_accuracy"] <= 1.0
    assert plot.stat().st_size > 0
