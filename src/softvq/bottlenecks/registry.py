"""Bottlenecks by name: one builder per entry, no if/elif chains."""

from __future__ import annotations

from typing import Callable, Protocol

from ..quantizers import VQ, SoftVQ
from .base import Bottleneck
from .deterministic import Identity
from .infodrop import InformationDropout
from .quantized import Quantized
from .vae import Gaussian


class BottleneckOptions(Protocol):
    """The fields of :class:`~softvq.config.TrainConfig` a builder reads."""

    latent_dim: int
    num_codes: int
    groups: int | None  # None: one group
    downstream: str
    codebook_weight: float
    commitment_weight: float
    sigma: str
    init_sigma: float
    prior: str
    gradient: str
    normalization: str
    noise_std: float
    sigma_head_rank: int | None
    vq_ema_decay: float | None
    dae_noise_std: float
    kl_weight: float
    infodrop_weight: float
    infodrop_alpha_max: float


def _ae(n: int, o: BottleneckOptions) -> Bottleneck:
    return Identity(n, o.latent_dim)


def _dae(n: int, o: BottleneckOptions) -> Bottleneck:
    return Identity(n, o.latent_dim, noise_std=o.dae_noise_std)


def _vae(n: int, o: BottleneckOptions) -> Bottleneck:
    return Gaussian(n, o.latent_dim, kl_weight=o.kl_weight)


def _infodrop(n: int, o: BottleneckOptions) -> Bottleneck:
    return InformationDropout(n, o.latent_dim, weight=o.infodrop_weight, alpha_max=o.infodrop_alpha_max)


def _groups(o: BottleneckOptions) -> int:
    return 1 if o.groups is None else o.groups


def _vq(n: int, o: BottleneckOptions) -> Bottleneck:
    q = VQ(o.num_codes, o.latent_dim // _groups(o), codebook_weight=o.codebook_weight,
           commitment_weight=o.commitment_weight, ema_decay=o.vq_ema_decay)
    return Quantized(n, o.latent_dim, q, groups=_groups(o), downstream=o.downstream)  # type: ignore[arg-type]


def _softvq(n: int, o: BottleneckOptions) -> Bottleneck:
    q = SoftVQ(o.num_codes, o.latent_dim // _groups(o), sigma=o.sigma, init_sigma=o.init_sigma,  # type: ignore[arg-type]
               prior=o.prior, gradient=o.gradient, normalization=o.normalization,  # type: ignore[arg-type]
               noise_std=o.noise_std, codebook_weight=o.codebook_weight, commitment_weight=o.commitment_weight)
    return Quantized(n, o.latent_dim, q, groups=_groups(o), downstream=o.downstream,  # type: ignore[arg-type]
                     sigma_head_rank=o.sigma_head_rank or None)  # None or 0: a full dense head


#: name -> builder(in_features, options) -> Bottleneck
BOTTLENECKS: dict[str, Callable[[int, BottleneckOptions], Bottleneck]] = {
    "ae": _ae,
    "dae": _dae,
    "vae": _vae,
    "infodrop": _infodrop,
    "vq": _vq,
    "softvq": _softvq,
}


def build_bottleneck(name: str, in_features: int, options: BottleneckOptions) -> Bottleneck:
    """Build the bottleneck registered as ``name`` for encoder features of size ``in_features``."""
    if name not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {name!r}; choose from {', '.join(BOTTLENECKS)}")
    return BOTTLENECKS[name](in_features, options)
