"""Choosing the device and the numeric precision, shared by training, evaluation and inference."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), where bf16 autocast pays off.

    Elsewhere torch emulates bf16 on the CPU, which is slower than fp32. Read from /proc/cpuinfo (Linux); other
    systems answer False.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fastest_precision(device: torch.device) -> str:
    """bf16 where the hardware runs it natively (recent GPUs, CPUs with AVX512-BF16), else fp32.

    >>> fastest_precision(torch.device("cpu")) in ("bf16", "fp32")
    True
    """
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"
