"""Matrix products for the CPU GRU through oneDNN, where this torch build has it.

Why: torch multiplies fp32 matrices on the CPU with MKL, which on the AMD processors we measured (Zen 5) runs at
130-210 GFLOP/s on the GRU's shapes, while oneDNN, the library torch already uses for convolutions, runs the same
products at 360-460 GFLOP/s (docs/performance.md). torch reaches oneDNN's fp32 matrix product only through an
internal operator (``torch.ops.mkldnn._linear_pointwise``, the one its compiler emits), so this module checks at
import that the operator exists and agrees with ``torch.mm`` on a small product, and falls back to ``torch.mm``
otherwise. Results differ from MKL's only in summation order (about 1e-6 relative).
"""

from __future__ import annotations

import torch


def _onednn_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


def _onednn_works() -> bool:
    """Whether oneDNN's product is present and gives a @ b.T on a small fp32 example."""
    try:
        generator = torch.Generator().manual_seed(0)
        a, b = torch.randn(3, 5, generator=generator), torch.randn(4, 5, generator=generator)
        return torch.allclose(_onednn_product(a, b), a @ b.t(), atol=1e-5)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


ONEDNN_MATMUL = torch.backends.mkldnn.is_available() and _onednn_works()
# Below this many multiply-adds MKL's smaller overhead per call wins: one 256-wide GRU step for one question
# (1 x 256 by 256 x 768) takes 11.5 us with MKL and 18.1 with oneDNN; from 4 questions on oneDNN is faster.
SMALLEST_ONEDNN_PRODUCT = 1 << 19


def matmul_transposed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` for 2-D CPU tensors of one dtype; through oneDNN for fp32 products where it is available.

    ``b`` should be contiguous: oneDNN reads a transposed (strided) ``b`` at a fraction of its speed.

    >>> a, b = torch.ones(2, 3), torch.ones(4, 3)
    >>> matmul_transposed(a, b).shape
    torch.Size([2, 4])
    """
    fp32 = a.dtype == torch.float32 and b.dtype == torch.float32 and a.device.type == "cpu"
    if ONEDNN_MATMUL and fp32 and a.shape[0] * a.shape[1] * b.shape[0] >= SMALLEST_ONEDNN_PRODUCT:
        return _onednn_product(a, b)
    return a @ b.t()
