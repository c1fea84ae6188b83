"""The training loop: one readable function, top to bottom."""

from __future__ import annotations

import contextlib
import math
import signal
import time
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import _io, run as rundir
from .config import TrainConfig
from .data import Dataset, load_dataset
from .errors import SoftVQError
from .model import Autoencoder
from .bottlenecks import Quantized
from .quantizers import SoftVQ, kmeans_init, restart_dead_codes

#: training samples whose latents seed the k-means codebook initialization
KMEANS_INIT_SAMPLES = 4096

__version__ = "0.1.0"


class TrainingInterrupted(SoftVQError):
    """SIGINT/SIGTERM arrived; a checkpoint was saved and the run can be resumed."""


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the batch for ``step``: epochs of fresh permutations, stateless.

    Epoch ``e`` uses ``randperm(n)`` from a generator seeded by ``(seed, e)``, so a
    resumed run sees exactly the batches an uninterrupted one would.
    """
    per_epoch = max(n // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    return perm[pos * batch_size : (pos + 1) * batch_size]


def recon_loss(x_hat: torch.Tensor, x: torch.Tensor, pixel_var: float) -> torch.Tensor:
    """Mean squared error divided by the variance of the training data (reference code)."""
    return F.mse_loss(x_hat, x) / pixel_var


@torch.no_grad()
def _init_codebook(bottleneck: Quantized, model: Autoencoder, x: torch.Tensor, seed: int) -> None:
    """k-means on the code vectors of a fixed random sample of training inputs."""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:KMEANS_INIT_SAMPLES]
    z = torch.cat([bottleneck.code_vectors(model.encoder(x[idx[i : i + 1024]])) for i in range(0, len(idx), 1024)])
    kmeans_init(bottleneck.quantizer, z.reshape(-1, z.shape[-1]), seed=seed)


def _sigma_at(cfg: TrainConfig, step: int) -> float:
    """Geometric annealing of a fixed sigma from ``init_sigma`` to ``sigma_final``."""
    assert cfg.steps and cfg.sigma_final
    t = step / max(cfg.steps - 1, 1)
    return cfg.init_sigma * (cfg.sigma_final / cfg.init_sigma) ** t


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM instead of dying mid-step; the loop checks the flag."""
    received: list[int] = []
    previous = {}
    def handler(signum, frame):  # noqa: ANN001
        received.append(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield received
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _save_checkpoint(out: Path, model: Autoencoder, opt: torch.optim.Optimizer, step: int, history: list) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "history": history,
    }
    _io.write_with(out / rundir.CHECKPOINT, lambda p: torch.save(state, p))
    _io.write_with(out / rundir.MODEL, lambda p: torch.save(model.state_dict(), p))
    rundir.save_history(out / rundir.HISTORY, history)


