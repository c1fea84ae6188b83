"""Bottlenecks that quantize the latent: hard VQ-VAE and soft VQ-VAE."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from ..quantizers import VQ, SoftVQ
from ..quantizers._checks import check_choice, check_positive_int
from .base import Bottleneck, BottleneckOutput


class Quantized(Bottleneck):
    """Linear projection to ``latent_dim = groups * code_dim``, then a quantizer.

    The latent is split into ``groups`` sub-vectors, each quantized against the one
    shared codebook. With a ``SoftVQ(sigma="predicted")`` quantizer a second linear
    head on the encoder features predicts ``groups * num_codes`` log-sigmas (as in the
    authors' notebooks: a dense layer of size K on the last hidden layer).

    Args:
        quantizer: a :class:`~softvq.SoftVQ` or :class:`~softvq.VQ` with
            ``code_dim = latent_dim / groups``.
        downstream: ``"pre"`` exposes the encoder output ``z`` as the downstream latent
            (what the reference code evaluated), ``"post"`` the quantizer output.
        sigma_head_rank: None for a full dense log-sigma head, or ``r`` to factor it into
            ``in_features -> r -> groups * num_codes`` (two linear maps, no nonlinearity):
            ``r * (in_features + groups * num_codes)`` weights instead of
            ``in_features * groups * num_codes``, which matters once ``groups * num_codes``
            is as large as the encoder's layers.
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        quantizer: SoftVQ | VQ,
        *,
        groups: int = 1,
        downstream: Literal["pre", "post"] = "pre",
        sigma_head_rank: int | None = None,
    ) -> None:
        super().__init__(in_features, latent_dim)
        self.groups = check_positive_int("groups", groups)
        if latent_dim % groups:
            raise ValueError(f"latent_dim={latent_dim} must be divisible by groups={groups}")
        if quantizer.code_dim != latent_dim // groups:
            raise ValueError(
                f"quantizer.code_dim={quantizer.code_dim} must equal latent_dim / groups = {latent_dim // groups}"
            )
        self.downstream = check_choice("downstream", downstream, ("pre", "post"))
        self.quantizer = quantizer
        self.num_codes = quantizer.num_codes
        self.proj = nn.Linear(in_features, latent_dim)
        predicted = isinstance(quantizer, SoftVQ) and quantizer.sigma_mode == "predicted"
        outputs = groups * quantizer.num_codes
        self.sigma_head: nn.Module | None = None
        if predicted and sigma_head_rank is None:
            self.sigma_head = nn.Linear(in_features, outputs)
        elif predicted:
            rank = check_positive_int("sigma_head_rank", sigma_head_rank)
            self.sigma_head = nn.Sequential(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, outputs))
        #: while True the quantizer is skipped (a plain AE warm-up before k-means init)
        self.bypass = False

    def code_vectors(self, h: torch.Tensor) -> torch.Tensor:
        """The vectors the quantizer sees: ``(..., groups, code_dim)``."""
        z = self.proj(h)
        return z.reshape(*h.shape[:-1], self.groups, self.quantizer.code_dim)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        self._check_features(h)
        lead = h.shape[:-1]
        z = self.proj(h)
        if self.bypass:
            return BottleneckOutput(z_dec=z, latent=z, loss=z.new_zeros(()))
        zg = z.reshape(*lead, self.groups, self.quantizer.code_dim)
        if self.sigma_head is not None:
            log_sigma = self.sigma_head(h).reshape(*lead, self.groups, self.num_codes)
            out = self.quantizer(zg, log_sigma)
        else:
            out = self.quantizer(zg)
        z_q = out.z_q.reshape(*lead, self.latent_dim)
        logs: dict[str, Any] = {
            "perplexity": out.perplexity,
            "codebook_loss": out.codebook_loss.detach(),
            "commitment_loss": out.commitment_loss.detach(),
        }
        sigma = getattr(self.quantizer, "sigma", None)
        if sigma is not None:
            logs["sigma"] = sigma.mean()
        return BottleneckOutput(
            z_dec=z_q,
            latent=z if self.downstream == "pre" else z_q,
            loss=out.loss,
            logs=logs,
            probs=out.probs,
            indices=out.indices,
        )
