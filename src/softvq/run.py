"""The run directory: what a training run leaves behind, and how to load it back.

Layout of ``RUN_DIR``::

    config.json      resolved TrainConfig (``softvq train --config RUN_DIR/config.json`` reruns it)
    meta.json        sample shape, output activation, pixel variance, labels, timings
    model.pt         model state dict (load with ``torch.load(..., weights_only=True)``)
    checkpoint.pt    model + optimizer + RNG + step + curve, for ``--resume``
    history.csv      the training curve
    metrics.json     written by ``softvq evaluate``
    *.png            plots
"""

from __future__ import annotations

import csv
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from . import _io
from .bottlenecks import build_bottleneck
from .config import TrainConfig
from .errors import ConfigError, SoftVQError
from .model import Autoencoder
from .networks import build_networks

CONFIG, META, MODEL, CHECKPOINT, HISTORY, METRICS = (
    "config.json", "meta.json", "model.pt", "checkpoint.pt", "history.csv", "metrics.json",
)


def build_model(cfg: TrainConfig, sample_shape: tuple[int, ...], output: str = "sigmoid") -> Autoencoder:
    """Build the autoencoder a resolved config describes."""
    assert cfg.network is not None and cfg.latent_dim is not None
    try:
        encoder, decoder, features = build_networks(cfg.network, sample_shape, cfg.latent_dim, output)
        bottleneck = build_bottleneck(cfg.bottleneck, features, cfg)  # type: ignore[arg-type]
        return Autoencoder(encoder, bottleneck, decoder, sample_shape=tuple(sample_shape))
    except ValueError as exc:  # a layer refused a setting the config check let through
        raise ConfigError(f"invalid settings for {cfg.bottleneck}: {exc}") from None


_BLOCKED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with a clear error for unsafe or corrupt files.

    softvq never unpickles with ``weights_only=False``: a file that would need to
    import or call anything beyond tensors and plain containers is refused.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": we explain failures ourselves
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SoftVQError(f"{path} not found") from None
    except IsADirectoryError:
        raise SoftVQError(f"{path} is a directory, not a checkpoint file") from None
    except pickle.UnpicklingError as exc:
        text = str(exc)
        blocked = _BLOCKED_GLOBAL.search(text)
        why = (f"unpickling it would import or call {blocked.group(1)}" if blocked
               else "it holds pickle instructions beyond tensors and plain containers")
        raise SoftVQError(
            f"refusing to load {path}: {why}, which a weights-only load does not allow "
            "(a crafted or foreign file can run code when unpickled). Only load checkpoints written "
            "by softvq; softvq never loads them with weights_only=False"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SoftVQError(f"cannot read checkpoint {path}: it is truncated or corrupt "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SoftVQError(f"{path} not found: is {path.parent} a softvq run directory?") from None
    except json.JSONDecodeError as exc:
        raise SoftVQError(f"{path} is not valid JSON: {exc}") from None


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """``meta.json`` of a run, checked to hold what rebuilding the model needs."""
    path = Path(run_dir) / META
    meta = read_json(path)
    missing = [k for k in ("sample_shape", "output") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise SoftVQError(f"{path} lacks {', '.join(missing)}: the run directory is damaged "
                          f"(retrain it, or restore meta.json from a copy)")
    return meta


def save_history(path: Path, rows: list[dict[str, float]]) -> None:
    """Write the training curve as CSV (columns: union of keys, ``step`` first)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    _io.write_text(path, buf.getvalue())


def load_history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def load_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config of a run."""
    return TrainConfig.from_dict(read_json(Path(run_dir) / CONFIG), source=str(Path(run_dir) / CONFIG))


def holds_config(run_dir: str | Path, cfg: TrainConfig, sample_shape: tuple[int, ...]) -> bool:
    """True when ``run_dir/config.json`` describes the run ``cfg`` does (both resolved for
    ``sample_shape``, so an option added to softvq after the run was made compares as its
    default); False when it differs or cannot be read."""
    try:
        return load_config(run_dir).resolved(sample_shape) == cfg.resolved(sample_shape)
    except SoftVQError:
        return False


def load(run_dir: str | Path, device: str = "cpu") -> Autoencoder:
    """Load a trained model from a run directory, in eval mode.

    The weights are read with ``weights_only=True``; the architecture is rebuilt from
    ``config.json`` and ``meta.json``.
    """
    from .distributed import check_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SoftVQError(f"run directory {run_dir} does not exist" if not run_dir.exists() else
                          f"{run_dir} is a file, not a run directory (softvq train --out writes one)")
    dev = check_device(device)
    cfg = load_config(run_dir)
    meta = read_meta(run_dir)
    model = build_model(cfg, tuple(meta["sample_shape"]), meta["output"])
    state = safe_torch_load(run_dir / MODEL)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise SoftVQError(f"{run_dir / MODEL} does not match the architecture in {run_dir / CONFIG}: {str(exc).splitlines()[0]}") from None
    return model.to(dev).eval()
