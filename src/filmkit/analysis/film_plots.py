"""Figures of FiLM parameters: histograms of gamma and beta per block, and t-SNE maps coloured by function."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from filmkit.analysis.film_params import FiLMParams  # noqa: E402
from filmkit.atomic import atomic_output  # noqa: E402
from filmkit.data.question_types import FINAL_FUNCTIONS  # noqa: E402


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


# One colour per final function, the same in every figure (tab20 by the functions' fixed order): a reader compares
# t-SNE maps of different blocks or models by colour.
FUNCTION_COLOURS = {name: plt.get_cmap("tab20")(number) for number, name in enumerate(FINAL_FUNCTIONS)}


def plot_tsne(points: np.ndarray, labels: list[str], path: str | os.PathLike, title: str) -> Path:
    """Scatter of 2-D ``points`` coloured by their final function (FUNCTION_COLOURS); other labels in grey."""
    figure, axis = plt.subplots(figsize=(7.5, 6))
    labels = np.asarray(labels)
    others = ~np.isin(labels, list(FUNCTION_COLOURS))
    if others.any():
        axis.scatter(*points[others].T, s=4, color="lightgray", label="other")
    for name, colour in FUNCTION_COLOURS.items():
        chosen = labels == name
        if chosen.any():
            axis.scatter(*points[chosen].T, s=4, color=colour, label=name)
    axis.set(title=title, xticks=[], yticks=[])
    axis.legend(fontsize="x-small", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(figure, path)
