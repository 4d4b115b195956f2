"""PPO's pieces against hand-computed values: GAE, the clipped loss, the time limit's bootstrap; demos that give up;
stopping and reporting on different episodes."""

import numpy as np
import pytest
import torch

pytest.importorskip("minigrid")

from filmkit.rl import imitation, ppo  # noqa: E402
from filmkit.rl.acting import PoolStep  # noqa: E402
from filmkit.rl.demos import MAX_FAILURES_IN_A_ROW, Demos, generate_demos  # noqa: E402
from filmkit.rl.envs import GOAL_DIM, Vocab  # noqa: E402
from filmkit.rl.evaluate import CHECK_SEED, EVAL_SEED, EvalResult  # noqa: E402
from filmkit.rl.policy import Policy, PolicyConfig  # noqa: E402

MISSION = "go to the red ball"


def test_gae_matches_a_hand_computed_rollout():
    # env 0 ends at step 1 (nothing after it is its future); env 1 runs through and bootstraps from last_value
    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    values = torch.tensor([[0.5, 0.1], [0.4, 0.2], [0.3, 0.3]])
    dones = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    advantages = ppo.gae(rewards, values, dones, torch.tensor([0.6, 0.0]), gamma=0.9, lam=0.8)
    # env 0: A2 = 2 + 0.9 * 0.6 - 0.3; A1 = 0 - 0.4 (done: no future); A0 = 1 + 0.9 * 0.4 - 0.5 + 0.72 * A1
    # env 1: A2 = 1 - 0.3; A1 = 0.9 * 0.3 - 0.2 + 0.72 * A2; A0 = 0.9 * 0.2 - 0.1 + 0.72 * A1
    expected = torch.tensor([[0.572, 0.49328], [-0.4, 0.574], [2.24, 0.7]])
    torch.testing.assert_close(advantages, expected)


def test_the_clipped_loss_matches_hand_computed_values():
    ratios = torch.tensor([1.5, 0.5, 1.0])
    old = torch.tensor([-1.0, -2.0, -0.5])
    advantages = torch.tensor([3.0, 1.0, 2.0])  # normalised in the minibatch to [1, -1, 0]
    policy_loss, value_loss = ppo.ppo_losses(
        old + ratios.log(), old, advantages, torch.tensor([1.0, 2.0, 3.0]), torch.ones(3), clip=0.2
    )
    # min(1.5 * 1, 1.2 * 1) = 1.2; min(0.5 * -1, 0.8 * -1) = -0.8; 0: the mean is 0.4 / 3, negated
    assert policy_loss.item() == pytest.approx(-0.4 / 3, abs=1e-6)
    assert value_loss.item() == pytest.approx(5 / 3)


class _StubPool:
    """Two environments: at the second step env 0 is cut by the time limit, env 1 ends with a reward of 0.5."""

    def __init__(self):
        generator = np.random.default_rng(0)
        self.envs = [None, None]
        self.image = generator.integers(0, 6, (2, 7, 7, 3)).astype(np.uint8)
        self.final_image = generator.integers(0, 6, (7, 7, 3)).astype(np.uint8)
        self.calls = 0

    def observe(self):
        return torch.from_numpy(self.image), [MISSION, MISSION], None

    def step(self, actions):
        self.calls += 1
        step = PoolStep(np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool), [None, None], [None, None])
        if self.calls == 2:
            step.dones[:] = True
            step.truncated[0] = True
            step.final[0] = ({"image": self.final_image, "mission": MISSION}, None)
            step.rewards[1] = 0.5
            step.finished = [(0, 0.0, 2), (1, 0.5, 2)]
        return step


