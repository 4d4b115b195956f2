"""Command-line interface. Thin by design: parse arguments, call library functions, print results.

Each module below registers its subcommands on the shared `app` when imported.
"""

import sys

import typer

from filmkit.cli import analyze as _analyze  # noqa: F401
from filmkit.cli import demo as _demo  # noqa: F401
from filmkit.cli import evaluate as _evaluate  # noqa: F401
from filmkit.cli import finetune as _finetune  # noqa: F401
from filmkit.cli import generate as _generate  # noqa: F401
from filmkit.cli import models as _models  # noqa: F401
from filmkit.cli import preprocess as _preprocess  # noqa: F401
from filmkit.cli import questions as _questions  # noqa: F401
from filmkit.cli import rl as _rl  # noqa: F401
from filmkit.cli import serve as _serve  # noqa: F401
from filmkit.cli import speedrun as _speedrun  # noqa: F401
from filmkit.cli import train as _train  # noqa: F401
from filmkit.cli.app import app


def main() -> None:
    """Entry point of the `filmkit` console script."""
    from filmkit.train.interrupt import TrainingInterrupted

    try:
        app()
    except TrainingInterrupted as stop:
        typer.echo(f"stopped: {stop}; continue with: {stop.resume_command}", err=True)
        sys.exit(stop.exit_code)


__all__ = ["app", "main"]
