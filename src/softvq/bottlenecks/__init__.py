"""The bottleneck zoo: AE, denoising AE, VAE, information dropout, VQ-VAE, soft VQ-VAE."""

from .base import Bottleneck, BottleneckOutput
from .deterministic import Identity
from .infodrop import InformationDropout
from .quantized import Quantized
from .registry import BOTTLENECKS, build_bottleneck
from .vae import Gaussian

__all__ = [
    "BOTTLENECKS", "Bottleneck", "BottleneckOutput", "Gaussian", "Identity",
    "InformationDropout", "Quantized", "build_bottleneck",
]
