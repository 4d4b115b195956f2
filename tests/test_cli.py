from typer.testing import CliRunner

from filmkit import __version__
from filmkit.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "models" in result.output and "demo" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"filmkit {__version__}"


def test_models_prints_the_paper_parameter_counts():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "59,495,752" in result.output and "59,107,528" in result.output
