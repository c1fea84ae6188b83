"""Codebook health: k-means initialization and restarts of dead codewords.

Both work on any quantizer with a ``codebook`` parameter ``(K, d)`` (SoftVQ, VQ); EMA
statistics of :class:`~softvq.VQ` are reset alongside, so the codebook stays consistent.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans


@torch.no_grad()
def kmeans_init(quantizer: torch.nn.Module, z: torch.Tensor, seed: int = 0, n_init: int = 1) -> None:
    """Set the codebook to the k-means centres of latents ``z`` ``(N, d)``.

    With fewer distinct latents than codewords, the remaining codewords are copies of
    random latents plus small noise (so that none is exactly duplicated).
    """
    k = quantizer.codebook.shape[0]
    data = z.detach().reshape(-1, z.shape[-1]).float().cpu().numpy()
    if len(data) == 0 or not np.isfinite(data).all():
        raise ValueError(f"k-means initialization needs finite latents, got {len(data)} rows"
                         + ("" if len(data) == 0 else " with NaN or inf"))
    n_clusters = min(k, len(np.unique(data, axis=0)))
    centres = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed, max_iter=100).fit(data).cluster_centers_
    if n_clusters < k:
        rng = np.random.default_rng(seed)
        extra = data[rng.integers(0, len(data), k - n_clusters)]
        centres = np.concatenate([centres, extra + 1e-3 * data.std() * rng.standard_normal(extra.shape)])
    _set_codebook(quantizer, torch.as_tensor(centres, dtype=quantizer.codebook.dtype))


@torch.no_grad()
def restart_dead_codes(quantizer: torch.nn.Module, z: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """Replace codewords with zero ``counts`` ``(K,)`` by random rows of ``z`` ``(..., d)``.

    Distinct rows are drawn while there are enough of them (so two restarted codewords
    never coincide); a restarted codeword sits exactly on a current latent, which is
    therefore assigned to it. Deterministic given ``generator``. Returns the number of
    codewords restarted.
    """
    if counts.shape != (quantizer.codebook.shape[0],):
        raise ValueError(f"counts must have shape ({quantizer.codebook.shape[0]},), got {tuple(counts.shape)}")
    dead = torch.nonzero(counts == 0).flatten()
    if len(dead) == 0 or z.numel() == 0:
        return 0
    flat = z.detach().reshape(-1, z.shape[-1])
    if flat.shape[0] >= len(dead):
        picks = torch.randperm(flat.shape[0], generator=generator)[: len(dead)]
    else:
        picks = torch.randint(0, flat.shape[0], (len(dead),), generator=generator)
    codebook = quantizer.codebook.detach().clone()
    codebook[dead.to(codebook.device)] = flat[picks.to(flat.device)].to(codebook)
    _set_codebook(quantizer, codebook)
    return int(len(dead))


def _set_codebook(quantizer: torch.nn.Module, codebook: torch.Tensor) -> None:
    quantizer.codebook.copy_(codebook.to(quantizer.codebook.device))
    if getattr(quantizer, "ema_decay", None) is not None:
        quantizer.ema_count.fill_(1.0)
        quantizer.ema_sum.copy_(quantizer.codebook)
