"""Heatmaps over images: where a model looked, blended onto the picture it looked at, in a captioned figure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from filmkit.atomic import atomic_output

# Formats a heatmap figure can be written in, by the file's extension.
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg"}
PANEL_INCHES = 3.2  # each panel's side: a 64x64 image is shown about 350 pixels wide


def blend_heatmap(image: np.ndarray, heatmap: np.ndarray, *, colormap: str = "inferno", opacity: float = 0.6):
    """``image`` (uint8 (H, W, 3)) with ``heatmap`` ((h, w) in [0, 1]) upsampled and blended over it (uint8).

    The colour's opacity grows with the heat, so cold places show the image as it is.

    >>> image = np.full((30, 40, 3), 128, dtype=np.uint8)
    >>> blend_heatmap(image, np.eye(3)).shape
    (30, 40, 3)
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
    return np.round(image * (1.0 - opacity * heat) + colours * (opacity * heat)).astype(np.uint8)


def heatmap_figure(
    image: np.ndarray, heatmap: np.ndarray, path: str | os.PathLike, caption: str, *, colormap: str = "inferno"
) -> Path:
    """Write a figure a person can read: the image, the heatmap blended over it with a colour bar, the caption.

    Both panels are PANEL_INCHES wide whatever the image's size (a 64x64 input is enlarged, pixels kept sharp). The
    format is the one ``path``'s extension names (FIGURE_FORMATS); the file appears atomically.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable

    path = Path(path)
    file_format = FIGURE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ValueError(
            f"{path}: a heatmap is written as {', '.join(FIGURE_FORMATS)}; not {path.suffix or 'no extension'}"
        )
    figure, (left, right) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES + 0.9, PANEL_INCHES + 0.8))
    left.imshow(image, interpolation="nearest")
    left.set_title("image", fontsize="small")
    right.imshow(blend_heatmap(image, heatmap, colormap=colormap), interpolation="nearest")
    right.set_title("where the classifier's max-pool is won", fontsize="small")
    for axis in (left, right):
        axis.set(xticks=[], yticks=[])
    bar = figure.colorbar(ScalarMappable(cmap=colormap), ax=right, fraction=0.046, pad=0.04)
    bar.set_label("channels whose maximum is here (1: the most)", fontsize="x-small")
    figure.suptitle(caption, fontsize="small", wrap=True)
    with atomic_output(path, "wb") as handle:
        figure.savefig(handle, format=file_format, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def answer_caption(question: str, answer: str, confidence: float, truth: str | None = None) -> str:
    """``"Q: ...  A: yes (0.83)  truth: no"``, the caption of a heatmap figure."""
    caption = f"Q: {question}\nA: {answer} ({confidence:.2f})"
    return caption if truth is None else f"{caption}   truth: {truth}"


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
        truth = vocab.answer_tokens[answer_id] if answer_id >= 0 else None
        records.append(
            {
                "question": question,
                "truth": truth,
                "answer": found.answer,
                "confidence": found.top[0][1],
                "picture": heatmap_figure(
                    pixels,
                    found.heatmap,
                    Path(out_dir) / f"{prefix}-{number}.png",
                    answer_caption(question, found.answer, found.top[0][1], truth),
                ),
            }
        )
    return records
