"""filmkit's VQA model checkpoint: config, weights, vocabulary and metadata in one torch file.

The file format (atomic writes, weights-only reads, errors that name the file) is shared with the RL policies:
filmkit/checkpoint_file.py. Everything is stored as plain dicts, lists, strings and numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from filmkit.checkpoint_file import VQA_MODEL, CheckpointError, write_checkpoint_file
from filmkit.checkpoint_file import read_checkpoint_file as read_kind
from filmkit.pretrained import resolve_checkpoint
from filmkit.vqa.baselines import BaselineConfig, build_model
from filmkit.vqa.config import FiLMVQAConfig
from filmkit.vqa.model import FiLMVQA

CHECKPOINT_VERSION = 1


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
    entries = {
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "vocab": vocab,
        "metadata": metadata or {},
        "extra": extra or {},
    }
    return write_checkpoint_file(path, VQA_MODEL, CHECKPOINT_VERSION, entries)


def read_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The raw dict of a filmkit checkpoint, read without executing any pickled code.

    ``path`` may name a model shipped with filmkit instead of a file: ``"pretrained"`` (see `filmkit.pretrained`).
    """
    path = resolve_checkpoint(path)
    reference_hint = "; checkpoints of the reference implementation load with filmkit.vqa.load_reference_checkpoint"
    payload = read_kind(path, VQA_MODEL, CHECKPOINT_VERSION, map_location, hint=reference_hint)
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
