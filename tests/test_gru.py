"""The CPU GRU path (filmkit.vqa.gru) computes what torch's GRU computes, forward and backward."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from filmkit.vqa.encoder import QuestionEncoder
from filmkit.vqa.gru import _PackedGRUFinalState, gru_final_state


def torch_final_state(embedded, lengths, gru):
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    return gru(packed)[1][0]


def outputs_and_gradients(run, embedded, lengths, gru):
    embedded = embedded.detach().requires_grad_()
    final = run(embedded, lengths, gru)
    # Weight each output differently so that a gradient sent to the wrong sequence shows.
    loss = (final * torch.linspace(-1, 1, final.numel()).view_as(final)).sum()
    return [final, *torch.autograd.grad(loss, [embedded, *gru.parameters()])]


@pytest.mark.parametrize("lengths", [[3, 7, 1, 5], [1], [4, 4, 4], [2, 6, 6, 1, 3, 5]])
def test_outputs_and_every_gradient_equal_torch_gru(lengths):
    torch.manual_seed(0)
    gru = nn.GRU(5, 9, batch_first=True)
    embedded = torch.randn(len(lengths), max(lengths), 5)
    lengths = torch.tensor(lengths)
    expected = outputs_and_gradients(torch_final_state, embedded, lengths, gru)
    ours = outputs_and_gradients(gru_final_state, embedded, lengths, gru)
    for name, a, b in zip(["final state", "embeddings", *dict(gru.named_parameters())], expected, ours, strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5, msg=name)


def test_a_gru_wide_enough_for_onednn_products_equals_torch_gru():
    # 16 x 128 by 128 x 384 and larger: every product of this GRU goes through oneDNN where torch has it.
    torch.manual_seed(0)
    gru = nn.GRU(16, 128, batch_first=True)
    lengths = torch.tensor([12, 3, 9, 12, 1, 7, 5, 11, 2, 8, 10, 4, 6, 12, 9, 3])
    embedded = torch.randn(len(lengths), int(lengths.max()), 16)
    expected = outputs_and_gradients(torch_final_state, embedded, lengths, gru)
    ours = outputs_and_gradients(gru_final_state, embedded, lengths, gru)
    for name, a, b in zip(["final state", "embeddings", *dict(gru.named_parameters())], expected, ours, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=name)


def test_the_hand_written_backward_passes_gradcheck():
    torch.manual_seed(0)
    projected = torch.randn(9, 12, dtype=torch.double, requires_grad=True)  # 4 sequences of lengths 4, 3, 1, 1
    weight = torch.randn(12, 4, dtype=torch.double, requires_grad=True)
    bias = torch.randn(12, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p, w, b: _PackedGRUFinalState.apply(p, w, b, (4, 2, 2, 1)), (projected, weight, bias)
    )


def test_bf16_autocast_stays_close_and_keeps_fp32_gradients():
    torch.manual_seed(0)
    gru = nn.GRU(8, 32, batch_first=True)
    embedded, lengths = torch.randn(6, 10, 8), torch.tensor([10, 3, 7, 1, 9, 5])
    expected = torch_final_state(embedded, lengths, gru)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        final = gru_final_state(embedded, lengths, gru)
    assert final.dtype == torch.float32
    torch.testing.assert_close(final, expected, atol=3e-2, rtol=0)
    final.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in gru.parameters())


@pytest.mark.parametrize(
    "options, expected",
    [({}, True), ({"rnn_type": "lstm"}, False), ({"bidirectional": True}, False), ({"num_layers": 2}, False)],
)
def test_the_encoder_takes_the_cpu_path_only_for_one_layer_one_way_grus(options, expected):
    encoder = QuestionEncoder(vocab_size=10, embedding_dim=4, hidden_dim=6, **options)
    assert encoder.uses_cpu_gru(torch.zeros(1, 1, 4)) is expected
