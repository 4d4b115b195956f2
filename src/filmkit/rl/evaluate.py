"""Success rate, mean return and mean episode length of a policy; GIFs of episodes with the mission on each frame.

Example (needs the extra)::

    policy, checkpoint = load_policy("runs/gotoredball.pt")
    result = evaluate(policy, Vocab(checkpoint["vocab"]), "BabyAI-GoToRedBall-v0", episodes=512)
    result.success_rate, result.mean_return, result.mean_steps
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from filmkit.rl.acting import EnvPool, goal_tensor
from filmkit.rl.envs import Vocab, goal_vector, make_env, reset
from filmkit.rl.policy import Policy

# Evaluation episodes use seeds far from those of demos and training episodes (which count up from 0), so they
# are unseen layouts. The evaluations that decide when training stops (a target success rate) use the check seeds,
# and what is reported uses the others: a run that stops on lucky episodes is not reported on those same episodes.
CHECK_SEED = 500_000_000
EVAL_SEED = 1_000_000_000


@dataclass
class EvalResult:
    episodes: int
    success_rate: float  # BabyAI counts an episode a success when its reward is positive
    mean_return: float
    mean_steps: float


def choose_actions(logits: torch.Tensor, greedy: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """The most likely actions (greedy) or samples from the policy's distribution."""
    if greedy:
        return logits.argmax(dim=-1)
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def evaluate(
    policy: Policy,
    vocab: Vocab,
    env_id: str,
    episodes: int = 512,
    seed: int = EVAL_SEED,
    greedy: bool = True,
    num_envs: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Run exactly ``episodes`` episodes (seeds ``seed`` ... ``seed + episodes - 1``) in ``num_envs`` parallel envs."""
    was_training = policy.training
    policy.eval()
    pool = EnvPool(env_id, min(num_envs, episodes), seed)
    hidden = policy.initial_state(len(pool.envs))
    generator = torch.Generator().manual_seed(seed)
    results: dict[int, tuple[float, int]] = {}
    while len(results) < episodes:
        images, missions, vectors = pool.observe()
        logits, _, hidden = policy(images, goal_tensor(policy.config, vocab, missions, vectors), hidden)
        step = pool.step(choose_actions(logits, greedy, generator).numpy())
        dones, finished = step.dones, step.finished
        for item in finished:
            if item is not None and item[0] < seed + episodes:
                results[item[0]] = item[1:]
        if hidden is not None:
            hidden = hidden * torch.from_numpy(~dones).float()[:, None]  # a new episode starts with a blank memory
        if on_progress is not None and any(item is not None for item in finished):
            on_progress(len(results), episodes)
    pool.close()
    policy.train(was_training)
    returns = np.array([value[0] for value in results.values()])
    steps = np.array([value[1] for value in results.values()])
    return EvalResult(episodes, float((returns > 0).mean()), float(returns.mean()), float(steps.mean()))


@torch.no_grad()
def record_gif(policy: Policy, vocab: Vocab, env_id: str, path, episodes: int = 3, seed: int = EVAL_SEED) -> int:
    """Render ``episodes`` greedy episodes to an animated GIF with the mission written on every frame.

    Returns the number of frames written; the file is written atomically.
    """
    from PIL import Image, ImageDraw

    from filmkit.atomic import atomic_output

    policy.eval()
    env = make_env(env_id, render_mode="rgb_array")
    frames = []
    for episode in range(episodes):
        obs, hidden, done, reward = reset(env, seed=seed + episode), policy.initial_state(1), False, 0.0
        while True:
            frame = Image.fromarray(env.render())
            draw = ImageDraw.Draw(frame)
            draw.rectangle((0, 0, frame.width, 18), fill=(0, 0, 0))
            status = "" if not done else ("  success" if reward > 0 else "  failed")
            draw.text((4, 3), f"{obs['mission']}{status}", fill=(255, 255, 255))
            frames.append(frame)
            if done:
                frames.extend([frame] * 4)  # hold the last frame so the outcome can be read
                break
            vectors = goal_vector(env)[None] if policy.config.goal == "vector" else None
            goals = goal_tensor(policy.config, vocab, [obs["mission"]], vectors)
            logits, _, hidden = policy(torch.from_numpy(obs["image"][None]), goals, hidden)
            obs, reward, terminated, truncated, _ = env.step(int(logits.argmax()))
            done = terminated or truncated
    env.close()
    with atomic_output(path) as handle:
        frames[0].save(handle, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return len(frames)
