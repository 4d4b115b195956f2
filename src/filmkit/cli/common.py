"""Pieces every command shares: one-line errors, the overwrite rule and rich progress bars (on stderr, so stdout
stays clean)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# The largest side a command accepts: a render holds a few dozen bytes per sample (supersampled 2x2), so 2048x2048
# is already gigabytes; a typo such as 100000x100000 would ask for terabytes before failing.
MAX_SIDE = 2048


def parse_resolution(text: str) -> tuple[int, int]:
    """``"480x320"`` -> (480, 320); anything else, or a side above MAX_SIDE, is a one-line usage error."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise typer.BadParameter(f"expected WIDTHxHEIGHT with positive integers, e.g. 480x320; got {text!r}")
    width, height = int(parts[0]), int(parts[1])
    if max(width, height) > MAX_SIDE:
        raise typer.BadParameter(f"{text}: each side must be at most {MAX_SIDE} pixels (CLEVR's images are 480x320)")
    return width, height


def fail(message: str) -> NoReturn:
    """Report a problem with what the user asked for as one line, exit code 2, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def refuse_existing(*paths: Path | None, overwrite: bool) -> None:
    """The overwrite rule at the command line: a one-line error for the first of ``paths`` already there.

    Every command that writes calls it (or a library function that follows the same rule) before any work, so a
    refusal costs nothing; ``--overwrite`` lets the command replace what is there.
    """
    from filmkit.atomic import OutputExistsError, check_output

    for path in paths:
        if path is not None:
            try:
                check_output(path, overwrite)
            except OutputExistsError as error:
                fail(str(error))


def is_main_process() -> bool:
    """False in every process but rank 0 of a torchrun launch (RANK is set), which alone draws and summarises."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def progress_bars() -> Iterator[Progress]:
    """A rich Progress display with count, rate-friendly columns and ETA (drawn by the main process only)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not is_main_process()) as bar:
        yield bar


class StepBars:
    """One bar per named step, added when the step first reports: ``bars.update("train images", 40, 200)``."""

    def __init__(self, display: Progress):
        self.display = display
        self.tasks: dict[str, int] = {}

    def update(self, name: str, done: int, total: int | None, info: str = "") -> None:
        if name not in self.tasks:
            self.tasks[name] = self.display.add_task(name, total=total, info=info)
        self.display.update(self.tasks[name], completed=done, total=total, info=info)

    def caching(self, split: str, stage: str, done: int, total: int) -> None:
        """Progress of caching a dataset folder on first use (the ``progress`` callback of ``open_split``)."""
        self.update(f"caching {split} {stage}", done, total)
