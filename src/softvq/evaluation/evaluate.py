"""The evaluation protocol (METHOD section 6) for a run directory or plain features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io, run as rundir
from ..config import TrainConfig
from ..data import DATASETS, Dataset, load_dataset
from ..errors import SoftVQError
from ..model import Autoencoder
from .encode import encode_split
from sklearn.metrics import normalized_mutual_info_score

from .metrics import check_kmeans_options, clustering_accuracy, codebook_usage, kmeans_metrics, linear_probe


def evaluate_features(
    z_train: np.ndarray,
    y_train: np.ndarray | None,
    z_test: np.ndarray,
    y_test: np.ndarray | None,
    *,
    n_init: int = 10,
    seed: int = 0,
    probe: bool = True,
) -> dict[str, float]:
    """k-means accuracy/NMI/ARI on ``z_test`` and linear-probe accuracy (train -> test).

    ``z_*`` are ``(N, D)`` features; labels ``(N,)`` ints. Returns ``{}`` without labels.
    """
    if y_test is None:
        return {}
    metrics: dict[str, float] = {}
    t0 = time.perf_counter()
    km = kmeans_metrics(z_test, y_test, n_init=n_init, seed=seed)
    metrics.update({"kmeans_acc": km["acc"], "nmi": km["nmi"], "ari": km["ari"]})
    metrics["kmeans_seconds"] = time.perf_counter() - t0
    if probe and y_train is not None:
        t0 = time.perf_counter()
        metrics["probe_acc"] = linear_probe(z_train, y_train, z_test, y_test, seed=seed)
        metrics["probe_seconds"] = time.perf_counter() - t0
    return metrics


def _load_run(run_dir: Path, dataset: Dataset | None) -> tuple[Autoencoder, TrainConfig, Dataset]:
    """The run's model (eval mode), resolved config and dataset, checked to match in shape.

    Without ``dataset``, the run's own is loaded; a relative file path that does not resolve
    from here is taken relative to the directory the run was trained from (``working_dir``
    in ``meta.json``)."""
    model = rundir.load(run_dir)
    cfg = rundir.load_config(run_dir)
    meta = rundir.read_meta(run_dir)
    trained_in = meta.get("working_dir")

    def locate(path: str) -> str:
        if Path(path).is_absolute() or Path(path).exists() or not trained_in:
            return path
        there = Path(trained_in) / path
        return str(there) if there.exists() else path

    if dataset is None:
        name = cfg.dataset if cfg.dataset.lower().replace("_", "-") in DATASETS else locate(cfg.dataset)
        dataset = load_dataset(name, cfg.data_dir and locate(cfg.data_dir), validation=cfg.validation)
    trained = tuple(meta["sample_shape"])
    if tuple(dataset.sample_shape) != trained:
        raise SoftVQError(f"dataset {dataset.name} has samples of shape {tuple(dataset.sample_shape)}, "
                          f"but the run in {run_dir} was trained on {trained}")
    return model, cfg, dataset


def evaluate_run(
    run_dir: str | Path,
    *,
    n_init: int = 10,
    seed: int = 0,
    dataset: Dataset | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run on its test split and write ``metrics.json``.

    Metrics: ``kmeans_acc``, ``nmi``, ``ari`` (k-means with k = number of classes on
    the test latents), ``probe_acc`` (softmax classifier trained on the training
    latents), ``recon_mse_train``/``recon_mse_test`` (per element, input units) and
    their gap, and for quantizers ``perplexity`` and ``dead_codes`` on the test split and,
    with one group, ``code_acc``/``code_nmi``: the most probable code used as the cluster
    (accuracy counts clusters beyond the number of classes as errors).
    """
    check_kmeans_options(n_init, seed)
    run_dir = Path(run_dir)
    model, cfg, data = _load_run(run_dir, dataset)
    train = encode_split(model, data.x_train, cfg.eval_batch_size)
    test = encode_split(model, data.x_test, cfg.eval_batch_size)
    y_train = None if data.y_train is None else data.y_train.numpy()
    y_test = None if data.y_test is None else data.y_test.numpy()
    metrics: dict[str, Any] = {"bottleneck": cfg.bottleneck, "seed": cfg.seed, "dataset": data.name}
    metrics.update(evaluate_features(train.latents, y_train, test.latents, y_test, n_init=n_init, seed=seed))
    metrics["recon_mse_train"] = float(train.sq_error.mean())
    metrics["recon_mse_test"] = float(test.sq_error.mean())
    metrics["recon_gap"] = metrics["recon_mse_test"] - metrics["recon_mse_train"]
    if test.indices is not None:
        usage = codebook_usage(test.indices, model.bottleneck.num_codes)
        metrics["perplexity"] = float(usage["perplexity"])
        metrics["dead_codes"] = int(usage["dead_codes"])
        if y_test is not None and test.indices.shape[1] == 1:
            # The posterior itself as a clustering (one group): codes are clusters.
            metrics["code_acc"] = clustering_accuracy(y_test, test.indices[:, 0])
            metrics["code_nmi"] = float(normalized_mutual_info_score(y_test, test.indices[:, 0]))
    metrics["n_init"] = n_init
    metrics["num_test"] = int(len(test.latents))
    if write:
        _io.write_json(run_dir / rundir.METRICS, metrics)
    return metrics


def embed_run(run_dir: str | Path, out_file: str | Path, split: str = "test", dataset: Dataset | None = None) -> Path:
    """Write the downstream latents of a split to ``out_file``.

    The ``.npz`` holds ``z`` ``(N, latent_dim)``, ``y`` ``(N,)`` labels as 0..k-1,
    ``class_names`` ``(k,)`` (the dataset's own label for each index, when it has names),
    and ``codes`` ``(N, groups)`` (the most probable codeword, quantizers only).
    """
    if split not in ("train", "test"):
        raise SoftVQError(f"--split must be train or test, got {split!r}")
    run_dir, out_file = Path(run_dir), Path(out_file)
    if out_file.suffix != ".npz":
        raise SoftVQError(f"--out must end in .npz, got {out_file}")
    model, cfg, data = _load_run(run_dir, dataset)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    enc = encode_split(model, x, cfg.eval_batch_size)
    arrays = {"z": enc.latents}
    if y is not None:
        arrays["y"] = y.numpy()
    if enc.indices is not None:
        arrays["codes"] = enc.indices
    if y is not None and data.class_names:  # y holds 0..k-1; class_names[y] are the dataset's own labels
        arrays["class_names"] = np.array(data.class_names)
    _io.write_npz(out_file, **arrays)
    return out_file
