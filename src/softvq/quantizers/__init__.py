"""Quantizers: the math of the bottleneck (soft and hard vector quantization)."""

from .codebook import kmeans_init, restart_dead_codes
from .hard import VQ, nearest_codes
from .output import QuantizerOutput
from .posterior import perplexity, posterior_logits, soft_assign
from .soft import SoftVQ

__all__ = ["SoftVQ", "VQ", "QuantizerOutput", "nearest_codes", "perplexity", "posterior_logits", "soft_assign",
           "kmeans_init", "restart_dead_codes"]
