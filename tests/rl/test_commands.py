"""Tiny end-to-end runs of `filmkit rl demos|train-il|train-ppo|eval` (skipped without the [rl] extra)."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("minigrid")

from filmkit.cli import app  # noqa: E402
from filmkit.rl.demos import load_demos  # noqa: E402
from filmkit.rl.envs import Vocab  # noqa: E402
from filmkit.rl.evaluate import evaluate  # noqa: E402
from filmkit.rl.policy import Policy, PolicyConfig, load_policy  # noqa: E402
from filmkit.rl.ppo import PPOSettings, train_ppo  # noqa: E402

ENV = "BabyAI-GoToRedBall-v0"
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, ["rl", *args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "demos.npz"
    result = invoke("demos", "--env", ENV, "--episodes", "40", "--out", str(path))
    assert result.exit_code == 0, result.output
    return path


def test_demos_are_the_bots_successful_episodes(demos_file):
    demos = load_demos(demos_file)
    assert demos.env_id == ENV and demos.num_episodes == 40
    assert demos.lengths.sum() == demos.num_steps == len(demos.images)
    assert demos.images.dtype == np.uint8 and demos.images.shape[1:] == (7, 7, 3)
    assert set(demos.missions) <= {"go to the red ball", "go to a red ball"}
    assert list(demos.seeds) == sorted(set(demos.seeds))
    assert demos.actions.max() <= 6 and demos.lengths.min() >= 1


def test_existing_files_are_not_overwritten(demos_file):
    before = demos_file.read_bytes()
    result = invoke("demos", "--env", ENV, "--episodes", "2", "--out", str(demos_file))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert demos_file.read_bytes() == before


def test_unknown_level_is_one_line(tmp_path):
    result = invoke("demos", "--env", "BabyAI-Nope-v0", "--episodes", "2", "--out", str(tmp_path / "d.npz"))
    assert result.exit_code == 2 and "'BabyAI-Nope-v0'" in result.output


@pytest.mark.parametrize("conditioning,goal", [("film", "text"), ("concat", "vector")])
def test_train_il_then_eval_with_video(demos_file, tmp_path, conditioning, goal):
    checkpoint, video = tmp_path / "il.pt", tmp_path / "episodes.gif"
    result = invoke("train-il", "--demos", str(demos_file), "--out", str(checkpoint), "--epochs", "2",
                    "--batch-episodes", "20", "--eval-episodes", "4", "--channels", "16",
                    "--conditioning", conditioning, "--goal", goal, "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    policy, saved = load_policy(checkpoint)
    assert saved["info"]["updates"] == 4 and len(saved["history"]) == 2
    assert policy.config.conditioning == conditioning and policy.config.goal == goal
    result = invoke("eval", "--checkpoint", str(checkpoint), "--episodes", "6", "--video", str(video),
                    "--video-episodes", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "over 6 episodes" in result.output and video.read_bytes()[:6] == b"GIF89a"


def test_eval_refuses_other_files(demos_file, tmp_path):
    assert invoke("eval", "--checkpoint", str(demos_file)).exit_code == 2
    result = invoke("eval", "--checkpoint", str(tmp_path / "missing.pt"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_evaluation_is_repeatable():
    torch.manual_seed(0)
    policy = Policy(PolicyConfig(vocab_size=len(Vocab.babyai()), channels=16))
    first = evaluate(policy, Vocab.babyai(), ENV, episodes=6, num_envs=3)
    second = evaluate(policy, Vocab.babyai(), ENV, episodes=6, num_envs=2)
    assert first == second and first.episodes == 6


def test_ppo_updates_and_logs(tmp_path):
    config = PolicyConfig(vocab_size=len(Vocab.babyai()), channels=16)  # with memory: stretches of 4 steps
    settings = PPOSettings(frames=96, num_envs=4, steps=8, minibatch=16, recurrence=4, window=8)
    result = train_ppo("BabyAI-GoToRedBallGrey-v0", config, settings, checkpoint=str(tmp_path / "ppo.pt"))
    assert result.frames == 96 and len(result.history) == 3
    assert {"success_rate", "frames_per_s", "entropy"} <= set(result.history[-1])
    assert load_policy(tmp_path / "ppo.pt")[1]["info"]["frames"] == 96


def test_train_ppo_command(tmp_path):
    result = invoke("train-ppo", "--env", "BabyAI-GoToRedBallGrey-v0", "--out", str(tmp_path / "p.pt"),
                    "--frames", "64", "--envs", "4", "--steps", "8", "--minibatch", "16", "--channels", "16",
                    "--no-memory", "--film-position", "output")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "64 frames" in result.output
    assert "training success" in result.output and "target not reached" not in result.output  # no --target given
    assert load_policy(tmp_path / "p.pt")[0].config.film_position == "output"


def test_ppo_refuses_a_recurrence_that_does_not_divide_the_rollout(tmp_path):
    result = invoke("train-ppo", "--env", "BabyAI-GoToRedBallGrey-v0", "--out", str(tmp_path / "p.pt"),
                    "--steps", "30", "--recurrence", "20")  # fmt: skip
    assert result.exit_code == 2 and "recurrence (20) must be a positive divisor of steps (30)" in result.output
    with pytest.raises(ValueError, match="minibatch"):
        PPOSettings(steps=40, recurrence=20, minibatch=10).check(memory=True)
    PPOSettings(steps=30, recurrence=20).check(memory=False)  # without memory there is nothing to replay


def test_a_file_that_is_not_demos_is_named_without_unpickling_advice(tmp_path):
    import numpy as np
    import pytest

    text, pickled = tmp_path / "notes.md", tmp_path / "objects.npz"
    text.write_text("# not demos\n")
    np.savez(pickled, kind=np.array([{"a": 1}], dtype=object))
    for path in (text, pickled):
        with pytest.raises(ValueError, match=f"{path.name}: not a filmkit demos file") as caught:
            load_demos(path)
        assert "allow_pickle" not in str(caught.value)
