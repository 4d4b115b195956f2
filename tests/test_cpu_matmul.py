"""filmkit.vqa.cpu_matmul: large fp32 products go through oneDNN where it works, equal torch.mm's, and any failure
(a torch without the operator, a switch set to 0) falls back to torch.mm."""

import pytest
import torch

from filmkit.vqa import cpu_matmul
from filmkit.vqa.cpu_matmul import matmul_transposed


@pytest.fixture
def fresh_route(monkeypatch):
    """The route undecided, as in a new process; decided again by the test."""
    monkeypatch.setattr(cpu_matmul, "_route", None)
    monkeypatch.delenv(cpu_matmul.SWITCH, raising=False)


@pytest.fixture
def onednn_calls(monkeypatch):
    """Counts the products that go through oneDNN (the probe's too)."""
    calls = []
    original = cpu_matmul._onednn_product

    def counting(a, b):
        calls.append((a.shape, b.shape))
        return original(a, b)

    monkeypatch.setattr(cpu_matmul, "_onednn_product", counting)
    return calls


def _large():
    torch.manual_seed(0)
    a, b = torch.randn(64, 128), torch.randn(96, 128)
    assert a.shape[0] * a.shape[1] * b.shape[0] >= cpu_matmul.SMALLEST_ONEDNN_PRODUCT
    return a, b


def test_the_probe_checks_shapes_the_route_takes(fresh_route, onednn_calls):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    matmul_transposed(*_large())
    probed = onednn_calls[: len(cpu_matmul.PROBE_SHAPES)]
    assert [a[0] * a[1] * b[0] >= cpu_matmul.SMALLEST_ONEDNN_PRODUCT for a, b in probed] == [True] * len(probed)


@pytest.mark.parametrize("transposed_a", [False, True])
def test_large_fp32_products_equal_torch_mm_whichever_way_they_go(transposed_a, onednn_calls):
    a, b = _large()
    a = a.t().contiguous().t() if transposed_a else a
    routed = cpu_matmul.onednn_route()
    onednn_calls.clear()
    torch.testing.assert_close(matmul_transposed(a, b), a @ b.t(), atol=1e-5, rtol=1e-5)
    assert len(onednn_calls) == int(routed)


@pytest.mark.parametrize(
    "dtype, rows", [(torch.float32, 1), (torch.float64, 64), (torch.bfloat16, 64)], ids=["small", "fp64", "bf16"]
)
def test_small_products_and_other_dtypes_take_torch_mm(dtype, rows, onednn_calls):
    a, b = torch.randn(rows, 128, dtype=dtype), torch.randn(96, 128, dtype=dtype)
    result = matmul_transposed(a, b)
    assert result.dtype == dtype and not onednn_calls
    torch.testing.assert_close(result, a @ b.t())


def test_the_switch_turns_the_route_off(fresh_route, monkeypatch, onednn_calls):
    monkeypatch.setenv(cpu_matmul.SWITCH, "0")
    a, b = _large()
    torch.testing.assert_close(matmul_transposed(a, b), a @ b.t())
    assert not onednn_calls and cpu_matmul.onednn_route() is False


def test_a_torch_without_the_operator_falls_back_with_a_warning(fresh_route, monkeypatch):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")

    def missing(a, b):
        raise AttributeError("no such operator _linear_pointwise")

    monkeypatch.setattr(cpu_matmul, "_onednn_product", missing)
    a, b = _large()
    with pytest.warns(UserWarning, match="torch.mm, more slowly"):
        torch.testing.assert_close(matmul_transposed(a, b), a @ b.t())
    assert cpu_matmul.onednn_route() is False


def test_a_product_that_fails_after_the_probe_falls_back_for_good(monkeypatch):
    monkeypatch.setattr(cpu_matmul, "_route", True)
    calls = []

    def refuses(a, b):
        calls.append(1)
        raise RuntimeError("unsupported layout")

    monkeypatch.setattr(cpu_matmul, "_onednn_product", refuses)
    a, b = _large()
    with pytest.warns(UserWarning, match="torch.mm from now on"):
        torch.testing.assert_close(matmul_transposed(a, b), a @ b.t())
    torch.testing.assert_close(matmul_transposed(a, b), a @ b.t())
    assert calls == [1] and cpu_matmul.onednn_route() is False
