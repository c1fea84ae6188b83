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
        sample_shape: when given, inputs are checked to be float tensors of shape
            ``(B, *sample_shape)`` (a ValueError names the expected shape).
    """

    def __init__(self, encoder: nn.Module, bottleneck: Bottleneck, decoder: nn.Module,
                 sample_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.decoder = decoder
        self.sample_shape = None if sample_shape is None else tuple(sample_shape)

    def _check_input(self, x: torch.Tensor) -> None:
        if self.sample_shape is None:
            return
        expected = "(B, " + ", ".join(map(str, self.sample_shape)) + ")"
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            what = type(x).__name__ if not isinstance(x, torch.Tensor) else f"a tensor of dtype {x.dtype}"
            raise ValueError(f"x must be a floating-point torch.Tensor of shape {expected}, got {what}")
        if tuple(x.shape[1:]) != self.sample_shape or x.dim() != len(self.sample_shape) + 1:
            raise ValueError(f"x must have shape {expected}, got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"x holds no samples (shape {tuple(x.shape)}); skip the call for an empty batch")
        weight = next(self.parameters(), None)
        if weight is not None and x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"x has dtype {x.dtype} but the model is {weight.dtype}; "
                             f"pass x.to({weight.dtype}) or convert the model with .to({x.dtype})")

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        self._check_input(x)
        b = self.bottleneck(self.encoder(x))
        return AutoencoderOutput(x_hat=self.decoder(b.z_dec), bottleneck=b)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Downstream latent ``(B, latent_dim)`` (deterministic; call in eval mode)."""
        self._check_input(x)
        return self.bottleneck(self.encoder(x)).latent

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode a latent ``(B, latent_dim)`` directly (no quantization)."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``x_hat`` through the full bottleneck."""
        return self.forward(x).x_hat
