"""`filmkit speedrun` on the tiny cache: a budget in seconds, the schedule fitted to it, the report, resuming."""

import json

import pytest
from train_fixtures import TINY_MODEL, tiny_cache
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.experiments.recipes import get_recipe, recipe_config
from filmkit.experiments.speedrun import minutes_to, run_speedrun
from filmkit.train import loop
from filmkit.train.loop import Trainer, TrainingError, lr_factor

TINY = [f"model.{key}={json.dumps(value)}" for key, value in TINY_MODEL.items()]
TINY += ["batch_size=4", "questions_per_image=2", "val_every=20", "val_subset=3", "checkpoint_every=10"]


@pytest.fixture(autouse=True)
def _time_few_steps(monkeypatch):
    monkeypatch.setattr(loop, "SPEED_STEPS", (2, 6))  # time steps 2-6 instead of 10-60: tiny budgets


def test_speedrun_fits_its_schedule_to_the_budget_evaluates_and_reports(tmp_path):
    cache = tiny_cache(tmp_path)
    result = run_speedrun(cache, tmp_path / "run", minutes=0.1, settings=TINY)
    record = result.record
    fitted = record["train_config"]["max_steps"]
    # The first steps were timed and the schedule sized to the 6 s budget: more steps than the timing took, the
    # run ended by its step count or at the time limit, and the recorded minutes fit the budget.
    assert fitted is not None and 6 < fitted < 10**6
    assert record["steps"] <= fitted and record["training_minutes"] <= 0.1 * 1.3
    # Questions seen are counted, not assumed: groups of 2 of images with 2 or 3 questions leave short batches.
    assert 2 * record["steps"] <= record["samples"] < 4 * record["steps"]
    assert record["validation"]["scored"] == 8  # the tiny validation split, whole
    assert record["test"]["questions"] == 5 and not record["test"]["has_answers"]
    assert record["curve"] and record["curve"][-1]["step"] == record["steps"]
    assert set(record["minutes_to"]) == {"70%", "80%", "90%"}
    report = result.report.read_text()
    assert f"**{record['validation']['overall']['accuracy']:.1f}%**" in report
    assert "Validation accuracy by question type" in report and "have no answers (predictions only)" in report
    assert (tmp_path / "run" / "report" / "speedrun-curve.png").stat().st_size > 0
    assert json.loads((tmp_path / "run" / "speedrun.json").read_text())["steps"] == record["steps"]


def test_rerunning_a_finished_speedrun_resumes_it_and_other_options_are_refused(tmp_path):
    cache = tiny_cache(tmp_path)
    first = run_speedrun(cache, tmp_path / "run", minutes=0.03, settings=TINY)
    again = run_speedrun(cache, tmp_path / "run", minutes=0.03, settings=TINY)
    assert again.record["steps"] == first.record["steps"]  # nothing left to train: resumed at the end
    assert again.record["validation"] == first.record["validation"]
    with pytest.raises(TrainingError, match="holds another speedrun"):
        run_speedrun(cache, tmp_path / "run", minutes=0.5, settings=TINY)


def test_fitting_the_steps_is_recorded_so_a_resume_keeps_the_schedule(tmp_path):
    cache = tiny_cache(tmp_path)
    settings = dict(model=dict(TINY_MODEL), batch_size=4, questions_per_image=2, val_every=1000, val_subset=3)
    settings["checkpoint_every"] = 8
    config = recipe_config("cpu", time_limit_minutes=0.5, fit_steps_to_time=True, **settings)
    trainer = Trainer(config, cache, tmp_path / "run")
    trainer.on_progress = lambda report: setattr(trainer, "max_steps", 8) if report.step == 7 else None
    trainer.run()  # stopped at step 8, after the step count was fitted (step 6) and checkpointed
    fitted = trainer.config.max_steps
    assert trainer.step == 8 and fitted is not None and fitted > 8
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.step == 8 and resumed.max_steps == resumed.config.max_steps == fitted


def test_the_schedule_is_refitted_at_validations_so_it_ends_with_the_budget_when_steps_slow_down(tmp_path):
    import time

    cache = tiny_cache(tmp_path)
    settings = dict(model=dict(TINY_MODEL), batch_size=4, questions_per_image=2, val_every=10, val_subset=3)
    config = recipe_config("cpu", time_limit_minutes=0.05, fit_steps_to_time=True, warmup_steps=0, **settings)
    trainer = Trainer(config, cache, tmp_path / "run")
    fits = []

    def slow_after_the_timed_steps(batch):  # steps 2-6 are timed at full speed, every later one takes 20 ms more
        if trainer.step > 6:
            time.sleep(0.02)
        if trainer.config.max_steps is not None and (not fits or fits[-1] != trainer.config.max_steps):
            fits.append(trainer.config.max_steps)

    trainer.on_batch = slow_after_the_timed_steps
    trainer.run()
    first_fit, last_fit = fits[0], trainer.config.max_steps
    assert last_fit < first_fit / 2  # the first fit, from the fast steps, promised far more steps than the time held
    # the cosine ran (nearly) to its end within the 3 s, instead of being cut off while still near its peak
    assert lr_factor(trainer.step, trainer.config, last_fit) < 0.15
    assert lr_factor(trainer.step, trainer.config, first_fit) > 0.5


def test_bad_budgets_and_recipes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    for arguments, needle in (
        (["--minutes", "0"], "--minutes must be positive, got 0"),
        (["--minutes", "-5"], "--minutes must be positive, got -5"),
        (["--recipe", "gpu-fast"], "unknown recipe 'gpu-fast'; choose one of cpu"),
    ):
        result = runner.invoke(app, ["speedrun", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *arguments])
        assert result.exit_code == 2, result.output
        assert needle in result.output and "Traceback" not in result.output
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("nope")


def test_minutes_to_reads_the_first_crossing():
    curve = [{"minutes": 1.0, "val_accuracy": 69.9}, {"minutes": 2.0, "val_accuracy": 80.0}]
    curve.append({"minutes": 3.0, "val_accuracy": 75.0})
    assert minutes_to(curve) == {"70%": 2.0, "80%": 2.0, "90%": None}


def test_export_writes_a_weights_only_model_that_answers_as_the_run_did(tmp_path):
    import torch

    from filmkit.data.dataset import CachedSplit
    from filmkit.vqa import load_checkpoint

    cache = tiny_cache(tmp_path)
    result = run_speedrun(cache, tmp_path / "run", minutes=0.03, settings=TINY)
    out = tmp_path / "model.pt"
    command = ["export", "--run", str(tmp_path / "run"), "--out", str(out)]
    assert CliRunner().invoke(app, command).exit_code == 0
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2 and "exists; pass --overwrite" in again.output
    exported, trained = load_checkpoint(out), load_checkpoint(tmp_path / "run" / "last.pt")
    assert exported.extra == {} and out.stat().st_size < (tmp_path / "run" / "last.pt").stat().st_size
    batch = CachedSplit(cache, "val")[[0, 1, 2]]
    with torch.no_grad():
        torch.testing.assert_close(
            exported.model(batch["images"], batch["questions"]), trained.model(batch["images"], batch["questions"])
        )
    card = out.with_suffix(".md").read_text()
    accuracy = result.record["validation"]["overall"]["accuracy"]
    assert f"**{accuracy:.1f}%**" in card and "filmkit speedrun --data data/clevr-cpu --recipe cpu" in card
    assert exported.metadata["val_accuracy"] == accuracy / 100
