"""Reading JSON files with errors a person can act on: the file, and the line and column of a syntax error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError) -> Any:
    r"""Parse a JSON file; an unreadable or malformed one raises ``error`` naming the file, line and column.

    >>> import tempfile
    >>> broken = Path(tempfile.mkdtemp()) / "broken.json"
    >>> _ = broken.write_text('{"scenes": [\n  {"split": "val"}\n  {"split": "val"}]}')
    >>> read_json(broken)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: .../broken.json: line 3, column 3: malformed JSON: Expecting ',' delimiter
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror or problem}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{path}: line {problem.lineno}, column {problem.colno}: malformed JSON: {problem.msg}") from None
