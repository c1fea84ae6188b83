"""The autoencoder: an injected encoder, bottleneck and decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .bottlenecks import Bottleneck, BottleneckOutput


@dataclass
class AutoencoderOutput:
    """``x_hat`` has the input's shape; ``bottleneck`` holds latents, loss and logs."""

    x_hat: torch.Tensor
    bottleneck: BottleneckOutput


class Autoencoder(nn.Module):
    """``x -> encoder -> bottleneck -> decoder -> x_hat``.

    Args:
        encoder: maps ``(B, *sample_shape)`` to features ``(B, bottleneck.in_features)``.
        bottleneck: any :class:`~softvq.bottlenecks.Bottleneck`.
        decoder: maps ``(B, bottleneck.latent_dim)`` to ``(B, *sample_shape)``.
    """

    def __init__(self, encoder: nn.Module, bottleneck: Bottleneck, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        b = self.bottleneck(self.encoder(x))
        return AutoencoderOutput(x_hat=self.decoder(b.z_dec), bottleneck=b)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Downstream latent ``(B, latent_dim)`` (deterministic; call in eval mode)."""
        return self.bottleneck(self.encoder(x)).latent

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode a latent ``(B, latent_dim)`` directly (no quantization)."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``x_hat`` through the full bottleneck."""
        return self.forward(x).x_hat
