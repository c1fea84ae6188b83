"""The interface every bottleneck implements."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..quantizers._checks import check_positive_int


@dataclass
class BottleneckOutput:
    """What a bottleneck returns for encoder features ``h`` of shape ``(..., in_features)``.

    Attributes:
        z_dec: ``(..., latent_dim)`` what the decoder receives.
        latent: ``(..., latent_dim)`` the representation used downstream (clustering,
            probes): deterministic in eval mode (VAE mean, no noise).
        loss: scalar regularization term, already weighted; add it to the reconstruction loss.
        logs: detached scalars for the training curve (e.g. ``kl``, ``perplexity``).
        probs: ``(..., groups, num_codes)`` posterior over codes (quantizers only).
        indices: ``(..., groups)`` most probable code (quantizers only).
    """

    z_dec: torch.Tensor
    latent: torch.Tensor
    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    probs: torch.Tensor | None = None
    indices: torch.Tensor | None = None


class Bottleneck(nn.Module):
    """Base class: maps encoder features ``(..., in_features)`` to a latent ``(..., latent_dim)``.

    Every bottleneck owns the final linear projection(s) from the encoder's last hidden
    layer, so the same encoder network serves every bottleneck (VAE needs a mean and a
    log-variance head, predicted-sigma soft VQ a log-sigma head, and so on).
    """

    num_codes: int | None = None

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def _check_features(self, h: torch.Tensor) -> None:
        if not isinstance(h, torch.Tensor) or not h.is_floating_point():
            raise ValueError("encoder features must be a floating-point torch.Tensor")
        if h.dim() < 1 or h.shape[-1] != self.in_features:
            raise ValueError(
                f"encoder features must have shape (..., in_features={self.in_features}), got {tuple(h.shape)}"
            )


def zero(like: torch.Tensor) -> torch.Tensor:
    """A scalar zero on the device and dtype of ``like``."""
    return like.new_zeros(())
