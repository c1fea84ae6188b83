"""softvq: soft vector-quantization bottlenecks for autoencoders, and an honest harness.

The layer::

    from softvq import SoftVQ
    vq = SoftVQ(num_codes=128, code_dim=64, sigma="learned")
    out = vq(z)                     # z: (..., 64), channels last
    loss = recon + out.loss         # out.z_q goes to the decoder

The harness: :func:`train` a config into a run directory, :func:`load` it back,
:func:`evaluate` it, :func:`compare` bottlenecks over seeds.
"""

from .bottlenecks import BOTTLENECKS, Bottleneck, BottleneckOutput, build_bottleneck
from .compare import compare
from .config import TrainConfig
from .errors import ConfigError, DataError, SoftVQError
from .evaluation.evaluate import embed_run as embed
from .evaluation.evaluate import evaluate_run as evaluate
from .model import Autoencoder
from .quantizers import VQ, QuantizerOutput, SoftVQ
from .run import load
from .training import train

__version__ = "0.1.0"

__all__ = [
    "BOTTLENECKS", "Autoencoder", "Bottleneck", "BottleneckOutput", "ConfigError", "DataError",
    "QuantizerOutput", "SoftVQ", "SoftVQError", "TrainConfig", "VQ", "build_bottleneck",
    "compare", "embed", "evaluate", "load", "train",
]
