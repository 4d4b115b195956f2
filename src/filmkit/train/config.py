"""Training configuration: paper defaults, a YAML file, and ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from filmkit.train.devices import PRECISIONS
from filmkit.vqa.baselines import ARCHITECTURES, BaselineConfig, baseline_config
from filmkit.vqa.config import PRESETS, FiLMVQAConfig, build_config

SCHEDULES = ("constant", "cosine", "linear")
CURRICULA = ("none", "objects", "program")
DEVICES = ("auto", "cpu", "cuda")
FREEZES = ("none", "visual")


@dataclass
class TrainConfig:
    """Every knob of a training run. Defaults are the paper's: Adam, lr 3e-4, weight decay 1e-5, batch 64.

    >>> config = apply_overrides(TrainConfig(), ["lr=1e-3", "model.module_dim=32", "schedule=cosine"])
    >>> config.lr, config.model["module_dim"], config.schedule
    (0.001, 32, 'cosine')
    """

    preset: str = "cpu"
    architecture: str = "film"  # or a baseline: lstm, cnn-lstm, cnn-lstm-sa, cnn-lstm-rn (filmkit.vqa.baselines)
    model: dict = field(default_factory=dict)  # overrides of the model config's fields on top of the preset
    batch_size: int = 64  # per process when distributed
    # Questions about one image in a batch (1 = the paper's independent sampling): the stem, which FiLM does not
    # reach, then runs once per image; each epoch still sees every question once.
    questions_per_image: int = 1
    lr: float = 3e-4
    weight_decay: float = 1e-5
    epochs: float = 20.0
    max_steps: int | None = None  # when set, wins over epochs
    time_limit_minutes: float | None = None  # stop after this much wall-clock time (the speedrun's budget)
    # Size the schedule to time_limit_minutes: max_steps is set from the speed of the first steps, then refitted
    # at every validation from the speed since (see Trainer), so the decay ends with the budget.
    fit_steps_to_time: bool = False
    # Set by the trainer once it has fitted max_steps itself; only then do validations refit it (a max_steps the
    # user gave stays theirs).
    steps_fitted: bool = False
    warmup_steps: int = 0
    schedule: str = "constant"  # after warmup: constant, cosine or linear decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.0
    # Set by `filmkit train --resume RUN --more-steps N`: from this step the schedule decays from this factor.
    extended_at_step: int | None = None
    extended_lr_factor: float = 1.0
    grad_clip: float | None = None  # max gradient norm; None = no clipping (the paper)
    augment_shift: int = 0  # translate training images by up to this many pixels (0 = off, the paper)
    # Weight of the scene-supervision loss (filmkit.train.scene_supervision): the stem also names the object centred
    # in each cell, from the training split's scene graphs. 0 = off, the paper (question-answer pairs only).
    scene_loss_weight: float = 0.0
    # Curriculum: the first epoch from the simplest questions to the hardest, then shuffled epochs as usual; by the
    # objects in the image ("objects", from the split's scene file) or the length of the question's program
    # ("program"). Needs questions_per_image > 1 (the grouped sampler). "none" = the paper's shuffled order.
    curriculum: str = "none"
    val_every: int = 500  # steps between validations on a fixed subset
    val_subset: int = 1000  # questions in that subset; the full split is evaluated at the end
    early_stopping: int | None = None  # stop after this many validations without improvement
    checkpoint_every: int = 200  # steps between crash-safety checkpoints (last.pt)
    curves: bool = True  # redraw curves.png (loss and accuracy against steps) beside metrics.jsonl at each validation
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    sync_batchnorm: bool = False
    num_workers: int = 0
    train_split: str = "train"
    val_split: str = "val"
    init_checkpoint: str | None = None  # start from this FiLM checkpoint's model and weights (fine-tuning)
    freeze: str = "none"  # none, or visual: only the question encoder and FiLM generator learn

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        for item in dataclasses.fields(self):
            value, expected = getattr(self, item.name), _SETTING_TYPES[item.name]
            if float in expected and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, item.name, float(value))  # 10 is a fine number of minutes
            elif isinstance(value, bool) != (bool in expected) or not isinstance(value, expected):
                raise ValueError(f"{item.name} = {value!r} must be {' or '.join(t.__name__ for t in expected)}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is unknown; choose one of {', '.join(PRESETS)}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r} is unknown; choose one of {', '.join(ARCHITECTURES)}")
        model_class = FiLMVQAConfig if self.architecture == "film" else BaselineConfig
        known = {f.name for f in dataclasses.fields(model_class)} - {"architecture"}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"unknown model setting(s): {', '.join('model.' + name for name in unknown)}")
        choices = {
            "schedule": SCHEDULES,
            "precision": PRECISIONS,
            "device": DEVICES,
            "freeze": FREEZES,
            "curriculum": CURRICULA,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} = {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        for name in ("batch_size", "val_every", "val_subset", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.epochs <= 0:
            raise ValueError("lr and epochs must be positive")
        if not 1 <= self.questions_per_image <= self.batch_size:
            raise ValueError(
                f"questions_per_image must be between 1 and batch_size ({self.batch_size}), "
                f"got {self.questions_per_image}"
            )
        if self.augment_shift < 0:
            raise ValueError(f"augment_shift must be at least 0 pixels, got {self.augment_shift}")
        if self.curriculum != "none" and self.questions_per_image < 2:
            raise ValueError(f"curriculum = {self.curriculum!r} orders grouped batches: set questions_per_image >= 2")
        if self.scene_loss_weight < 0:
            raise ValueError(f"scene_loss_weight must be at least 0, got {self.scene_loss_weight:g}")
        if self.scene_loss_weight > 0 and self.architecture != "film":
            raise ValueError(f"scene_loss_weight needs the film architecture (its stem), not {self.architecture!r}")
        if self.time_limit_minutes is not None and self.time_limit_minutes <= 0:
            raise ValueError(f"time_limit_minutes must be positive, got {self.time_limit_minutes:g}")
        if self.fit_steps_to_time and self.time_limit_minutes is None:
            raise ValueError("fit_steps_to_time needs time_limit_minutes")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


# What each setting may hold (bool is checked apart, since True is also an int).
_SETTING_TYPES = {
    "preset": (str,),
    "architecture": (str,),
    "model": (dict,),
    "batch_size": (int,),
    "questions_per_image": (int,),
    "lr": (float,),
    "weight_decay": (float,),
    "epochs": (float,),
    "max_steps": (int, type(None)),
    "time_limit_minutes": (float, type(None)),
    "fit_steps_to_time": (bool,),
    "steps_fitted": (bool,),
    "warmup_steps": (int,),
    "schedule": (str,),
    "min_lr_ratio": (float,),
    "extended_at_step": (int, type(None)),
    "extended_lr_factor": (float,),
    "grad_clip": (float, type(None)),
    "augment_shift": (int,),
    "scene_loss_weight": (float,),
    "curriculum": (str,),
    "val_every": (int,),
    "val_subset": (int,),
    "early_stopping": (int, type(None)),
    "checkpoint_every": (int,),
    "curves": (bool,),
    "log_every": (int,),
    "seed": (int,),
    "device": (str,),
    "precision": (str,),
    "compile": (bool,),
    "sync_batchnorm": (bool,),
    "num_workers": (int,),
    "train_split": (str,),
    "val_split": (str,),
    "init_checkpoint": (str, type(None)),
    "freeze": (str,),
}


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A TrainConfig from a YAML file (optional) with ``key=value`` overrides applied on top.

    A file may start from a named recipe (``recipe: cpu``, filmkit.experiments.recipes) and change some of its
    settings, as the paper's table rows in configs/paper/ do; the model's overrides are merged with the recipe's.
    """
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: cannot read the config: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: the config must be a mapping of settings")
        if "recipe" in values:
            from filmkit.experiments.recipes import get_recipe  # it builds on this module

            try:
                base = get_recipe(str(values.pop("recipe")))
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
            values = {**base, **values, "model": {**base.get("model", {}), **values.get("model", {})}}
    config = TrainConfig.from_dict(values, source=str(path or "config"))
    return apply_overrides(config, overrides)


