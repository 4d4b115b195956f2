"""A GRU over packed questions with a hand-written backward pass, for the CPU.

Why: torch's CPU GRU differentiates step by step, so its backward pass writes a full (3H, H) weight gradient at
every time step. With the paper's 4096-wide GRU that is 200 MB per step and dominates the training step (6.5 s of
a batch of 64 on a 2-core machine). Here the backward pass keeps every step's inputs and computes the recurrent
weight gradient once, as one large matrix product over all tokens; the input projection is one product over all
real tokens as well. The equations are torch's (``nn.GRU``), and the tests check outputs and gradients against it.

The weights stay those of an ``nn.GRU`` module (checkpoints do not change); only the computation differs. Under
bf16 autocast the matrix products run in bf16 while the hidden state and the gates stay in fp32; in fp32 they go
through oneDNN where torch has it (:mod:`filmkit.vqa.cpu_matmul`, about twice MKL's speed here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from filmkit.vqa.cpu_matmul import matmul_transposed


class _PackedGRUFinalState(torch.autograd.Function):
    """Final hidden states of a single-layer GRU from the input projections of packed, time-major tokens.

    ``projected``: (tokens, 3H) = x W_ih^T + b_ih for the tokens of a PackedSequence, in its order (time step by
    time step, each step's sequences a prefix of the previous step's). ``batch_sizes``: sequences alive at each
    step. Returns (B, H) in the packed (length-sorted) order.
    """

    @staticmethod
    def forward(ctx, projected, weight_hh, bias_hh, batch_sizes):
        with torch.autocast("cpu", enabled=False):
            hidden_size = weight_hh.shape[1]
            h = projected.new_zeros(batch_sizes[0], hidden_size)
            previous = torch.empty_like(projected[:, :hidden_size])  # h before each token, for the backward pass
            gates = torch.empty_like(projected)  # r, z and the candidate n of each token
            recurrent_n = torch.empty_like(previous)  # W_hn h + b_hn, which r multiplies
            offset = 0
            for size in batch_sizes:
                rows = slice(offset, offset + size)
                h_prev = h[:size]
                previous[rows] = h_prev
                recurrent = matmul_transposed(h_prev.to(weight_hh.dtype), weight_hh).to(projected.dtype) + bias_hh
                r_pre, z_pre, n_pre = projected[rows].chunk(3, dim=1)
                hr, hz, hn = recurrent.chunk(3, dim=1)
                r, z, n = gates[rows].chunk(3, dim=1)  # views: the gates are written in place, not copied
                torch.sigmoid(r_pre + hr, out=r)
                torch.sigmoid(z_pre + hz, out=z)
                torch.tanh(n_pre + r * hn, out=n)
                recurrent_n[rows] = hn
                torch.addcmul(n, z, h_prev - n, out=h[:size])  # (1 - z) * n + z * h
                offset += size
        ctx.batch_sizes = batch_sizes
        ctx.save_for_backward(weight_hh, previous, gates, recurrent_n)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        weight_hh, previous, gates, recurrent_n = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            grad_h = grad_h.to(gates.dtype, copy=True)
            grad_projected = torch.empty_like(gates)
            grad_recurrent = torch.empty_like(gates)  # w.r.t. W_hh h + b_hh
            weight_hh_t = weight_hh.t().contiguous()  # one copy: products read it at full speed at every step
            offset = previous.shape[0]
            for size in reversed(ctx.batch_sizes):
                offset -= size
                rows = slice(offset, offset + size)
                d = grad_h[:size]
                r, z, n = gates[rows].chunk(3, dim=1)
                d_z = d * (previous[rows] - n) * z * (1 - z)
                d_n = d * (1 - z) * (1 - n * n)
                d_r = d_n * recurrent_n[rows] * r * (1 - r)
                for block, values in zip(grad_projected[rows].chunk(3, dim=1), (d_r, d_z, d_n), strict=True):
                    block.copy_(values)
                for block, values in zip(grad_recurrent[rows].chunk(3, dim=1), (d_r, d_z, d_n * r), strict=True):
                    block.copy_(values)
                through_weights = matmul_transposed(grad_recurrent[rows].to(weight_hh.dtype), weight_hh_t)
                grad_h[:size] = d * z + through_weights.to(gates.dtype)
            grad_weight = matmul_transposed(grad_recurrent.to(weight_hh.dtype).t(), previous.to(weight_hh.dtype).t())
            grad_bias = grad_recurrent.sum(dim=0)
        return grad_projected, grad_weight, grad_bias, None


@torch.compiler.disable  # a data-dependent loop: compiled, it would recompile for every batch's lengths
def gru_final_state(embedded: torch.Tensor, lengths: torch.Tensor, gru: nn.GRU) -> torch.Tensor:
    """(N, H): the state of single-layer, unidirectional ``gru`` at each sequence's last real token.

    ``embedded`` is (N, T, E) batch-first and right-padded, ``lengths`` the real lengths (at least 1). Equal to
    running ``gru`` on the packed sequence; faster on the CPU (see the module docstring).

    >>> gru = nn.GRU(4, 6, batch_first=True)
    >>> gru_final_state(torch.randn(3, 5, 4), torch.tensor([5, 2, 1]), gru).shape
    torch.Size([3, 6])
    """
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    dtype = gru.weight_hh_l0.dtype  # of the state and the gates
    matmul_dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else dtype
    weight_ih, weight_hh = gru.weight_ih_l0.to(matmul_dtype), gru.weight_hh_l0.to(matmul_dtype)
    with torch.autocast("cpu", enabled=False):
        projected = F.linear(packed.data.to(matmul_dtype), weight_ih).to(dtype) + gru.bias_ih_l0
    batch_sizes = tuple(int(size) for size in packed.batch_sizes)
    final = _PackedGRUFinalState.apply(projected, weight_hh, gru.bias_hh_l0, batch_sizes)
    return final[packed.unsorted_indices]
