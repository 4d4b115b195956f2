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


def heatmap_examples(model, split, indices, out_dir: str | os.PathLike, prefix: str = "example") -> list[dict]:
    """Ask ``model`` the questions of ``split`` at ``indices`` about their images; write each heatmap overlay.

    Returns one record per question: ``question``, ``truth`` (None without an answer), ``answer``,
    ``confidence`` and ``picture`` (the PNG, ``out_dir/{prefix}-{n}.png``).
    """
    from filmkit.data.cache import open_image_array, read_rows
    from filmkit.train.ask import ask

    images = open_image_array(split.arrays)
    vocab = split.vocab
    records = []
    for number, index in enumerate(indices):
        pixels = read_rows(images, split.arrays.image_rows[[index]])[0].transpose(1, 2, 0)
        question = vocab.decode_question(split.arrays.questions[index].tolist()) + "?"
        found = ask(model, vocab, pixels, question)
        answer_id = int(split.arrays.answers[index])
        records.append(
            {
                "question": question,
                "truth": vocab.answer_tokens[answer_id] if answer_id >= 0 else None,
                "answer": found.answer,
                "confidence": found.top[0][1],
                "picture": overlay_heatmap(pixels, found.heatmap, Path(out_dir) / f"{prefix}-{number}.png"),
            }
        )
    return records
