"""Run a trained model over a whole split, in batches, without gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import Autoencoder


@dataclass
class Encoded:
    """Per-sample results of one pass over a split.

    ``latents`` ``(N, latent_dim)`` float32; ``indices`` ``(N, groups)`` int64 or None;
    ``sq_error`` ``(N,)`` mean squared reconstruction error per sample (input units).
    """

    latents: np.ndarray
    indices: np.ndarray | None
    sq_error: np.ndarray


@torch.no_grad()
def encode_split(model: Autoencoder, x: torch.Tensor, batch_size: int = 2048) -> Encoded:
    """Encode ``x`` ``(N, *sample_shape)`` with ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    latents, indices, errors = [], [], []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device)
            out = model(xb)
            latents.append(out.bottleneck.latent.float().cpu())
            if out.bottleneck.indices is not None:
                indices.append(out.bottleneck.indices.cpu())
            errors.append((out.x_hat - xb).pow(2).flatten(1).mean(1).cpu())
    finally:
        model.train(was_training)
    return Encoded(
        latents=torch.cat(latents).numpy(),
        indices=torch.cat(indices).numpy() if indices else None,
        sq_error=torch.cat(errors).numpy(),
    )
