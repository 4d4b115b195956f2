from fixtures import clevr_dataset
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.data.dataset import CachedSplit

runner = CliRunner()


def test_preprocess_command_builds_a_cache(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    result = runner.invoke(
        app,
        ["preprocess", "--data", str(data), "--out", str(tmp_path / "cache"), "--resolution", "8x6", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "train: 15 questions, 6 images" in result.output
    assert CachedSplit(tmp_path / "cache", "val")[[0]]["images"].shape == (1, 3, 6, 8)


def test_preprocess_command_reports_bad_input_in_one_line(tmp_path):
    result = runner.invoke(app, ["preprocess", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "absent: no such dataset directory" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["preprocess", "--data", str(tmp_path), "--out", str(tmp_path / "c"), "--resolution", "big"]
    )
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output
