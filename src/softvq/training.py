"""The training loop: one readable function, top to bottom.

Reliability guarantees (tested in ``tests/reliability``, listed in ``docs/reliability.md``):

* ``checkpoint.pt`` holds everything the loop's future depends on: weights, optimizer,
  every rank's RNG state, step, training curve, the partial logging window and the
  dead-code usage counts. A run interrupted at step ``s`` and resumed ends with
  bit-identical weights (on CPU) to one that never stopped.
* SIGINT/SIGTERM finish the current step, write a checkpoint and raise
  :class:`~softvq.errors.TrainingInterrupted` (the CLI exits 128 + the signal: 130, 143). A second Ctrl-C
  (after 2 s) aborts at once; the previous checkpoint is still intact.
* Every file is written atomically (:mod:`softvq._io`); ``kill -9`` at any moment
  leaves the previous complete file, never a torn one.
* A NaN/inf loss stops the run before the bad step is applied; the last checkpoint on
  disk (if any) is the last good state.
* Under ``torchrun`` the same loop runs data-parallel; see :mod:`softvq.distributed`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import _io, distributed, run as rundir
from .bottlenecks import Quantized
from .config import TrainConfig
from .data import Dataset, load_dataset
from .errors import ConfigError, SoftVQError, TrainingDiverged, TrainingInterrupted
from .model import Autoencoder
from .quantizers import SoftVQ, kmeans_init, restart_dead_codes

__all__ = ["TrainingDiverged", "TrainingInterrupted", "batch_indices", "train"]

#: training samples whose latents seed the k-means codebook initialization
KMEANS_INIT_SAMPLES = 4096
#: version of the checkpoint layout (1: no "loop" entry; 2: adds it and per-rank RNG)
CHECKPOINT_FORMAT = 2
#: a repeated Ctrl-C at least this many seconds after the first aborts without saving
FORCE_QUIT_AFTER_S = 2.0

__version__ = "0.1.0"


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the batch for ``step``: epochs of fresh permutations, stateless.

    Epoch ``e`` uses ``randperm(n)`` from a generator seeded by ``(seed, e)``, so a
    resumed run sees exactly the batches an uninterrupted one would. The permutation
    is cached, not state: the result depends on the arguments only. Returns a view of
    the cached permutation; do not modify it in place.
    """
    per_epoch = max(n // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    return _epoch_permutation(n, seed, epoch)[pos * batch_size : (pos + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


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
    """Record SIGINT/SIGTERM instead of dying mid-step; the loop checks the list.

    A second SIGINT at least ``FORCE_QUIT_AFTER_S`` after the first raises
    KeyboardInterrupt at once (a launcher that forwards the terminal's Ctrl-C makes
    two arrive together; those count as one).
    """
    received: list[int] = []
    first_at: dict[int, float] = {}
    previous = {}

    def handler(signum, frame):  # noqa: ANN001
        now = time.monotonic()
        if signum == signal.SIGINT and now - first_at.get(signum, now) >= FORCE_QUIT_AFTER_S:
            raise KeyboardInterrupt
        first_at.setdefault(signum, now)
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


def _check_config(cfg: TrainConfig, num_train: int, ctx: distributed.Context) -> None:
    """Field ranges (a config built in Python may never have been validated), batch splitting."""
    cfg.validate()
    if ctx.world_size > 1:
        if cfg.batch_size % ctx.world_size:
            raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({ctx.world_size}): "
                              "it is the global batch, split evenly over the ranks")
        if num_train < cfg.batch_size:
            raise ConfigError(f"the training set ({num_train} samples) is smaller than batch_size={cfg.batch_size}; "
                              "use a smaller batch or a single process")


_RUN_FILES = (rundir.CHECKPOINT, rundir.MODEL, rundir.HISTORY, rundir.CONFIG, rundir.META)


