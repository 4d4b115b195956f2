"""The [rl] extra is optional: filmkit imports and explains what to install when minigrid is missing."""

import importlib
import sys

import pytest
from typer.testing import CliRunner


@pytest.fixture
def without_minigrid(monkeypatch):
    """Make ``import minigrid`` and ``import gymnasium`` fail, and re-import filmkit's modules from scratch."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("minigrid", "gymnasium") or name.startswith("filmkit"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "minigrid", None)
    monkeypatch.setitem(sys.modules, "gymnasium", None)


def test_filmkit_imports_without_minigrid(without_minigrid):
    for module in ("filmkit", "filmkit.film", "filmkit.vqa", "filmkit.cli", "filmkit.rl", "filmkit.rl.ppo"):
        importlib.import_module(module)
    assert "minigrid" not in {name.split(".")[0] for name, mod in sys.modules.items() if mod is not None}


def test_environments_ask_for_the_extra(without_minigrid):
    envs = importlib.import_module("filmkit.rl.envs")
    with pytest.raises(ImportError, match=r"pip install 'filmkit\[rl\]'"):
        envs.make_env("BabyAI-GoToRedBall-v0")


def test_cli_says_what_to_install(without_minigrid, tmp_path):
    app = importlib.import_module("filmkit.cli").app
    result = CliRunner().invoke(app, ["rl", "demos", "--env", "BabyAI-GoToRedBall-v0", "--episodes", "2",
                                      "--out", str(tmp_path / "d.npz")])  # fmt: skip
    assert result.exit_code == 2
    assert "filmkit[rl]" in result.output and "Traceback" not in result.output
