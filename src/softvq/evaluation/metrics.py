"""Evaluation metrics for latents, codebooks and reconstructions.

All functions take array-likes (numpy arrays, lists, CPU tensors) and return plain
Python floats / ints / lists, so results can go straight into JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import entropy
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.preprocessing import StandardScaler

from softvq.errors import SoftVQError

__all__ = [
    "MetricInputError",
    "check_kmeans_options",
    "clustering_accuracy",
    "kmeans_labels",
    "kmeans_metrics",
    "linear_probe",
    "codebook_usage",
    "codebook_usage_from_counts",
    "reconstruction_mse",
]


class MetricInputError(SoftVQError, ValueError):
    """Arrays given to a metric have the wrong shape, length or contain NaN/inf."""


def _labels(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise MetricInputError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise MetricInputError(f"{name} is empty")
    return y


def _latents(z: Any, name: str) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 2:
        raise MetricInputError(f"{name} must be 2-D (N, D), got shape {z.shape}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise MetricInputError(f"{name} is empty (shape {z.shape})")
    if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
        raise MetricInputError(f"{name} must be real numbers, got dtype {z.dtype}")
    bad = ~np.isfinite(z)
    if bad.any():
        raise MetricInputError(
            f"{name} contains {int(bad.sum())} non-finite values (NaN/inf) in "
            f"{int(bad.any(axis=1).sum())} of {z.shape[0]} rows"
        )
    return z


def _same_length(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if len(a) != len(b):
        raise MetricInputError(f"{na} and {nb} differ in length: {len(a)} != {len(b)}")


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """Accuracy under the best one-to-one cluster->label mapping (Hungarian).

    y_true, y_pred: (N,) labels of any hashable-sortable type. Clusters left
    unmatched (more clusters than classes) count as errors.
    """
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true", "y_pred")
    # contingency_matrix relabels both via np.unique: rows = classes, cols = clusters.
    table = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


def check_kmeans_options(n_init: Any, seed: Any) -> None:
    """MetricInputError unless ``n_init >= 1`` and ``seed`` lies in 0..2**32-1 (what KMeans takes)."""
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise MetricInputError(f"n_init (k-means restarts) must be an integer >= 1, got {n_init!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise MetricInputError(f"seed must be an integer in 0..2**32-1, got {seed!r}")


def kmeans_labels(z: Any, n_clusters: int, n_init: int = 10, seed: int = 0) -> np.ndarray:
    """K-means cluster index (N,) int for latents z (N, D)."""
    check_kmeans_options(n_init, seed)
    z = _latents(z, "z")
    if not 1 <= n_clusters <= z.shape[0]:
        raise MetricInputError(f"n_clusters must be in [1, {z.shape[0]}], got {n_clusters}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    # float32 input stays float32: about twice as fast as float64 on the same data.
    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    return km.fit_predict(z)


def kmeans_metrics(
    z: Any, y: Any, n_clusters: int | None = None, n_init: int = 10, seed: int = 0
) -> dict[str, float]:
    """K-means on z (N, D) scored against labels y (N,): ``{"acc", "nmi", "ari"}``.

    n_clusters defaults to the number of distinct labels.
    """
    z, y = _latents(z, "z"), _labels(y, "y")
    _same_length(z, y, "z", "y")
    k = len(np.unique(y)) if n_clusters is None else int(n_clusters)
    pred = kmeans_labels(z, k, n_init=n_init, seed=seed)
    return {
        "acc": clustering_accuracy(y, pred),
        "nmi": float(normalized_mutual_info_score(y, pred)),
        "ari": float(adjusted_rand_score(y, pred)),
    }


def linear_probe(
    z_train: Any,
    y_train: Any,
    z_test: Any,
    y_test: Any,
    seed: int = 0,
    max_iter: int = 3000,
    C: float = 1.0,
) -> float:
    """Test accuracy of a softmax classifier (linear probe) on standardized latents.

    z_*: (N, D) latents, y_*: (N,) labels. The scaler is fit on the training set only;
    the classifier is scikit-learn's ``LogisticRegression(C=C)`` (multinomial, lbfgs)
    fit to convergence: 64-d Fashion-MNIST latents need 300-400 iterations (100 stop
    about 0.01 accuracy short), its 784 raw pixels a little over 1,000; ``max_iter=3000``
    covers both. scikit-learn warns (ConvergenceWarning) if it still stops early.
    """
    z_train, z_test = _latents(z_train, "z_train"), _latents(z_test, "z_test")
    y_train, y_test = _labels(y_train, "y_train"), _labels(y_test, "y_test")
    _same_length(z_train, y_train, "z_train", "y_train")
    _same_length(z_test, y_test, "z_test", "y_test")
    if z_train.shape[1] != z_test.shape[1]:
        raise MetricInputError(
            f"z_train and z_test differ in dimension: {z_train.shape[1]} != {z_test.shape[1]}"
        )
    if len(np.unique(y_train)) < 2:
        raise MetricInputError("y_train needs at least 2 distinct classes for a linear probe")
    scaler = StandardScaler().fit(z_train)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(scaler.transform(z_train), y_train)
    return float((clf.predict(scaler.transform(z_test)) == y_test).mean())


def codebook_usage_from_counts(counts: Any) -> dict[str, Any]:
    """Usage statistics from per-code counts (K,): see :func:`codebook_usage`."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise MetricInputError(f"counts must be a non-empty 1-D array, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise MetricInputError("counts must be finite and non-negative")
    total = counts.sum()
    if total <= 0:
        raise MetricInputError("counts are all zero: no code was used")
    return {
        # entropy() normalises counts to probabilities; natural log.
        "perplexity": float(np.exp(entropy(counts.astype(np.float64)))),
        "dead_codes": int((counts == 0).sum()),
        "counts": [int(c) for c in counts],
    }


def codebook_usage(indices: Any, num_codes: int) -> dict[str, Any]:
    """Code usage of integer code indices (any shape) for a codebook of size num_codes.

    Returns ``perplexity`` (exp of the natural-log entropy of the empirical code
    distribution: K for uniform use of K codes, 1 for a single code),
    ``dead_codes`` (codes never used) and ``counts`` (list of num_codes ints).
    """
    idx = np.asarray(indices)
    if num_codes < 1:
        raise MetricInputError(f"num_codes must be >= 1, got {num_codes}")
    if idx.size == 0:
        raise MetricInputError("indices is empty")
    if not np.issubdtype(idx.dtype, np.integer):
        raise MetricInputError(f"indices must be integers, got dtype {idx.dtype}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= num_codes:
        raise MetricInputError(f"indices out of range [0, {num_codes}): min {lo}, max {hi}")
    return codebook_usage_from_counts(np.bincount(idx.ravel(), minlength=num_codes))


def reconstruction_mse(x: Any, x_hat: Any) -> float:
    """Mean squared error per element between x and x_hat (same shape)."""
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise MetricInputError(f"x and x_hat differ in shape: {x.shape} != {x_hat.shape}")
    if x.size == 0:
        raise MetricInputError("x is empty")
    return float(np.mean(np.square(x - x_hat)))
