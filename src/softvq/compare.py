"""Train and evaluate several bottlenecks over several seeds with one budget."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from sklearn.decomposition import PCA

from . import _io, run as rundir
from .bottlenecks import BOTTLENECKS
from .config import TrainConfig
from .data import Dataset, load_dataset
from .errors import SoftVQError, TrainingInterrupted
from .evaluation.evaluate import evaluate_features, evaluate_run
from .evaluation.metrics import check_kmeans_options
from .reporting import tables
from .training import train

#: metrics shown in tables, in order; lower is better for the last group
TABLE_METRICS = ["kmeans_acc", "nmi", "ari", "probe_acc", "recon_mse_train", "recon_mse_test", "recon_gap",
                 "perplexity", "dead_codes", "code_acc", "code_nmi"]
LOWER_IS_BETTER = {"recon_mse_train", "recon_mse_test", "recon_gap", "dead_codes"}
ANCHORS = ("raw", "pca")


def parse_bottlenecks(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of registered names."""
    names = list(BOTTLENECKS) if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise SoftVQError(f"--bottlenecks names no bottleneck ({spec!r}); choose from all, {', '.join(BOTTLENECKS)}")
    unknown = [n for n in names if n not in BOTTLENECKS]
    if unknown:
        raise SoftVQError(f"unknown bottleneck(s) {', '.join(unknown)}; choose from all, {', '.join(BOTTLENECKS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # one run counted twice would overstate n and shrink the spread
        raise SoftVQError(f"--bottlenecks lists {', '.join(repeated)} more than once")
    return names


def anchor_rows(data: Dataset, latent_dim: int, seeds: list[int], n_init: int) -> list[dict[str, Any]]:
    """Rows for features that need no training: raw pixels and PCA to ``latent_dim``."""
    x_train = data.x_train.flatten(1).numpy()
    x_test = data.x_test.flatten(1).numpy()
    y_train = None if data.y_train is None else data.y_train.numpy()
    y_test = None if data.y_test is None else data.y_test.numpy()
    pca = PCA(n_components=min(latent_dim, *x_train.shape), random_state=0).fit(x_train)
    features = {"raw": (x_train, x_test), "pca": (pca.transform(x_train), pca.transform(x_test))}
    rows = []
    for name, (ftr, fte) in features.items():
        probe: dict[str, float] = {}
        for seed in seeds:
            # k-means depends on the seed; the probe (a convex fit on fixed features) does not
            m = evaluate_features(ftr, y_train, fte, y_test, n_init=n_init, seed=seed, probe=not probe)
            probe = probe or {k: m[k] for k in ("probe_acc", "probe_seconds") if k in m}
            rows.append({"bottleneck": name, "seed": seed, **m, **probe})
    return rows


def compare(
    base: TrainConfig,
    bottlenecks: list[str],
    seeds: list[int],
    out_dir: str | Path,
    *,
    n_init: int = 10,
    anchors: bool = True,
    dataset: Dataset | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    jobs: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train every bottleneck for every seed with ``base``'s budget, evaluate, tabulate.

    Runs go to ``out_dir/<bottleneck>/seed<k>``. A run with the same config that has
    ``metrics.json`` is reused, and one that stopped early continues from its checkpoint,
    so an interrupted comparison is restarted by calling it again. A run directory
    holding a different config is an error before anything is trained, unless
    ``overwrite`` (then it is trained again from scratch).
    Writes ``results.{md,csv,json}`` (mean and std per metric), ``runs.json`` (every
    run) and ``paired.{md,json}`` (softvq minus each other row, paired by seed).
    ``jobs > 1`` trains that many runs at once in worker processes, each with
    ``cpu_count // jobs`` threads unless the config sets ``threads``; every run is
    still deterministic for its seed, but a different thread count can change float
    rounding, so results may differ from ``jobs=1`` in the last digits.
    """
    if jobs < 1:
        raise SoftVQError(f"jobs must be >= 1, got {jobs}")
    check_kmeans_options(n_init, 0)
    out = Path(out_dir)
    data = dataset if dataset is not None else load_dataset(base.dataset, base.data_dir, validation=base.validation)
    todo: list[tuple[int, TrainConfig, Path, bool]] = []
    results: dict[int, dict[str, Any]] = {}
    conflicts: list[str] = []
    for name in bottlenecks:
        for seed in seeds:
            cfg = dataclasses.replace(base, bottleneck=name, seed=seed, plots=base.plots and seed == seeds[0])
            run_dir = out / name / f"seed{seed}"
            cfg.resolved(data.sample_shape)  # a bad value (a seed out of range, say) stops us before any training
            state = _run_state(run_dir, cfg, data.sample_shape)
            if state == "finished":
                metrics = rundir.read_json(run_dir / rundir.METRICS)
                if metrics.get("n_init") != n_init:  # trained as asked, but evaluated with other k-means restarts
                    wall = metrics.get("wall_seconds")
                    metrics = evaluate_run(run_dir, n_init=n_init, seed=seed, dataset=data, write=False)
                    metrics["wall_seconds"] = wall
                    _io.write_json(run_dir / rundir.METRICS, metrics)
                    log(f"[{name} seed {seed}] reused {run_dir}, evaluated again with n_init={n_init}")
                else:
                    log(f"[{name} seed {seed}] reused {run_dir}")
                results[len(results) + len(todo)] = metrics
                continue
            if state == "different" and not overwrite:
                conflicts.append(str(run_dir))
            todo.append((len(results) + len(todo), cfg, run_dir, state == "resumable"))
    if conflicts:
        raise SoftVQError(f"{out} already holds {len(conflicts)} run(s) trained with a different config "
                          f"({', '.join(conflicts[:3])}{', ...' if len(conflicts) > 3 else ''}); nothing was changed. "
                          "Pass --overwrite to retrain them, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        for i, metrics in _run_all(todo, data, n_init, jobs, progress):
            results[i] = metrics
            log(f"[{metrics['bottleneck']} seed {metrics['seed']}] "
                + ", ".join(f"{k}={metrics[k]:.3f}" for k in TABLE_METRICS[:4] if k in metrics)
                + f" ({metrics['wall_seconds']:.0f}s)")
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(f"{exc.args[0].split(';')[0]}; finished runs are kept and unfinished ones "
                                  "have checkpoints: run the same compare command again to continue",
                                  exc.signum) from None
    rows: list[dict[str, Any]] = [results[i] for i in sorted(results)]
    if anchors and data.y_test is not None:
        latent_dim = base.resolved(data.sample_shape).latent_dim
        assert latent_dim is not None
        rows += anchor_rows(data, latent_dim, seeds, n_init)
    summary = tables.summarize(rows, group_key="bottleneck", metrics=[m for m in TABLE_METRICS if any(m in r for r in rows)])
    metrics_present = [m for m in TABLE_METRICS if any(f"{m}_mean" in s for s in summary)]
    tables.write_tables(summary, out, stem="results", metrics=metrics_present, lower_is_better=LOWER_IS_BETTER)
    _io.write_json(out / "runs.json", rows)
    result: dict[str, Any] = {"summary": summary, "runs": rows, "metrics": metrics_present}
    if "softvq" in bottlenecks and len(bottlenecks) + (2 if anchors else 0) > 1:
        paired = tables.paired_differences(rows, reference="softvq", metrics=[m for m in metrics_present if m in TABLE_METRICS[:4]])
        _io.write_json(out / "paired.json", paired)
        _io.write_text(out / "paired.md", tables.paired_to_markdown(paired))
        result["paired"] = paired
    return result


def _train_and_evaluate(cfg: TrainConfig, run_dir: Path, resume: bool, n_init: int, data: Dataset,
                        progress: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    if resume:
        train(cfg, run_dir, dataset=data, resume=True, progress=progress)
    else:
        train(cfg, run_dir, dataset=data, overwrite=True, progress=progress)
    metrics = evaluate_run(run_dir, n_init=n_init, seed=cfg.seed, dataset=data)
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 2)
    _io.write_json(run_dir / rundir.METRICS, metrics)
    return metrics


_WORKER_DATA: Dataset | None = None


def _worker_init(data: Dataset, threads: int) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    torch.set_num_threads(threads)


def _worker_run(cfg: TrainConfig, run_dir: Path, resume: bool, n_init: int) -> dict[str, Any]:
    assert _WORKER_DATA is not None
    return _train_and_evaluate(cfg, run_dir, resume, n_init, _WORKER_DATA, progress=False)


def _run_all(
    todo: list[tuple[int, TrainConfig, Path, bool]], data: Dataset, n_init: int, jobs: int, progress: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Train (or resume) and evaluate each ``(index, cfg, run_dir, resume)``; yield
    ``(index, metrics)`` as runs finish."""
    if jobs == 1 or len(todo) <= 1:
        for i, cfg, run_dir, resume in todo:
            yield i, _train_and_evaluate(cfg, run_dir, resume, n_init, data, progress)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn, not fork: a forked child of a process whose OpenMP pool is running can hang
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init,
                             initargs=(data, threads)) as pool:
        futures = {pool.submit(_worker_run, cfg, run_dir, resume, n_init): i for i, cfg, run_dir, resume in todo}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _run_state(run_dir: Path, cfg: TrainConfig, sample_shape: tuple[int, ...]) -> str:
    """``"new"`` (nothing there), ``"finished"`` (same config, evaluated), ``"resumable"``
    (same config, a checkpoint), ``"restart"`` (same config, no checkpoint yet) or
    ``"different"`` (another config, or an unreadable one)."""
    if not (run_dir / rundir.CONFIG).exists():
        return "new"
    if not rundir.holds_config(run_dir, cfg, sample_shape):
        return "different"
    if (run_dir / rundir.METRICS).exists():
        return "finished"
    return "resumable" if (run_dir / rundir.CHECKPOINT).exists() else "restart"
