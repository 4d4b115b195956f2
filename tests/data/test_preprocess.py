from multiprocessing import get_context

import h5py
import numpy as np
import pytest
import torch
from fixtures import clevr_dataset

from filmkit.data import preprocess as preprocess_module
from filmkit.data.cache import read_manifest
from filmkit.data.dataset import CachedSplit, make_loader
from filmkit.data.preprocess import preprocess
from filmkit.data.question_types import CATEGORIES
from filmkit.data.vocab import Vocab


@pytest.fixture
def cache(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    preprocess(data, tmp_path / "cache", resolution=(16, 12))
    return tmp_path / "cache"


def test_clevr_layout_round_trips_through_the_cache(cache, tmp_path):
    manifest = read_manifest(cache)
    assert set(manifest["splits"]) == {"train", "val", "test"}
    vocab = Vocab.load(cache / "vocab.json")
    val = CachedSplit(cache, "val", vocab)
    batch = val[list(range(len(val)))]
    assert batch["images"].shape == (len(val), 3, 12, 16)
    assert batch["images"].dtype == torch.float32 and batch["images"].max() <= 1.0
    # Image indices 10, 13, 17 are not contiguous: each question still gets its own image (red = index * 10).
    import json

    questions = json.loads((tmp_path / "clevr/questions/CLEVR_val_questions.json").read_text())["questions"]
    red = (batch["images"][:, 0, 6, 8] * 255).round().long().tolist()
    assert red == [q["image_index"] * 10 for q in questions]
    decoded = [vocab.decode_question(row.tolist()) for row in batch["questions"]]
    assert decoded == [q["question"].rstrip("?") for q in questions]
    answers = [vocab.answer_tokens[i] for i in batch["answers"].tolist()]
    assert answers == [q["answer"] for q in questions]
    expected_categories = ["exist" if q["program"][-1]["function"] == "exist" else "count" for q in questions]
    assert [CATEGORIES[c] for c in batch["categories"].tolist()] == expected_categories


def test_test_split_has_no_answers(cache):
    test = CachedSplit(cache, "test")
    assert not test.has_answers
    assert (test[[0, 1]]["answers"] == -1).all()
    with h5py.File(cache / "test_questions.h5") as handle:
        assert "answers" not in handle  # as in the reference layout


def test_questions_are_trimmed_to_the_longest_in_the_batch(cache):
    train = CachedSplit(cache, "train")
    lengths = (torch.from_numpy(train.arrays.questions) != 0).sum(1)
    short = int(lengths.argmin())
    assert train[[short]]["questions"].shape[1] == int(lengths.min())


def test_images_are_memory_mapped(cache):
    train = CachedSplit(cache, "train")
    train[[0]]
    assert isinstance(train._images, np.memmap)


def test_loader_covers_the_split_once_per_epoch(cache):
    train = CachedSplit(cache, "train")
    loader, sampler = make_loader(train, batch_size=4, seed=3)
    seen = torch.cat([batch["indices"] for batch in loader]).tolist()
    assert sorted(seen) == list(range(len(train)))


def test_worker_processes_are_started_only_for_enough_images(tmp_path, monkeypatch):
    started = []

    class CountingContext:
        def Pool(self, workers):  # noqa: N802 (multiprocessing's name)
            started.append(workers)
            return get_context("spawn").Pool(workers)

    monkeypatch.setattr(preprocess_module, "get_context", lambda method: CountingContext())
    root = clevr_dataset(tmp_path / "clevr")
    preprocess(root, tmp_path / "small", resolution=(8, 8), workers=2)
    assert started == []  # 6, 3 and 2 images: starting a worker would cost more than decoding them
    monkeypatch.setattr(preprocess_module, "IMAGES_PER_WORKER", 3)
    preprocess(root, tmp_path / "pooled", resolution=(8, 8), workers=2)
    assert started == [2]  # train's 6 images get 2 workers; val's 3 and test's 2 are decoded here
    for name in ("train_images.h5", "val_images.h5"):
        with h5py.File(tmp_path / "small" / name) as one, h5py.File(tmp_path / "pooled" / name) as two:
            assert np.array_equal(one["images"][()], two["images"][()])


def test_pixels_can_travel_as_uint8_and_scale_to_the_same_floats(cache):
    from filmkit.data.dataset import to_unit_range

    floats, raw = CachedSplit(cache, "train"), CachedSplit(cache, "train", pixels_as_uint8=True)
    as_stored = raw[[0, 3, 4]]["images"]
    assert as_stored.dtype == torch.uint8 and as_stored.max() > 1  # the stored bytes, not yet scaled
    assert torch.equal(to_unit_range(as_stored), floats[[0, 3, 4]]["images"])
