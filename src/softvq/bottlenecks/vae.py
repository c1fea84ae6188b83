"""Variational (and beta-VAE) bottleneck."""

from __future__ import annotations

import torch
from torch import nn

from ..quantizers._checks import check_nonnegative_float
from .base import Bottleneck, BottleneckOutput


class Gaussian(Bottleneck):
    """VAE bottleneck (Kingma & Welling, 2014): ``z = mu + exp(logvar / 2) * eps``.

    ``loss = kl_weight * mean_batch sum_dims KL(N(mu, var) || N(0, I))``. In eval mode the
    decoder and the downstream latent get the mean ``mu``, never a sample.
    """

    def __init__(self, in_features: int, latent_dim: int, *, kl_weight: float = 1e-3) -> None:
        super().__init__(in_features, latent_dim)
        self.kl_weight = check_nonnegative_float("kl_weight", kl_weight)
        self.mean = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        self._check_features(h)
        mu = self.mean(h)
        logvar = self.logvar(h).clamp(-30.0, 20.0)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        return BottleneckOutput(z_dec=z, latent=mu, loss=self.kl_weight * kl, logs={"kl": kl.detach()})
