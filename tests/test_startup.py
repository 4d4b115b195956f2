"""Commands that need no model never import torch: `filmkit generate` starts in a fraction of a second."""

import subprocess
import sys

import typer

from filmkit.cli import app
from filmkit.cli.app import MODEL_COMMANDS, TRAINING_COMMANDS

PROBE = """
import sys
from filmkit.cli import app
try:
    app({arguments!r}, standalone_mode=False)
finally:
    print("torch imported:", "torch" in sys.modules)
"""


def _run(arguments: list[str]) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE.format(arguments=arguments)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_generating_scenes_and_questions_never_imports_torch(tmp_path):
    out = tmp_path / "world"
    scenes = ["generate", "scenes", "--out", str(out), "--num-images", "2", "--resolution", "32x32", "--workers", "1"]
    assert "torch imported: False" in _run(scenes)
    assert "torch imported: True" in _run(["eval", "--help"])  # the probe can tell: a model command does


def test_every_command_is_classified():
    commands = set(typer.main.get_command(app).commands)
    torch_free = {"generate", "render", "stats", "models"}
    assert set(TRAINING_COMMANDS) <= set(MODEL_COMMANDS)
    assert commands == set(MODEL_COMMANDS) | torch_free  # a new command must choose: it needs torch set up or not
