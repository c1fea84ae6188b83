"""Evaluation benchmark: the linear probe and k-means at Fashion-MNIST sizes.

Latents: by default a mixture of 10 Gaussian classes in 64 dimensions whose centres are
close enough that neither k-means nor the probe is perfect, 60,000 training and 10,000
test latents, as on Fashion-MNIST. ``--train FILE --test FILE`` use real latents instead
(``softvq embed RUN --split train --out FILE``).

- linear probe: :func:`softvq.evaluation.metrics.linear_probe` (scikit-learn's
  ``LogisticRegression``, lbfgs) with the harness's budget (``max_iter=3000``, enough
  to converge) and with scikit-learn's default ``max_iter=100``: time, whether it
  converged, test accuracy.
- k-means: :func:`softvq.evaluation.metrics.kmeans_metrics` on the test latents with
  n_init = 10 (the harness default) and 100 (the reference code's).

    python benchmarks/evaluation.py
    python benchmarks/evaluation.py --train z_train.npz --test z_test.npz
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from softvq.evaluation.metrics import kmeans_metrics, linear_probe


def latents(n: int, seed: int, d: int = 64, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float32 latents and ``(n,)`` labels; class centres drawn from one fixed seed."""
    centres = np.random.default_rng(0).normal(size=(classes, d)).astype(np.float32) * 0.35
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(size=(n, d)).astype(np.float32), y


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["z"], f["y"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", help="an .npz from softvq embed --split train")
    p.add_argument("--test", help="an .npz from softvq embed --split test")
    args = p.parse_args(argv)
    if (args.train is None) != (args.test is None):
        p.error("give both --train and --test, or neither")
    (z_train, y_train), (z_test, y_test) = ((load(args.train), load(args.test)) if args.train
                                            else (latents(60_000, 1), latents(10_000, 2)))
    print(f"# evaluation benchmark: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; "
          f"{len(z_train):,} train / {len(z_test):,} test latents of dimension {z_train.shape[1]}\n")
    print("| linear probe | s | test accuracy | converged |")
    print("|---|---:|---:|---|")
    for max_iter in (3000, 100):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t0 = time.perf_counter()
            acc = linear_probe(z_train, y_train, z_test, y_test, max_iter=max_iter)
            seconds = time.perf_counter() - t0
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        label = "the harness (max_iter=3000)" if max_iter == 3000 else "scikit-learn's default max_iter=100"
        print(f"| {label} | {seconds:.2f} | {acc:.4f} | {'yes' if converged else 'no'} |")
    print("\n| k-means on the test latents | s | acc | nmi |")
    print("|---|---:|---:|---:|")
    for n_init in (10, 100):
        t0 = time.perf_counter()
        m = kmeans_metrics(z_test, y_test, n_init=n_init)
        print(f"| n_init={n_init} | {time.perf_counter() - t0:.2f} | {m['acc']:.4f} | {m['nmi']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
