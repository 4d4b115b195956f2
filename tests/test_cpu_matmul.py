"""filmkit.vqa.cpu_matmul: large fp32 products go through oneDNN where torch has it, and equal torch.mm's."""

import pytest
import torch

from filmkit.vqa import cpu_matmul
from filmkit.vqa.cpu_matmul import matmul_transposed


@pytest.fixture
def onednn_calls(monkeypatch):
    """Counts the products that go through oneDNN."""
    calls = []
    original = cpu_matmul._onednn_product

    def counting(a, b):
        calls.append((a.shape, b.shape))
        return original(a, b)

    monkeypatch.setattr(cpu_matmul, "_onednn_product", counting)
    return calls


def test_the_onednn_product_is_found_on_builds_that_have_onednn():
    # The probe failing silently would quietly halve the GRU's speed; on a build with oneDNN it must succeed.
    assert cpu_matmul.ONEDNN_MATMUL is torch.backends.mkldnn.is_available()


@pytest.mark.parametrize("transposed_a", [False, True])
def test_large_fp32_products_go_through_onednn_and_equal_torch_mm(transposed_a, onednn_calls):
    torch.manual_seed(0)
    a = torch.randn(128, 64).t() if transposed_a else torch.randn(64, 128)
    b = torch.randn(96, 128)
    assert a.shape[0] * a.shape[1] * b.shape[0] >= cpu_matmul.SMALLEST_ONEDNN_PRODUCT
    torch.testing.assert_close(matmul_transposed(a, b), a @ b.t(), atol=1e-5, rtol=1e-5)
    assert len(onednn_calls) == int(cpu_matmul.ONEDNN_MATMUL)


@pytest.mark.parametrize(
    "dtype, rows", [(torch.float32, 1), (torch.float64, 64), (torch.bfloat16, 64)], ids=["small", "fp64", "bf16"]
)
def test_small_products_and_other_dtypes_take_torch_mm(dtype, rows, onednn_calls):
    a, b = torch.randn(rows, 128, dtype=dtype), torch.randn(96, 128, dtype=dtype)
    result = matmul_transposed(a, b)
    assert result.dtype == dtype and not onednn_calls
    torch.testing.assert_close(result, a @ b.t())
