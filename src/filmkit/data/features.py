"""Optional ResNet-101 conv4 features (1024 x 14 x 14 from 224 x 224 images), as the paper's feature model uses.

Needs torchvision (``pip install 'filmkit[features]'``) and the ImageNet weights as a local file: nothing is ever
downloaded. Images are resized to 224 x 224 with bicubic filtering when decoded, scaled to [0, 1] and normalised
with the ImageNet mean and std (0.229, 0.224, 0.225: the std the reference code mistyped as .224 for blue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET_INPUT = (224, 224)


def normalise_for_imagenet(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float, scaled to [0, 1] and normalised per channel with the ImageNet statistics.

    >>> white = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    >>> [round(value, 3) for value in normalise_for_imagenet(white).flatten().tolist()]
    [2.249, 2.429, 2.64]
    """
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class FeatureEncoder:
    """Turns blocks of decoded uint8 images into feature arrays with a convolutional trunk."""

    def __init__(self, trunk: nn.Module, output_shape: tuple[int, int, int], batch_size: int = 32):
        self.trunk = trunk.eval()
        self.output_shape = output_shape
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), self.batch_size):
            block = torch.from_numpy(images[start : start + self.batch_size])
            outputs.append(self.trunk(normalise_for_imagenet(block)).numpy())
        return np.concatenate(outputs).astype(np.float32)


def resnet101_encoder(weights: str | Path) -> FeatureEncoder:
    """ResNet-101 up to layer3 (conv4), with ImageNet weights read from a local torchvision state-dict file."""
    try:
        import torchvision
    except ImportError:
        raise ValueError(
            "--features resnet101 needs torchvision; install it with: pip install 'filmkit[features]'"
        ) from None
    weights = Path(weights)
    if not weights.is_file():
        raise ValueError(f"{weights}: no such weights file (ResNet-101 ImageNet weights, a torchvision state dict)")
    network = torchvision.models.resnet101(weights=None)
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:
        raise ValueError(f"{weights}: not a ResNet-101 state dict: {str(error).splitlines()[0]}") from None
    trunk = nn.Sequential(
        network.conv1, network.bn1, network.relu, network.maxpool, network.layer1, network.layer2, network.layer3
    )
    return FeatureEncoder(trunk, output_shape=(1024, 14, 14))
