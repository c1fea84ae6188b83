"""Soft VQ: the Bayesian posterior-mean bottleneck of Wu & Flierl (AAAI 2020)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_choice,
    check_latents,
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
)
from .output import QuantizerOutput
from .posterior import Normalization, perplexity, soft_assign

SigmaMode = Literal["fixed", "learned", "learned_per_code", "predicted"]
PriorMode = Literal["uniform", "learned"]
GradientMode = Literal["straight_through", "exact"]

SIGMA_MODES: tuple[str, ...] = ("fixed", "learned", "learned_per_code", "predicted")
PRIOR_MODES: tuple[str, ...] = ("uniform", "learned")
GRADIENT_MODES: tuple[str, ...] = ("straight_through", "exact")
NORMALIZATIONS: tuple[str, ...] = ("gaussian", "reference", "none")


class SoftVQ(nn.Module):
    """Soft vector quantizer: outputs the posterior mean of the codewords.

    The input ``z`` (channels last, ``(..., code_dim)``) is treated as a noisy
    observation ``z = e_k + N(0, sigma_k^2 I)`` of a codeword; the layer returns
    ``z_hat = sum_k p(k | z) e_k`` (Wu & Flierl, "Vector Quantization-Based
    Regularization for Autoencoders", AAAI 2020). ``sigma -> 0`` recovers hard VQ,
    ``sigma -> inf`` the codebook mean.

    Args:
        num_codes: K, number of codewords.
        code_dim: d, size of each codeword (the last dimension of ``z``).
        sigma: ``"fixed"`` (a constant, see :meth:`set_sigma` to anneal it),
            ``"learned"`` (one trainable log-sigma), ``"learned_per_code"`` (K of them),
            or ``"predicted"`` (``forward`` takes log-sigmas ``(..., K)`` from the encoder).
        init_sigma: initial (or fixed) sigma, > 0.
        min_sigma, max_sigma: floor and ceiling applied to sigma (keeps ``1/sigma^2`` finite).
        prior: ``"uniform"`` or ``"learned"`` (softmax of trainable logits ``prior_logits``).
        gradient: ``"straight_through"`` (decoder sees ``z_hat``, gradient passes to ``z``
            unchanged; codebook/sigma/prior learn only from the codebook term; the
            authors' choice) or ``"exact"`` (decoder input is ``z_hat`` itself, and the
            reconstruction gradient flows through the posterior).
        noise_std: std of Gaussian noise added to ``z`` in training mode only.
        codebook_weight: weight of ``mean ||z_hat - sg(z)||^2`` in ``loss``.
        commitment_weight: weight of ``mean ||z - sg(z_hat)||^2`` in ``loss``.
            The paper's ``beta * (codebook + gamma * commitment)`` is
            ``codebook_weight=beta, commitment_weight=beta * gamma``.
        normalization: ``"gaussian"`` (correct ``-d log sigma_k`` term), ``"reference"``
            (``+log sigma_k``, as in the authors' notebooks) or ``"none"``.
        eval_output: ``"soft"`` (posterior mean) or ``"hard"`` (most probable codeword)
            returned as ``z_q`` in eval mode.
        chunk_size: rows per chunk for the ``(rows, K)`` temporaries; None = automatic
            (:func:`~softvq.quantizers.posterior.default_chunk_rows`). Results do not
            depend on it beyond float rounding.
        init_scale: std of the normal initialization of the codebook.

    Shapes: ``forward(z (..., d), log_sigma (..., K) | None) -> QuantizerOutput`` with
    ``z_q (..., d)``, ``probs (..., K)``, ``indices (...)``.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        *,
        sigma: SigmaMode = "learned",
        init_sigma: float = 1.0,
        min_sigma: float = 1e-4,
        max_sigma: float = 1e4,
        prior: PriorMode = "uniform",
        gradient: GradientMode = "straight_through",
        noise_std: float = 0.0,
        codebook_weight: float = 1.0,
        commitment_weight: float = 0.25,
        normalization: Normalization = "gaussian",
        eval_output: Literal["soft", "hard"] = "soft",
        chunk_size: int | None = None,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes = check_positive_int("num_codes", num_codes)
        self.code_dim = check_positive_int("code_dim", code_dim)
        self.sigma_mode = check_choice("sigma", sigma, SIGMA_MODES)
        init_sigma = check_positive_float("init_sigma", init_sigma)
        self.min_sigma = check_positive_float("min_sigma", min_sigma)
        self.max_sigma = check_positive_float("max_sigma", max_sigma)
        if self.min_sigma >= self.max_sigma:
            raise ValueError(f"min_sigma ({min_sigma}) must be smaller than max_sigma ({max_sigma})")
        if not self.min_sigma <= init_sigma <= self.max_sigma:
            raise ValueError(f"init_sigma={init_sigma} lies outside [min_sigma, max_sigma] = [{self.min_sigma:g}, {self.max_sigma:g}]")
        self.prior_mode = check_choice("prior", prior, PRIOR_MODES)
        self.gradient = check_choice("gradient", gradient, GRADIENT_MODES)
        self.noise_std = check_nonnegative_float("noise_std", noise_std)
        self.codebook_weight = check_nonnegative_float("codebook_weight", codebook_weight)
        self.commitment_weight = check_nonnegative_float("commitment_weight", commitment_weight)
        self.normalization: Normalization = check_choice("normalization", normalization, NORMALIZATIONS)  # type: ignore[assignment]
        self.eval_output = check_choice("eval_output", eval_output, ("soft", "hard"))
        self.chunk_size = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
        init_scale = check_positive_float("init_scale", init_scale)

        self.codebook = nn.Parameter(torch.randn(self.num_codes, self.code_dim) * init_scale)
        log_init = torch.tensor(math.log(init_sigma))
        if self.sigma_mode == "fixed":
            self.register_buffer("log_sigma", log_init)
        elif self.sigma_mode == "learned":
            self.log_sigma = nn.Parameter(log_init)
        elif self.sigma_mode == "learned_per_code":
            self.log_sigma = nn.Parameter(log_init.repeat(self.num_codes))
        else:
            self.log_sigma = None
        self.prior_logits = nn.Parameter(torch.zeros(self.num_codes)) if self.prior_mode == "learned" else None

    # -- sigma and prior -------------------------------------------------------------
    def set_sigma(self, sigma: float) -> None:
        """Set the fixed sigma (for annealing); only in ``sigma="fixed"`` mode."""
        if self.sigma_mode != "fixed":
            raise ValueError(f"set_sigma needs sigma='fixed', this layer has sigma={self.sigma_mode!r}")
        sigma = check_positive_float("sigma", sigma)
        self.log_sigma.fill_(math.log(min(max(sigma, self.min_sigma), self.max_sigma)))

    @property
    def sigma(self) -> torch.Tensor | None:
        """Current sigma (shape ``()`` or ``(K,)``), or None in predicted mode."""
        return None if self.log_sigma is None else self._floored(self.log_sigma).exp().detach()

    def _floored(self, log_sigma: torch.Tensor) -> torch.Tensor:
        return log_sigma.clamp(math.log(self.min_sigma), math.log(self.max_sigma))

    def log_prior(self) -> torch.Tensor | None:
        """``(K,)`` log prior, or None for the uniform prior."""
        return None if self.prior_logits is None else F.log_softmax(self.prior_logits, dim=-1)

    # -- forward ---------------------------------------------------------------------
    def forward(self, z: torch.Tensor, log_sigma: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantize ``z`` ``(..., code_dim)``; ``log_sigma`` ``(..., num_codes)`` in predicted mode."""
        z = check_latents(z, self.code_dim, dtype=self.codebook.dtype)
        lead = z.shape[:-1]
        log_sigma = self._resolve_log_sigma(log_sigma, z)
        if self.training and self.noise_std > 0:
            z = z + self.noise_std * torch.randn_like(z)
        flat = z.reshape(-1, self.code_dim)
        if log_sigma.dim() > 1:
            log_sigma = log_sigma.reshape(-1, self.num_codes)
        # Straight-through: the posterior is a function of sg(z), so the codebook term
        # trains codebook/sigma/prior only and the encoder gets gradient through z_q.
        z_in = flat if self.gradient == "exact" else flat.detach()
        # The floor is applied inside soft_assign (same values and gradients as
        # self._floored), which avoids an (N, K) copy of a predicted log-sigma.
        probs, z_hat, indices = soft_assign(
            z_in, self.codebook, log_sigma, self.log_prior(), self.normalization, self.chunk_size,
            log_sigma_bounds=(math.log(self.min_sigma), math.log(self.max_sigma)), return_indices=True,
        )
        codebook_loss = F.mse_loss(z_hat, flat.detach())
        commitment_loss = F.mse_loss(flat, z_hat.detach())
        if not self.training and self.eval_output == "hard":
            z_out = self.codebook[indices]
        else:
            z_out = z_hat
        z_q = z_out if self.gradient == "exact" else flat + (z_out - flat).detach()
        return QuantizerOutput(
            z_q=z_q.reshape(*lead, self.code_dim),
            probs=probs.reshape(*lead, self.num_codes),
            indices=indices.reshape(lead),
            loss=self.codebook_weight * codebook_loss + self.commitment_weight * commitment_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=perplexity(probs),
        )

    def _resolve_log_sigma(self, log_sigma: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        if self.sigma_mode != "predicted":
            if log_sigma is not None:
                raise ValueError(f"log_sigma is only accepted with sigma='predicted', this layer has sigma={self.sigma_mode!r}")
            return self.log_sigma
        if log_sigma is None:
            raise ValueError("log_sigma of shape (..., num_codes) is required with sigma='predicted'")
        expected = (*z.shape[:-1], self.num_codes)
        if not isinstance(log_sigma, torch.Tensor) or not log_sigma.is_floating_point():
            raise ValueError("log_sigma must be a floating-point torch.Tensor")
        if tuple(log_sigma.shape) != expected:
            raise ValueError(f"log_sigma must have shape {expected} (z's leading dims + num_codes), got {tuple(log_sigma.shape)}")
        return log_sigma

    def extra_repr(self) -> str:
        return (
            f"num_codes={self.num_codes}, code_dim={self.code_dim}, sigma={self.sigma_mode!r}, "
            f"prior={self.prior_mode!r}, gradient={self.gradient!r}"
        )
