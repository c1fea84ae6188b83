"""The Bayesian posterior over codewords (METHOD section 2), as plain functions.

Noisy-channel model: ``z = e_k + n`` with ``k ~ pi`` and ``n ~ N(0, sigma_k^2 I)``::

    logit_k = log pi_k - ||z - e_k||^2 / (2 sigma_k^2) - d log sigma_k
    p(k | z) = softmax_k(logit_k),    z_hat = sum_k p(k | z) e_k

Numerics: one GEMM for the logits and one (``p @ E``) for the posterior mean; never a
``(N, K, d)`` tensor. Each row of ``z`` is divided by its own scale
``s = max(1, max_i |z_i|)`` before the GEMM, so squared norms cannot overflow for any
finite input, and every ``1/sigma^2``-type factor is capped at ``exp(LOG_SCALE_MAX)``.
Both are exact rewrites for ordinary inputs; they only matter for absurd ones.
"""

from __future__ import annotations

from typing import Literal

import torch

Normalization = Literal["gaussian", "reference", "none"]

#: Cap on log(scale factor) applied to distances: exp(69) ~ 9e29, so logits stay finite.
LOG_SCALE_MAX = 69.0


def _row_scale(z: torch.Tensor) -> torch.Tensor:
    """(N, 1) detached per-row scale ``max(1, max_i |z_i|)``."""
    return z.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1.0)


def posterior_logits(
    z: torch.Tensor,
    codebook: torch.Tensor,
    log_sigma: torch.Tensor,
    log_prior: torch.Tensor | None = None,
    normalization: Normalization = "gaussian",
) -> torch.Tensor:
    """Unnormalized log-posterior over codewords.

    Args:
        z: ``(N, d)`` latents.
        codebook: ``(K, d)`` codewords.
        log_sigma: natural log of the noise std, shape ``()`` (shared), ``(K,)`` (per
            codeword) or ``(N, K)`` (predicted per input); already floored.
        log_prior: ``(K,)`` log prior probabilities, or None for uniform.
        normalization: ``"gaussian"`` adds the correct ``-d log sigma_k``;
            ``"reference"`` adds ``+log sigma_k`` as the authors' notebooks did;
            ``"none"`` adds nothing. Irrelevant for a shared sigma.

    Returns:
        ``(N, K)`` logits; ``softmax(dim=-1)`` gives ``p(k | z)``.
    """
    s = _row_scale(z)
    zs = z / s
    cross = zs @ codebook.t()  # (N, K) = z.e / s
    e_sq = codebook.pow(2).sum(-1)  # (K,)
    log_s = s.log()
    if log_sigma.dim() == 0:
        # Shared sigma: ||z||^2 is constant over k and drops out of the softmax, and so
        # does the normalization term: logit = (z.e - ||e||^2 / 2) / sigma^2.
        factor = torch.exp((log_s - 2.0 * log_sigma).clamp(max=LOG_SCALE_MAX))  # s / sigma^2
        logits = (cross - 0.5 * e_sq / s) * factor
    else:
        # ||z - e||^2 / s^2 by expansion, clamped at 0 against rounding.
        dist = (zs.pow(2).sum(-1, keepdim=True) - 2.0 * cross / s + e_sq / s.pow(2)).clamp_min(0.0)
        factor = torch.exp((2.0 * log_s - 2.0 * log_sigma).clamp(max=LOG_SCALE_MAX))  # s^2 / sigma^2
        logits = -0.5 * dist * factor
        d = z.shape[-1]
        if normalization == "gaussian":
            logits = logits - d * log_sigma
        elif normalization == "reference":
            logits = logits + log_sigma
    if log_prior is not None:
        logits = logits + log_prior
    return logits


def soft_assign(
    z: torch.Tensor,
    codebook: torch.Tensor,
    log_sigma: torch.Tensor,
    log_prior: torch.Tensor | None = None,
    normalization: Normalization = "gaussian",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior ``p(k | z)`` ``(N, K)`` and posterior mean ``z_hat`` ``(N, d)``.

    ``chunk_size`` (rows per chunk) bounds the size of the ``(rows, K)`` temporaries;
    results are identical to the unchunked computation.
    """
    n = z.shape[0]
    if chunk_size is None or chunk_size >= n:
        probs = torch.softmax(posterior_logits(z, codebook, log_sigma, log_prior, normalization), dim=-1)
        return probs, probs @ codebook
    probs_parts, zhat_parts = [], []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        ls = log_sigma[start:stop] if log_sigma.dim() == 2 else log_sigma
        p = torch.softmax(posterior_logits(z[start:stop], codebook, ls, log_prior, normalization), dim=-1)
        probs_parts.append(p)
        zhat_parts.append(p @ codebook)
    return torch.cat(probs_parts), torch.cat(zhat_parts)


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """``exp(H(mean_n probs_n))`` for ``probs`` of shape ``(N, K)``: effective codes used."""
    mean = probs.detach().float().mean(0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-12))).sum()
    return entropy.exp()
