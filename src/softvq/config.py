"""Training configuration: a plain dataclass that round-trips to JSON (or reads TOML)."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import torch

from . import _io
from .errors import ConfigError


def _opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means "chosen per dataset"
    (see :meth:`resolved`); the run directory stores the resolved values."""

    # data and model
    dataset: str = _opt("digits", "dataset name (digits, fashion-mnist, mnist, svhn, cifar10) or a .npz/.npy file")
    data_dir: Optional[str] = _opt(None, "directory holding the dataset files")
    validation: bool = _opt(False, "evaluate on a 10% validation split of the training set (for choosing settings; test labels unused)")
    bottleneck: str = _opt("softvq", "bottleneck: ae, dae, vae, infodrop, vq, softvq")
    network: Optional[str] = _opt(None, "encoder/decoder: mlp, conv, small-mlp (default: by dataset)", ("mlp", "conv", "small-mlp"))
    latent_dim: Optional[int] = _opt(None, "latent size d (total over groups)")
    num_codes: Optional[int] = _opt(None, "codebook size K (vq, softvq; default: 64 for the mlp network, else 32)")
    groups: Optional[int] = _opt(None, "split the latent into this many sub-vectors, each quantized (default: 16 for the mlp network, else 1)")
    downstream: str = _opt("pre", "latent used for evaluation: pre- or post-quantization", ("pre", "post"))
    # optimization
    steps: Optional[int] = _opt(None, "training steps (default: by dataset)")
    batch_size: int = _opt(64, "batch size")
    lr: float = _opt(3e-4, "Adam learning rate")
    seed: int = _opt(0, "random seed (data order, initialization, noise)")
    device: str = _opt("cpu", "torch device, e.g. cpu or cuda")
    threads: Optional[int] = _opt(None, "CPU threads for torch (default: 1 for the small-mlp network, else torch's choice)")
    # quantizer losses (vq and softvq)
    codebook_weight: float = _opt(1.0, "weight of the codebook term ||z_hat - sg(z)||^2")
    commitment_weight: float = _opt(0.25, "weight of the commitment term ||z - sg(z_hat)||^2")
    codebook_init: str = _opt("kmeans", "codebook init: kmeans on encoder outputs when the quantizer switches on, or random (normal)", ("kmeans", "random"))
    warmup_steps: Optional[int] = _opt(None, "vq/softvq: train as a plain AE for this many steps before quantizing (default: steps // 3)")
    dead_code_restart: int = _opt(0, "vq/softvq: every N steps, restart codewords unused since the last check (0: off)")
    # soft VQ
    sigma: str = _opt("predicted", "soft VQ sigma (predicted: an encoder head outputs K log-sigmas)", ("fixed", "learned", "learned_per_code", "predicted"))
    init_sigma: float = _opt(1.0, "initial (or fixed) sigma of soft VQ")
    sigma_final: Optional[float] = _opt(None, "anneal a fixed sigma geometrically to this value")
    prior: str = _opt("uniform", "soft VQ prior", ("uniform", "learned"))
    gradient: str = _opt("straight_through", "soft VQ gradient mode", ("straight_through", "exact"))
    normalization: str = _opt("gaussian", "soft VQ normalization term", ("gaussian", "reference", "none"))
    noise_std: float = _opt(0.0, "soft VQ training-time noise on z")
    sigma_head_rank: Optional[int] = _opt(None, "predicted sigma: factor the log-sigma head through this rank (default 0: a full dense layer, as chosen on validation)")
    # other bottlenecks
    vq_ema_decay: Optional[float] = _opt(None, "hard VQ: EMA codebook decay (None: gradient updates)")
    dae_noise_std: float = _opt(0.1, "dae: std of latent noise in training")
    kl_weight: float = _opt(1e-3, "vae: weight of the KL term")
    infodrop_weight: float = _opt(1e-2, "infodrop: weight of the information penalty")
    infodrop_alpha_max: float = _opt(0.7, "infodrop: maximum noise scale alpha")
    # bookkeeping
    log_every: int = _opt(50, "record the training curve every N steps")
    eval_batch_size: int = _opt(2048, "batch size for encoding and evaluation")
    plots: bool = _opt(True, "write plots into the run directory")

    # -- resolution ------------------------------------------------------------------
    def resolved(self, sample_shape: tuple[int, ...]) -> "TrainConfig":
        """Fill per-dataset defaults from the shape of one sample (ConfigError for bad values)."""
        self.validate()  # types first: the defaults below do arithmetic with the user's values
        image = len(sample_shape) == 3
        big = image and sample_shape[-1] >= 28
        rgb = image and sample_shape[0] == 3
        net = self.network or ("conv" if rgb and big else "mlp" if big else "small-mlp")
        latent = self.latent_dim or (256 if net == "conv" else 64 if net == "mlp" else 16)
        # K=64 with 16 groups for the 28x28 MLP (the reference used K=128 with one group):
        # both chosen on the Fashion-MNIST validation split (docs/results.md).
        codes = self.num_codes or (64 if net == "mlp" else 32)
        steps = self.steps if self.steps is not None else (10_000 if big else 3_000)
        # Small networks run faster on one thread than on two (measured: docs/performance.md).
        threads = self.threads if self.threads is not None else (1 if net == "small-mlp" else None)
        warmup = self.warmup_steps if self.warmup_steps is not None else steps // 3
        groups = self.groups if self.groups is not None else (16 if net == "mlp" and latent % 16 == 0 else 1)
        head_rank = self.sigma_head_rank if self.sigma_head_rank is not None else 0
        cfg = dataclasses.replace(self, network=net, latent_dim=latent, num_codes=codes, steps=steps, threads=threads,
                                  warmup_steps=warmup, groups=groups, sigma_head_rank=head_rank)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError for values of the wrong type or out of range."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            coerce(f.name, value, hints[f.name], "config")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")
        positive = ["batch_size", "lr", "init_sigma", "log_every", "eval_batch_size"]
        positive += [n for n in ("latent_dim", "num_codes", "steps", "threads", "groups") if getattr(self, n) is not None]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.latent_dim is not None and self.groups is not None and self.latent_dim % self.groups:
            raise ConfigError(f"latent_dim={self.latent_dim} must be divisible by groups={self.groups}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if (self.bottleneck in ("vq", "softvq") and self.steps is not None and self.warmup_steps is not None
                and self.warmup_steps >= self.steps):
            raise ConfigError(f"warmup_steps={self.warmup_steps} is not below steps={self.steps}: the {self.bottleneck} "
                              "bottleneck would never switch on (use --bottleneck ae for a plain autoencoder)")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must lie in 0..2**32-1, got {self.seed}")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ConfigError(f"device {self.device!r} is not a torch device; use cpu, cuda or cuda:N") from None
        if self.sigma_head_rank is not None and self.sigma_head_rank < 0:
            raise ConfigError(f"sigma_head_rank must be >= 0 (0: a full dense head), got {self.sigma_head_rank}")
        for name in ("dead_code_restart", "codebook_weight", "commitment_weight", "noise_std", "dae_noise_std", "kl_weight", "infodrop_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.sigma_final is not None and not self.sigma_final > 0:
            raise ConfigError(f"sigma_final must be positive, got {self.sigma_final!r}")
        if self.vq_ema_decay is not None and not 0 < self.vq_ema_decay < 1:
            raise ConfigError(f"vq_ema_decay must lie in (0, 1), got {self.vq_ema_decay!r}")

    # -- files -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build a config from a mapping, type-checking every value."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of option names to values")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        values = {name: coerce(name, value, hints[name], source) for name, value in data.items()}
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def save(self, path: str | Path) -> None:
        """Write the config as JSON (atomically)."""
        _io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read a ``.json`` or ``.toml`` config file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); "
                              "softvq reads JSON (.json) or TOML (.toml) configs") from None
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            other = "" if path.suffix in (".json", ".toml") else " (softvq reads JSON, or TOML from a .toml file)"
            raise ConfigError(f"config file {path} is not valid {kind}{other}: {exc}") from None
        return cls.from_dict(data, source=str(path))


def _base_type(tp: Any) -> tuple[type, bool]:
    """(underlying type, optional?) of an annotation like ``Optional[int]``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def coerce(name: str, value: Any, tp: Any, source: str = "config") -> Any:
    """Check ``value`` against annotation ``tp`` (ints are accepted for floats)."""
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {name} cannot be null")
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is bool and not isinstance(value, bool) or base is not bool and isinstance(value, bool):
        raise ConfigError(f"{source}: {name} must be of type {base.__name__}, got {value!r}")
    if not isinstance(value, base):
        raise ConfigError(f"{source}: {name} must be of type {base.__name__}, got {type(value).__name__} {value!r}")
    return value


def parse_value(name: str, text: str, tp: Any) -> Any:
    """Parse a command-line string into the type of option ``name``."""
    base, optional = _base_type(tp)
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if base is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return base(text)
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')}: expected {base.__name__}, got {text!r}") from None
