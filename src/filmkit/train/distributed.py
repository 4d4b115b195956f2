"""Data-parallel training with torch.distributed, launched by torchrun (or not at all).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them this is a single process and every helper here
is a no-op. Backends: NCCL on GPUs, gloo on CPUs. Multi-node runs use torchrun's usual flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and reports progress."""
        return self.rank == 0


def setup(device_kind: str) -> Context:
    """Join the process group torchrun prepared, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context()
    context = Context(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return context


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum a tensor over all processes (in place) and return it."""
    if context.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_agree(flag: bool, context: Context, device: torch.device) -> bool:
    """True only if every process says True (used so that one process's NaN stops them all together)."""
    if not context.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()
