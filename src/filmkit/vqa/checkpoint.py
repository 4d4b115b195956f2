"""filmkit's own checkpoint file: config, weights, vocabulary and metadata in one torch file.

Loading uses ``torch.load(weights_only=True)``: only tensors and plain containers are read, so a checkpoint from
an untrusted source cannot execute code. Everything is stored as plain dicts, lists, strings and numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from filmkit import __version__
from filmkit.atomic import atomic_output
from filmkit.pretrained import resolve_checkpoint
from filmkit.vqa.baselines import BaselineConfig, build_model
from filmkit.vqa.config import FiLMVQAConfig
from filmkit.vqa.model import FiLMVQA

CHECKPOINT_FORMAT = "filmkit-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable filmkit checkpoint; the message names the file and the reason."""


@dataclass
class Checkpoint:
    """What a checkpoint holds once loaded."""

    model: FiLMVQA  # or one of the baselines (filmkit.vqa.baselines)
    vocab: dict | None = None
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike,
    model: FiLMVQA,
    *,
    vocab: dict | None = None,
    metadata: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` (config + weights), its vocabulary and metadata to ``path`` atomically.

    ``extra`` holds anything else made of tensors and plain containers (optimizer state, RNG states).

    >>> import tempfile
    >>> from filmkit.vqa import FiLMVQA, build_config
    >>> model = FiLMVQA(build_config("cpu", vocab_size=20, num_answers=8))
    >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "model.pt", model, metadata={"step": 0})
    >>> load_checkpoint(path).metadata
    {'step': 0}
    """
    for name, value in (("vocab", vocab), ("metadata", metadata), ("extra", extra)):
        check_storable(value, name)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "filmkit_version": __version__,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "vocab": vocab,
        "metadata": metadata or {},
        "extra": extra or {},
    }
    with atomic_output(path) as handle:
        torch.save(payload, handle)
    return Path(path)


_PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor, torch.Size)


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


def read_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The raw dict of a filmkit checkpoint, read without executing any pickled code.

    ``path`` may name a model shipped with filmkit instead of a file: ``"pretrained"`` (see `filmkit.pretrained`).
    """
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises several types for corrupt, truncated or code-carrying files
        # torch's own message suggests weights_only=False, which would execute whatever the file holds: not shown.
        raise CheckpointError(
            f"{path}: not a filmkit checkpoint (corrupt or truncated, not a torch file, or it holds objects other "
            "than tensors and plain containers); filmkit never unpickles such files"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: a torch file, but not a filmkit checkpoint (no format marker); checkpoints of the reference "
            "implementation load with filmkit.vqa.load_reference_checkpoint"
        )
    if payload.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload['format_version']} is newer than this filmkit "
            f"({__version__}) understands; upgrade filmkit"
        )
    for key in ("config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint has no {key!r} entry")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint written by :func:`save_checkpoint`, in eval mode."""
    payload = read_checkpoint_file(path, map_location)
    try:
        config_class = BaselineConfig if "architecture" in payload["config"] else FiLMVQAConfig
        model = build_model(config_class.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: config and weights do not form a model: {error}") from None
    return Checkpoint(
        model=model.eval(),
        vocab=payload.get("vocab"),
        metadata=payload.get("metadata") or {},
        extra=payload.get("extra") or {},
    )
