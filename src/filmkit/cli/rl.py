"""`filmkit rl ...`: bot demos, imitation learning, PPO and evaluation on BabyAI levels (needs the [rl] extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import fail, progress_bars, refuse_existing

rl_app = typer.Typer(
    help="Goal-conditioned control on BabyAI/MiniGrid with FiLM policies (needs the rl extra).",
    no_args_is_help=True,
)
app.add_typer(rl_app, name="rl")

THREADS_HELP = "Torch threads (default: torch's own choice)."
TRAINED_OVERWRITE_HELP = "Replace --out if it exists (a checkpoint that a run left unfinished is replaced anyway)."
MEMORY_SKIP_HELP = "With memory: the heads read the pooled features plus the memory's output, not its output alone."
FILM_POSITION_HELP = "Where FiLM acts in each block: input (before the first conv) or output (after the second)."


def _setup(
    threads: int | None,
    out: Path | None = None,
    overwrite: bool = False,
    env: str | None = None,
    training: bool = False,
) -> None:
    """Check the extra is installed, the level exists, ``out`` may be written; set the thread count.

    ``training``: ``out`` is a checkpoint a training run rewrites as it goes; one such run left unfinished (killed,
    or failed) is replaced without ``--overwrite``.
    """
    import torch

    from filmkit.rl.envs import make_env, require_minigrid

    try:
        require_minigrid()
        if env is not None:
            make_env(env).close()
    except (ImportError, ValueError) as error:
        fail(str(error))
    if training and out is not None and not overwrite and out.is_file():
        from filmkit.rl.policy import is_unfinished

        if is_unfinished(out):
            typer.echo(f"replacing {out}: the checkpoint of a training run that did not finish", err=True)
            overwrite = True
    refuse_existing(out, overwrite=overwrite)
    if threads is not None:
        if threads < 1:
            fail(f"--threads must be positive, got {threads}")
        torch.set_num_threads(threads)


def _policy_config(vocab_size: int, conditioning, goal, channels, memory, film_position, memory_skip):
    """The policy both training commands build from their shared options (ValueError names a bad one)."""
    from filmkit.rl.envs import GOAL_DIM
    from filmkit.rl.policy import PolicyConfig

    return PolicyConfig(
        conditioning, goal, vocab_size, GOAL_DIM, channels=channels, memory=memory, film_position=film_position,
        memory_skip=memory_skip,
    )  # fmt: skip


def _load(checkpoint: Path):
    from filmkit.rl.policy import load_policy

    if not checkpoint.is_file():
        fail(f"checkpoint {checkpoint} does not exist")
    try:
        return load_policy(checkpoint)
    except ValueError as error:
        fail(str(error))


@rl_app.command("demos")
def demos_command(
    env: str = typer.Option(..., "--env", help="BabyAI level, e.g. BabyAI-GoToRedBall-v0."),
    episodes: int = typer.Option(..., "--episodes", help="Successful bot episodes to record."),
    out: Path = typer.Option(..., "--out", help="Demos file to write (.npz)."),
    seed: int = typer.Option(0, help="Seed of the first episode; episode k uses seed + k."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    threads: int | None = typer.Option(None, help=THREADS_HELP),
) -> None:
    """Record demonstrations of minigrid's BabyAI bot."""
    from filmkit.rl.demos import generate_demos, save_demos

    _setup(threads, out, overwrite, env)
    with progress_bars() as bar:
        task = bar.add_task("demos", total=episodes, info="")
        try:
            demos, dropped = generate_demos(env, episodes, seed, lambda done, _: bar.update(task, completed=done))
        except ValueError as error:
            fail(str(error))
    save_demos(out, demos)
    mean = demos.num_steps / demos.num_episodes
    typer.echo(
        f"{demos.num_episodes} demos ({demos.num_steps} steps, {mean:.1f} per episode, {dropped} dropped) -> {out}"
    )


