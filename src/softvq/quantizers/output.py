"""The one return type shared by every quantizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class QuantizerOutput:
    """What a quantizer returns for latents ``z`` of shape ``(..., code_dim)``.

    Attributes:
        z_q: ``(..., code_dim)`` what the decoder receives.
        probs: ``(..., num_codes)`` posterior over codewords (one-hot for hard VQ).
        indices: ``(...)`` int64, the most probable codeword.
        loss: scalar, the weighted codebook + commitment terms (add it to your loss).
        codebook_loss: scalar, unweighted ``mean ||z_hat - sg(z)||^2``.
        commitment_loss: scalar, unweighted ``mean ||z - sg(z_hat)||^2``.
        perplexity: scalar, ``exp(entropy(mean posterior))`` over the batch; K means all
            codes used evenly, 1 means one code.
    """

    z_q: torch.Tensor
    probs: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
