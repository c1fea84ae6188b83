"""Evaluation benchmark: the linear probe and k-means at Fashion-MNIST sizes.

Latents: a mixture of 10 Gaussian classes in 64 dimensions whose centres are close
enough that neither k-means nor the probe is perfect (so the solvers have work to do).
60,000 training and 10,000 test latents, as on Fashion-MNIST.

- linear probe: :func:`softvq.evaluation.metrics.linear_probe` (scikit-learn's
  ``LogisticRegression`` objective minimized by full-batch L-BFGS in torch) against
  scikit-learn's own ``LogisticRegression(C=1, max_iter=100)`` (lbfgs) on the same
  standardized latents, timed in alternation; accuracy of each on the test latents.
- k-means: :func:`softvq.evaluation.metrics.kmeans_metrics` on the 10,000 test latents
  with n_init = 10 (the harness default) and 100 (the reference code's).

    python benchmarks/evaluation.py            # 3 rounds
    python benchmarks/evaluation.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softvq.evaluation.metrics import kmeans_metrics, linear_probe


def latents(n: int, seed: int, d: int = 64, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float32 latents and ``(n,)`` labels; class centres drawn from one fixed seed."""
    centres = np.random.default_rng(0).normal(size=(classes, d)).astype(np.float32) * 0.35
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(size=(n, d)).astype(np.float32), y


def sklearn_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    scaler = StandardScaler().fit(z_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=1.0, max_iter=100).fit(scaler.transform(z_train), y_train)
    return float((clf.predict(scaler.transform(z_test)) == y_test).mean())


def timed(f, *args) -> tuple[float, float]:  # noqa: ANN001
    t0 = time.perf_counter()
    value = f(*args)
    return time.perf_counter() - t0, value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    z_train, y_train = latents(60_000, 1)
    z_test, y_test = latents(10_000, 2)
    print(f"# evaluation benchmark: torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.2f}\n")
    t_ours, t_sk, ratios = [], [], []
    for _ in range(args.rounds):
        a, acc_ours = timed(linear_probe, z_train, y_train, z_test, y_test)
        b, acc_sk = timed(sklearn_probe, z_train, y_train, z_test, y_test)
        t_ours.append(a), t_sk.append(b), ratios.append(b / a)
    print("| linear probe, 60,000 train / 10,000 test, d=64 | median s | test accuracy |")
    print("|---|---:|---:|")
    print(f"| softvq linear_probe (torch L-BFGS) | {statistics.median(t_ours):.2f} | {acc_ours:.4f} |")
    print(f"| scikit-learn LogisticRegression (lbfgs, max_iter=100) | {statistics.median(t_sk):.2f} | {acc_sk:.4f} |")
    print(f"\nscikit-learn time / softvq time: {statistics.median(ratios):.1f}x (median over {args.rounds} rounds)\n")
    print("| k-means on 10,000 latents, d=64, k=10 | s | acc | nmi |")
    print("|---|---:|---:|---:|")
    for n_init in (10, 100):
        t, m = timed(kmeans_metrics, z_test, y_test, None, n_init)
        print(f"| n_init={n_init} | {t:.2f} | {m['acc']:.4f} | {m['nmi']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
