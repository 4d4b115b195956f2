"""Atomic writes and the one overwrite rule that every filmkit command follows.

A reader sees the old file or the new one, never half of one (`atomic_output`); a folder of results appears whole
or not at all (`atomic_folder`). An output that is already there is refused unless the caller asks to replace it
(`check_output`, the ``--overwrite`` of every command), so a rerun never replaces a result silently, and a failed
run leaves nothing that the next one would refuse.

Used for everything filmkit writes that a user would hate to lose: checkpoints, datasets, reports.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

OVERWRITE_HINT = "pass --overwrite to replace it"


class OutputExistsError(FileExistsError):
    """An output is already there, and replacing it was not asked for (``overwrite``, the ``--overwrite`` option)."""


def is_taken(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds something to lose: a file, or a folder that is not empty."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def check_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise `OutputExistsError`, a one-line message naming ``path``, if it is taken and ``overwrite`` is false.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> check_output(target)  # free: nothing to say
    >>> _ = target.write_text("hello")
    >>> check_output(target)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    filmkit.atomic.OutputExistsError: ... already exists; pass --overwrite to replace it
    >>> check_output(target, overwrite=True)
    """
    if not overwrite and is_taken(path):
        raise OutputExistsError(f"{path} already exists; {OVERWRITE_HINT}")


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is flushed to disk and renamed onto ``path``.

    After the rename the directory is flushed too, so that the new name survives a power cut. If the block
    raises, the temporary file is removed and ``path`` is left as it was.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_output(target, "w") as handle:
    ...     _ = handle.write("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    try:
        with open(temporary, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def fsync_directory(directory: str | os.PathLike) -> None:
    """Flush ``directory``'s entries (a rename into it) to disk; nothing where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows opens no directories
        return
    try:
        os.fsync(descriptor)
    except OSError as error:  # file systems that cannot fsync a directory say so; the rename itself stands
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(descriptor)


@contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder of results in a temporary sibling of ``path``; on success it becomes ``path``.

    A taken ``path`` is refused (`check_output`) unless ``overwrite``; then each entry built replaces the entry of
    the same name in ``path``, and nothing else there is touched. If the block raises, the temporary folder is
    removed and ``path`` is left as it was, so a failed run never leaves half a folder behind.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "report"
    >>> with atomic_folder(target) as folder:
    ...     _ = (folder / "report.md").write_text("# done")
    >>> sorted(entry.name for entry in target.iterdir())
    ['report.md']
    """
    path = Path(path)
    check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    shutil.rmtree(temporary, ignore_errors=True)  # left by a killed run whose process id this one reuses
    temporary.mkdir()
    try:
        yield temporary
        if path.exists() and not path.is_dir():
            path.unlink()  # a file where the folder goes: taken, so only reached with overwrite
        if not is_taken(path):
            if path.exists():
                path.rmdir()
            os.replace(temporary, path)
            return
        for entry in temporary.iterdir():
            target = path / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