def _prepare_out_dir(out: Path, cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (out / rundir.CHECKPOINT).exists():
            raise SoftVQError(f"cannot resume: {out / rundir.CHECKPOINT} not found")
        return
    if (out / rundir.CONFIG).exists() and not overwrite:
        old = rundir.read_json(out / rundir.CONFIG)
        what = "the same run" if old == cfg.to_dict() else "a different run"
        raise SoftVQError(f"{out} already holds {what}; pass --resume to continue it, --overwrite to replace it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for name in (rundir.CHECKPOINT, rundir.METRICS):
        (out / name).unlink(missing_ok=True)


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_every: int = 1000,
) -> Path:
    """Train the autoencoder ``config`` describes and write the run directory.

    Args:
        config: the run's settings; ``None`` fields are resolved per dataset.
        out_dir: the run directory (see :mod:`softvq.run` for its layout).
        dataset: use this in-memory :class:`~softvq.data.Dataset` instead of loading
            ``config.dataset``.
        resume: continue from ``out_dir/checkpoint.pt`` (the config is read from the run).
        overwrite: replace a run already in ``out_dir``.
        checkpoint_every: steps between checkpoints (one is also written at the end,
            and on SIGINT/SIGTERM).

    Returns:
        The run directory.
    """
    out = Path(out_dir)
    if resume:
        config = rundir.load_config(out)
    data = dataset if dataset is not None else load_dataset(config.dataset, config.data_dir, validation=config.validation)
    cfg = config.resolved(data.sample_shape)
    _prepare_out_dir(out, cfg, resume, overwrite)
    assert cfg.steps is not None

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model = rundir.build_model(cfg, data.sample_shape, data.output).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    x_train = data.x_train.to(device)
    pixel_var = float(x_train.var().clamp_min(1e-8))
    history: list[dict[str, float]] = []
    start = 0
    if resume:
        state = rundir.safe_torch_load(out / rundir.CHECKPOINT)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start, history = int(state["step"]), list(state["history"])
    else:
        cfg.save(out / rundir.CONFIG)
    meta = {
        "softvq_version": __version__,
        "dataset": data.name,
        "sample_shape": list(data.sample_shape),
        "output": data.output,
        "pixel_var": pixel_var,
        "num_train": len(x_train),
        "num_classes": data.num_classes,
        "class_names": data.class_names,
    }
    _io.write_json(out / rundir.META, meta)
    quantizer = getattr(model.bottleneck, "quantizer", None)
    anneal = isinstance(quantizer, SoftVQ) and cfg.sigma == "fixed" and cfg.sigma_final is not None

    qb = model.bottleneck if isinstance(model.bottleneck, Quantized) else None
    if qb is not None:
        qb.bypass = start < cfg.warmup_steps
    usage = torch.zeros(qb.num_codes if qb is not None else 1, dtype=torch.long)

    model.train()
    sums: dict[str, float] = {}
    count, last_checkpoint = 0, start
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress,
               desc=f"{cfg.bottleneck} seed {cfg.seed}", dynamic_ncols=True, leave=False)
    with _stop_on_signals() as signals:
        for step in bar:
            if anneal:
                quantizer.set_sigma(_sigma_at(cfg, step))  # type: ignore[union-attr]
            if qb is not None and step == cfg.warmup_steps:
                qb.bypass = False
                if cfg.codebook_init == "kmeans":
                    _init_codebook(qb, model, x_train, cfg.seed)
            x = x_train[batch_indices(step, len(x_train), cfg.batch_size, cfg.seed).to(device)]
            out_ = model(x)
            recon = recon_loss(out_.x_hat, x, pixel_var)
            loss = recon + out_.bottleneck.loss
            if not torch.isfinite(loss):
                raise SoftVQError(
                    f"loss became {loss.item()} at step {step} (recon {recon.item():.4g}); stopped. "
                    f"The last good checkpoint (step {last_checkpoint}) "
                    f"is kept in {out}. Try a lower --lr."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if qb is not None and not qb.bypass and cfg.dead_code_restart:
                usage += torch.bincount(out_.bottleneck.indices.flatten().cpu(), minlength=len(usage))
                if (step + 1) % cfg.dead_code_restart == 0:
                    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
                    z = qb.code_vectors(model.encoder(x)).detach()
                    sums["restarted"] = sums.get("restarted", 0.0) + restart_dead_codes(qb.quantizer, z, usage, gen)
                    usage.zero_()

            for k, v in {"loss": loss, "recon": recon, "reg": out_.bottleneck.loss, **out_.bottleneck.logs}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
            count += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                row = {"step": float(done), **{k: v / count for k, v in sums.items()}}
                history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", recon=f"{row['recon']:.4f}")
                sums, count = {}, 0
            if signals:
                _save_checkpoint(out, model, opt, done, history)
                raise TrainingInterrupted(f"interrupted at step {done}; checkpoint saved. Continue with: softvq train --resume {out}")
            if done % checkpoint_every == 0 and done < cfg.steps:
                _save_checkpoint(out, model, opt, done, history)
                last_checkpoint = done
    bar.close()
    _save_checkpoint(out, model, opt, cfg.steps, history)
    meta["train_seconds_last_session"] = round(time.perf_counter() - t0, 2)
    _io.write_json(out / rundir.META, meta)
    if cfg.plots:
        from .evaluation.artifacts import write_plots

        write_plots(out, model.eval(), data, cfg, history)
    return out
