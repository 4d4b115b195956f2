"""A batch sampler that is deterministic for a seed, resumable mid-epoch and shardable across ranks."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShardedBatchSampler(Sampler[list[int]]):
    """Yield batches of dataset indices: a seeded permutation per epoch, split across ranks without overlap.

    The order depends only on (seed, epoch), so a run resumed with ``set_epoch(epoch, start_batch=k)`` sees
    exactly the batches it had not seen yet. Rank r of w takes every w-th index of the permutation, so the
    shards are disjoint and together cover the dataset (their sizes differ by at most one).

    >>> sampler = ShardedBatchSampler(10, batch_size=4, seed=0)
    >>> [len(batch) for batch in sampler]
    [4, 4, 2]
    >>> sampler.set_epoch(0, start_batch=2)
    >>> len(list(sampler))
    1
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        equal_shards: bool = False,
    ):
        if num_samples < 1:
            raise ValueError("cannot sample batches from an empty split")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        # Data-parallel training needs the same number of batches on every rank, else the ranks deadlock:
        # equal_shards gives each rank num_samples // world_size samples (the few left over change each epoch).
        self.equal_shards = equal_shards
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch's permutation and how many of its batches were already consumed."""
        self.epoch = epoch
        self.start_batch = start_batch

    def shard(self) -> torch.Tensor:
        """This rank's indices for the current epoch, in order."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.arange(self.num_samples)
        if self.equal_shards:
            order = order[: self.num_samples - self.num_samples % self.world_size]
        return order[self.rank :: self.world_size]

    def shard_size(self) -> int:
        if self.equal_shards:
            return self.num_samples // self.world_size
        return len(range(self.rank, self.num_samples, self.world_size))

    def batches_per_epoch(self) -> int:
        shard_size = self.shard_size()
        if self.drop_last:
            return shard_size // self.batch_size
        return -(-shard_size // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        shard = self.shard()
        for batch in range(self.start_batch, self.batches_per_epoch()):
            yield shard[batch * self.batch_size : (batch + 1) * self.batch_size].tolist()

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batch)