def _remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files a killed writer left beside the run files (``.NAME.*.tmp``)."""
    for name in _RUN_FILES:
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def _prepare_out_dir(out: Path, cfg: TrainConfig, data_shape: tuple[int, ...], resume: bool,
                     overwrite: bool) -> dict[str, Any] | None:
    """Rank 0: check and set up the run directory. Returns the checkpoint when resuming."""
    try:
        if resume:
            path = out / rundir.CHECKPOINT
            if not path.exists():
                raise SoftVQError(f"cannot resume: {path} not found (the run stopped before its first checkpoint, "
                                  f"or {out} is not a run directory); start it again with "
                                  f"softvq train --config {out / rundir.CONFIG} --out {out} --overwrite")
            _remove_stale_temporaries(out)
            return rundir.safe_torch_load(path)
        if out.exists() and not out.is_dir():
            raise SoftVQError(f"cannot write the run to {out}: it exists and is not a directory")
        holds_weights = any((out / name).exists() for name in (rundir.CHECKPOINT, rundir.MODEL))
        if (out / rundir.CONFIG).exists() and holds_weights and not overwrite:
            same = rundir.holds_config(out, cfg, data_shape)
            what = "the same run" if same else "a different run"
            resume = "--resume to continue it, " if (out / rundir.CHECKPOINT).exists() else ""
            raise SoftVQError(f"{out} already holds {what}; pass {resume}--overwrite to replace it, "
                              "or choose another --out")
        # a run that stopped (or diverged) before its first checkpoint left no weights: nothing to lose, start over
        out.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out)
        for name in (rundir.CHECKPOINT, rundir.METRICS):
            (out / name).unlink(missing_ok=True)
        cfg.save(out / rundir.CONFIG)
        return None
    except OSError as exc:
        raise SoftVQError(f"cannot write the run directory {out}: {exc.strerror or exc}"
                          + (f" ({exc.filename})" if exc.filename else "")) from None


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _new_loop_state(num_codes: int) -> dict[str, Any]:
    """What the loop carries between steps besides weights: the logging window and code usage."""
    return {"sums": {}, "count": 0, "usage": torch.zeros(num_codes, dtype=torch.long)}


def _restore(state: dict[str, Any], model: Autoencoder, opt: torch.optim.Optimizer, loop: dict[str, Any],
             ctx: distributed.Context, device: torch.device, path: Path) -> tuple[int, list[dict[str, float]]]:
    """Load a checkpoint into model, optimizer, loop state and this rank's RNG."""
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), list(state["history"])
        if "loop" in state:
            loop.update(sums=dict(state["loop"]["sums"]), count=int(state["loop"]["count"]))
            loop["usage"].copy_(state["loop"]["usage"])
        rngs = state.get("rank_rng") or [{"cpu": state["torch_rng"]}]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise SoftVQError(f"{path} does not fit this run ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                          "was it written by another version or for another config?") from None
    if len(rngs) == ctx.world_size:
        _set_rng_state(rngs[ctx.rank], device)
    elif ctx.is_main:  # a different number of processes: rank 0 continues rank 0's stream
        _set_rng_state(rngs[0], device)
    return step, history


def _save_checkpoint(out: Path, model: Autoencoder, opt: torch.optim.Optimizer, step: int,
                     history: list[dict[str, float]], loop: dict[str, Any], rngs: list[dict[str, torch.Tensor]]) -> None:
    """Rank 0: checkpoint.pt, then model.pt and history.csv, each atomically."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "torch_rng": rngs[0]["cpu"],
        "rank_rng": rngs,
        "history": history,
        "loop": {"sums": dict(loop["sums"]), "count": loop["count"], "usage": loop["usage"].clone()},
    }
    try:
        _io.write_with(out / rundir.CHECKPOINT, lambda p: torch.save(state, p))
        _io.write_with(out / rundir.MODEL, lambda p: torch.save(model.state_dict(), p))
        rundir.save_history(out / rundir.HISTORY, history)
    except OSError as exc:
        raise SoftVQError(f"could not write the checkpoint for step {step} to {out}: {exc.strerror or exc}; "
                          "files already there are unchanged (writes are atomic)") from None


def _all_finite(model: Autoencoder) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _diverged(what: str, step: int, last_checkpoint: int | None, out: Path, first_due: int, lr: float) -> TrainingDiverged:
    if last_checkpoint is None:
        kept = (f"No checkpoint had been written yet (the first was due at step {first_due}), "
                "so there is nothing to resume")
    else:
        kept = f"The last good checkpoint (step {last_checkpoint}) is kept in {out / rundir.CHECKPOINT}"
    return TrainingDiverged(f"training diverged: {what} at step {step}; stopped. {kept}. Try a lower --lr (was {lr:g}).")


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

    Under ``torchrun`` every process calls this; only rank 0 touches ``out_dir``.

    Returns:
        The run directory.
    """
    out = Path(out_dir)
    if not checkpoint_every >= 1:
        raise ConfigError(f"checkpoint_every must be at least 1, got {checkpoint_every!r}")
    ctx = distributed.setup()
    if resume:
        config = ctx.on_main(lambda: rundir.load_config(out))
    data = dataset if dataset is not None else load_dataset(config.dataset, config.data_dir, validation=config.validation)
    cfg = config.resolved(data.sample_shape)
    assert cfg.steps is not None
    _check_config(cfg, len(data.x_train), ctx)

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = distributed.device_for(ctx, cfg.device)
    model = rundir.build_model(cfg, data.sample_shape, data.output).to(device)
    if ctx.rank > 0:  # every rank starts from rank 0's weights, but draws its own noise
        torch.manual_seed(distributed.rank_seed(cfg.seed, ctx.rank))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    checkpoint = ctx.on_main(lambda: _prepare_out_dir(out, cfg, data.sample_shape, resume, overwrite))  # all checks passed: now write
    qb = model.bottleneck if isinstance(model.bottleneck, Quantized) else None
    loop = _new_loop_state(qb.num_codes if qb is not None else 1)
    history: list[dict[str, float]] = []
    start, last_checkpoint = 0, None
    if checkpoint is not None:
        start, history = _restore(checkpoint, model, opt, loop, ctx, device, out / rundir.CHECKPOINT)
        last_checkpoint = start
        del checkpoint
    net = model
    if ctx.active:  # gradients averaged over ranks (DDP needs telling when the bypass leaves parameters unused)
        bypassed = [] if qb is None or start >= cfg.warmup_steps else [
            p for m in (qb.quantizer, qb.sigma_head) if m is not None for p in m.parameters() if p.requires_grad]
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=bool(bypassed))
    x_train = data.x_train.to(device)
    pixel_var = float(x_train.var().clamp_min(1e-8))
    meta = {
        "softvq_version": __version__,
        "dataset": data.name,
        "sample_shape": list(data.sample_shape),
        "output": data.output,
        "pixel_var": pixel_var,
        "num_train": len(x_train),
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "world_size": ctx.world_size,
        "working_dir": os.getcwd(),  # where relative --dataset/--data-dir paths were given
    }
    quantizer = getattr(model.bottleneck, "quantizer", None)
    anneal = isinstance(quantizer, SoftVQ) and cfg.sigma == "fixed" and cfg.sigma_final is not None
    if qb is not None:
        qb.bypass = start < cfg.warmup_steps

    first_due = min(checkpoint_every, cfg.steps)

    def checkpoint_now(done: int) -> None:
        """Write a checkpoint (rank 0), never one with NaN/inf weights."""
        if not _all_finite(model):  # a finite loss can still have had a NaN gradient
            raise _diverged("a weight became NaN or infinite", done, last_checkpoint, out, first_due, cfg.lr)
        rngs = ctx.gather_objects(_rng_state(device))
        ctx.on_main(lambda: _save_checkpoint(out, model, opt, done, history, loop, rngs))
    model.train()
    t0 = time.perf_counter()
    with _stop_on_signals() as signals:
        ctx.on_main(lambda: _io.write_json(out / rundir.META, meta))
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not (progress and ctx.is_main),
                   desc=f"{cfg.bottleneck} seed {cfg.seed}", dynamic_ncols=True, leave=False)
        for step in bar:
            done = step + 1
            if anneal:
                quantizer.set_sigma(_sigma_at(cfg, step))  # type: ignore[union-attr]
            if qb is not None and step == cfg.warmup_steps:
                qb.bypass = False
                if cfg.codebook_init == "kmeans":
                    if ctx.is_main:
                        _init_codebook(qb, model, x_train, cfg.seed)
                    ctx.broadcast_module_(qb.quantizer)
            batch = batch_indices(step, len(x_train), cfg.batch_size, cfg.seed)
            x = x_train[batch.tensor_split(ctx.world_size)[ctx.rank].to(device)]
            out_ = net(x)
            recon = recon_loss(out_.x_hat, x, pixel_var)
            loss = recon + out_.bottleneck.loss
            stop, bad_loss = ctx.any(bool(signals), not bool(torch.isfinite(loss)))
            if bad_loss:
                raise _diverged(f"the loss became {loss.item()} (reconstruction {recon.item():.4g})",
                                done, last_checkpoint, out, first_due, cfg.lr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if qb is not None and not qb.bypass and cfg.dead_code_restart:
                usage = loop["usage"]
                usage += ctx.sum_(torch.bincount(out_.bottleneck.indices.flatten().cpu(), minlength=len(usage)))
                if done % cfg.dead_code_restart == 0:
                    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
                    with torch.no_grad():
                        z = ctx.gather_rows(qb.code_vectors(model.encoder(x)))
                    n = restart_dead_codes(qb.quantizer, z, usage, gen)
                    ctx.broadcast_module_(qb.quantizer)
                    loop["sums"]["restarted"] = loop["sums"].get("restarted", 0.0) + n
                    usage.zero_()

            sums = loop["sums"]
            for k, v in {"loss": loss, "recon": recon, "reg": out_.bottleneck.loss, **out_.bottleneck.logs}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
            loop["count"] += 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                mean = ctx.mean_of({k: v / loop["count"] for k, v in sums.items()})
                row = {"step": done, **{k: mean[k] for k in sums}}
                history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", recon=f"{row['recon']:.4f}")
                loop.update(sums={}, count=0)
                if ctx.active and qb is not None:
                    ctx.check_same([*qb.quantizer.parameters(), *qb.quantizer.buffers()], f"quantizer after step {done}")
            if stop:
                checkpoint_now(done)
                names = "/".join(sorted({signal.Signals(s).name for s in signals})) or "another rank's signal"
                raise TrainingInterrupted(f"interrupted by {names} at step {done}; checkpoint saved. "
                                          f"Continue with: softvq train --resume {out}",
                                          signals[0] if signals else signal.SIGINT)
            if done % checkpoint_every == 0 and done < cfg.steps:
                checkpoint_now(done)
                last_checkpoint = done
        bar.close()
        checkpoint_now(cfg.steps)
    meta["weights_sha256"] = ctx.check_same(model.state_dict().values(), "final weights")
    meta["train_seconds_last_session"] = round(time.perf_counter() - t0, 2)
    ctx.on_main(lambda: _io.write_json(out / rundir.META, meta))
    if cfg.plots and ctx.is_main:
        from .evaluation.artifacts import write_plots

        write_plots(out, model.eval(), data, cfg, history)
    return out
