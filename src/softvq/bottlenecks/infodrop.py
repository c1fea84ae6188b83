"""Information dropout bottleneck (Achille & Soatto, 2018)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..quantizers._checks import check_nonnegative_float, check_positive_float
from .base import Bottleneck, BottleneckOutput


class InformationDropout(Bottleneck):
    """Multiplicative log-normal noise ``z = f * exp(alpha * eps)``, ``eps ~ N(0, 1)``.

    ``alpha = alpha_max * sigmoid(.)`` is predicted per unit by a head on the encoder
    features. The penalty is the KL term for a log-uniform prior, ``-log alpha`` per
    unit (up to a constant; we report ``-log(alpha / alpha_max) >= 0``), averaged over
    units and batch and weighted by ``weight``. Eval mode returns ``f`` (no noise).
    """

    def __init__(self, in_features: int, latent_dim: int, *, weight: float = 1e-2, alpha_max: float = 0.7) -> None:
        super().__init__(in_features, latent_dim)
        self.weight = check_nonnegative_float("weight", weight)
        self.alpha_max = check_positive_float("alpha_max", alpha_max)
        self.proj = nn.Linear(in_features, latent_dim)
        self.alpha_head = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        self._check_features(h)
        f = self.proj(h)
        a = self.alpha_head(h)
        # log alpha computed stably from the logit: log sigmoid(a) + log alpha_max.
        log_alpha = torch.nn.functional.logsigmoid(a) + math.log(self.alpha_max)
        alpha = log_alpha.exp()
        z = f * torch.exp(alpha * torch.randn_like(f)) if self.training else f
        penalty = (math.log(self.alpha_max) - log_alpha).mean()
        return BottleneckOutput(
            z_dec=z, latent=f, loss=self.weight * penalty, logs={"alpha": alpha.detach().mean(), "info_penalty": penalty.detach()}
        )
