"""Ctrl-C and SIGTERM keep the run; a resume may not change the training; --more-steps trains on smoothly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from train_fixtures import tiny_cache, tiny_config

from filmkit.train.interrupt import StopRequests, TrainingInterrupted
from filmkit.train.loop import Trainer, TrainingError, lr_factor
from filmkit.vqa import load_checkpoint


@pytest.fixture
def cache(tmp_path):
    return tiny_cache(tmp_path)


def _signal_at_batch(number: int, signum: int = signal.SIGINT):
    seen = []

    def on_batch(batch):
        seen.append(1)
        if len(seen) == number:
            os.kill(os.getpid(), signum)  # a real signal, delivered to this (the main) thread

    return on_batch


def test_a_signal_saves_the_current_step_and_the_resumed_run_ends_with_the_same_weights(cache, tmp_path):
    straight = Trainer(tiny_config(), cache, tmp_path / "straight")
    straight.run()

    interrupted = Trainer(tiny_config(), cache, tmp_path / "stopped", on_batch=_signal_at_batch(8, signal.SIGTERM))
    handlers_before = [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(TrainingInterrupted) as stop:
        interrupted.run()
    assert stop.value.step == 8 and stop.value.exit_code == 128 + signal.SIGTERM
    # checkpoint_every is 3: without the signal's own save the last checkpoint would be step 6
    assert load_checkpoint(tmp_path / "stopped" / "last.pt").metadata["step"] == 8
    # the handlers are given back (compared with what was there: a shell's background job starts with SIGINT ignored)
    assert [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)] == handlers_before

    resumed = Trainer.resume(tmp_path / "stopped")
    assert resumed.step == 8
    resumed.run()
    for name, value in straight.model.state_dict().items():
        difference = (value.double() - resumed.model.state_dict()[name].double()).abs().max().item()
        assert difference <= 1e-6, name


def test_a_second_signal_exits_at_once():
    with StopRequests() as stops:
        os.kill(os.getpid(), signal.SIGINT)
        assert stops.signum == signal.SIGINT  # the first one only asks
        with pytest.raises(SystemExit) as exit_info:
            os.kill(os.getpid(), signal.SIGINT)
    assert exit_info.value.code == 130


def test_ctrl_c_during_filmkit_train_saves_and_prints_the_resume_command(cache, tmp_path):
    run = tmp_path / "run"
    settings = ["max_steps=1000000", "checkpoint_every=100000", "val_every=100000", "log_every=1"]
    settings += [f"model.{key}={json.dumps(value)}" for key, value in tiny_config().model.items()]
    command = [sys.executable, "-m", "filmkit", "train", "--data", str(cache), "--out", str(run)]
    for setting in ["batch_size=4", *settings]:
        command += ["--set", setting]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300  # generous: a loaded machine starts python and torch slowly

    def training() -> bool:
        return metrics.exists() and metrics.read_text().count("\n") >= 3

    while not training() and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        time.sleep(0.05)
    assert training(), "the child did not start training in time"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)

    assert child.returncode == 130, stderr
    assert f"continue with: filmkit train --resume {run}" in stderr
    assert "Traceback" not in stderr
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    saved = load_checkpoint(run / "last.pt").metadata["step"]
    assert saved >= max(logged) >= 3  # the step it had reached, not a periodic checkpoint (none was due)
    assert Trainer.resume(run).step == saved


def test_a_resume_refuses_settings_that_change_the_training_and_names_them(cache, tmp_path):
    Trainer(tiny_config(), cache, tmp_path / "run").run()
    for setting, named in (
        ("batch_size=8", "--set batch_size: batch_size cannot change"),
        ("seed=1", "--set seed"),
        ("lr=0.5", "--set lr"),
        ("model.module_dim=4", "--set model.module_dim"),
        ("max_steps=20", "train longer with --more-steps N"),
    ):
        with pytest.raises(TrainingError, match=named):
            Trainer.resume(tmp_path / "run", [setting])
    resumed = Trainer.resume(tmp_path / "run", ["val_every=2", "log_every=1", "batch_size=4"])  # 4 is unchanged
    assert resumed.config.val_every == 2


def test_more_steps_train_past_the_end_with_a_continuous_learning_rate(cache, tmp_path):
    schedule = dict(schedule="cosine", warmup_steps=2, min_lr_ratio=0.1, lr=1e-2)
    with pytest.raises(TrainingInterrupted):
        Trainer(tiny_config(**schedule), cache, tmp_path / "run", on_batch=_signal_at_batch(6)).run()
    before = Trainer.resume(tmp_path / "run")
    lr_at_stop = before.scheduler.get_last_lr()[0]
    # Without the rebasing, stretching the end from 12 to 18 would raise the learning rate at once:
    assert lr_factor(6, before.config, 18) > lr_factor(6, before.config, 12) + 0.05

    extended = Trainer.resume(tmp_path / "run", more_steps=6)
    assert extended.max_steps == extended.config.max_steps == 18
    assert extended.scheduler.get_last_lr()[0] == pytest.approx(lr_at_stop)
    extended.run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [(r["step"], r["lr"]) for r in records if "lr" in r and r["step"] >= 6]
    assert [step for step, _ in rates] == [6, 8, 10, 12, 14, 16, 18]
    lrs = [lr for _, lr in rates]
    assert all(later <= earlier for earlier, later in zip(lrs, lrs[1:], strict=False))  # decays, never jumps
    assert rates[-1][1] == pytest.approx(1e-2 * 0.1, rel=0.05)  # and ends at the floor, at the new end
    again = Trainer.resume(tmp_path / "run")  # the extension is recorded: a later resume keeps the schedule
    assert (again.max_steps, again.config.extended_at_step) == (18, 6)


def test_more_steps_is_refused_before_a_timed_run_knows_its_length(cache, tmp_path):
    config = tiny_config(max_steps=None, time_limit_minutes=10.0, fit_steps_to_time=True)
    with pytest.raises(TrainingInterrupted):
        Trainer(config, cache, tmp_path / "run", on_batch=_signal_at_batch(3)).run()
    with pytest.raises(TrainingError, match="has not fixed its length yet"):
        Trainer.resume(tmp_path / "run", more_steps=5)
