"""Heatmaps over images: where a model looked, blended onto the picture it looked at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from filmkit.atomic import atomic_output


def overlay_heatmap(
    image: np.ndarray,
    heatmap: np.ndarray,
    path: str | os.PathLike,
    *,
    colormap: str = "inferno",
    opacity: float = 0.6,
) -> Path:
    """Write ``image`` (uint8 (H, W, 3)) with ``heatmap`` ((h, w) in [0, 1]) upsampled and blended over it, as PNG.

    The colour's opacity grows with the heat, so cold places show the image as it is. The PNG has the image's size
    and appears atomically.

    >>> import tempfile
    >>> image = np.full((30, 40, 3), 128, dtype=np.uint8)
    >>> path = overlay_heatmap(image, np.eye(3), Path(tempfile.mkdtemp()) / "heat.png")
    >>> Image.open(path).size
    (40, 30)
    """
    from matplotlib import colormaps  # imported here: matplotlib is slow to import and only needed here

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (h, w), got shape {heatmap.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    height, width = image.shape[:2]
    heat = Image.fromarray(np.clip(heatmap, 0.0, 1.0).astype(np.float32))  # mode "F"
    heat = np.clip(np.asarray(heat.resize((width, height), Image.BILINEAR)), 0.0, 1.0)[..., None]
    colours = colormaps[colormap](heat[..., 0])[..., :3] * 255.0
    blended = image * (1.0 - opacity * heat) + colours * (opacity * heat)
    with atomic_output(path, "wb") as handle:
        Image.fromarray(np.round(blended).astype(np.uint8)).save(handle, format="PNG")
    return Path(path)
