import pytest

from filmkit.data.sampler import ShardedBatchSampler


def flatten(batches):
    return [index for batch in batches for index in batch]


def test_same_seed_same_order_other_seed_or_epoch_other_order():
    first = list(ShardedBatchSampler(50, 8, seed=1))
    assert first == list(ShardedBatchSampler(50, 8, seed=1))
    assert first != list(ShardedBatchSampler(50, 8, seed=2))
    later = ShardedBatchSampler(50, 8, seed=1)
    later.set_epoch(1)
    assert list(later) != first
    assert sorted(flatten(first)) == list(range(50))


def test_mid_epoch_resume_yields_the_remaining_samples_exactly_once():
    full = ShardedBatchSampler(37, 5, seed=4)
    full.set_epoch(2)
    everything = list(full)
    resumed = ShardedBatchSampler(37, 5, seed=4)
    resumed.set_epoch(2, start_batch=3)
    assert len(resumed) == len(everything) - 3
    assert list(resumed) == everything[3:]
    assert sorted(flatten(everything[:3]) + flatten(list(resumed))) == list(range(37))


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_shards_are_disjoint_and_cover_the_set(world_size):
    shards = []
    for rank in range(world_size):
        sampler = ShardedBatchSampler(23, 4, seed=0, rank=rank, world_size=world_size)
        shards.append(flatten(list(sampler)))
    union = [index for shard in shards for index in shard]
    assert len(union) == len(set(union)) == 23
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_drop_last_and_no_shuffle():
    sampler = ShardedBatchSampler(10, 4, shuffle=False, drop_last=True)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty split"):
        ShardedBatchSampler(0, 4)
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        ShardedBatchSampler(10, 4, rank=2, world_size=2)


def test_loader_iteration_does_not_touch_the_global_rng(tmp_path):
    import torch
    from fixtures import clevr_dataset

    from filmkit.data.dataset import CachedSplit, make_loader
    from filmkit.data.preprocess import preprocess

    preprocess(clevr_dataset(tmp_path / "clevr"), tmp_path / "cache", resolution=(8, 8))
    loader, _ = make_loader(CachedSplit(tmp_path / "cache", "train"), batch_size=4)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    for _ in loader:
        pass
    assert torch.equal(torch.rand(3), expected)


def test_equal_shards_give_every_rank_the_same_number_of_batches():
    samplers = [ShardedBatchSampler(23, 4, rank=r, world_size=3, equal_shards=True) for r in range(3)]
    assert {len(s) for s in samplers} == {2}  # 7 samples each: batches of 4 and 3
    union = [i for s in samplers for i in flatten(list(s))]
    assert len(union) == len(set(union)) == 21
