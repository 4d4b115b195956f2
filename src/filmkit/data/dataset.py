"""Torch dataset over one split of a cache, serving whole batches straight from memory-mapped images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from filmkit.data.cache import open_image_array, read_rows, read_split
from filmkit.data.sampler import ImageGroupedBatchSampler, ShardedBatchSampler
from filmkit.data.vocab import Vocab


class CachedSplit(Dataset):
    """Questions, answers and images of one cached split.

    Indexing with a list of indices (what :func:`make_loader` does) returns a ready batch dict:
    ``images`` float (B, C, H, W) (uint8 pixels scaled to [0, 1] on the fly, or left uint8 with
    ``pixels_as_uint8``), ``questions`` int64 (B, T) trimmed
    to the batch's longest question, ``answers`` (-1 where the split has none), ``categories``, ``functions``,
    ``families`` and ``indices`` (positions in the split, for writing predictions in question order).

    With ``unique_images`` each image of the batch comes once and ``image_index`` (B,) says which row of
    ``images`` each question is about: what batches of `ImageGroupedBatchSampler` are read with.

    Example::

        split = CachedSplit("cache/clevr-mini", "val")
        batch = split[[0, 1, 2]]          # a dict of tensors; batch["images"].shape == (3, 3, 128, 128)
    """

    def __init__(
        self,
        cache_dir: str | Path,
        split: str,
        vocab: Vocab | None = None,
        unique_images: bool = False,
        pixels_as_uint8: bool = False,
    ):
        self.cache_dir = Path(cache_dir)
        self.split = split
        self.unique_images = unique_images
        # uint8 pixels as stored, for a caller that scales them on its device (a quarter of the bytes to copy)
        self.pixels_as_uint8 = pixels_as_uint8
        self.vocab = vocab or Vocab.load(self.cache_dir / "vocab.json")
        self.arrays = read_split(self.cache_dir, split, self.vocab)
        self._images = None  # opened lazily, once per process, so that worker processes map the file themselves
        # (images, 4, H, W) per-cell targets of scene supervision, served as ``scene_targets`` when set
        self.scene_targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrays.questions)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images (or features) this split serves."""
        return tuple(self.arrays.image_shape[1:])

    @property
    def has_answers(self) -> bool:
        return bool((self.arrays.answers >= 0).all())

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._images is None:
            self._images = open_image_array(self.arrays)
        positions = np.asarray(indices, dtype=np.int64)
        rows = self.arrays.image_rows[positions]
        extra = {}
        if self.unique_images:
            rows, image_index = np.unique(rows, return_inverse=True)
            extra["image_index"] = torch.from_numpy(image_index.astype(np.int64))
        pixels = torch.from_numpy(np.ascontiguousarray(read_rows(self._images, rows)))
        if pixels.dtype == torch.uint8:
            images = pixels if self.pixels_as_uint8 else to_unit_range(pixels)
        else:
            images = pixels.float()
        questions = self.arrays.questions[positions]
        longest = max(1, int((questions != 0).sum(axis=1).max()))
        arrays = self.arrays
        return {
            "images": images,
            "questions": torch.from_numpy(np.ascontiguousarray(questions[:, :longest])),
            "answers": torch.from_numpy(arrays.answers[positions]),
            "categories": torch.from_numpy(arrays.categories[positions]),
            "functions": torch.from_numpy(arrays.functions[positions]),
            "families": torch.from_numpy(arrays.families[positions]),
            "indices": torch.from_numpy(positions),
            **extra,
            **({} if self.scene_targets is None else {"scene_targets": torch.from_numpy(self.scene_targets[rows])}),
        }

    def __getitem__(self, index: int | list[int]) -> dict[str, torch.Tensor]:
        """One example (an int index) or a batch (a list of indices)."""
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            return self.__getitems__(list(index))
        return {key: value[0] for key, value in self.__getitems__([index]).items()}

    def __getstate__(self) -> dict:
        # Worker processes reopen the memory map themselves instead of pickling it.
        return {**self.__dict__, "_images": None}


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as floats in [0, 1], the model's input, on whatever device they are."""
    return pixels.float().div_(255.0)


def keep_batch(batch: dict) -> dict:
    """Collate for :class:`CachedSplit`: its ``__getitems__`` already returns a finished batch."""
    return batch


def make_loader(
    dataset: CachedSplit,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    equal_shards: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    questions_per_image: int = 1,
    first_epoch_key=None,
) -> tuple[DataLoader, ShardedBatchSampler]:
    """A DataLoader over ``dataset`` and its sampler (call ``sampler.set_epoch(epoch, start_batch)`` to resume).

    ``questions_per_image`` above 1 groups each batch's questions by image (`ImageGroupedBatchSampler`); the
    dataset must then serve ``unique_images``. ``first_epoch_key`` (one number per question) orders the first
    epoch's groups from the smallest key up: a curriculum.

    Example::

        loader, sampler = make_loader(CachedSplit("cache/clevr-mini", "train"), 64, seed=0)
        sampler.set_epoch(3, start_batch=120)   # resume in the middle of epoch 3
        for batch in loader: ...
    """
    options = dict(
        shuffle=shuffle, seed=seed, rank=rank, world_size=world_size, drop_last=drop_last, equal_shards=equal_shards
    )
    if questions_per_image > 1:
        if not dataset.unique_images:
            raise ValueError("questions_per_image > 1 needs a dataset made with unique_images=True")
        image_rows = dataset.arrays.image_rows
        sampler = ImageGroupedBatchSampler(image_rows, batch_size, questions_per_image, first_epoch_key, **options)
    else:
        sampler = ShardedBatchSampler(len(dataset), batch_size, **options)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=keep_batch,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        # Its own generator: creating an iterator then never draws from the global RNG, which drives dropout,
        # so a resumed run sees the same random numbers as an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler
