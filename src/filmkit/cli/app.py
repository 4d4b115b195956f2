"""The root `filmkit` command; each subcommand module attaches itself to `app`."""

import typer

from filmkit import __version__

# Commands that compute with torch models: denormals are flushed before torch starts its threads (decayed weights
# would slow training 3x; filmkit.train.denormals). The others (generate, questions, stats, models) never import
# torch, so they start in a fraction of a second.
MODEL_COMMANDS = (
    "train",
    "speedrun",
    "demo",
    "finetune",
    "rl",
    "eval",
    "ask",
    "analyze",
    "preprocess",
    "export",
    "serve",
)
# Commands that train: glibc keeps freed memory for them, for faster steps (filmkit.train.allocator).
TRAINING_COMMANDS = ("train", "speedrun", "demo", "finetune", "rl")

app = typer.Typer(
    name="filmkit",
    help="FiLM: generate CLEVR-style data, read the CLEVR family, train, evaluate and analyse models and baselines, "
    "and train goal-conditioned policies (filmkit rl).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"filmkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    context: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """FiLM: feature-wise linear modulation for visual reasoning and goal-conditioned control."""
    prepare_process(context.invoked_subcommand)


def prepare_process(command: str | None) -> None:
    """What the process needs before ``command`` runs: see MODEL_COMMANDS and TRAINING_COMMANDS."""
    if command in TRAINING_COMMANDS:
        from filmkit.train.allocator import tune_memory

        tune_memory()
    if command in MODEL_COMMANDS:
        from filmkit.train.denormals import flush_denormals

        flush_denormals()
