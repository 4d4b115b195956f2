"""One overwrite rule for every command that writes: an existing output is refused in one line naming it and
``--overwrite`` (or resumed, where resuming is what a rerun means), ``--overwrite`` replaces it and nothing else,
and a failed run leaves nothing that blocks the next one. Tiny data throughout: seconds, not minutes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))

from eval_data import IMAGE_SIZE, make_cache, make_dataset, save_tiny_checkpoint, tiny_model  # noqa: E402
from fixtures import clevr_dataset  # noqa: E402

from filmkit.clevr import dataset as clevr_dataset_module  # noqa: E402
from filmkit.clevr.dataset import Preset, SplitPlan, build_dataset  # noqa: E402
from filmkit.clevr.generate import SplitSpec, generate_split  # noqa: E402
from filmkit.cli import app  # noqa: E402
from filmkit.data.cache import read_manifest  # noqa: E402
from filmkit.train import loop  # noqa: E402

runner = CliRunner()
# A preset of a few images with few objects: builds in about a second on one core.
MICRO = Preset("micro", "3/2 images at 32x32", 32, 32, (SplitPlan("train", 3), SplitPlan("val", 2)), 2, 3, 4)
OTHER = Preset("micro-b", "2 images at 32x32", 32, 32, (SplitPlan("trainB", 2),), 2, 3, 4)
# The demo needs validation answers its training questions have seen: test_demo's size.
DEMO = Preset("demo-small", "12/6 images at 32x32", 32, 32, (SplitPlan("train", 12), SplitPlan("val", 6)), 5, 3, 4)
TINY_TRAINING = [
    "model.embedding_dim=8",
    "model.rnn_hidden_dim=16",
    "model.module_dim=8",
    "model.num_blocks=2",
    "model.classifier_proj_dim=16",
    "model.classifier_fc_dims=[16]",
    "batch_size=4",
    "questions_per_image=2",
    "val_subset=3",
]


def invoke(*args) -> object:
    result = runner.invoke(app, [str(arg) for arg in args])
    assert "Traceback" not in result.output
    return result


def assert_refused(result, path: Path) -> None:
    """Exit code 2 and one error line that names ``path`` and says how to replace it."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1, result.output
    assert str(path) in errors[0] and "--overwrite" in errors[0], errors[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A CLEVR-layout dataset, its cache and a tiny FiLM checkpoint."""
    root = tmp_path_factory.mktemp("overwrite")
    make_dataset(root / "dataset")
    vocab = make_cache(root / "dataset", root / "cache")
    checkpoint = save_tiny_checkpoint(root / "run" / "best.pt", tiny_model(vocab), vocab)
    return {"root": root, "dataset": root / "dataset", "cache": root / "cache", "checkpoint": checkpoint}


@pytest.fixture
def micro_presets(monkeypatch):
    for preset in (MICRO, OTHER):
        monkeypatch.setitem(clevr_dataset_module.PRESETS, preset.name, preset)


# ---- generate ------------------------------------------------------------------------------------------------


def test_generate_questions_rerun_checks_other_settings_are_refused_and_overwrite_replaces(tmp_path):
    generate_split(SplitSpec(split="val", num_images=2, width=32, height=32), tmp_path, workers=1)
    out = tmp_path / "questions.json"
    command = ["generate", "questions", "--scenes", tmp_path / "scenes" / "CLEVR_val_scenes.json", "--out", out]
    command += ["--per-image", "2", "--workers", "1"]
    assert invoke(*command).exit_code == 0
    before = out.read_bytes()
    again = invoke(*command)
    assert again.exit_code == 0 and "nothing to do" in again.output and out.read_bytes() == before
    assert_refused(invoke(*command, "--seed", "1"), out)
    assert out.read_bytes() == before
    assert invoke(*command, "--seed", "1", "--overwrite").exit_code == 0
    assert json.loads(out.read_text())["info"]["filmkit"]["seed"] == 1


def test_generate_dataset_resumes_refuses_another_and_overwrite_replaces_only_the_dataset(tmp_path, micro_presets):
    out = tmp_path / "data"
    command = ["generate", "dataset", "--preset", "micro", "--out", out, "--workers", "1"]
    assert invoke(*command).exit_code == 0
    assert invoke(*command).exit_code == 0  # the same build again: checked, nothing redone
    (out / "notes.txt").write_text("mine")
    stale = out / ".filmkit" / "cache-32x32"
    stale.mkdir(parents=True)
    (stale / "cache.json").write_text("{}")
    assert_refused(invoke(*command, "--seed", "1"), out)
    assert_refused(invoke("generate", "dataset", "--preset", "micro-b", "--out", out, "--workers", "1"), out)
    assert not (out / "images" / "trainB").exists()  # refused before any work
    result = invoke("generate", "dataset", "--preset", "micro-b", "--out", out, "--workers", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "dataset.json").read_text())["preset"] == "micro-b"
    assert not list(out.rglob("CLEVR_train_*")) and not list(out.rglob("CLEVR_val_*")) and not stale.exists()
    assert len(list(out.rglob("CLEVR_trainB_*.png"))) == 2
    assert (out / "notes.txt").read_text() == "mine"  # not the dataset's: kept


def test_a_failed_generate_leaves_nothing_that_blocks_a_rerun(tmp_path):
    command = ["generate", "scenes", "--out", tmp_path, "--split", "val", "--num-images", "2", "--workers", "1"]
    command += ["--resolution", "32x32"]
    failed = invoke(*command, "--min-objects", "40", "--max-objects", "40")  # cannot be sampled
    assert failed.exit_code == 2 and "fewer objects" in failed.output
    assert not (tmp_path / ".filmkit-work").exists() and not list(tmp_path.rglob("*.png"))
    result = invoke(*command, "--max-objects", "4")
    assert result.exit_code == 0, result.output
    assert "wrote 2 images" in result.output


def test_a_failed_render_leaves_no_images_behind(tmp_path, monkeypatch):
    generate_split(SplitSpec(split="val", num_images=2, width=32, height=32), tmp_path / "made", workers=1)
    scenes = tmp_path / "made" / "scenes" / "CLEVR_val_scenes.json"
    command = ["render", "--scenes", scenes, "--out", tmp_path / "big", "--resolution", "48x32", "--workers", "1"]
    import filmkit.clevr.generate as generate

    original, calls = generate.save_png, []

    def full_disk(path, image):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        original(path, image)

    monkeypatch.setattr(generate, "save_png", full_disk)
    with pytest.raises(OSError):
        runner.invoke(app, [str(arg) for arg in command], catch_exceptions=False)
    monkeypatch.setattr(generate, "save_png", original)
    assert not list((tmp_path / "big").rglob("*.png"))
    assert invoke(*command).exit_code == 0
    assert_refused(invoke(*command), tmp_path / "big" / "images" / "val" / "CLEVR_val_000000.png")
    assert invoke(*command, "--overwrite").exit_code == 0


def test_humans_like_writes_every_split_or_none(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    out = tmp_path / "reworded"
    failed = invoke("generate", "humans-like", "--data", data, "--out", out, "--split", "train", "--split", "nope")
    assert failed.exit_code == 2 and "nope" in failed.output
    assert not list(out.rglob("*.json"))  # the train split was not written before the failure
    command = ["generate", "humans-like", "--data", data, "--out", out, "--split", "train"]
    assert invoke(*command).exit_code == 0
    assert_refused(invoke(*command), out / "questions" / "CLEVR_train_questions.json")
    assert invoke(*command, "--overwrite").exit_code == 0


def test_stats_json_is_refused_and_replaced(world, tmp_path):
    path = tmp_path / "stats.json"
    path.write_text("{}")
    assert_refused(invoke("stats", world["dataset"], "--json", path), path)
    assert path.read_text() == "{}"
    assert invoke("stats", world["dataset"], "--json", path, "--overwrite").exit_code == 0
    assert "splits" in json.loads(path.read_text())


# ---- preprocess ----------------------------------------------------------------------------------------------


def test_preprocess_resumes_refuses_a_cache_made_otherwise_and_overwrite_replaces_it(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    out = tmp_path / "cache"
    command = ["preprocess", "--data", data, "--out", out, "--workers", "1"]
    assert invoke(*command, "--resolution", "8x6").exit_code == 0
    assert invoke(*command, "--resolution", "8x6").exit_code == 0  # the same cache: nothing to do
    assert_refused(invoke(*command, "--resolution", "8x8"), out)
    assert read_manifest(out)["resolution"] == [8, 6]
    result = invoke(*command, "--resolution", "8x8", "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["resolution"] == [8, 8]


def test_a_failed_preprocess_leaves_nothing_that_blocks_a_rerun(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    missing = data / "images" / "val" / "CLEVR_val_000013.png"
    kept = missing.read_bytes()
    missing.unlink()
    out = tmp_path / "cache"
    command = ["preprocess", "--data", data, "--out", out, "--workers", "1"]
    failed = invoke(*command, "--resolution", "8x6")
    assert failed.exit_code == 2 and "missing on disk" in failed.output
    assert not out.exists() or not any(out.iterdir())
    missing.write_bytes(kept)
    result = invoke(*command, "--resolution", "16x16")  # fixed, and asked otherwise: nothing in the way
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["resolution"] == [16, 16]


# ---- eval, ask, analyze --------------------------------------------------------------------------------------


def test_eval_reports_and_predictions_are_refused_and_replaced(world, tmp_path):
    predictions = tmp_path / "predictions.txt"
    command = ["eval", "--checkpoint", world["checkpoint"], "--data", world["cache"], "--out", tmp_path]
    command += ["--predictions", predictions]
    assert invoke(*command).exit_code == 0
    report = (tmp_path / "eval-val.json").read_text()
    assert_refused(invoke(*command), tmp_path / "eval-val.json")
    predictions.unlink()
    (tmp_path / "eval-val.json").unlink()
    (tmp_path / "eval-val.md").unlink()
    predictions.write_text("mine\n")
    assert_refused(invoke(*command), predictions)
    assert predictions.read_text() == "mine\n"
    assert invoke(*command, "--overwrite").exit_code == 0
    assert predictions.read_text() != "mine\n" and (tmp_path / "eval-val.json").read_text() == report


def test_ask_heatmap_is_refused_and_replaced(world, tmp_path):
    image = world["dataset"] / "images" / "val" / "CLEVR_val_000007.png"
    heatmap = tmp_path / "heat.png"
    heatmap.write_bytes(b"mine")
    command = ["ask", "--checkpoint", world["checkpoint"], "--image", image, "--question", "How many cubes?"]
    assert_refused(invoke(*command, "--heatmap", heatmap), heatmap)
    assert heatmap.read_bytes() == b"mine"
    assert invoke(*command, "--heatmap", heatmap, "--overwrite").exit_code == 0
    from PIL import Image

    with Image.open(heatmap) as figure:  # the new figure: image and heatmap side by side, enlarged
        assert figure.width > 2 * IMAGE_SIZE[0]


def test_a_failed_analysis_leaves_no_folder_and_overwrite_keeps_other_files(world, tmp_path, monkeypatch):
    import filmkit.analysis.analyze as analysis

    out = tmp_path / "analysis"
    command = ["analyze", "--checkpoint", world["checkpoint"], "--data", world["cache"], "--out", out]
    command += ["--max-questions", "10", "--ablation-questions", "5", "--examples", "1"]
    with monkeypatch.context() as patched:
        patched.setattr(analysis, "plot_film_histograms", lambda *args: (_ for _ in ()).throw(OSError("disk full")))
        failed = invoke(*command)
    assert failed.exit_code == 2 and "disk full" in failed.output
    assert not out.exists() and not list(tmp_path.glob(".analysis*"))
    assert invoke(*command).exit_code == 0
    assert_refused(invoke(*command), out)
    (out / "notes.txt").write_text("mine")
    assert invoke(*command, "--overwrite").exit_code == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "analysis.md").exists()


# ---- train, speedrun, export, finetune, demo ---------------------------------------------------------------


def test_train_takes_over_a_run_that_failed_before_its_first_checkpoint(world, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("max_steps: 2\n")  # what a run writes before its first step
    (run / "metrics.jsonl").write_text("")
    command = ["train", "--data", world["cache"], "--out", run, "--set", "max_steps=2", "--set", "val_every=2"]
    command += [item for setting in TINY_TRAINING for item in ("--set", setting)]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    again = invoke(*command)
    assert again.exit_code == 2 and f"--resume {run}" in again.output and "--overwrite" in again.output
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    elsewhere = [other if part == run else part for part in command]
    refused = invoke(*elsewhere)
    assert_refused(refused, other)
    assert "thesis.tex" in refused.output and "--resume" not in refused.output
    assert invoke(*command, "--overwrite").exit_code == 0
    assert invoke(*elsewhere, "--overwrite").exit_code == 0
    assert (other / "thesis.tex").read_text() == "mine" and (other / "last.pt").exists()


def test_speedrun_after_a_failed_start_resumes_and_refuses_other_options(world, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "SPEED_STEPS", (2, 6))  # time steps 2-6 instead of 20-300: a budget in seconds
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("lr: 0.1\n")  # a speedrun that stopped before its first checkpoint
    (run / "speedrun-plan.json").write_text("{}")
    command = ["speedrun", "--data", world["cache"], "--out", run, "--minutes", "0.02", "--test-split", ""]
    command += [item for setting in TINY_TRAINING for item in ("--set", setting)]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    resumed = invoke(*command)
    assert resumed.exit_code == 0 and "resuming" in resumed.output
    assert_refused(invoke(*[("0.03" if part == "0.02" else part) for part in command]), run)

    out = tmp_path / "model.pt"
    import filmkit.experiments.ship as ship

    with monkeypatch.context() as patched:
        patched.setattr(ship, "model_card", lambda record: (_ for _ in ()).throw(ValueError("no card")))
        failed = invoke("export", "--run", run, "--out", out)
    assert failed.exit_code == 2 and not out.exists()  # no weights without their card: nothing in the way
    assert invoke("export", "--run", run, "--out", out).exit_code == 0
    assert_refused(invoke("export", "--run", run, "--out", out), out)
    assert invoke("export", "--run", run, "--out", out, "--overwrite").exit_code == 0


def test_finetune_redoes_an_unfinished_one_and_refuses_a_finished_one(world, tmp_path):
    out = tmp_path / "finetune"
    (out / "run").mkdir(parents=True)
    (out / "run" / "last.pt").write_bytes(b"from a fine-tuning that was killed")
    command = ["finetune", "--checkpoint", world["checkpoint"], "--data", world["dataset"], "--out", out]
    command += ["--steps", "2", "--workers", "1", "--min-word-count", "1"]
    command += ["--set", "batch_size=4", "--set", "val_subset=4"]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    assert_refused(invoke(*command), out / "finetune.json")
    assert invoke(*command, "--overwrite").exit_code == 0


def test_demo_refuses_a_data_folder_holding_another_dataset_and_overwrite_replaces_it(tmp_path, monkeypatch):
    monkeypatch.setitem(clevr_dataset_module.PRESETS, "demo", DEMO)
    monkeypatch.setattr(loop, "SPEED_STEPS", (2, 6))
    data, runs = tmp_path / "data", tmp_path / "runs" / "demo"
    build_dataset(DEMO, data, seed=1, workers=1)
    command = ["demo", "--data", data, "--out", runs, "--minutes", "0.02", "--workers", "1"]
    command += [item for setting in TINY_TRAINING for item in ("--set", setting)]
    assert_refused(invoke(*command), data)
    assert not runs.exists()
    runs.mkdir(parents=True)
    (runs / "metrics.jsonl").write_text("")
    result = invoke(*command, "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((data / "dataset.json").read_text())["seed"] == 0
    assert (runs / "report.md").exists() and not (tmp_path / "runs" / "demo-2").exists()


# ---- rl ------------------------------------------------------------------------------------------------------


def test_rl_training_replaces_only_a_checkpoint_it_left_unfinished(tmp_path):
    pytest.importorskip("minigrid")
    from filmkit.rl.envs import Vocab
    from filmkit.rl.policy import Policy, PolicyConfig, save_policy

    demos = tmp_path / "demos.npz"
    assert invoke("rl", "demos", "--env", "BabyAI-GoToRedBall-v0", "--episodes", "4", "--out", demos).exit_code == 0
    assert_refused(invoke("rl", "demos", "--env", "BabyAI-GoToRedBall-v0", "--episodes", "4", "--out", demos), demos)
    checkpoint = tmp_path / "il.pt"
    vocab = Vocab.babyai()
    policy = Policy(PolicyConfig("film", "text", len(vocab), 8, channels=8))
    save_policy(checkpoint, policy, "BabyAI-GoToRedBall-v0", vocab.words, info={"finished": False})
    command = ["rl", "train-il", "--demos", demos, "--out", checkpoint, "--epochs", "1", "--batch-episodes", "4"]
    command += ["--eval-episodes", "2", "--channels", "8", "--threads", "1"]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    assert "did not finish" in result.output
    assert_refused(invoke(*command), checkpoint)  # finished now: kept
    assert invoke(*command, "--overwrite").exit_code == 0
