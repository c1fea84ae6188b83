"""Hard VQ: the nearest-codeword quantizer of VQ-VAE (van den Oord et al., 2017)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ._checks import check_latents, check_nonnegative_float, check_positive_float, check_positive_int
from .output import QuantizerOutput
from .posterior import default_chunk_rows, perplexity


def nearest_codes(z: torch.Tensor, codebook: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Indices ``(N,)`` of the nearest codeword (squared Euclidean) for ``z`` ``(N, d)``.

    Uses ``argmax(z.e - ||e||^2 / 2)``: one GEMM (the norm term folded in as its bias), no
    ``(N, K, d)`` tensor. ``chunk_size`` rows at a time (None: the soft quantizer's default).
    """
    half_sq = 0.5 * codebook.pow(2).sum(-1)
    step = chunk_size or default_chunk_rows(codebook.shape[0], z.shape[0])
    parts = [torch.addmm(half_sq, z[i : i + step], codebook.t(), beta=-1).argmax(-1) for i in range(0, z.shape[0], step)]
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long, device=z.device)


class VQ(nn.Module):
    """Hard vector quantizer with a straight-through gradient.

    ``z_q = z + sg(e_k - z)`` with ``k = argmin_k ||z - e_k||``. ``loss`` is
    ``codebook_weight * mean ||e_k - sg(z)||^2 + commitment_weight * mean ||z - sg(e_k)||^2``;
    with ``ema_decay`` set, the codebook is instead updated by exponential moving
    averages of assigned latents (it then gets no gradient and the codebook term
    is reported but not weighted into ``loss``).

    Shapes: ``forward(z (..., d)) -> QuantizerOutput`` with one-hot ``probs (..., K)``.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        *,
        codebook_weight: float = 1.0,
        commitment_weight: float = 0.25,
        ema_decay: float | None = None,
        ema_eps: float = 1e-5,
        chunk_size: int | None = None,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes = check_positive_int("num_codes", num_codes)
        self.code_dim = check_positive_int("code_dim", code_dim)
        self.codebook_weight = check_nonnegative_float("codebook_weight", codebook_weight)
        self.commitment_weight = check_nonnegative_float("commitment_weight", commitment_weight)
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {ema_decay!r}")
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_eps = check_positive_float("ema_eps", ema_eps)
        self.chunk_size = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
        init_scale = check_positive_float("init_scale", init_scale)
        self.codebook = nn.Parameter(torch.randn(self.num_codes, self.code_dim) * init_scale)
        if self.ema_decay is not None:
            self.codebook.requires_grad_(False)
            self.register_buffer("ema_count", torch.ones(self.num_codes))
            self.register_buffer("ema_sum", self.codebook.detach().clone())

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z`` ``(..., code_dim)`` to its nearest codewords."""
        z = check_latents(z, self.code_dim, dtype=self.codebook.dtype)
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.code_dim)
        indices = nearest_codes(flat.detach(), self.codebook.detach(), self.chunk_size)
        # One-hot rows written straight in flat's dtype (F.one_hot would build an int64 copy).
        probs = flat.new_zeros(flat.shape[0], self.num_codes).scatter_(1, indices[:, None], 1.0)
        if self.training and self.ema_decay is not None:
            self._ema_update(flat.detach(), probs)
        e = self.codebook[indices]
        codebook_loss = F.mse_loss(e, flat.detach())
        commitment_loss = F.mse_loss(flat, e.detach())
        weighted_codebook = 0.0 if self.ema_decay is not None else self.codebook_weight * codebook_loss
        z_q = flat + (e - flat).detach()
        return QuantizerOutput(
            z_q=z_q.reshape(*lead, self.code_dim),
            probs=probs.reshape(*lead, self.num_codes),
            indices=indices.reshape(lead),
            loss=weighted_codebook + self.commitment_weight * commitment_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=perplexity(probs),
        )

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor) -> None:
        counts = onehot.sum(0)
        sums = onehot.t() @ flat
        if dist.is_available() and dist.is_initialized():
            # Every rank applies the same update, so codebooks stay identical.
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        decay = self.ema_decay
        self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.ema_eps) / (n + self.num_codes * self.ema_eps) * n
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, ema_decay={self.ema_decay}"
