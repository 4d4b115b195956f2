"""t-SNE maps colour each final function the same in every figure, whatever the mix of questions."""

import numpy as np
from matplotlib.axes import Axes

from filmkit.analysis import film_plots


def _colours_drawn(monkeypatch, labels, path) -> dict[str, tuple]:
    drawn = {}
    original = Axes.scatter

    def scatter(self, *args, color=None, label=None, **options):
        drawn[label] = tuple(np.ravel(color)) if not isinstance(color, str) else color
        return original(self, *args, color=color, label=label, **options)

    monkeypatch.setattr(Axes, "scatter", scatter)
    points = np.random.default_rng(0).normal(size=(len(labels), 2))
    film_plots.plot_tsne(points, labels, path, "t-SNE")
    return drawn


def test_a_function_keeps_its_colour_across_figures_with_other_mixes(monkeypatch, tmp_path):
    # query_color is the most common label of the first figure and a rare one in the second: a palette given out by
    # frequency would colour it differently.
    first = _colours_drawn(monkeypatch, ["query_color"] * 30 + ["count"] * 5, tmp_path / "a.png")
    second = _colours_drawn(monkeypatch, ["exist"] * 30 + ["count"] * 20 + ["query_color"] * 2, tmp_path / "b.png")
    assert first["query_color"] == second["query_color"]
    assert first["count"] == second["count"] != second["exist"]
    assert len(set(film_plots.FUNCTION_COLOURS.values())) == len(film_plots.FUNCTION_COLOURS)  # all distinct
    assert _colours_drawn(monkeypatch, ["none", "count"], tmp_path / "c.png")["other"] == "lightgray"
