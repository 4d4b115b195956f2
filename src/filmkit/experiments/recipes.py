"""The named training recipes: one definition each, shared by `filmkit speedrun`, `filmkit demo` and the reproduction.

A recipe is a set of `TrainConfig` settings (model preset, optimisation, data order) without a length: a run gives
it a wall-clock budget, and the trainer times its first steps to size the learning-rate schedule to it
(``fit_steps_to_time``), so that the cosine decay ends when the budget does on any machine. docs/benchmarks.md
records the measurements behind each setting (the lever table).

Example::

    from filmkit.experiments.recipes import recipe_config

    config = recipe_config("cpu", max_steps=2_000)
    config.lr, config.questions_per_image   # (0.002, 8)
"""

from __future__ import annotations

from filmkit.train.config import TrainConfig
from filmkit.train.devices import fastest_precision, resolve_device

RECIPES: dict[str, dict] = {
    # FiLM's cpu preset (three stride-2 stem layers to 8x8 maps, four FiLMed ResBlocks of 64 channels, GRU 256) on
    # 64x64 images. Each batch holds 8 images with 8 questions each, so the stem, which FiLM does not reach, runs on 8
    # images instead of 64. A higher peak learning rate than the paper's 3e-4, a warm-up and a cosine decay over the
    # budget; the paper's weight decay; shifts of up to 2 pixels against memorising the images.
    "cpu": {
        "preset": "cpu",
        "batch_size": 64,
        "questions_per_image": 8,
        "lr": 2e-3,
        "weight_decay": 1e-5,
        "warmup_steps": 500,
        "schedule": "cosine",
        "min_lr_ratio": 0.02,
        "augment_shift": 2,
        "val_every": 1000,
        "val_subset": 2000,
        "checkpoint_every": 500,
    },
}
# The same optimisation on a scene-maps cache (`filmkit preprocess --features scene-maps --resolution 8x8`): the
# true scene instead of pixels, so a run measures what the reasoning part learns when seeing is solved. Shifting
# an 8 x 8 map by pixels would move objects across cells, so there is no augmentation.
RECIPES["scene-maps"] = {**RECIPES["cpu"], "preset": "scene-maps", "augment_shift": 0}


def get_recipe(name: str) -> dict:
    """The settings of recipe ``name``; a ValueError names the known ones.

    >>> get_recipe("cpu")["preset"]
    'cpu'
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name])


def recipe_config(name: str, **settings) -> TrainConfig:
    """A TrainConfig from recipe ``name`` with ``settings`` on top, at the fastest precision of this machine.

    >>> recipe_config("cpu", max_steps=10, lr=1e-3).lr
    0.001
    """
    values = {"precision": fastest_precision(resolve_device(settings.get("device", "auto"))), **get_recipe(name)}
    return TrainConfig(**{**values, **settings})
