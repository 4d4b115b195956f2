import pytest
import torch
import torch.nn.functional as F

from filmkit.train.augment import random_shift


def test_each_image_is_a_window_of_its_edge_padded_self():
    torch.manual_seed(0)
    images = torch.rand(16, 3, 8, 10)
    shifted = random_shift(images, 2)
    padded = F.pad(images, (2, 2, 2, 2), mode="replicate")
    offsets = set()
    for index in range(len(images)):
        windows = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[index, :, dy : dy + 8, dx : dx + 10], shifted[index])
        ]
        assert windows, f"image {index} is not a shifted copy of itself"
        offsets.add(windows[0])
    assert len(offsets) > 3  # offsets are drawn per image, not once per batch


def test_offsets_follow_the_generator_and_zero_is_the_identity():
    images = torch.rand(4, 3, 8, 8)
    first = random_shift(images, 3, torch.Generator().manual_seed(5))
    again = random_shift(images, 3, torch.Generator().manual_seed(5))
    assert torch.equal(first, again)
    assert random_shift(images, 0) is images
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(images, -1)
