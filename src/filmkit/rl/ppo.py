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
from filmkit.rl.evaluate import evaluate
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

    With ``target_success``, an evaluation (sampling actions, on unseen seeds) runs whenever the windowed training
    success reaches it, and training stops when the evaluation agrees; ``result.episodes`` counts the training
    episodes used until then.
    """
    settings.check(config.memory)
    vocab = vocab or Vocab.babyai()
    torch.manual_seed(settings.seed)
    policy = Policy(config)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr, eps=1e-5)
    pool = EnvPool(env_id, settings.num_envs, settings.seed)
    n, t_max = settings.num_envs, settings.steps
    hidden = policy.initial_state(n)
    recent: deque[tuple[float, int]] = deque(maxlen=settings.window)
    result = PPOResult(policy)
    started, env_seconds = time.perf_counter(), 0.0
    info = {"trained_by": "ppo"}
    while result.frames < settings.frames:
        images, goals, hiddens, actions, logprobs, values, rewards, dones = ([] for _ in range(8))
        with torch.no_grad():
            for _ in range(t_max):
                image, missions, vectors = pool.observe()
                goal = goal_tensor(config, vocab, missions, vectors)
                logits, value, next_hidden = policy(image, goal, hidden)
                distribution = torch.distributions.Categorical(logits=logits)
                action = distribution.sample()
                tick = time.perf_counter()
                reward, done, finished = pool.step(action.numpy())
                env_seconds += time.perf_counter() - tick
                for item in finished:
                    if item is not None:
                        recent.append(item[1:])
                        result.episodes += 1
                images.append(image), goals.append(goal), hiddens.append(hidden), actions.append(action)
                logprobs.append(distribution.log_prob(action)), values.append(value)
                rewards.append(torch.from_numpy(reward) * settings.reward_scale)
                dones.append(torch.from_numpy(done).float())
                if next_hidden is not None:
                    hidden = next_hidden * (1 - dones[-1])[:, None]
            image, missions, vectors = pool.observe()
            _, last_value, _ = policy(image, goal_tensor(config, vocab, missions, vectors), hidden)
        result.frames += n * t_max
        # GAE: an episode's end (success, failure or time limit) cuts the bootstrap.
        advantages = torch.zeros(t_max, n)
        running = torch.zeros(n)
        for t in reversed(range(t_max)):
            next_value = last_value if t == t_max - 1 else values[t + 1]
            keep = 1 - dones[t]
            delta = rewards[t] + settings.gamma * next_value * keep - values[t]
            running = delta + settings.gamma * settings.gae_lambda * keep * running
            advantages[t] = running
        returns = advantages + torch.stack(values)
        rollout = {  # every tensor (steps, envs, ...)
            "images": torch.stack(images),
            "goals": _pad_goals(goals),
            "hidden": torch.stack(hiddens) if config.memory else None,
            "dones": torch.stack(dones),
            "actions": torch.stack(actions),
            "logprobs": torch.stack(logprobs),
            "advantages": advantages,
            "returns": returns,
        }
        losses = _update(policy, optimizer, rollout, settings)
        success = float(np.mean([r > 0 for r, _ in recent])) if recent else 0.0
        elapsed = time.perf_counter() - started
        report = {
            "update": len(result.history) + 1,
            "frames": result.frames,
            "episodes": result.episodes,
            "success_rate": success,
            "mean_return": float(np.mean([r for r, _ in recent])) if recent else 0.0,
            "frames_per_s": result.frames / elapsed,
            "env_frames_per_s": result.frames / env_seconds,
            "seconds": elapsed,
            **losses,
        }
        result.history.append(report)
        reached = settings.target_success is not None and len(recent) == recent.maxlen
        if reached and success >= settings.target_success:
            # Sampled actions, as in training: a memoryless policy acting greedily can turn in place forever.
            evaluation = evaluate(policy, vocab, env_id, settings.eval_episodes, greedy=False)
            report["eval_success_rate"] = evaluation.success_rate
            if evaluation.success_rate >= settings.target_success:
                result.final_eval = vars(evaluation)
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
            advantages = rollout["advantages"][rows, cols].flatten()
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            old_logprobs = rollout["logprobs"][rows, cols].flatten()
            ratio = torch.exp(distribution.log_prob(rollout["actions"][rows, cols].flatten()) - old_logprobs)
            clipped = torch.clamp(ratio, 1 - settings.clip, 1 + settings.clip)
            policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
            value_loss = (value.flatten() - rollout["returns"][rows, cols].flatten()).pow(2).mean()
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
