import json

from typer.testing import CliRunner

from filmkit.clevr.dataset import Preset, SplitPlan
from filmkit.experiments.demo import free_run_dir, run_demo

TINY = ["model.module_dim=8", "model.rnn_hidden_dim=16", "batch_size=8", "questions_per_image=2", "val_every=5"]
SMALL = Preset("small-demo", "12/6 images at 32x32", 32, 32, (SplitPlan("train", 12), SplitPlan("val", 6)), 5)


def test_demo_generates_trains_evaluates_and_reports(tmp_path):
    stages = []
    result = run_demo(
        tmp_path / "data",
        tmp_path / "runs" / "demo",
        minutes=0.05,
        settings=TINY,
        workers=1,
        dataset=SMALL,
        on_stage=stages.append,
    )
    assert len(stages) == 5 and stages[2].startswith("training recipe 'cpu'")
    report = result.report.read_text()
    assert f"{100 * result.val_accuracy:.1f}%" in report
    assert f"{100 * result.question_only_accuracy:.1f}%" in report
    assert "Validation accuracy by question type" in report and "Compare Integer" in report
    assert "## What the model learned" in report and "| count |" in report
    assert (result.run_dir / "report" / "learning-curves.png").stat().st_size > 0
    examples = list((result.run_dir / "report").glob("example-*.png"))
    assert examples and all(f"report/{path.name}" in report for path in examples)
    assert json.loads((tmp_path / "data" / "dataset.json").read_text())["preset"] == "small-demo"
    # A second demo reuses the dataset and writes a new run directory, never over the first.
    again = run_demo(
        tmp_path / "data", tmp_path / "runs" / "demo", minutes=0.02, settings=TINY, workers=1, dataset=SMALL
    )
    assert again.run_dir.name == "demo-2" and result.report.exists()


def test_free_run_dir(tmp_path):
    assert free_run_dir(tmp_path / "demo") == tmp_path / "demo"
    (tmp_path / "demo").mkdir()
    assert free_run_dir(tmp_path / "demo") == tmp_path / "demo"  # empty: free
    (tmp_path / "demo" / "last.pt").write_text("x")
    assert free_run_dir(tmp_path / "demo") == tmp_path / "demo-2"


def test_the_demo_names_an_unknown_dataset_before_any_work(tmp_path):
    from filmkit.cli import app

    result = CliRunner().invoke(app, ["demo", "--dataset", "huge", "--data", str(tmp_path / "d")])
    assert result.exit_code == 2 and "unknown preset 'huge' (known: tiny, demo" in result.output
    assert not (tmp_path / "d").exists()
