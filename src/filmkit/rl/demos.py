"""Expert demonstrations from minigrid's BabyAI bot, stored compactly in one ``.npz`` file.

A demos file holds every step's 7x7x3 uint8 observation and the bot's action, laid end to end, plus per episode the
mission, the goal vector (uint8 one-hot), its length and its seed: about 150 bytes per step before compression.

Example (needs the extra)::

    demos = generate_demos("BabyAI-GoToRedBall-v0", episodes=1000, seed=0)
    save_demos("gotoredball-1k.npz", demos)
    load_demos("gotoredball-1k.npz").num_steps      # about 5,500
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from filmkit.rl.envs import GOAL_DIM, goal_vector, make_env, reset

KIND = "filmkit-rl-demos"
# The bot fails on a few layouts of hard levels; this many failures in a row means it cannot solve the level at all.
MAX_FAILURES_IN_A_ROW = 100


@dataclass
class Demos:
    env_id: str
    missions: list[str]
    goals: np.ndarray  # (E, GOAL_DIM) uint8; all zeros for missions without a vector form
    seeds: np.ndarray  # (E,) int64
    lengths: np.ndarray  # (E,) int64
    images: np.ndarray  # (sum(lengths), 7, 7, 3) uint8
    actions: np.ndarray  # (sum(lengths),) uint8

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def num_steps(self) -> int:
        return len(self.actions)

    def offsets(self) -> np.ndarray:
        """Index of each episode's first step."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def head(self, episodes: int) -> Demos:
        """The first ``episodes`` episodes (for sample-efficiency curves from one big file)."""
        steps = int(self.lengths[:episodes].sum())
        return Demos(self.env_id, self.missions[:episodes], self.goals[:episodes], self.seeds[:episodes],
                     self.lengths[:episodes], self.images[:steps], self.actions[:steps])  # fmt: skip


def generate_demos(
    env_id: str, episodes: int, seed: int = 0, on_progress: Callable[[int, int], None] | None = None
) -> tuple[Demos, int]:
    """Run the BabyAI bot for ``episodes`` successful episodes (seeds ``seed``, ``seed + 1``, ...).

    Returns the demos and how many episodes were dropped because the bot failed or raised (rare; never seen on the
    GoTo levels); ValueError after MAX_FAILURES_IN_A_ROW failures in a row. ``on_progress(done, total)`` is called
    every 100 episodes.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    env = make_env(env_id)  # first: it gives the install hint when minigrid is missing
    from minigrid.utils.baby_ai_bot import BabyAIBot

    missions, goals, seeds, lengths, images, actions = [], [], [], [], [], []
    dropped, failures_in_a_row, episode_seed = 0, 0, seed
    while len(missions) < episodes:
        obs = reset(env, seed=episode_seed)
        episode_seed += 1
        episode_images, episode_actions, reward, done = [], [], 0.0, False
        try:
            bot = BabyAIBot(env)
            while not done:
                action = int(bot.replan())
                episode_images.append(obs["image"])
                episode_actions.append(action)
                obs, reward, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
        except Exception:  # the bot gives up on a few layouts of hard levels by raising; such episodes are dropped
            reward = 0.0
        if reward <= 0:
            dropped += 1
            failures_in_a_row += 1
            if failures_in_a_row == MAX_FAILURES_IN_A_ROW:
                env.close()
                raise ValueError(
                    f"the BabyAI bot failed {failures_in_a_row} episodes in a row on {env_id} (seeds "
                    f"{episode_seed - failures_in_a_row}-{episode_seed - 1}); it cannot make demos of this level"
                )
            continue
        failures_in_a_row = 0
        try:
            goals.append(goal_vector(env).astype(np.uint8))
        except ValueError:
            goals.append(np.zeros(GOAL_DIM, np.uint8))
        missions.append(env.unwrapped.mission)
        seeds.append(episode_seed - 1)
        lengths.append(len(episode_actions))
        images.extend(episode_images)
        actions.extend(episode_actions)
        if on_progress is not None and (len(missions) % 100 == 0 or len(missions) == episodes):
            on_progress(len(missions), episodes)
    env.close()
    demos = Demos(env_id, missions, np.stack(goals), np.array(seeds, np.int64), np.array(lengths, np.int64),
                  np.stack(images).astype(np.uint8), np.array(actions, np.uint8))  # fmt: skip
    return demos, dropped


def save_demos(path, demos: Demos) -> None:
    """Write demos as a compressed ``.npz`` atomically (no pickled objects inside)."""
    from filmkit.atomic import atomic_output

    with atomic_output(path) as handle:
        np.savez_compressed(
            handle,
            kind=np.array(KIND),
            env_id=np.array(demos.env_id),
            missions=np.array(demos.missions),
            goals=demos.goals,
            seeds=demos.seeds,
            lengths=demos.lengths,
            images=demos.images,
            actions=demos.actions,
        )


def load_demos(path) -> Demos:
    """Read a demos file; ValueError naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "kind" not in data or str(data["kind"]) != KIND:
                raise ValueError(f"{path}: not a filmkit demos file (make one with filmkit rl demos)")
            return Demos(str(data["env_id"]), [str(m) for m in data["missions"]], data["goals"], data["seeds"],
                         data["lengths"], data["images"], data["actions"])  # fmt: skip
    except (OSError, EOFError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith(f"{path}:"):
            raise
        # numpy's own message suggests allow_pickle=True, which would execute what the file holds: not shown.
        raise ValueError(f"{path}: not a filmkit demos file (make one with filmkit rl demos)") from None
