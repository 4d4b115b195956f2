"""Proximal policy optimisation (PPO, Schulman et al. 2017) for the goal-conditioned policies, BabyAI's settings.

Rollouts of ``steps`` steps from ``num_envs`` in-process environments; advantages by GAE; ``epochs`` passes of
clipped-ratio updates in minibatches. With memory, a minibatch is made of stretches of ``recurrence`` consecutive
steps of one environment: each starts from the GRU state recorded while acting and backpropagates through all its
steps (truncated backpropagation through time; BabyAI's setting is 20).

Example (needs the extra)::

    config = PolicyConfig(vocab_size=len(Vocab.babyai()))
    result = train_ppo("BabyAI-GoToRedBallGrey-v0", config, PPOSettings(frames=500_000, target_success=0.99))
    result.episodes, result.history[-1]["success_rate"]
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from filmkit.rl.acting import EnvPool, goal_tensor
from filmkit.rl.envs import Vocab
from filmkit.rl.evaluate import CHECK_SEED, EVAL_SEED, evaluate
from filmkit.rl.policy import Policy, PolicyConfig, save_policy


@dataclass
class PPOSettings:
    frames: int = 1_000_000  # environment steps, all environments together
    num_envs: int = 16
    steps: int = 40  # per environment per rollout
    lr: float = 5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.99
    clip: float = 0.2
    epochs: int = 4
    minibatch: int = 320  # steps per minibatch (with memory: minibatch // recurrence stretches)
    recurrence: int = 20  # steps of backpropagation through time with memory; must divide ``steps``
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 20.0  # BabyAI's: rewards are at most 1
    target_success: float | None = None  # stop once a greedy evaluation reaches it
    window: int = 512  # training episodes the logged success rate averages over
    eval_episodes: int = 512
    seed: int = 0

    def check(self, memory: bool) -> None:
        """Raise ValueError for settings a policy with (or without) memory cannot train with."""
        if memory and (self.recurrence < 1 or self.steps % self.recurrence):
            raise ValueError(f"recurrence ({self.recurrence}) must be a positive divisor of steps ({self.steps})")
        if memory and self.minibatch < self.recurrence:
            raise ValueError(f"minibatch ({self.minibatch}) must hold at least one stretch of {self.recurrence} steps")


@dataclass
class PPOResult:
    policy: Policy
    history: list[dict] = field(default_factory=list)  # one row per update
    frames: int = 0
    episodes: int = 0
    seconds: float = 0.0
    final_eval: dict | None = None


def _pad_goals(goals: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-step goal batches; mission ids of different lengths are right-padded with 0."""
    if goals[0].dtype != torch.long:
        return torch.stack(goals)
    width = max(g.shape[1] for g in goals)
    return torch.stack([nn.functional.pad(g, (0, width - g.shape[1])) for g in goals])


def train_ppo(
    env_id: str,
    config: PolicyConfig,
    settings: PPOSettings,
    vocab: Vocab | None = None,
    checkpoint: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> PPOResult:
    """Train a fresh policy with PPO on ``env_id``; ``checkpoint`` is rewritten (atomically) every 10 updates.

    With ``target_success``, an evaluation (sampling actions) on the check episodes (seeds from CHECK_SEED) runs
    whenever the windowed training success reaches it; training stops when that evaluation agrees, and
    ``result.final_eval`` is then measured on other, unseen episodes (seeds from EVAL_SEED), so that the episodes
    that decided to stop are not the ones reported. ``result.episodes`` counts the training episodes used.
    """
    settings.check(config.memory)
    vocab = vocab or Vocab.babyai()
    torch.manual_seed(settings.seed)
    policy = Policy(config)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr, eps=1e-5)
    pool = EnvPool(env_id, settings.num_envs, settings.seed)
    actor = _Actor(policy, pool, vocab, settings)
    result = PPOResult(policy)
    started = time.perf_counter()
    info = {"trained_by": "ppo"}
    while result.frames < settings.frames:
        rollout = actor.collect()
        result.frames += settings.num_envs * settings.steps
        result.episodes = actor.episodes
        losses = _update(policy, optimizer, rollout, settings)
        report = _report(len(result.history) + 1, result, actor, time.perf_counter() - started, losses)
        result.history.append(report)
        window_full = len(actor.recent) == actor.recent.maxlen
        if settings.target_success is not None and window_full and report["success_rate"] >= settings.target_success:
            result.final_eval = _check_target(policy, vocab, env_id, settings, report)
        if on_progress is not None:
            on_progress(report)
        done_training = result.final_eval is not None or result.frames >= settings.frames
        if checkpoint is not None and (len(result.history) % 10 == 0 or done_training):
            # finished False marks the checkpoint of a run still going (or killed): a rerun may replace it
            info.update(frames=result.frames, episodes=result.episodes, finished=done_training)
            save_policy(checkpoint, policy, env_id, vocab.words, result.history, info)
        if result.final_eval is not None:
            break
    pool.close()
    result.seconds = time.perf_counter() - started
    policy.eval()
    return result


