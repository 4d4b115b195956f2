"""Models shipped inside the package, so that a new user can ask a question seconds after installing.

``--checkpoint pretrained`` in `filmkit ask`, `filmkit eval` and `filmkit analyze` names the speedrun's model: FiLM's
cpu preset trained on the clevr-cpu dataset at 64x64 (its model card, ``clevr-cpu-film.md`` beside the weights,
says how and how well). The file holds weights, config and vocabulary only: no optimizer state.

Example::

    from filmkit.vqa import load_checkpoint

    model = load_checkpoint("pretrained").model      # the same as the file pretrained_path("pretrained")
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (weights file, model card) in this folder
PRETRAINED = {"pretrained": ("clevr-cpu-film.pt", "clevr-cpu-film.md")}


def pretrained_path(name: str) -> Path:
    """The weights file of shipped model ``name``; a ValueError names the shipped ones.

    >>> pretrained_path("pretrained").name
    'clevr-cpu-film.pt'
    """
    if name not in PRETRAINED:
        raise ValueError(f"no shipped model called {name!r}; shipped: {', '.join(PRETRAINED)}")
    return HERE / PRETRAINED[name][0]


def model_card(name: str) -> Path:
    """The model card (Markdown) of shipped model ``name``."""
    pretrained_path(name)
    return HERE / PRETRAINED[name][1]


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """``path`` itself, or the shipped file when ``path`` is a shipped model's name and no such file exists here.

    >>> resolve_checkpoint("runs/x/best.pt")
    PosixPath('runs/x/best.pt')
    >>> resolve_checkpoint("pretrained") == pretrained_path("pretrained")
    True
    """
    text = os.fspath(path)
    if text in PRETRAINED and not Path(text).exists():
        return pretrained_path(text)
    return Path(path)
