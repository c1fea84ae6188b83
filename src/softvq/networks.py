"""Encoder and decoder networks (METHOD section 5).

An encoder maps inputs to features ``(B, features)`` (its last hidden layer); the
bottleneck owns the projection to the latent. A decoder maps a latent ``(B, latent_dim)``
back to the input shape. Bring your own: any pair of modules with these shapes works.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

#: Hidden widths of the reference MLP for 28x28 images: 784-500-500-2000-d.
MLP_WIDTHS = (500, 500, 2000)
#: Hidden widths of the small MLP for 8x8 digits and feature vectors (same shape, scaled).
SMALL_MLP_WIDTHS = (128, 128, 512)
CONV_CHANNELS = (64, 128, 256, 512)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flatten ``(B, *sample_shape)`` and apply Linear+ReLU layers -> ``(B, widths[-1])``."""

    def __init__(self, in_features: int, widths: tuple[int, ...] = MLP_WIDTHS) -> None:
        super().__init__()
        self.net = _mlp([in_features, *widths])
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Mirror of :class:`MLPEncoder`: ``(B, latent_dim)`` -> ``(B, *sample_shape)``."""

    def __init__(self, latent_dim: int, sample_shape: tuple[int, ...], widths: tuple[int, ...] = MLP_WIDTHS, output: str = "sigmoid") -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        out = math.prod(sample_shape)
        self.net = nn.Sequential(_mlp([latent_dim, *reversed(widths)]), nn.Linear(widths[0], out))
        self.activation = nn.Sigmoid() if output == "sigmoid" else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.activation(self.net(z)).reshape(-1, *self.sample_shape)


class ConvEncoder(nn.Module):
    """Four 3x3 stride-2 convolutions (64, 128, 256, 512; ReLU), flattened.

    ``(B, C, 32, 32)`` -> ``(B, 512 * 2 * 2)``.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, channels: tuple[int, ...] = CONV_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        side = image_size // 2 ** len(channels)
        self.out_features = channels[-1] * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Dense to ``(512, 2, 2)``, then four 3x3 stride-2 transposed convolutions
    (512, 256, 128, C): ``(B, latent_dim)`` -> ``(B, C, 32, 32)``."""

    def __init__(self, latent_dim: int, out_channels: int = 3, image_size: int = 32, output: str = "sigmoid") -> None:
        super().__init__()
        self.side = image_size // 16
        self.fc = nn.Linear(latent_dim, 512 * self.side * self.side)
        widths = [512, 512, 256, 128]
        layers: list[nn.Module] = [nn.ReLU()]
        for i, (a, b) in enumerate(zip(widths, [*widths[1:], out_channels])):
            layers.append(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1))
            if i < len(widths) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.activation = nn.Sigmoid() if output == "sigmoid" else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).reshape(-1, 512, self.side, self.side)
        return self.activation(self.net(h))


def _mlp_pair(widths: tuple[int, ...]) -> Callable[..., tuple[nn.Module, nn.Module, int]]:
    def build(sample_shape: tuple[int, ...], latent_dim: int, output: str) -> tuple[nn.Module, nn.Module, int]:
        enc = MLPEncoder(math.prod(sample_shape), widths)
        return enc, MLPDecoder(latent_dim, sample_shape, widths, output), enc.out_features
    return build


def _conv_pair(sample_shape: tuple[int, ...], latent_dim: int, output: str) -> tuple[nn.Module, nn.Module, int]:
    if len(sample_shape) != 3 or sample_shape[1] != sample_shape[2] or sample_shape[1] % 16:
        raise ValueError(f"the conv network needs square images with a side divisible by 16, got sample shape {sample_shape}")
    c, side = sample_shape[0], sample_shape[1]
    enc = ConvEncoder(c, side)
    return enc, ConvDecoder(latent_dim, c, side, output), enc.out_features


#: name -> builder(sample_shape, latent_dim, output) -> (encoder, decoder, feature_dim)
NETWORKS: dict[str, Callable[..., tuple[nn.Module, nn.Module, int]]] = {
    "mlp": _mlp_pair(MLP_WIDTHS),
    "small-mlp": _mlp_pair(SMALL_MLP_WIDTHS),
    "conv": _conv_pair,
}


def build_networks(name: str, sample_shape: tuple[int, ...], latent_dim: int, output: str = "sigmoid") -> tuple[nn.Module, nn.Module, int]:
    """Build ``(encoder, decoder, encoder_feature_dim)`` for one sample shape."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")
    return NETWORKS[name](tuple(sample_shape), latent_dim, output)
