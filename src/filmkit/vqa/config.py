"""The FiLM VQA model's configuration: every switch of the paper's ablations, and the named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from filmkit.film import GAMMA_ACTIVATIONS

FILM_PLACEMENTS = ("bn-film", "conv-film", "relu-film", "block-input-film", "block-output-film")
COORD_MODES = ("none", "input", "all")
RNN_TYPES = ("gru", "lstm")
INPUT_KINDS = ("features", "pixels")
POOLS = ("max", "avg")
GENERATOR_INITS = ("kaiming", "zero")


@dataclass
class FiLMVQAConfig:
    """Everything that defines a FiLM VQA model. The defaults are the paper's best model on ResNet features.

    >>> config = FiLMVQAConfig(vocab_size=93, num_answers=32, film_placement="relu-film", use_beta=False)
    >>> config.conditioned_blocks
    [0, 1, 2, 3]
    """

    vocab_size: int = 93
    num_answers: int = 32
    max_question_length: int = 100  # tokens including <START> and <END>

    # Question encoder: word embedding -> RNN; the hidden state at the last real token is the embedding.
    embedding_dim: int = 200
    rnn_type: str = "gru"
    rnn_hidden_dim: int = 4096
    rnn_num_layers: int = 1
    rnn_bidirectional: bool = False
    rnn_dropout: float = 0.0

    # FiLM generator head: question embedding -> (gamma, beta) for each conditioned block.
    generator_hidden_dims: tuple[int, ...] = ()
    gamma_activation: str = "linear"  # linear means gamma = 1 + predicted delta
    use_gamma: bool = True
    use_beta: bool = True
    condition_pattern: tuple[bool, ...] | None = None  # per block: FiLM on or off; None = all on
    # "kaiming": the paper's init, so each question starts with its own random gammas and betas; "zero" starts
    # the generator's output layer at 0, so every question starts at the identity (gamma 1, beta 0).
    generator_init: str = "kaiming"

    # Visual input and stem. "features": e.g. ResNet-101 conv4 maps; "pixels": raw RGB in [0, 1].
    input_kind: str = "features"
    in_channels: int = 1024
    image_height: int = 14
    image_width: int = 14
    stem_num_layers: int = 1
    stem_kernel_size: int = 3
    stem_stride: int = 1
    stem_batchnorm: bool = True

    # FiLMed residual blocks.
    module_dim: int = 128
    num_blocks: int = 4
    block_kernel_size: int = 3
    film_placement: str = "bn-film"
    coords: str = "input"  # none | input (stem, block inputs, classifier) | all (also the blocks' main conv)
    residual: bool = True
    block_batchnorm: bool = True
    block_dropout: float = 0.0

    # Classifier: 1x1 projection -> global pool -> fully connected layers -> answer logits.
    classifier_proj_dim: int = 512
    classifier_pool: str = "max"
    classifier_fc_dims: tuple[int, ...] = (1024,)
    classifier_batchnorm: bool = True
    classifier_dropout: float = 0.0

    # Scene supervision (filmkit.train.scene_supervision; not in the paper): a 1x1 convolution on the stem's maps
    # predicting, per cell, an object centre and the number of values of each attribute given here. () = no head.
    scene_classes: tuple[int, ...] = ()

    extra: dict = field(default_factory=dict)  # free-form notes carried into checkpoints

    def __post_init__(self) -> None:
        self.generator_hidden_dims = tuple(self.generator_hidden_dims)
        self.classifier_fc_dims = tuple(self.classifier_fc_dims)
        self.scene_classes = tuple(self.scene_classes)
        if self.condition_pattern is not None:
            self.condition_pattern = tuple(bool(flag) for flag in self.condition_pattern)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value cannot build a model."""
        choices = {
            "rnn_type": RNN_TYPES,
            "gamma_activation": GAMMA_ACTIVATIONS,
            "input_kind": INPUT_KINDS,
            "film_placement": FILM_PLACEMENTS,
            "coords": COORD_MODES,
            "classifier_pool": POOLS,
            "generator_init": GENERATOR_INITS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"config.{name} = {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        positive = (
            "vocab_size",
            "num_answers",
            "max_question_length",
            "embedding_dim",
            "rnn_hidden_dim",
            "rnn_num_layers",
            "in_channels",
            "image_height",
            "image_width",
            "stem_num_layers",
            "stem_kernel_size",
            "stem_stride",
            "module_dim",
            "num_blocks",
            "block_kernel_size",
            "classifier_proj_dim",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"config.{name} must be a positive integer, got {value!r}")
        if self.block_kernel_size % 2 == 0:
            raise ValueError(f"config.block_kernel_size must be odd to keep the map size, got {self.block_kernel_size}")
        for name in ("rnn_dropout", "block_dropout", "classifier_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"config.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if any(not isinstance(count, int) or count < 2 for count in self.scene_classes):
            raise ValueError(f"config.scene_classes must be class counts of at least 2, got {self.scene_classes!r}")
        if self.condition_pattern is not None and len(self.condition_pattern) != self.num_blocks:
            raise ValueError(
                f"config.condition_pattern has {len(self.condition_pattern)} entries for {self.num_blocks} blocks"
            )
        if min(self.feature_map_size) < 1:
            raise ValueError(
                f"a {self.image_height}x{self.image_width} input shrinks to nothing through {self.stem_num_layers} "
                f"stem layers of stride {self.stem_stride}"
            )

    @property
    def conditioned_blocks(self) -> list[int]:
        """Indices of the blocks that receive FiLM parameters."""
        pattern = self.condition_pattern or (True,) * self.num_blocks
        return [index for index, on in enumerate(pattern) if on]

    @property
    def stem_padding(self) -> int:
        # Padding that makes each stem layer map H to ceil(H / stride): 1 for 3x3/s1 and for 4x4/s2.
        return (self.stem_kernel_size - self.stem_stride + 1) // 2

    @property
    def feature_map_size(self) -> tuple[int, int]:
        """(H, W) of the maps the ResBlocks see, after the stem."""
        height, width = self.image_height, self.image_width
        k, s, p = self.stem_kernel_size, self.stem_stride, self.stem_padding
        for _ in range(self.stem_num_layers):
            height = (height + 2 * p - k) // s + 1
            width = (width + 2 * p - k) // s + 1
        return height, width

    @property
    def question_embedding_dim(self) -> int:
        return self.rnn_hidden_dim * (2 if self.rnn_bidirectional else 1)

    def to_dict(self) -> dict:
        """Plain-JSON form (lists instead of tuples), as stored in checkpoints."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> FiLMVQAConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        return cls(**values)


def json_ready(value):
    """Tuples to lists, recursively, so that a config survives JSON and weights-only checkpoint loading."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


# Named presets. Each is a dict of overrides on the defaults above (the paper's feature model).
PRESETS: dict[str, dict] = {
    # The paper's best model on ResNet-101 conv4 features (1024 x 14 x 14 from 224 x 224 images).
    "paper": {},
    # The same model on raw 224 x 224 pixels: a 4-layer strided stem, no coordinate maps in the stem.
    "paper-pixels": {
        "input_kind": "pixels",
        "in_channels": 3,
        "image_height": 224,
        "image_width": 224,
        "stem_num_layers": 4,
        "stem_kernel_size": 4,
        "stem_stride": 2,
    },
    # A small model from raw 64 x 64 pixels that trains in minutes on a 2-core CPU. Three 3x3 stride-2 stem layers
    # bring the blocks down to 8 x 8 maps: it learns as much per sample as 16 x 16 maps did in our runs on the demo
    # data (48.1% vs 48.3% after 3,000 steps) at 1.8x the samples per second.
    "cpu": {
        "input_kind": "pixels",
        "in_channels": 3,
        "image_height": 64,
        "image_width": 64,
        "stem_num_layers": 3,
        "stem_kernel_size": 3,
        "stem_stride": 2,
        "embedding_dim": 64,
        "rnn_hidden_dim": 256,
        "module_dim": 64,
        "classifier_proj_dim": 256,
        "classifier_fc_dims": (256,),
    },
}
# The cpu model on true scene maps instead of pixels (filmkit.data.scene_maps: 16 channels of objectness and
# one-hot attributes on 8 x 8 cells): one stride-1 stem layer stands in for the three that read pixels, so the
# blocks, generator and classifier are the cpu preset's own. It tells reasoning from seeing.
PRESETS["scene-maps"] = {
    **PRESETS["cpu"],
    "input_kind": "features",
    "in_channels": 16,
    "image_height": 8,
    "image_width": 8,
    "stem_num_layers": 1,
    "stem_stride": 1,
}


def build_config(preset: str = "paper", **overrides) -> FiLMVQAConfig:
    """A config from a named preset plus keyword overrides.

    >>> build_config("paper-pixels", vocab_size=93, num_answers=32).feature_map_size
    (14, 14)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return FiLMVQAConfig(**{**PRESETS[preset], **overrides})
