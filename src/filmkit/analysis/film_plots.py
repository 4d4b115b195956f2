"""Figures of FiLM parameters: histograms of gamma and beta per block, and t-SNE maps coloured by function."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from filmkit.analysis.film_params import FiLMParams  # noqa: E402
from filmkit.atomic import atomic_output  # noqa: E402


def _save(figure, path: str | os.PathLike) -> Path:
    figure.tight_layout()
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return Path(path)


def plot_film_histograms(params: FiLMParams, path: str | os.PathLike, bins: int = 80) -> Path:
    """Histograms of gamma (left) and beta (right): all blocks together, and each block as an outline."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, name, values in ((axes[0], "gamma", params.gammas), (axes[1], "beta", params.betas)):
        edges = np.linspace(np.percentile(values, 0.5), np.percentile(values, 99.5), bins + 1)
        axis.hist(values.ravel(), bins=edges, color="lightgray", label="all blocks", density=True)
        for block in range(values.shape[1]):
            axis.hist(values[:, block].ravel(), bins=edges, histtype="step", density=True, label=f"block {block + 1}")
        axis.axvline(0.0, color="black", linewidth=0.8)
        axis.set(xlabel=name, ylabel="density", title=f"{name} over {len(values):,} questions")
    axes[1].legend(fontsize="small")
    return _save(figure, path)


def plot_tsne(points: np.ndarray, labels: list[str], path: str | os.PathLike, title: str, top: int = 12) -> Path:
    """Scatter of 2-D ``points`` coloured by ``labels``; the ``top`` most common labels get their own colour."""
    common = [label for label, _ in Counter(labels).most_common(top)]
    figure, axis = plt.subplots(figsize=(7.5, 6))
    colours = plt.get_cmap("tab20")
    labels = np.asarray(labels)
    others = ~np.isin(labels, common)
    if others.any():
        axis.scatter(*points[others].T, s=4, color="lightgray", label="other")
    for number, label in enumerate(common):
        chosen = labels == label
        axis.scatter(*points[chosen].T, s=4, color=colours(number % 20), label=label)
    axis.set(title=title, xticks=[], yticks=[])
    axis.legend(fontsize="x-small", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(figure, path)
