import numpy as np
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


def _grouped(images, **options):
    from filmkit.data.sampler import ImageGroupedBatchSampler

    return ImageGroupedBatchSampler(images, **options)


def test_grouped_batches_see_every_question_once_and_few_images_each():
    import numpy as np

    images = np.random.default_rng(0).integers(0, 40, size=400)
    sampler = _grouped(images, batch_size=16, per_image=4, seed=3)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(400))
    assert len(batches) == sampler.batches_per_epoch() == len(sampler)
    assert all(len(batch) <= 16 and len({int(images[i]) for i in batch}) <= 4 for batch in batches)
    # Grouping is what makes the stem cheaper: far fewer distinct images than questions in a batch.
    assert np.mean([len({int(images[i]) for i in batch}) for batch in batches]) <= 4
    assert batches == list(_grouped(images, batch_size=16, per_image=4, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_grouped_sampler_resumes_mid_epoch_and_shards_disjointly():
    images = [i // 5 for i in range(53)]
    full = list(_grouped(images, batch_size=6, per_image=3, seed=1))
    resumed = _grouped(images, batch_size=6, per_image=3, seed=1)
    resumed.set_epoch(0, start_batch=4)
    assert list(resumed) == full[4:]
    options = dict(batch_size=6, per_image=3, world_size=2, equal_shards=True)
    shards = [list(_grouped(images, rank=rank, **options)) for rank in (0, 1)]
    seen = [{i for batch in shard for i in batch} for shard in shards]
    assert not seen[0] & seen[1] and len(shards[0]) == len(shards[1])


def test_grouped_sampler_never_ends_an_epoch_on_a_lone_question():
    images = [0, 0, 1, 1, 2]  # groups of 2, 2 and a lone question: alone in a batch it would be last half the time
    for seed in range(20):
        batches = list(_grouped(images, batch_size=2, per_image=2, seed=seed))
        assert len(batches[-1]) >= 2 and sorted(i for batch in batches for i in batch) == list(range(5))


def test_no_two_seed_and_epoch_pairs_share_a_permutation():
    # seed * 100_003 + epoch, the old mix, gave (seed 1, epoch 0) the permutation of (seed 0, epoch 100_003)
    later = ShardedBatchSampler(50, batch_size=50, seed=0)
    later.set_epoch(100_003)
    first = ShardedBatchSampler(50, batch_size=50, seed=1)
    assert later.shard().tolist() != first.shard().tolist()


def test_a_curriculum_orders_the_first_epoch_by_its_key_and_shuffles_the_rest():
    from filmkit.data.sampler import ImageGroupedBatchSampler

    rng = np.random.default_rng(0)
    image_of = np.repeat(np.arange(40), 5)  # 40 images, 5 questions each
    objects = rng.integers(3, 11, size=40)[image_of]  # the key of a question: the objects in its image
    sampler = ImageGroupedBatchSampler(image_of, batch_size=10, per_image=5, first_epoch_key=objects, seed=3)
    first = list(sampler)
    keys = [objects[batch].max() for batch in first]
    assert keys == sorted(keys) and keys[0] == 3 and keys[-1] == 10
    assert sorted(sum(first, [])) == list(range(200))  # still every question once
    sampler.set_epoch(0, start_batch=7)
    assert list(sampler) == first[7:]  # a resumed first epoch goes on in the same order
    sampler.set_epoch(1)
    later = [objects[batch].max() for batch in sampler]
    assert later != sorted(later)  # afterwards, shuffled as without a curriculum
    plain = ImageGroupedBatchSampler(image_of, batch_size=10, per_image=5, seed=3)
    plain.set_epoch(1)
    assert list(plain) == list(sampler)
