"""Running policies in environments: a pool of in-process environments and the goal tensors a policy reads.

Example (needs the extra)::

    from filmkit.rl.acting import EnvPool, goal_tensor
    pool = EnvPool("BabyAI-GoToRedBall-v0", num_envs=4, seed=0)
    images, missions, vectors = pool.observe()
    goals = goal_tensor(policy.config, vocab, missions, vectors)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from filmkit.rl.envs import Vocab, goal_vector, make_env, reset
from filmkit.rl.policy import PolicyConfig


def goal_tensor(config: PolicyConfig, vocab: Vocab, missions, vectors) -> torch.Tensor:
    """Mission ids (goal="text") or goal vectors (goal="vector") for a batch, as the policy expects them."""
    if config.goal == "text":
        return torch.from_numpy(vocab.encode_batch(missions))
    if vectors is None:
        raise ValueError(f"a vector-conditioned policy needs goal vectors, and {missions[0]!r} has none")
    return torch.as_tensor(np.asarray(vectors), dtype=torch.float32)


@dataclass
class PoolStep:
    """What one lockstep step of an `EnvPool` did, per environment."""

    rewards: np.ndarray  # (N,) float32
    dones: np.ndarray  # (N,) bool: the episode ended (terminated or cut by the time limit) and restarted
    truncated: np.ndarray  # (N,) bool: it ended by the time limit only, so its last state still had a future
    finished: list[tuple[int, float, int] | None]  # for ended episodes: (seed, return, steps)
    # For truncated episodes: the last observation and goal vector (None without one), taken before the restart.
    final: list[tuple[dict, np.ndarray | None] | None]


class EnvPool:
    """``num_envs`` environments stepped in lockstep in this process; an episode that ends restarts at once.

    Episode k of the pool (counting from 0 in the order they start) uses seed ``seed + k``, so runs are repeatable.
    ``step`` returns a `PoolStep`.
    """

    def __init__(self, env_id: str, num_envs: int, seed: int = 0, render_mode: str | None = None):
        self.envs = [make_env(env_id, render_mode) for _ in range(num_envs)]
        self.next_seed = seed
        self.obs: list[dict] = [{} for _ in self.envs]
        self.returns = np.zeros(num_envs)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.episode_seeds = np.zeros(num_envs, dtype=np.int64)
        for i in range(num_envs):
            self._restart(i)

    def _restart(self, i: int) -> None:
        self.episode_seeds[i] = self.next_seed
        self.obs[i] = reset(self.envs[i], seed=self.next_seed)
        self.next_seed += 1
        self.returns[i], self.steps[i] = 0.0, 0

    def observe(self) -> tuple[torch.Tensor, list[str], np.ndarray | None]:
        """(N, 7, 7, 3) uint8 images, the N missions, and the N goal vectors (None if a mission has none)."""
        images = torch.from_numpy(np.stack([obs["image"] for obs in self.obs]))
        missions = [obs["mission"] for obs in self.obs]
        vectors = _goal_vectors(self.envs)
        return images, missions, None if any(v is None for v in vectors) else np.stack(vectors)

    def step(self, actions) -> PoolStep:
        n = len(self.envs)
        step = PoolStep(np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool), [None] * n, [None] * n)
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, terminated, truncated, _ = env.step(int(action))
            self.obs[i] = obs
            step.rewards[i] = reward
            self.returns[i] += reward
            self.steps[i] += 1
            if terminated or truncated:
                step.dones[i] = True
                step.finished[i] = (int(self.episode_seeds[i]), float(self.returns[i]), int(self.steps[i]))
                if truncated and not terminated:
                    step.truncated[i] = True
                    step.final[i] = (obs, _goal_vectors([env])[0])
                self._restart(i)
        return step

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _goal_vectors(envs) -> list[np.ndarray | None]:
    """Each environment's current goal vector, or None for a mission without a vector form."""
    vectors = []
    for env in envs:
        try:
            vectors.append(goal_vector(env))
        except ValueError:
            vectors.append(None)
    return vectors
