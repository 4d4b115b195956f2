"""Imitation learning (behavioural cloning) from bot demos, with periodic success-rate evaluation.

Whole episodes are the unit: a batch holds ``batch_episodes`` demos, memory runs through each from a blank state,
and the loss is the cross-entropy of the bot's action at every step.

Example (needs the extra)::

    demos = load_demos("gotoredball-25k.npz")
    result = train_imitation(demos, PolicyConfig(vocab_size=len(Vocab.babyai())), ILSettings(epochs=10))
    result.history[-1]["success_rate"], result.final_eval["success_rate"]   # check episodes, then reported ones
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from filmkit.rl.demos import Demos
from filmkit.rl.envs import Vocab
from filmkit.rl.evaluate import CHECK_SEED, EVAL_SEED, evaluate
from filmkit.rl.policy import Policy, PolicyConfig, save_policy


@dataclass
class ILSettings:
    epochs: int = 10
    batch_episodes: int = 64
    lr: float = 1e-3
    eval_every: int = 0  # updates between evaluations; 0: once per epoch
    eval_episodes: int = 512
    target_success: float | None = None  # stop at the first evaluation that reaches it
    seed: int = 0
    check_seed: int = CHECK_SEED  # the evaluations during training, which decide when to stop
    eval_seed: int = EVAL_SEED  # the final evaluation, which is reported


@dataclass
class ILResult:
    policy: Policy
    history: list[dict] = field(default_factory=list)  # one row per evaluation during training (check episodes)
    updates: int = 0
    seconds: float = 0.0
    final_eval: dict | None = None  # the trained policy on the evaluation episodes, which decided nothing


def train_imitation(
    demos: Demos,
    config: PolicyConfig,
    settings: ILSettings,
    vocab: Vocab | None = None,
    checkpoint: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> ILResult:
    """Behavioural cloning of ``demos``; evaluates on ``demos.env_id`` and returns the policy and its history.

    The evaluations during training (the history, and the ``target_success`` stop) run on the check episodes; the
    trained policy is then evaluated once on other episodes (``result.final_eval``), which is what to report.
    ``checkpoint``, if given, is rewritten (atomically) after every evaluation. ``on_progress`` receives a dict with
    update, total, loss and, after evaluations, success_rate.
    """
    vocab = vocab or Vocab.babyai()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    policy = Policy(config)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr)
    if config.goal == "text":
        episode_goals = torch.from_numpy(vocab.encode_batch(demos.missions))
    else:
        if not demos.goals.any(axis=1).all():
            raise ValueError(f"{demos.env_id} has missions without a goal vector; use goal=text")
        episode_goals = torch.from_numpy(demos.goals.astype(np.float32))
    offsets, lengths = demos.offsets(), demos.lengths
    per_epoch = max(1, demos.num_episodes // settings.batch_episodes)
    total = per_epoch * settings.epochs
    eval_every = settings.eval_every or per_epoch
    result, started, samples, train_seconds = ILResult(policy), time.perf_counter(), 0, 0.0
    for update in range(1, total + 1):
        if (update - 1) % per_epoch == 0:
            order = rng.permutation(demos.num_episodes)
        batch = order[((update - 1) % per_epoch) * settings.batch_episodes :][: settings.batch_episodes]
        tick = time.perf_counter()
        steps = np.concatenate([np.arange(offsets[e], offsets[e] + lengths[e]) for e in batch])
        batch_lengths = torch.from_numpy(lengths[batch])
        images = torch.from_numpy(demos.images[steps])
        goals = episode_goals[batch].repeat_interleave(batch_lengths, dim=0)
        actions = torch.from_numpy(demos.actions[steps].astype(np.int64))
        logits = policy.forward_episodes(images, goals, batch_lengths)
        loss = nn.functional.cross_entropy(logits, actions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_seconds += time.perf_counter() - tick
        samples += len(steps)
        report = {"update": update, "total": total, "loss": loss.item(), "samples_per_s": samples / train_seconds}
        if update % eval_every == 0 or update == total:
            evaluation = evaluate(policy, vocab, demos.env_id, settings.eval_episodes, settings.check_seed)
            report.update(
                epoch=update / per_epoch,
                demos=demos.num_episodes,
                samples=samples,
                accuracy=float((logits.argmax(-1) == actions).float().mean()),
                success_rate=evaluation.success_rate,
                mean_return=evaluation.mean_return,
                mean_steps=evaluation.mean_steps,
                seconds=time.perf_counter() - started,
            )
            result.history.append(report)
            if checkpoint is not None:
                reached = settings.target_success is not None and evaluation.success_rate >= settings.target_success
                info = {"trained_by": "imitation", "demos": demos.num_episodes, "updates": update}
                info["finished"] = update == total or reached  # False: a rerun may replace this checkpoint
                save_policy(checkpoint, policy, demos.env_id, vocab.words, result.history, info)
        if on_progress is not None:
            on_progress(report)
        result.updates = update
        if settings.target_success is not None and report.get("success_rate", 0.0) >= settings.target_success:
            break
    result.final_eval = vars(evaluate(policy, vocab, demos.env_id, settings.eval_episodes, settings.eval_seed))
    if checkpoint is not None:
        info = {"trained_by": "imitation", "demos": demos.num_episodes, "updates": result.updates, "finished": True}
        info["final_eval"] = result.final_eval
        save_policy(checkpoint, policy, demos.env_id, vocab.words, result.history, info)
    result.seconds = time.perf_counter() - started
    policy.eval()
    return result
