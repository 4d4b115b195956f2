"""The root `filmkit` command; each subcommand module attaches itself to `app`."""

import typer

from filmkit import __version__
from filmkit.train.allocator import tune_memory
from filmkit.train.denormals import flush_denormals

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
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """FiLM: feature-wise linear modulation for visual reasoning and goal-conditioned control."""
    tune_memory()  # glibc keeps freed memory: faster training steps (filmkit.train.allocator)
    flush_denormals()  # before torch's threads start: decayed weights would slow training 3x (filmkit.train.denormals)