def _check_target(policy: Policy, vocab: Vocab, env_id: str, settings: PPOSettings, report: dict) -> dict | None:
    """Evaluate on the check episodes; if they reach the target, the evaluation to report, on other episodes."""
    # Sampled actions, as in training: a memoryless policy acting greedily can turn in place forever.
    check = evaluate(policy, vocab, env_id, settings.eval_episodes, CHECK_SEED, greedy=False)
    report["eval_success_rate"] = check.success_rate
    if check.success_rate < settings.target_success:
        return None
    return vars(evaluate(policy, vocab, env_id, settings.eval_episodes, EVAL_SEED, greedy=False))


def _report(update: int, result: PPOResult, actor: _Actor, elapsed: float, losses: dict) -> dict:
    recent = actor.recent
    return {
        "update": update,
        "frames": result.frames,
        "episodes": result.episodes,
        "success_rate": float(np.mean([r > 0 for r, _ in recent])) if recent else 0.0,
        "mean_return": float(np.mean([r for r, _ in recent])) if recent else 0.0,
        "frames_per_s": result.frames / elapsed,
        "env_frames_per_s": result.frames / actor.env_seconds,
        "seconds": elapsed,
        **losses,
    }


class _Actor:
    """Runs the policy in the pool and collects rollouts; keeps the memory state and the episode tally between them."""

    def __init__(self, policy: Policy, pool: EnvPool, vocab: Vocab, settings: PPOSettings):
        self.policy, self.pool, self.vocab, self.settings = policy, pool, vocab, settings
        self.hidden = policy.initial_state(len(pool.envs))
        self.recent: deque[tuple[float, int]] = deque(maxlen=settings.window)  # (return, steps) of last episodes
        self.episodes, self.env_seconds = 0, 0.0

    def _goals(self, missions, vectors) -> torch.Tensor:
        return goal_tensor(self.policy.config, self.vocab, missions, vectors)

    @torch.no_grad()
    def collect(self) -> dict:
        """One rollout of ``settings.steps`` steps per environment, with advantages and returns (see `gae`).

        An episode cut by the time limit did not end in its last state: its last reward gets gamma times the value
        of the observation it was cut at (as stable-baselines3 and cleanrl do), instead of the zero future that a
        real end (success or failure) has.
        """
        policy, settings = self.policy, self.settings
        images, goals, hiddens, actions, logprobs, values, rewards, dones = ([] for _ in range(8))
        for _ in range(settings.steps):
            image, missions, vectors = self.pool.observe()
            goal = self._goals(missions, vectors)
            logits, value, next_hidden = policy(image, goal, self.hidden)
            distribution = torch.distributions.Categorical(logits=logits)
            action = distribution.sample()
            tick = time.perf_counter()
            step = self.pool.step(action.numpy())
            self.env_seconds += time.perf_counter() - tick
            for item in step.finished:
                if item is not None:
                    self.recent.append(item[1:])
                    self.episodes += 1
            reward = torch.from_numpy(step.rewards) * settings.reward_scale
            if step.truncated.any():
                reward += settings.gamma * self._final_values(step, next_hidden)
            images.append(image), goals.append(goal), hiddens.append(self.hidden), actions.append(action)
            logprobs.append(distribution.log_prob(action)), values.append(value), rewards.append(reward)
            dones.append(torch.from_numpy(step.dones).float())
            if next_hidden is not None:
                self.hidden = next_hidden * (1 - dones[-1])[:, None]  # a new episode starts with a blank memory
        image, missions, vectors = self.pool.observe()
        _, last_value, _ = policy(image, self._goals(missions, vectors), self.hidden)
        values, dones = torch.stack(values), torch.stack(dones)
        advantages = gae(torch.stack(rewards), values, dones, last_value, settings.gamma, settings.gae_lambda)
        return {  # every tensor (steps, envs, ...)
            "images": torch.stack(images),
            "goals": _pad_goals(goals),
            "hidden": torch.stack(hiddens) if policy.config.memory else None,
            "dones": dones,
            "actions": torch.stack(actions),
            "logprobs": torch.stack(logprobs),
            "rewards": torch.stack(rewards),  # scaled, with the time limit's bootstrap added
            "advantages": advantages,
            "returns": advantages + values,
        }

    def _final_values(self, step, next_hidden: torch.Tensor | None) -> torch.Tensor:
        """(N,) values of the observations the time limit cut episodes at; 0 for every other environment."""
        cut = np.flatnonzero(step.truncated)
        observations = [step.final[i][0] for i in cut]
        vectors = [step.final[i][1] for i in cut]
        image = torch.from_numpy(np.stack([obs["image"] for obs in observations]))
        goal = self._goals(
            [obs["mission"] for obs in observations], None if any(v is None for v in vectors) else np.stack(vectors)
        )
        hidden = next_hidden[torch.from_numpy(cut)] if next_hidden is not None else None
        _, value, _ = self.policy(image, goal, hidden)
        values = torch.zeros(len(step.truncated))
        values[torch.from_numpy(cut)] = value
        return values


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016) of a (steps, envs) rollout.

    ``dones[t]`` marks an episode that ended at step t: nothing after it is its future. ``last_value`` is the value
    of the observation after the rollout's last step.
    """
    steps = len(rewards)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else values[t + 1]
        keep = 1 - dones[t]
        delta = rewards[t] + gamma * next_value * keep - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
    return advantages


def ppo_losses(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
    returns: torch.Tensor, clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """PPO's clipped policy loss and the value loss, for flat tensors of one minibatch.

    The advantages are normalised within the minibatch first; the policy loss is the mean of
    -min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A) with ratio = exp(logprob - old logprob).
    """
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
    value_loss = (values - returns).pow(2).mean()
    return policy_loss, value_loss


def _update(policy: Policy, optimizer, rollout: dict, settings: PPOSettings) -> dict:
    """``settings.epochs`` passes of clipped PPO over the rollout in shuffled minibatches; mean losses.

    A minibatch is a set of stretches of ``recurrence`` consecutive steps of one environment (single steps without
    memory), replayed from the memory state recorded at each stretch's start.
    """
    policy.train()
    steps, envs = rollout["actions"].shape
    length = settings.recurrence if rollout["hidden"] is not None else 1
    starts = torch.arange(0, steps, length).repeat_interleave(envs)  # (stretch start, environment) pairs
    columns = torch.arange(envs).repeat(steps // length)
    totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0}
    count = 0
    for _ in range(settings.epochs):
        for chosen in torch.randperm(len(starts)).split(settings.minibatch // length):
            rows = starts[chosen][None] + torch.arange(length)[:, None]  # (length, stretches)
            cols = columns[chosen][None].expand(length, -1)
            hidden = rollout["hidden"][starts[chosen], columns[chosen]] if rollout["hidden"] is not None else None
            logits, value = policy.forward_sequences(
                rollout["images"][rows, cols], rollout["goals"][rows, cols], hidden, rollout["dones"][rows, cols]
            )
            distribution = torch.distributions.Categorical(logits=logits.flatten(0, 1))
            policy_loss, value_loss = ppo_losses(
                distribution.log_prob(rollout["actions"][rows, cols].flatten()),
                rollout["logprobs"][rows, cols].flatten(),
                rollout["advantages"][rows, cols].flatten(),
                value.flatten(),
                rollout["returns"][rows, cols].flatten(),
                settings.clip,
            )
            entropy = distribution.entropy().mean()
            loss = policy_loss + settings.value_coef * value_loss - settings.entropy_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), settings.max_grad_norm)
            optimizer.step()
            totals["policy_loss"] += policy_loss.item()
            totals["value_loss"] += value_loss.item()
            totals["entropy"] += entropy.item()
            count += 1
    return {key: value / count for key, value in totals.items()}
