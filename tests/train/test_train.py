import json
import multiprocessing
import os
import signal

import pytest
import torch
from PIL import Image
from train_fixtures import tiny_cache, tiny_config

from filmkit.data.dataset import CachedSplit
from filmkit.train.evaluate import evaluate
from filmkit.train.loop import Trainer, TrainingError
from filmkit.vqa import FiLMVQA, load_checkpoint


@pytest.fixture
def cache(tmp_path):
    return tiny_cache(tmp_path)


def test_a_short_run_writes_checkpoints_metrics_and_config(cache, tmp_path):
    # Seed 21: the best subset score (0.75), the last one (0.0) and the final score on the whole split (0.25)
    # differ, so reporting either subset score as the final accuracy fails below.
    result = Trainer(tiny_config(seed=21), cache, tmp_path / "run").run()
    assert result.steps == 12
    final = load_checkpoint(tmp_path / "run" / "last.pt")  # the final weights, scored here on the whole split
    assert final.metadata["step"] == 12
    assert result.final_val_accuracy == evaluate(final.model, CachedSplit(cache, "val")).accuracy
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"last.pt", "best.pt", "metrics.jsonl", "config.yaml"} <= names
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in records if r.get("kind") == "val_subset"] == [5, 10, 12]
    assert records[-1]["kind"] == "final_val" and records[-1]["val_questions"] == 8
    assert records[-1]["val_accuracy"] == result.final_val_accuracy
    last_subset = [r["val_accuracy"] for r in records if r.get("kind") == "val_subset"][-1]
    assert len({result.best_val_accuracy, last_subset, result.final_val_accuracy}) == 3  # else pick another seed
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert isinstance(best.model, FiLMVQA) and best.metadata["kind"] == "film"
    assert best.model.config.image_height == 16  # the model reads the cache's resolution


def test_refuses_to_overwrite_a_run(cache, tmp_path):
    Trainer(tiny_config(max_steps=2), cache, tmp_path / "run").run()
    with pytest.raises(TrainingError, match="already holds a run; continue it with --resume"):
        Trainer(tiny_config(max_steps=2), cache, tmp_path / "run")
    Trainer(tiny_config(max_steps=2), cache, tmp_path / "run", overwrite=True).run()


def _run_and_die(cache, run_dir, kill_at, threads):
    """In a child process: train, and SIGKILL ourselves as batch ``kill_at`` arrives (mid-run, no cleanup)."""
    torch.set_num_threads(threads)  # as many as the parent: thread counts change float summation order
    seen = []

    def on_batch(batch):
        seen.append(1)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer(tiny_config(), cache, run_dir, on_batch=on_batch).run()


def test_killed_and_resumed_run_ends_with_the_same_weights(cache, tmp_path):
    uninterrupted = Trainer(tiny_config(), cache, tmp_path / "straight")
    uninterrupted.run()

    arguments = (cache, tmp_path / "killed", 8, torch.get_num_threads())
    child = multiprocessing.get_context("spawn").Process(target=_run_and_die, args=arguments)
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "killed" / "last.pt").metadata["step"] == 6  # checkpoints every 3 steps

    resumed = Trainer.resume(tmp_path / "killed")
    assert resumed.step == 6
    resumed.run()
    for name, value in uninterrupted.model.state_dict().items():
        difference = (value.double() - resumed.model.state_dict()[name].double()).abs().max().item()
        assert difference <= 1e-6, name
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # records logged after the checkpoint by the killed run were dropped


def nan_logits_at_training_call(number: int, monkeypatch) -> None:
    """Make the model's ``number``-th training forward pass return NaN logits (a diverged step)."""
    original = FiLMVQA.forward
    calls = {"n": 0}

    def forward(self, images, questions):
        calls["n"] += 1
        logits = original(self, images, questions)
        return logits * float("nan") if calls["n"] == number and self.training else logits

    monkeypatch.setattr(FiLMVQA, "forward", forward)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cache, tmp_path, monkeypatch):
    nan_logits_at_training_call(5, monkeypatch)
    with pytest.raises(TrainingError, match=r"the loss became nan at step 5.*last good checkpoint is .*last.pt"):
        Trainer(tiny_config(), cache, tmp_path / "run").run()
    good = load_checkpoint(tmp_path / "run" / "last.pt")
    assert good.metadata["step"] == 3
    assert all(torch.isfinite(v).all() for v in good.model.state_dict().values() if v.is_floating_point())


@pytest.mark.parametrize("log_every", [2, 4])
def test_on_an_accelerator_a_nan_is_caught_at_the_next_read_and_never_saved(cache, tmp_path, monkeypatch, log_every):
    """Where reading the loss costs a host sync it is read at log steps and before saves (simulated on the CPU)."""
    nan_logits_at_training_call(5, monkeypatch)
    trainer = Trainer(tiny_config(log_every=log_every, val_every=100), cache, tmp_path / "run")
    trainer._reads_each_step = False
    # step 5 is bad; step 6 logs (log_every 2) or saves (checkpoint_every 3): either read stops the run there
    with pytest.raises(TrainingError, match=r"the loss became non-finite by step 6.*last good checkpoint"):
        trainer.run()
    good = load_checkpoint(tmp_path / "run" / "last.pt")
    assert good.metadata["step"] == 3
    assert all(torch.isfinite(v).all() for v in good.model.state_dict().values() if v.is_floating_point())


