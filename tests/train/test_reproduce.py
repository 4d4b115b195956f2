"""benchmarks/reproduce.py runs rows end to end on the tiny cache, writes the report, and skips finished rows."""

import json
import subprocess
import sys
from pathlib import Path

from train_fixtures import tiny_cache

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reproduce.py"


def test_rows_run_are_reported_beside_the_paper_and_not_run_twice(tmp_path):
    cache = tiny_cache(tmp_path)
    out, doc = tmp_path / "runs", tmp_path / "reproduction.md"
    command = [sys.executable, str(SCRIPT), "--data", str(cache), "--out", str(out), "--doc", str(doc)]
    command += ["--steps", "2", "--rows", "Q-type baseline", "CNN+LSTM+SA", "gamma := 1"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["name"] for row in rows] == ["Q-type baseline", "CNN+LSTM+SA", "gamma := 1"]
    assert all(0.0 <= row["overall"] <= 1.0 for row in rows)
    report = doc.read_text()
    assert "| gamma := 1 | " in report and "| 95.9 |" in report and "| LSTM | not run | 46.8 |" in report

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == ""  # every asked-for row was already finished

    wrong = subprocess.run([*command[:-4], "--rows", "FiLM v2"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown row(s) FiLM v2" in wrong.stderr
