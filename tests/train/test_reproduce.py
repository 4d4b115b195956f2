"""benchmarks/reproduce.py runs rows end to end on the tiny cache, writes the report, and skips finished rows."""

import json
import subprocess
import sys
from pathlib import Path

from train_fixtures import tiny_cache, tiny_cogent

from filmkit.analysis.baselines import question_only_accuracy
from filmkit.data.dataset import CachedSplit
from filmkit.train.evaluate import evaluate
from filmkit.vqa import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reproduce.py"


def test_rows_run_are_reported_beside_the_paper_and_not_run_twice(tmp_path):
    cache = tiny_cache(tmp_path)
    out, doc = tmp_path / "runs", tmp_path / "reproduction.md"
    command = [sys.executable, str(SCRIPT), "--data", str(cache), "--out", str(out), "--doc", str(doc)]
    command += ["--steps", "2", "--max-minutes", "1e-6", "--rows", "Q-type baseline", "CNN+LSTM+SA", "gamma := 1"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["name"] for row in rows] == ["Q-type baseline", "CNN+LSTM+SA", "gamma := 1"]
    # each figure is what it claims: the guess computed again, the row's own best checkpoint scored again (and
    # trained from its config file: gamma := 1 has no gamma)
    train, val = CachedSplit(cache, "train"), CachedSplit(cache, "val")
    assert rows[0]["overall"] == question_only_accuracy(train, val)
    best = load_checkpoint(out / "gamma-is-1" / "best.pt").model
    assert best.config.use_gamma is False
    assert rows[2]["overall"] == evaluate(best, val).accuracy
    assert [row.get("steps") for row in rows] == [None, 1, 1]  # a microsecond fits less than the 2 steps asked for
    report = doc.read_text()
    assert "| gamma := 1 | " in report and "| 95.9 |" in report and "| LSTM | not run | 46.8 |" in report

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == ""  # every asked-for row was already finished

    wrong = subprocess.run([*command[:-4], "--rows", "FiLM v2"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown row(s) FiLM v2" in wrong.stderr


def test_analysis_and_transfer_stages_write_their_sections(tmp_path):
    cache = tiny_cache(tmp_path)  # from the dataset folder tmp_path / "clevr"
    out, doc = tmp_path / "runs", tmp_path / "docs" / "reproduction.md"
    command = [sys.executable, str(SCRIPT), "--data", str(cache), "--out", str(out), "--doc", str(doc)]
    command += ["--dataset", str(tmp_path / "clevr"), "--cogent", str(tiny_cogent(tmp_path / "cogent"))]
    command += ["--steps", "2", "--finetune-steps", "2", "--workers", "1"]
    command += ["--rows", "FiLM", "analysis", "humans-like", "CoGenT"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    rows = {row["name"]: row for row in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert list(rows) == ["FiLM", "analysis", "humans-like", "CoGenT"]
    assert rows["FiLM"]["steps"] == 2
    assert {"none", "beta := mean", "gamma := mean"} <= set(rows["analysis"]["ablations"])
    assert (doc.parent / "reproduction" / "histograms.png").exists()
    # before: the FiLM row's model on the reworded questions; after: the fine-tuned one, scored again here
    reworded_val = CachedSplit(out / "humans-like-finetune" / "cache", "val")
    film = load_checkpoint(out / "FiLM" / "best.pt").model
    tuned = load_checkpoint(out / "humans-like-finetune" / "run" / "best.pt").model
    assert rows["humans-like"]["after"] == evaluate(tuned, reworded_val).accuracy
    assert rows["humans-like"]["added_words"] and film.config.vocab_size < tuned.config.vocab_size
    assert set(rows["CoGenT"]["scores"]) == {"trained on A", "fine-tuned on B"}
    report = doc.read_text()
    for section in ("## What FiLM learns", "| gamma := mean |", "## Transfer: new wording", "| trained on A |"):
        assert section in report

    doc.write_text(report + "\n## Discussion\n\nWritten by hand.\n")
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == ""
    assert doc.read_text().endswith("## Discussion\n\nWritten by hand.\n")  # the rewritten report keeps it
