"""FiLM: Feature-wise Linear Modulation (Perez et al., AAAI 2018), usable on its own.

FiLM conditions a network on any input by scaling and shifting each feature map:
``FiLM(F | gamma, beta) = gamma * F + beta``, with one (gamma, beta) pair per channel predicted from the
conditioning input by a *FiLM generator*. Nothing here knows about images, questions or CLEVR.

Example: condition a small CNN on a goal vector (one-hot goal, target angle, any embedding)::

    import torch
    from torch import nn
    from filmkit.film import FiLM, FiLMGenerator

    conv = nn.Conv2d(3, 16, 3, padding=1)
    generator = FiLMGenerator(cond_dim=4, num_layers=1, num_channels=16)
    film = FiLM()
    images, goals = torch.randn(8, 3, 7, 7), torch.eye(4)[torch.randint(0, 4, (8,))]
    gamma, beta = generator(goals).unbind(dim=2)       # each (8, num_layers=1, 16)
    features = torch.relu(film(conv(images), gamma[:, 0], beta[:, 0]))
    print(features.shape)                               # torch.Size([8, 16, 7, 7])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

GAMMA_ACTIVATIONS = ("linear", "sigmoid", "tanh", "exp")


def film(features: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """Apply ``gamma * features + beta`` with one (gamma, beta) pair per channel.

    ``features`` has any rank >= 2 with the batch first; ``gamma`` and ``beta`` are (N, C). ``channel_dim`` says
    where C sits in ``features``: 1 for channel-first (N, C, ...), -1 for channel-last (N, ..., C).

    >>> x = torch.randn(2, 3, 5, 5)
    >>> torch.equal(film(x, torch.ones(2, 3), torch.zeros(2, 3)), x)
    True
    """
    if features.dim() < 2:
        raise ValueError(f"FiLM expects features of shape (N, C, ...) or (N, ..., C), got {tuple(features.shape)}")
    channel_dim = channel_dim % features.dim()
    if channel_dim == 0:
        raise ValueError("channel_dim cannot be the batch dimension (0)")
    batch, channels = features.shape[0], features.shape[channel_dim]
    for name, param in (("gamma", gamma), ("beta", beta)):
        if param.shape != (batch, channels):
            raise ValueError(
                f"FiLM {name} must have shape (N, C) = ({batch}, {channels}) to match features of shape "
                f"{tuple(features.shape)} with channels at dim {channel_dim}, got {tuple(param.shape)}"
            )
    # Reshape (N, C) so that it broadcasts over every non-batch, non-channel dimension.
    view = [1] * features.dim()
    view[0], view[channel_dim] = batch, channels
    return features * gamma.reshape(view) + beta.reshape(view)


class FiLM(nn.Module):
    """The FiLM layer: ``gamma * x + beta`` per channel; it has no parameters of its own.

    >>> layer = FiLM(channel_dim=-1)                 # channel-last, e.g. (N, tokens, C)
    >>> layer(torch.randn(2, 10, 8), torch.ones(2, 8), torch.zeros(2, 8)).shape
    torch.Size([2, 10, 8])
    """

    def __init__(self, channel_dim: int = 1):
        super().__init__()
        self.channel_dim = channel_dim

    def forward(self, features: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return film(features, gamma, beta, self.channel_dim)

    def extra_repr(self) -> str:
        return f"channel_dim={self.channel_dim}"


def parametrise_gamma(raw: torch.Tensor, activation: str) -> torch.Tensor:
    """Turn the generator's raw gamma output into gamma.

    ``linear`` is the paper's default: the network predicts a change around 1 (gamma = 1 + delta), so an
    untrained generator starts close to the identity. ``sigmoid``, ``tanh`` and ``exp`` are the paper's ablations.
    """
    if activation == "linear":
        return 1.0 + raw
    if activation == "sigmoid":
        return torch.sigmoid(raw)
    if activation == "tanh":
        return torch.tanh(raw)
    if activation == "exp":
        return torch.exp(raw)
    raise ValueError(f"unknown gamma activation {activation!r}; choose one of {', '.join(GAMMA_ACTIVATIONS)}")


class FiLMGenerator(nn.Module):
    """Predict FiLM parameters for ``num_layers`` FiLM layers of ``num_channels`` channels from a vector.

    Returns a tensor of shape (N, num_layers, 2, num_channels): ``[:, i, 0]`` is gamma and ``[:, i, 1]`` beta of
    layer i. One shared network predicts both, as in the paper. ``hidden_dims`` adds an MLP before the output
    layer (the paper uses none: a single Linear from the question embedding). ``use_gamma=False`` fixes gamma at
    1 and ``use_beta=False`` fixes beta at 0 (the paper's ablations); the output layer keeps its full size so that
    parameter counts do not depend on these switches.

    >>> gen = FiLMGenerator(cond_dim=6, num_layers=2, num_channels=32, gamma_activation="sigmoid")
    >>> gen(torch.randn(5, 6)).shape
    torch.Size([5, 2, 2, 32])
    """

    def __init__(
        self,
        cond_dim: int,
        num_layers: int,
        num_channels: int,
        hidden_dims: Sequence[int] = (),
        gamma_activation: str = "linear",
        use_gamma: bool = True,
        use_beta: bool = True,
    ):
        super().__init__()
        if gamma_activation not in GAMMA_ACTIVATIONS:
            raise ValueError(
                f"unknown gamma activation {gamma_activation!r}; choose one of {', '.join(GAMMA_ACTIVATIONS)}"
            )
        if min(cond_dim, num_layers, num_channels) < 1:
            raise ValueError(
                f"cond_dim, num_layers and num_channels must be positive, got {cond_dim}, {num_layers}, {num_channels}"
            )
        self.num_layers = num_layers
        self.num_channels = num_channels
        self.gamma_activation = gamma_activation
        self.use_gamma = use_gamma
        self.use_beta = use_beta
        layers: list[nn.Module] = []
        width = cond_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(width, num_layers * 2 * num_channels)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2:
            raise ValueError(f"FiLMGenerator expects a (N, cond_dim) conditioning tensor, got {tuple(cond.shape)}")
        raw = self.output(self.hidden(cond)).view(-1, self.num_layers, 2, self.num_channels)
        raw_gamma, raw_beta = raw.unbind(dim=2)
        gamma = parametrise_gamma(raw_gamma, self.gamma_activation) if self.use_gamma else torch.ones_like(raw_gamma)
        beta = raw_beta if self.use_beta else torch.zeros_like(raw_beta)
        return torch.stack((gamma, beta), dim=2)
