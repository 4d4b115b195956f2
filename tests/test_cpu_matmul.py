"""filmkit.vqa.cpu_matmul: oneDNN's product is used where torch has it, and equals torch.mm's."""

import pytest
import torch

from filmkit.vqa import cpu_matmul
from filmkit.vqa.cpu_matmul import matmul_transposed


def test_the_onednn_product_is_found_on_builds_that_have_onednn():
    # The probe failing silently would quietly halve the GRU's speed; on a build with oneDNN it must succeed.
    assert cpu_matmul.ONEDNN_MATMUL is torch.backends.mkldnn.is_available()


@pytest.mark.parametrize("transposed_a", [False, True])
def test_fp32_products_equal_torch_mm_whichever_layout_a_has(transposed_a):
    torch.manual_seed(0)
    a = torch.randn(70, 33).t() if transposed_a else torch.randn(33, 70)
    b = torch.randn(41, 70)
    torch.testing.assert_close(matmul_transposed(a, b), a @ b.t(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_take_torch_mm_and_keep_their_dtype(dtype):
    a, b = torch.randn(4, 6, dtype=dtype), torch.randn(5, 6, dtype=dtype)
    result = matmul_transposed(a, b)
    assert result.dtype == dtype
    torch.testing.assert_close(result, a @ b.t())
