"""Choosing the device and the numeric precision, shared by training, evaluation and inference."""

from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; asking for a CUDA device that is absent is an error.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: choose cpu, cuda or auto")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA device here")
    return torch.device(name)


def autocast_context(device: torch.device, precision: str):
    """Autocast to bf16 or fp16 (fp16 only on CUDA), or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; on the CPU use bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
