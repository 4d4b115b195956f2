"""The FiLMed visual network: stem -> FiLMed residual blocks -> classifier.

It takes images (or image features) and FiLM parameters of shape (N, num_blocks, 2, module_dim) and returns
answer logits. It never sees the question: the parameters are all it knows of it.
"""

from __future__ import annotations

import torch
from torch import nn

from filmkit.film import film
from filmkit.vqa.config import FiLMVQAConfig


def coordinate_maps(height: int, width: int) -> torch.Tensor:
    """(2, H, W) maps of x (along the width) and y (along the height), each spanning [-1, 1].

    Concatenated to feature maps so that convolutions know where they are (the channel order matches the
    reference implementation, so imported weights see the maps they were trained with).
    """
    ys = torch.linspace(-1.0, 1.0, height).view(height, 1).expand(height, width)
    xs = torch.linspace(-1.0, 1.0, width).view(1, width).expand(height, width)
    return torch.stack((xs, ys))


def with_coords(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    batch = features.shape[0]
    return torch.cat((features, coords.to(features.dtype).expand(batch, -1, -1, -1)), dim=1)


def build_stem(config: FiLMVQAConfig, extra_channels: int) -> nn.Sequential:
    """``stem_num_layers`` x [Conv -> BatchNorm -> ReLU], from the input channels to ``module_dim``."""
    layers: list[nn.Module] = []
    channels = config.in_channels + extra_channels
    for _ in range(config.stem_num_layers):
        layers.append(
            nn.Conv2d(
                channels,
                config.module_dim,
                config.stem_kernel_size,
                stride=config.stem_stride,
                padding=config.stem_padding,
            )
        )
        if config.stem_batchnorm:
            layers.append(nn.BatchNorm2d(config.module_dim))
        layers.append(nn.ReLU(inplace=True))
        channels = config.module_dim
    return nn.Sequential(*layers)


class FiLMedResBlock(nn.Module):
    """One FiLMed ResBlock. With the paper's defaults (bn-film, coords on the input)::

        x = ReLU(Conv1x1([input, coords]));  out = ReLU(FiLM(BN(Conv3x3(x)))) + x

    ``placement`` moves the FiLM layer: ``conv-film`` before the BN, ``relu-film`` after the ReLU,
    ``block-input-film`` on the block's input, ``block-output-film`` after the residual sum. A block without
    FiLM (``conditioned=False``) gets an affine BatchNorm so that it keeps a learned scale and shift.
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 3,
        placement: str = "bn-film",
        conditioned: bool = True,
        coords: str = "input",
        residual: bool = True,
        batchnorm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.placement = placement if conditioned else None
        self.coords_on_input = coords in ("input", "all")
        self.coords_on_conv = coords == "all"
        self.residual = residual
        self.input_proj = nn.Conv2d(dim + 2 * self.coords_on_input, dim, kernel_size=1)
        self.conv = nn.Conv2d(dim + 2 * self.coords_on_conv, dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(dim, affine=not conditioned) if batchnorm else nn.Identity()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        def modulate(features: torch.Tensor, where: str) -> torch.Tensor:
            return film(features, gamma, beta) if self.placement == where else features

        x = modulate(x, "block-input-film")
        x = torch.relu(self.input_proj(with_coords(x, coords) if self.coords_on_input else x))
        out = self.conv(with_coords(x, coords) if self.coords_on_conv else x)
        out = modulate(out, "conv-film")
        out = modulate(self.norm(out), "bn-film")
        out = torch.relu(self.dropout(out))
        out = modulate(out, "relu-film")
        if self.residual:
            out = out + x
        return modulate(out, "block-output-film")


class Classifier(nn.Module):
    """[coords] -> Conv1x1 -> BN -> ReLU -> global max (or average) pool -> [Linear -> BN -> ReLU]* -> Linear."""

    def __init__(self, config: FiLMVQAConfig):
        super().__init__()
        self.use_coords = config.coords != "none"
        in_dim = config.module_dim + 2 * self.use_coords
        projection: list[nn.Module] = [nn.Conv2d(in_dim, config.classifier_proj_dim, kernel_size=1)]
        if config.classifier_batchnorm:
            projection.append(nn.BatchNorm2d(config.classifier_proj_dim))
        projection.append(nn.ReLU(inplace=True))
        self.projection = nn.Sequential(*projection)
        self.pool = config.classifier_pool
        head: list[nn.Module] = []
        width = config.classifier_proj_dim
        for hidden in config.classifier_fc_dims:
            head.append(nn.Linear(width, hidden))
            if config.classifier_batchnorm:
                head.append(nn.BatchNorm1d(hidden))
            head.append(nn.ReLU(inplace=True))
            if config.classifier_dropout > 0:
                head.append(nn.Dropout(config.classifier_dropout))
            width = hidden
        head.append(nn.Linear(width, config.num_answers))
        self.head = nn.Sequential(*head)

    def project(self, features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """The (N, proj_dim, H, W) map that the global pool reads; its argmax shows where the model looks."""
        return self.projection(with_coords(features, coords) if self.use_coords else features)

    def classify_map(self, projected: torch.Tensor) -> torch.Tensor:
        """Logits from the projected map: global pool, then the fully connected head."""
        pooled = projected.amax(dim=(2, 3)) if self.pool == "max" else projected.mean(dim=(2, 3))
        return self.head(pooled)

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.classify_map(self.project(features, coords))


class FiLMedNetwork(nn.Module):
    """The visual pipeline of the FiLM model, modulated by externally supplied FiLM parameters."""

    def __init__(self, config: FiLMVQAConfig):
        super().__init__()
        self.config = config
        conditioned = set(config.conditioned_blocks)
        stem_coords = config.input_kind == "features" and config.coords != "none"
        self.stem_coords = stem_coords
        self.stem = build_stem(config, extra_channels=2 * stem_coords)
        self.blocks = nn.ModuleList(
            FiLMedResBlock(
                config.module_dim,
                kernel_size=config.block_kernel_size,
                placement=config.film_placement,
                conditioned=index in conditioned,
                coords=config.coords,
                residual=config.residual,
                batchnorm=config.block_batchnorm,
                dropout=config.block_dropout,
            )
            for index in range(config.num_blocks)
        )
        self.classifier = Classifier(config)
        # Coordinate maps at input and at block resolution; not saved in checkpoints (they are derived).
        self.register_buffer("input_coords", coordinate_maps(config.image_height, config.image_width), persistent=False)
        self.register_buffer("block_coords", coordinate_maps(*config.feature_map_size), persistent=False)

    def forward(
        self,
        images: torch.Tensor,
        film_params: torch.Tensor,
        return_activations: bool = False,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor | list[torch.Tensor]]]:
        """Logits (N, num_answers) from images (N, C, H, W) and FiLM parameters (N, num_blocks, 2, module_dim).

        With ``image_index`` (N,), ``images`` holds each distinct image once and question ``i`` reads row
        ``image_index[i]``: the stem runs once per image and its output is repeated for the blocks.

        With ``return_activations`` also returns a dict with the stem output (``stem``, one row per question, and
        ``image_stem``, one per image), every block's output and the classifier's pre-pool map (``classifier_map``),
        for analysis and heatmaps.
        """
        images = images.contiguous(memory_format=torch.channels_last)  # see FiLMVQA.__init__
        x = image_stem = self.stem(with_coords(images, self.input_coords) if self.stem_coords else images)
        if image_index is not None:
            x = x.index_select(0, image_index)
        stem_output, block_outputs = x, []
        for index, block in enumerate(self.blocks):
            x = block(x, film_params[:, index, 0], film_params[:, index, 1], self.block_coords)
            block_outputs.append(x)
        projected = self.classifier.project(x, self.block_coords)
        logits = self.classifier.classify_map(projected)
        if not return_activations:
            return logits
        activations = {"stem": stem_output, "blocks": block_outputs, "classifier_map": projected}
        return logits, {**activations, "image_stem": image_stem}
