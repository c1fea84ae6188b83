"""Plain and denoising-latent autoencoder bottlenecks."""

from __future__ import annotations

import torch
from torch import nn

from ..quantizers._checks import check_nonnegative_float
from .base import Bottleneck, BottleneckOutput, zero


class Identity(Bottleneck):
    """AE bottleneck: a linear projection to the latent, no regularization.

    With ``noise_std > 0`` it is the denoising-latent AE: Gaussian noise of that std is
    added to the latent in training mode only (the downstream latent is noise-free).
    """

    def __init__(self, in_features: int, latent_dim: int, *, noise_std: float = 0.0) -> None:
        super().__init__(in_features, latent_dim)
        self.noise_std = check_nonnegative_float("noise_std", noise_std)
        self.proj = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        self._check_features(h)
        z = self.proj(h)
        z_dec = z + self.noise_std * torch.randn_like(z) if self.training and self.noise_std > 0 else z
        return BottleneckOutput(z_dec=z_dec, latent=z, loss=zero(z))
