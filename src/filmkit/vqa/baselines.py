"""The paper's neural baselines (Table 1), trained and evaluated like FiLM: ``model(images, questions) -> logits``.

- ``lstm``: the question alone, read by an LSTM, then an MLP.
- ``cnn-lstm``: the CNN's feature maps, flattened, beside the question embedding, then an MLP.
- ``cnn-lstm-sa``: stacked attention (Yang et al. 2016): the question attends over the feature-map cells, twice,
  each hop adding what it attended to to the query.
- ``cnn-lstm-rn``: a relation network (Santoro et al. 2017): an MLP on every pair of cells (with their coordinates)
  and the question, averaged over the pairs, then an MLP.

Each shares FiLM's stem (the same preset decides the image size and CNN) and question encoder (an LSTM here, as in
the paper's baselines), so comparisons differ only in how question and image meet. The ``Q-type`` baseline, the
most common answer per question family, needs no training: :mod:`filmkit.analysis.baselines`.

>>> config = baseline_config("cnn-lstm-sa", "cpu", vocab_size=20, num_answers=8)
>>> model = build_model(config)
>>> model(torch.rand(2, 3, 64, 64), torch.tensor([[1, 5, 2], [1, 2, 0]])).shape
torch.Size([2, 8])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from filmkit.vqa.config import FiLMVQAConfig, build_config
from filmkit.vqa.encoder import QuestionEncoder
from filmkit.vqa.model import FiLMVQA, InputChecks, check_image_index, init_kaiming_uniform
from filmkit.vqa.network import build_stem, coordinate_maps


@dataclasses.dataclass
class BaselineConfig(FiLMVQAConfig):
    """A FiLMVQAConfig (vocabulary, image size, stem, encoder, classifier widths) plus the baseline's own settings.

    Settings of FiLM's blocks and generator mean nothing to a baseline and are ignored.
    """

    architecture: str = "cnn-lstm"
    attention_dim: int = 256  # stacked attention: width of the attention layers
    attention_hops: int = 2
    relation_dim: int = 256  # relation network: width of the pair MLP
    relation_layers: int = 3

    def validate(self) -> None:
        super().validate()
        if self.architecture not in BASELINES:
            raise ValueError(f"unknown baseline {self.architecture!r}; choose one of {', '.join(BASELINES)}")
        for name in ("attention_dim", "attention_hops", "relation_dim", "relation_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """[Linear -> ReLU (-> Dropout)] for each hidden width, then a Linear to ``out_dim``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Baseline(InputChecks, nn.Module):
    """What every baseline has: the config, the question encoder, and (except ``lstm``) FiLM's stem."""

    uses_image = True

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = config
        self.encoder = QuestionEncoder.from_config(config)
        if self.uses_image:
            self.stem = build_stem(config, extra_channels=0)
            self.register_buffer("cell_coords", coordinate_maps(*config.feature_map_size), persistent=False)

    def inputs(
        self, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(feature maps or None, question embedding), after the input checks; ``image_index`` as in FiLMVQA."""
        self.check_questions(questions)
        check_image_index(image_index, images.shape[0], questions.shape[0])
        question = self.encoder(questions)
        if not self.uses_image:
            return None, question
        self.check_images(images)
        features = self.stem(images)
        return (features if image_index is None else features.index_select(0, image_index)), question

    def cells(self, features: torch.Tensor) -> torch.Tensor:
        """(N, H*W, C) feature-map cells."""
        return features.flatten(2).transpose(1, 2)


class QuestionOnly(Baseline):
    """``lstm``: answers from the question alone."""

    uses_image = False

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        dim = config.question_embedding_dim
        self.head = mlp(dim, config.classifier_fc_dims, config.num_answers, config.classifier_dropout)
        init_kaiming_uniform(self)

    def forward(self, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor | None = None):
        return self.head(self.inputs(images, questions, image_index)[1])


class CNNLSTM(Baseline):
    """``cnn-lstm``: flattened feature maps beside the question embedding, then an MLP."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        height, width = config.feature_map_size
        in_dim = config.module_dim * height * width + config.question_embedding_dim
        self.head = mlp(in_dim, config.classifier_fc_dims, config.num_answers, config.classifier_dropout)
        init_kaiming_uniform(self)

    def forward(self, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor | None = None):
        features, question = self.inputs(images, questions, image_index)
        return self.head(torch.cat((features.flatten(1), question), dim=1))


class StackedAttention(Baseline):
    """``cnn-lstm-sa``: ``attention_hops`` rounds of question-guided attention over the cells."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        dim = config.attention_dim
        self.cell_proj = nn.Linear(config.module_dim, dim)
        self.query_proj = nn.Linear(config.question_embedding_dim, dim)
        self.hops = nn.ModuleList(
            nn.ModuleDict({"cells": nn.Linear(dim, dim), "query": nn.Linear(dim, dim), "score": nn.Linear(dim, 1)})
            for _ in range(config.attention_hops)
        )
        self.head = mlp(dim, config.classifier_fc_dims, config.num_answers, config.classifier_dropout)
        init_kaiming_uniform(self)

    def forward(self, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor | None = None):
        features, question = self.inputs(images, questions, image_index)
        cells = self.cell_proj(self.cells(features))  # (N, cells, dim)
        query = self.query_proj(question)  # (N, dim)
        for hop in self.hops:
            joint = torch.tanh(hop["cells"](cells) + hop["query"](query).unsqueeze(1))
            weights = torch.softmax(hop["score"](joint).squeeze(2), dim=1)  # (N, cells)
            query = query + (weights.unsqueeze(2) * cells).sum(dim=1)
        return self.head(query)


class RelationNetwork(Baseline):
    """``cnn-lstm-rn``: g(cell_i, cell_j, question) over every ordered pair of cells, then f.

    The pairs are averaged where Santoro et al. sum them: with 64 cells there are 4,096 pairs, and their sum
    starts training with logits in the hundreds.
    """

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        cell_dim = config.module_dim + 2  # with its coordinates
        width = config.relation_dim
        self.pair_mlp = mlp(2 * cell_dim + config.question_embedding_dim, [width] * (config.relation_layers - 1), width)
        self.head = mlp(width, config.classifier_fc_dims, config.num_answers, config.classifier_dropout)
        init_kaiming_uniform(self)

    def forward(self, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor | None = None):
        features, question = self.inputs(images, questions, image_index)
        batch = features.shape[0]
        coords = self.cell_coords.to(features.dtype).expand(batch, -1, -1, -1)
        cells = self.cells(torch.cat((features, coords), dim=1))  # (N, K, C + 2)
        # g's first layer is linear in [cell i, cell j, question]: project each part once and add the projections
        # for every pair, rather than build (N, K, K, 2(C + 2) + Q) pairs and multiply them (1.7x faster, same sums).
        layer = self.pair_mlp[0]
        to_first, to_second, to_question = layer.weight.split([cells.shape[2], cells.shape[2], question.shape[1]], 1)
        first = nn.functional.linear(cells, to_first)[:, :, None]  # cell i, for every j
        second = nn.functional.linear(cells, to_second)[:, None, :]  # cell j, for every i
        asked = nn.functional.linear(question, to_question, layer.bias)[:, None, None]
        pairs = torch.relu(self.pair_mlp[1:](first + second + asked))
        return self.head(pairs.mean(dim=(1, 2)))


BASELINES: dict[str, type[Baseline]] = {
    "lstm": QuestionOnly,
    "cnn-lstm": CNNLSTM,
    "cnn-lstm-sa": StackedAttention,
    "cnn-lstm-rn": RelationNetwork,
}
ARCHITECTURES = ("film", *BASELINES)


def baseline_config(architecture: str, preset: str = "cpu", **overrides) -> BaselineConfig:
    """A baseline on a FiLM preset's image size, stem and widths, with an LSTM question encoder."""
    base = {field.name: getattr(build_config(preset), field.name) for field in dataclasses.fields(FiLMVQAConfig)}
    return BaselineConfig(**{**base, "rnn_type": "lstm", **overrides, "architecture": architecture})


def build_model(config: FiLMVQAConfig) -> nn.Module:
    """FiLMVQA for a FiLMVQAConfig, the named baseline for a BaselineConfig."""
    if isinstance(config, BaselineConfig):
        return BASELINES[config.architecture](config)
    return FiLMVQA(config)