def parse_value(text: str):
    """A command-line value: an int, a float (``1e-3`` included, which YAML would keep as a string), or YAML."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``key=value`` strings; values are read as YAML (numbers, booleans, lists); ``model.x`` sets a model
    field."""
    values = config.to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        value = parse_value(text)
        if key.startswith("model."):
            values["model"] = {**values["model"], key[len("model.") :]: value}
        else:
            values[key] = value
    return TrainConfig.from_dict(values, source="--set")


def preset_config(config: TrainConfig, **sizes) -> FiLMVQAConfig:
    """The preset with the user's model overrides (then ``sizes``) for the run's architecture.

    Without ``sizes``: the model as far as it is known before the data is read (input kind, resolution).
    """
    overrides = {**config.model, **sizes}
    if config.scene_loss_weight > 0:
        from filmkit.train.scene_supervision import scene_classes  # torch: only runs that use it pay the import

        overrides.setdefault("scene_classes", scene_classes())
    if config.architecture == "film":
        return build_config(config.preset, **overrides)
    return baseline_config(config.architecture, config.preset, **overrides)


def model_config(config: TrainConfig, vocab_size: int, num_answers: int, image_shape: tuple[int, int, int]):
    """The model config for a run: preset, the user's model overrides, then the data's sizes.

    The images' size comes from the data, so a pixel preset trains at whatever resolution the cache holds;
    an explicit ``model.image_height`` (or width, or in_channels) that disagrees with the data is an error.
    """
    channels, height, width = image_shape
    data_sizes = {
        "vocab_size": vocab_size,
        "num_answers": num_answers,
        "in_channels": channels,
        "image_height": height,
        "image_width": width,
    }
    for key, value in data_sizes.items():
        if key in config.model and config.model[key] != value:
            raise ValueError(f"model.{key} = {config.model[key]} but the data has {value}")
    return preset_config(config, **data_sizes)