def test_bad_settings_and_data_are_reported(cache, tmp_path):
    with pytest.raises(ValueError, match="schedule = 'wavy'"):
        tiny_config(schedule="wavy")
    with pytest.raises(ValueError, match="augment_shift must be at least 0"):
        tiny_config(augment_shift=-2)
    with pytest.raises(ValueError, match="unknown model setting"):
        tiny_config(model={"wings": 2})
    with pytest.raises(TrainingError, match="lacks answers"):
        Trainer(tiny_config(train_split="test"), cache, tmp_path / "run")
    with pytest.raises(TrainingError, match="holds pixels, but preset 'paper' reads features"):
        Trainer(tiny_config(preset="paper"), cache, tmp_path / "run2")
    with pytest.raises(TrainingError, match="no last.pt to resume from"):
        Trainer.resume(tmp_path / "nowhere")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="sync_batchnorm needs CUDA"):
            Trainer(tiny_config(sync_batchnorm=True), cache, tmp_path / "run3")


def test_warmup_and_schedules_shape_the_learning_rate():
    from filmkit.train.loop import lr_factor

    config = tiny_config(warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    factors = [lr_factor(step, config, 20) for step in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1, abs=0.02)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    linear = tiny_config(schedule="linear")
    assert lr_factor(10, linear, 20) == pytest.approx(0.5)


def test_train_command_preprocesses_a_dataset_folder_then_trains(tmp_path):
    from typer.testing import CliRunner

    from filmkit.cli import app

    tiny_cache(tmp_path)  # writes tmp_path / "clevr" (and a cache we do not pass)
    settings = [
        "max_steps=3",
        "batch_size=4",
        "val_every=2",
        "model.embedding_dim=8",
        "model.rnn_hidden_dim=16",
        "model.module_dim=8",
        "model.classifier_proj_dim=16",
        "model.classifier_fc_dims=[16]",
    ]
    args = ["train", "--data", str(tmp_path / "clevr"), "--out", str(tmp_path / "run")]
    args += [item for setting in settings for item in ("--set", setting)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 steps" in result.output
    assert (tmp_path / "clevr" / ".filmkit" / "cache-64x64" / "cache.json").exists()  # the cpu preset's size
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output and "Traceback" not in again.output


def test_train_passes_workers_to_the_cache_and_keeps_the_traceback_of_a_bug(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from filmkit.cli import app
    from filmkit.train import loop

    tiny_cache(tmp_path)
    asked = []
    original = loop.locate_cache
    monkeypatch.setattr(loop, "locate_cache", lambda *a, **k: asked.append(k["workers"]) or original(*a, **k))
    settings = ["max_steps=2", "batch_size=4", "model.module_dim=8", "model.num_blocks=1", "model.rnn_hidden_dim=16"]
    args = ["train", "--data", str(tmp_path / "clevr"), "--out", str(tmp_path / "run"), "--workers", "3"]
    args += [item for setting in settings for item in ("--set", setting)]

    def broken_step(self, batch):
        raise ValueError("an index out of range in filmkit's own code")

    monkeypatch.setattr(Trainer, "_train_step", broken_step)
    result = CliRunner().invoke(app, args)
    assert asked == [3]
    # not a one-line "error: ..." as if the user's input were wrong: the bug surfaces with its traceback
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "error: an index out of range" not in result.output


def test_only_rank_0_prints_the_summary(cache, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from filmkit.cli import app

    settings = ["max_steps=2", "batch_size=4", "model.module_dim=8", "model.num_blocks=1", "model.rnn_hidden_dim=16"]
    outputs = {}
    for rank in ("0", "1"):  # RANK as torchrun sets it; WORLD_SIZE stays 1, so each run trains on its own
        monkeypatch.setenv("RANK", rank)
        args = ["train", "--data", str(cache), "--out", str(tmp_path / f"run{rank}")]
        result = CliRunner().invoke(app, args + [item for setting in settings for item in ("--set", setting)])
        assert result.exit_code == 0, result.output
        outputs[rank] = result.output
    assert "2 steps in" in outputs["0"] and "2 steps in" not in outputs["1"]


def test_a_run_draws_its_learning_curves_beside_the_metrics(cache, tmp_path):
    Trainer(tiny_config(curves=True), cache, tmp_path / "run").run()
    with Image.open(tmp_path / "run" / "curves.png") as picture:
        assert picture.format == "PNG" and picture.width > 600


def test_compile_traces_the_visual_network_whole_and_trains_as_eager_does(cache, tmp_path, monkeypatch):
    """--compile on the CPU. Inductor takes about a minute to build even a tiny model, so the test compiles with
    torch's aot_eager backend and fullgraph=True: the same tracing, with no graph break allowed, without codegen."""
    original = torch.nn.Module.compile
    compiled = []

    def traced_whole(module, **options):
        compiled.append(type(module).__name__)
        original(module, backend="aot_eager", fullgraph=True)

    monkeypatch.setattr(torch.nn.Module, "compile", traced_whole)
    config = tiny_config(max_steps=3, val_every=3)
    config.model["block_dropout"] = 0.0  # dropout draws differently under tracing
    eager = Trainer(config, cache, tmp_path / "eager")
    eager.run()
    faster = Trainer(tiny_config(**{**config.to_dict(), "compile": True}), cache, tmp_path / "compiled")
    faster.run()
    assert compiled == ["FiLMedNetwork"]
    for name, value in eager.model.state_dict().items():  # and the checkpoint keeps the weights' names
        torch.testing.assert_close(faster.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert set(load_checkpoint(tmp_path / "compiled" / "last.pt").model.state_dict()) == set(eager.model.state_dict())
