"""The one file format behind every filmkit checkpoint: VQA models (filmkit.vqa) and RL policies (filmkit.rl).

A checkpoint is a torch file holding one dict: a ``format`` marker that names its kind, a ``format_version``, the
filmkit version that wrote it, and the kind's own entries, all of them tensors, numbers, strings, lists and dicts.
Writes are atomic, so a reader never sees half a file. Reads use ``torch.load(weights_only=True)``: a file from an
untrusted source cannot execute code, and every failure is a `CheckpointError` that names the file, says what it
holds instead where it can, and never suggests unpickling.

Example::

    write_checkpoint_file("policy.pt", RL_POLICY, 3, {"state_dict": policy.state_dict()})
    payload = read_checkpoint_file("policy.pt", RL_POLICY, newest_version=3)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from filmkit import __version__
from filmkit.atomic import atomic_output

VQA_MODEL = "filmkit-checkpoint"
RL_POLICY = "filmkit-rl-policy"
# What each kind is called in errors, and the command that reads it: a file handed to the wrong reader says so.
KINDS = {
    VQA_MODEL: ("a VQA model checkpoint", "filmkit eval, ask or analyze read it"),
    RL_POLICY: ("an RL policy checkpoint", "filmkit rl eval reads it"),
}
_PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor, torch.Size)


class CheckpointError(ValueError):
    """A file that is not a usable filmkit checkpoint; the message names the file and the reason."""


def check_storable(value, where: str) -> None:
    """Raise TypeError naming the first entry that weights-only loading could not read back."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str or int keys")
            check_storable(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_storable(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN_TYPES):
        raise TypeError(
            f"{where} is a {type(value).__name__}; checkpoints hold only tensors, numbers, strings, "
            "lists and dicts so that they load without executing code"
        )


def write_checkpoint_file(path: str | os.PathLike, kind: str, version: int, entries: dict) -> Path:
    """Write ``entries`` as a checkpoint of ``kind`` (format ``version``) to ``path``, atomically."""
    for name, value in entries.items():
        check_storable(value, name)
    payload = {"format": kind, "format_version": version, "filmkit_version": __version__, **entries}
    with atomic_output(path) as handle:
        torch.save(payload, handle)
    return Path(path)


def load_torch_file(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Whatever a torch file holds, read weights-only; a CheckpointError for anything else (no unpickling hint)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises several types for corrupt, truncated or code-carrying files
        # torch's own message suggests weights_only=False, which would execute whatever the file holds: not shown.
        raise CheckpointError(
            f"{path}: not a filmkit checkpoint (corrupt or truncated, not a torch file, or it holds objects other "
            "than tensors and plain containers); filmkit never unpickles such files"
        ) from None


def check_kind(payload, path: str | os.PathLike, kind: str, newest_version: int, hint: str = "") -> dict:
    """``payload`` if it is a checkpoint of ``kind`` that this filmkit can read, else a CheckpointError saying why."""
    wanted = KINDS[kind][0]
    found = payload.get("format") if isinstance(payload, dict) else None
    if found in KINDS and found != kind:
        what, reader = KINDS[found]
        raise CheckpointError(f"{path}: {what}, not {wanted} ({reader})")
    if found != kind:
        raise CheckpointError(f"{path}: a torch file, but not {wanted} (no filmkit format marker){hint}")
    version = payload.get("format_version", 1)
    if not isinstance(version, int) or version > newest_version:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this filmkit ({__version__}) understands; "
            "upgrade filmkit"
        )
    return payload


def read_checkpoint_file(
    path: str | os.PathLike, kind: str, newest_version: int, map_location: str | torch.device = "cpu", hint: str = ""
) -> dict:
    """The dict of a checkpoint of ``kind``, read without executing any pickled code."""
    return check_kind(load_torch_file(path, map_location), path, kind, newest_version, hint)
