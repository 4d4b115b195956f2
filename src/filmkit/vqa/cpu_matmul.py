"""Matrix products for the CPU GRU through oneDNN, where this torch build has it.

Why: torch multiplies fp32 matrices on the CPU with MKL, which on the AMD processors we measured (Zen 5) runs at
130-210 GFLOP/s on the GRU's shapes, while oneDNN, the library torch already uses for convolutions, runs the same
products at 360-460 GFLOP/s (docs/performance.md). torch reaches oneDNN's fp32 matrix product only through an
internal operator (``torch.ops.mkldnn._linear_pointwise``, the one its compiler emits), so the route is decided at
the first product that would take it: the operator must exist and agree with ``torch.mm`` on the GRU's own shapes.
Any failure then or later falls back to ``torch.mm`` for the rest of the process (with a warning where oneDNN is
there but its product is not, as after a torch upgrade that changed it); ``FILMKIT_ONEDNN_MATMUL=0`` turns the route
off. Results differ from MKL's only in summation order (about 1e-6 relative).
"""

from __future__ import annotations

import os
import warnings

import torch

SWITCH = "FILMKIT_ONEDNN_MATMUL"  # 0: always torch.mm
# Below this many multiply-adds MKL's smaller overhead per call wins: one 256-wide GRU step for one question
# (1 x 256 by 256 x 768) takes 11.5 us with MKL and 18.1 with oneDNN; from 4 questions on oneDNN is faster.
SMALLEST_ONEDNN_PRODUCT = 1 << 19
# (rows, inner, columns) of products the route takes: the cpu preset's GRU step, its backward, a wider one.
PROBE_SHAPES = ((64, 256, 768), (64, 768, 256), (256, 1024, 64))

_route: bool | None = None  # decided at the first product large enough to take it (see onednn_route)


def _onednn_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


def _probe() -> bool:
    """Whether oneDNN's product is present, switched on, and gives a @ b.T on every shape of PROBE_SHAPES."""
    if os.environ.get(SWITCH, "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    try:
        for rows, inner, columns in PROBE_SHAPES:
            a, b = torch.randn(rows, inner, generator=generator), torch.randn(columns, inner, generator=generator)
            if not torch.allclose(_onednn_product(a, b), a @ b.t(), rtol=1e-4, atol=1e-4):
                raise RuntimeError(f"oneDNN's product disagrees with torch.mm at {rows}x{inner} by {inner}x{columns}")
    except Exception as error:  # an operator this torch does not have, or has changed
        warnings.warn(
            f"the CPU GRU multiplies with torch.mm, more slowly: oneDNN's product failed ({error})", stacklevel=2
        )
        return False
    return True


def onednn_route() -> bool:
    """Whether fp32 CPU products of at least SMALLEST_ONEDNN_PRODUCT multiply-adds go through oneDNN."""
    global _route
    if _route is None:
        _route = _probe()
    return _route


def matmul_transposed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` for 2-D CPU tensors of one dtype; through oneDNN for large fp32 products where it works.

    ``b`` should be contiguous: oneDNN reads a transposed (strided) ``b`` at a fraction of its speed.

    >>> a, b = torch.ones(2, 3), torch.ones(4, 3)
    >>> matmul_transposed(a, b).shape
    torch.Size([2, 4])
    """
    global _route
    fp32 = a.dtype == torch.float32 and b.dtype == torch.float32 and a.device.type == "cpu"
    if fp32 and a.shape[0] * a.shape[1] * b.shape[0] >= SMALLEST_ONEDNN_PRODUCT and onednn_route():
        try:
            return _onednn_product(a, b)
        except Exception as error:  # a layout or shape the operator refuses: torch.mm from now on
            warnings.warn(f"oneDNN's product failed ({error}); the CPU GRU uses torch.mm from now on", stacklevel=2)
            _route = False
    return a @ b.t()