def test_a_time_limit_cut_bootstraps_from_the_observation_it_was_cut_at():
    torch.manual_seed(0)
    vocab = Vocab.babyai()
    policy = Policy(PolicyConfig(vocab_size=len(vocab), channels=8, memory=True)).eval()
    settings = ppo.PPOSettings(num_envs=2, steps=3, recurrence=3, gamma=0.9)
    pool = _StubPool()
    rollout = ppo._Actor(policy, pool, vocab, settings).collect()

    goals = torch.from_numpy(vocab.encode_batch([MISSION, MISSION]))
    with torch.no_grad():  # the memory after two steps, then the value of env 0's last observation
        _, _, hidden = policy(torch.from_numpy(pool.image), goals, policy.initial_state(2))
        _, _, hidden = policy(torch.from_numpy(pool.image), goals, hidden)
        _, final_value, _ = policy(torch.from_numpy(pool.final_image[None]), goals[:1], hidden[:1])
    rewards = rollout["rewards"]
    assert rewards[1, 0].item() == pytest.approx(0.9 * final_value.item(), rel=1e-5)  # cut: it had a future
    assert final_value.abs().item() > 1e-4  # so that the line above tells a bootstrap from none
    assert rewards[1, 1].item() == pytest.approx(0.5 * settings.reward_scale)  # a real end: no future
    assert rewards[0].abs().sum() == 0 and rewards[2].abs().sum() == 0
    assert rollout["dones"][1].tolist() == [1.0, 1.0]  # both episodes still end there for GAE


def test_demos_give_up_when_the_bot_keeps_failing(monkeypatch):
    import minigrid.utils.baby_ai_bot as bot_module

    class HopelessBot:
        def __init__(self, env):
            pass

        def replan(self):
            raise RuntimeError("no plan")

    monkeypatch.setattr(bot_module, "BabyAIBot", HopelessBot)
    with pytest.raises(ValueError, match=f"failed {MAX_FAILURES_IN_A_ROW} episodes in a row"):
        generate_demos("BabyAI-GoToRedBall-v0", episodes=3, seed=0)


def _recording_evaluate(seeds: list[int]):
    def fake_evaluate(policy, vocab, env_id, episodes, seed, greedy=True, **options):
        seeds.append(seed)
        return EvalResult(episodes, success_rate=1.0, mean_return=0.9, mean_steps=5.0)

    return fake_evaluate


def test_imitation_stops_on_the_check_episodes_and_reports_on_others(monkeypatch):
    seeds: list[int] = []
    monkeypatch.setattr(imitation, "evaluate", _recording_evaluate(seeds))
    demos = Demos(
        "BabyAI-GoToRedBall-v0", [MISSION] * 2, np.zeros((2, GOAL_DIM), np.uint8), np.arange(2), np.array([3, 2]),
        np.zeros((5, 7, 7, 3), np.uint8), np.array([0, 1, 2, 0, 1], np.uint8),
    )  # fmt: skip
    config = PolicyConfig(vocab_size=len(Vocab.babyai()), channels=8)
    settings = imitation.ILSettings(epochs=5, batch_episodes=1, eval_every=1, eval_episodes=4, target_success=0.9)
    result = imitation.train_imitation(demos, config, settings)
    assert result.updates == 1 and seeds == [CHECK_SEED, EVAL_SEED]
    assert result.history[-1]["success_rate"] == 1.0 and result.final_eval["episodes"] == 4


def test_ppo_stops_on_the_check_episodes_and_reports_on_others(monkeypatch):
    seeds: list[int] = []
    monkeypatch.setattr(ppo, "evaluate", _recording_evaluate(seeds))
    config = PolicyConfig(vocab_size=len(Vocab.babyai()), channels=8, memory=False)
    settings = ppo.PPOSettings(frames=4000, num_envs=4, steps=8, minibatch=16, window=1, target_success=0.0)
    result = ppo.train_ppo("BabyAI-GoToRedBallGrey-v0", config, settings)
    assert seeds == [CHECK_SEED, EVAL_SEED] and result.final_eval["success_rate"] == 1.0
    assert result.frames < settings.frames  # it stopped at the target