@rl_app.command("train-il")
def train_il_command(
    demos_path: Path = typer.Option(..., "--demos", help="Demos file from `filmkit rl demos`."),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (rewritten after every evaluation)."),
    max_demos: int | None = typer.Option(None, help="Train on the first N demos only."),
    conditioning: str = typer.Option("film", help="film or concat (the baseline)."),
    goal: str = typer.Option("text", help="text (mission words) or vector (structured goal vector)."),
    memory: bool = typer.Option(True, help="GRU memory across an episode's steps."),
    film_position: str = typer.Option("input", help=FILM_POSITION_HELP),
    memory_skip: bool = typer.Option(True, help=MEMORY_SKIP_HELP),
    channels: int = typer.Option(64, help="Width of the conv blocks."),
    epochs: int = typer.Option(10, help="Passes over the demos."),
    batch_episodes: int = typer.Option(64, help="Demos per update."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    eval_every: int = typer.Option(0, help="Updates between evaluations (0: every epoch)."),
    eval_episodes: int = typer.Option(512, help="Episodes per evaluation."),
    target: float | None = typer.Option(None, help="Stop once an evaluation reaches this success rate, e.g. 0.99."),
    seed: int = typer.Option(0, help="Seed of initialisation and batch order."),
    overwrite: bool = typer.Option(False, "--overwrite", help=TRAINED_OVERWRITE_HELP),
    threads: int | None = typer.Option(None, help=THREADS_HELP),
) -> None:
    """Behavioural cloning of bot demos; prints the success rate at every evaluation."""
    from filmkit.rl.demos import load_demos
    from filmkit.rl.envs import Vocab
    from filmkit.rl.imitation import ILSettings, train_imitation

    _setup(threads, out, overwrite, training=True)
    if not demos_path.is_file():
        fail(f"demos file {demos_path} does not exist")
    vocab = Vocab.babyai()
    try:
        demos = load_demos(demos_path)
        if max_demos is not None:
            if not 1 <= max_demos <= demos.num_episodes:
                fail(f"--max-demos {max_demos} is outside 1..{demos.num_episodes} (the demos in {demos_path})")
            demos = demos.head(max_demos)
        config = _policy_config(len(vocab), conditioning, goal, channels, memory, film_position, memory_skip)
        settings = ILSettings(epochs, batch_episodes, lr, eval_every, eval_episodes, target, seed)
    except ValueError as error:
        fail(str(error))
    with progress_bars() as bar:
        task = bar.add_task("imitation", total=None, info="")

        def show(report: dict) -> None:
            info = f"loss {report['loss']:.3f} {report['samples_per_s']:.0f} samples/s"
            if "success_rate" in report:
                bar.console.print(
                    f"epoch {report['epoch']:.1f}: success {report['success_rate']:.1%} "
                    f"mean return {report['mean_return']:.3f} steps {report['mean_steps']:.1f}"
                )
            bar.update(task, completed=report["update"], total=report["total"], info=info)

        try:
            result = train_imitation(demos, config, settings, vocab, str(out), show)
        except ValueError as error:
            fail(str(error))
    last = result.history[-1]
    typer.echo(
        f"{demos.num_episodes} demos, {result.updates} updates in {result.seconds / 60:.1f} min "
        f"({last['samples_per_s']:.0f} samples/s): success {result.final_eval['success_rate']:.1%} on "
        f"{eval_episodes} evaluation episodes of {demos.env_id} (not those that chose when to stop); checkpoint {out}"
    )


@rl_app.command("train-ppo")
def train_ppo_command(
    env: str = typer.Option(..., "--env", help="BabyAI level, e.g. BabyAI-GoToRedBallGrey-v0."),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (rewritten every 10 updates)."),
    frames: int = typer.Option(1_000_000, help="Environment steps to train for at most."),
    target: float | None = typer.Option(
        None, help="Stop once an evaluation (sampled actions) reaches this success, e.g. 0.99."
    ),
    conditioning: str = typer.Option("film", help="film or concat (the baseline)."),
    goal: str = typer.Option("text", help="text (mission words) or vector (structured goal vector)."),
    memory: bool = typer.Option(True, help="GRU memory across an episode's steps."),
    film_position: str = typer.Option("input", help=FILM_POSITION_HELP),
    memory_skip: bool = typer.Option(True, help=MEMORY_SKIP_HELP),
    channels: int = typer.Option(64, help="Width of the conv blocks."),
    num_envs: int = typer.Option(16, "--envs", help="Environments stepped in lockstep in this process."),
    steps: int = typer.Option(40, help="Steps per environment per rollout."),
    lr: float = typer.Option(5e-4, help="Adam learning rate."),
    minibatch: int = typer.Option(320, help="Steps per PPO minibatch."),
    recurrence: int = typer.Option(
        20, help="With memory: steps of backpropagation through time (BabyAI: 20); must divide --steps."
    ),
    entropy: float = typer.Option(0.01, help="Entropy bonus coefficient (BabyAI: 0.01)."),
    seed: int = typer.Option(0, help="Seed of initialisation and episodes."),
    overwrite: bool = typer.Option(False, "--overwrite", help=TRAINED_OVERWRITE_HELP),
    threads: int | None = typer.Option(None, help=THREADS_HELP),
) -> None:
    """PPO from scratch; logs windowed success rate, return and frames/s."""
    from filmkit.rl.envs import Vocab
    from filmkit.rl.ppo import PPOSettings, train_ppo

    _setup(threads, out, overwrite, env, training=True)
    vocab = Vocab.babyai()
    try:
        config = _policy_config(len(vocab), conditioning, goal, channels, memory, film_position, memory_skip)
        settings = PPOSettings(
            frames, num_envs, steps, lr, minibatch=minibatch, recurrence=recurrence, entropy_coef=entropy,
            target_success=target, seed=seed,
        )  # fmt: skip
    except ValueError as error:
        fail(str(error))
    with progress_bars() as bar:
        task = bar.add_task("ppo", total=frames, info="")

        def show(report: dict) -> None:
            info = (
                f"{report['episodes']} episodes, success {report['success_rate']:.1%}, "
                f"{report['frames_per_s']:.0f} frames/s"
            )
            if report["update"] % 10 == 0 or "eval_success_rate" in report:
                evaluated = f", eval {report['eval_success_rate']:.1%}" if "eval_success_rate" in report else ""
                bar.console.print(f"{report['frames']} frames: {info}{evaluated}")
            bar.update(task, completed=report["frames"], info=info)

        try:
            result = train_ppo(env, config, settings, vocab, str(out), show)
        except ValueError as error:
            fail(str(error))
    last = result.history[-1]
    training = f"training success {last['success_rate']:.1%}"
    if result.final_eval:
        outcome = f"success {result.final_eval['success_rate']:.1%} on {settings.eval_episodes} evaluation episodes"
    else:
        outcome = training if target is None else f"target not reached ({training})"
    typer.echo(
        f"{env}: {result.frames} frames, {result.episodes} episodes in {result.seconds / 60:.1f} min "
        f"({last['frames_per_s']:.0f} frames/s, env alone {last['env_frames_per_s']:.0f}); {outcome}; checkpoint {out}"
    )


@rl_app.command("eval")
def eval_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Policy checkpoint from train-il or train-ppo."),
    env: str | None = typer.Option(None, "--env", help="Level to evaluate on (default: the one it was trained on)."),
    episodes: int = typer.Option(512, help="Evaluation episodes."),
    seed: int = typer.Option(1_000_000_000, help="Seed of the first episode (demos use seeds from 0)."),
    greedy: bool = typer.Option(
        True, help="Take the most likely action; --no-greedy samples (fairer for policies without memory)."
    ),
    video: Path | None = typer.Option(None, "--video", help="Also write a GIF of a few episodes here."),
    video_episodes: int = typer.Option(3, help="Episodes in the GIF."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --video if it exists."),
    threads: int | None = typer.Option(None, help=THREADS_HELP),
) -> None:
    """Success rate, mean return and mean steps of a policy."""
    from filmkit.rl.envs import Vocab
    from filmkit.rl.evaluate import evaluate, record_gif

    _setup(threads, video, overwrite, env)
    policy, saved = _load(checkpoint)
    env = env or saved["env_id"]
    vocab = Vocab(saved["vocab"])
    with progress_bars() as bar:
        task = bar.add_task("eval", total=episodes, info="")
        try:
            result = evaluate(policy, vocab, env, episodes, seed, greedy,
                              on_progress=lambda done, _: bar.update(task, completed=done))  # fmt: skip
        except ValueError as error:
            fail(str(error))
    typer.echo(
        f"{env}: success {result.success_rate:.1%} over {result.episodes} episodes, "
        f"mean return {result.mean_return:.3f}, mean steps {result.mean_steps:.1f}"
    )
    if video is not None:
        frames = record_gif(policy, vocab, env, video, video_episodes, seed)
        typer.echo(f"{video_episodes} episodes ({frames} frames) -> {video}")
