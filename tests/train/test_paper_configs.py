"""The paper's table rows ship as config files: each loads, says its row's switch, and trains with filmkit train."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from train_fixtures import TINY_MODEL, tiny_cache
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.experiments.recipes import get_recipe
from filmkit.train.config import load_config
from filmkit.vqa import load_checkpoint

TABLES = Path(__file__).resolve().parents[2] / "configs" / "paper"


def rows() -> list[dict]:
    return yaml.safe_load((TABLES / "tables.yaml").read_text())["rows"]


def test_every_row_is_a_config_on_the_recipe_and_every_file_is_a_row():
    listed = {row["config"] for row in rows() if row["config"]}
    assert listed == {path.name for path in TABLES.glob("*.yaml")} - {"tables.yaml"}
    assert len(rows()) == 26 and [row["table"] for row in rows()].count(2) == 16
    recipe = get_recipe("cpu")
    for row in rows():
        if row["config"] is None:
            assert row["name"] == "Q-type baseline"  # the question-only guess trains nothing
            continue
        config = load_config(TABLES / row["config"])
        for key in ("batch_size", "questions_per_image", "lr", "weight_decay", "warmup_steps", "augment_shift"):
            assert getattr(config, key) == recipe[key], (row["name"], key)
    by_name = {row["name"]: load_config(TABLES / row["config"]) for row in rows() if row["config"]}
    assert by_name["FiLM after ReLU"].model == {"film_placement": "relu-film"}
    assert by_name["no FiLM in blocks 2-4"].model == {"condition_pattern": [True, False, False, False]}
    assert by_name["CNN+LSTM+SA"].architecture == "cnn-lstm-sa" and by_name["FiLM"].model == {}
    assert by_name["8 ResBlocks"].model == {"num_blocks": 8}


def test_a_row_trains_with_filmkit_train_config(tmp_path):
    cache = tiny_cache(tmp_path)
    command = ["train", "--config", str(TABLES / "table2-film-after-relu.yaml"), "--data", str(cache)]
    command += ["--out", str(tmp_path / "run"), "--set", "max_steps=2", "--set", "val_every=2"]
    for key, value in TINY_MODEL.items():
        command += ["--set", f"model.{key}={json.dumps(value)}"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    model = load_checkpoint(tmp_path / "run" / "last.pt").model
    assert model.config.film_placement == "relu-film" and model.config.module_dim == TINY_MODEL["module_dim"]


def test_an_unknown_recipe_in_a_config_file_is_named(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("recipe: turbo\nlr: 1.0e-3\n")
    with pytest.raises(ValueError, match=r"mine.yaml: unknown recipe 'turbo'; choose one of cpu"):
        load_config(path)
