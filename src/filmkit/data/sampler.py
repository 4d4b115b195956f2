"""A batch sampler that is deterministic for a seed, resumable mid-epoch and shardable across ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
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
            # SeedSequence mixes (seed, epoch) so that no two pairs share a permutation (seed * k + epoch would).
            mixed = np.random.SeedSequence((self.seed, self.epoch)).generate_state(1, np.uint64)[0]
            generator = torch.Generator().manual_seed(int(mixed))
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


class ImageGroupedBatchSampler(ShardedBatchSampler):
    """Batches made of groups of up to ``per_image`` questions about the same image.

    The FiLM model's stem does not see the question, so a batch of 8 images with 8 questions each runs the stem on
    8 images instead of 64 (`filmkit.vqa.FiLMVQA` takes an ``image_index``). Every question is still seen once an
    epoch: each image's questions are shuffled and cut into groups, the groups are shuffled, and each batch takes
    ``batch_size // per_image`` groups. So a batch holds at most ``batch_size`` questions, and fewer where images
    have a number of questions that ``per_image`` does not divide: CLEVR's 10 per image cut into groups of at most 8
    give groups of 5 on average, batches of 40. The order depends only on (seed, epoch); ranks take disjoint groups.

    >>> images = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    >>> batches = list(ImageGroupedBatchSampler(images, batch_size=4, per_image=2, seed=0))
    >>> sorted(i for batch in batches for i in batch) == list(range(10))
    True
    >>> all(len({images[i] for i in batch}) <= 2 for batch in batches)
    True
    """

    def __init__(self, image_of_question, batch_size: int, per_image: int, first_epoch_key=None, **options):
        image_of = np.asarray(image_of_question, dtype=np.int64)
        super().__init__(len(image_of), batch_size, **options)
        # A curriculum: a number per question (the objects in its image, say); epoch 0 serves the groups from the
        # smallest to the largest (shuffled among equals), later epochs in the usual shuffled order.
        self.first_epoch_key = None if first_epoch_key is None else np.asarray(first_epoch_key)
        if self.first_epoch_key is not None and self.first_epoch_key.shape != image_of.shape:
            raise ValueError(f"first_epoch_key needs one value per question ({len(image_of)})")
        if not 1 <= per_image <= batch_size:
            raise ValueError(f"per_image must be between 1 and the batch size {batch_size}, got {per_image}")
        self.image_of = image_of
        self.per_image = per_image
        self.groups_per_batch = batch_size // per_image
        questions_per_image = np.unique(image_of, return_counts=True)[1]
        self.num_groups = int((-(-questions_per_image // per_image)).sum())

    def groups(self) -> list[np.ndarray]:
        """This rank's groups of question indices for the current epoch, in order."""
        count = self.num_samples
        rng = np.random.default_rng((self.seed, self.epoch))  # SeedSequence: no two (seed, epoch) pairs collide
        order = rng.permutation(count) if self.shuffle else np.arange(count)
        by_image = order[np.argsort(self.image_of[order], kind="stable")]  # grouped by image, shuffled within
        images = self.image_of[by_image]
        first_of_image = np.flatnonzero(np.r_[True, images[1:] != images[:-1]])
        rank_in_image = np.arange(count) - np.repeat(first_of_image, np.diff(np.r_[first_of_image, count]))
        groups = np.split(by_image, np.flatnonzero(rank_in_image % self.per_image == 0)[1:])
        if self.shuffle:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        if self.epoch == 0 and self.first_epoch_key is not None:
            keys = [self.first_epoch_key[group].max() for group in groups]
            groups = [groups[i] for i in np.argsort(keys, kind="stable")]
        if self.equal_shards:
            groups = groups[: len(groups) - len(groups) % self.world_size]
        groups = groups[self.rank :: self.world_size]
        # A training batch of one question cannot be batch-normalised: never let the last batch be a lone question.
        last = groups[-((len(groups) - 1) % self.groups_per_batch + 1) :] if groups else []
        if sum(len(group) for group in last) == 1:
            swap = next((i for i, group in enumerate(groups) if len(group) > 1), None)
            if swap is not None:
                groups[swap], groups[-1] = groups[-1], groups[swap]
        return groups

    def shard_size(self) -> int:
        """Groups (not questions) on this rank: what batches are counted in."""
        if self.equal_shards:
            return self.num_groups // self.world_size
        return len(range(self.rank, self.num_groups, self.world_size))

    def batches_per_epoch(self) -> int:
        if self.drop_last:
            return self.shard_size() // self.groups_per_batch
        return -(-self.shard_size() // self.groups_per_batch)

    def __iter__(self) -> Iterator[list[int]]:
        groups, size = self.groups(), self.groups_per_batch
        for batch in range(self.start_batch, self.batches_per_epoch()):
            yield np.concatenate(groups[batch * size : (batch + 1) * size]).tolist()
