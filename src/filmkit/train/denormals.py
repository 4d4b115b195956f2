"""Flush denormal floats to zero on the CPU, before torch starts its worker threads.

Weight decay drives the weights of channels that FiLM switches off, and Adam's moments of rarely used words,
toward zero until they become denormal (below 1.2e-38 in fp32), and x86 cores compute with denormals many times
slower. Measured on the 60-minute speedrun's model: 2.9 training steps/s against 9.3 for a fresh model on the same
batches, and 10.5 with denormals flushed (docs/benchmarks.md). The flush is a per-thread CPU flag: set in the main
thread before torch's first parallel operation, the OpenMP threads created after inherit it; set later, only the
main thread has it. Values that small change no result of this model.
"""

from __future__ import annotations

import torch


def flush_denormals() -> bool:
    """Turn on flush-to-zero for denormals where the CPU supports it (x86 with SSE3); return whether it did.

    >>> flush_denormals() in (True, False)
    True
    """
    return bool(torch.set_flush_denormal(True))
