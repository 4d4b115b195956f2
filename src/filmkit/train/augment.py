"""Training-time image augmentation that keeps every CLEVR answer true.

A small random translation moves the whole scene: counts, attributes and the relations between objects (left of,
behind, ...) do not change, so the question's answer still holds. Flips would swap left and right, and colour
jitter would change the colours questions ask about, so neither is offered.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image of (N, C, H, W) by its own random offset of up to ``max_shift`` pixels in x and y.

    The border is extended by repeating the edge pixels (CLEVR's background is a smooth grey), so no black
    frame appears. Offsets come from ``generator`` (the global torch RNG when None, which a checkpoint saves).

    >>> images = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> random_shift(images, 0).equal(images)
    True
    >>> random_shift(images, 1).shape
    torch.Size([1, 1, 4, 4])
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be at least 0, got {max_shift}")
    if max_shift == 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator, device=images.device)
    rows = (offsets[0, :, None] + torch.arange(height, device=images.device))[:, None, :, None]
    columns = (offsets[1, :, None] + torch.arange(width, device=images.device))[:, None, None, :]
    samples = torch.arange(batch, device=images.device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[samples, channels, rows, columns]
