"""Data-parallel training over several processes (``torchrun``), kept out of the loop.

``softvq train`` runs as one process, or as ``N`` under ``torchrun``: when the launcher's
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) are present, :func:`setup` joins the process group (gloo for CPU
tensors, NCCL for CUDA tensors when CUDA is available). A process group the caller
initialized already is used as it is.

The contract the training loop relies on:

* every rank draws the same global batch (the stateless ``batch_indices``) and takes
  its contiguous slice of ``batch_size / world_size`` rows, so one optimizer step sees
  the same data as a single-process step with the same ``batch_size``;
* gradients are averaged by DistributedDataParallel; hard VQ's EMA statistics are
  all-reduced inside :class:`~softvq.VQ`; codebook surgery (k-means init, dead-code
  restarts) is computed from identical (gathered) data and then broadcast from rank 0,
  so the codebook is bit-identical on every rank after every step;
* decisions that end the run (a signal, a non-finite loss) are agreed by all ranks
  at the same step; only rank 0 reads and writes the run directory, and errors it
  raises there are re-raised on every rank.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import os
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .errors import SoftVQError

T = TypeVar("T")

#: environment variables torchrun (and other launchers) set for every worker
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """This process's place in the job; ``world_size == 1`` and no group: a plain run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: True when a process group is active (also for a 1-process torchrun job)
    active: bool = False
    #: device for the small control tensors (CPU under gloo, CUDA under NCCL alone)
    comm_device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives (no-ops without a process group) -----------------------------------
    def any(self, *flags: bool) -> list[bool]:
        """Per flag: True when it is True on any rank (one all-reduce for all flags)."""
        if not self.active:
            return [bool(f) for f in flags]
        t = torch.tensor([float(bool(f)) for f in flags], device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks, in place."""
        if self.active:
            moved = t.to(self.comm_device)
            dist.all_reduce(moved)
            t.copy_(moved)
        return t

    def mean_of(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over ranks (every rank must hold the same keys)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return {k: v / self.world_size for k, v in zip(keys, t.tolist())}

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate equally shaped tensors of all ranks along dim 0, in rank order."""
        if not self.active:
            return t
        moved = t.detach().contiguous().to(self.comm_device)
        parts = [torch.empty_like(moved) for _ in range(self.world_size)]
        dist.all_gather(parts, moved)
        return torch.cat(parts).to(t.device)

    def broadcast_module_(self, module: nn.Module) -> None:
        """Copy every parameter and buffer of ``module`` from rank 0 to all ranks."""
        if not self.active:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                moved = t.detach().to(self.comm_device)
                dist.broadcast(moved, src=0)
                t.copy_(moved)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; ranks of one job trust each other)."""
        if not self.active:
            return obj
        data = pickle.dumps(obj) if self.is_main else b""
        size = torch.tensor([len(data)], dtype=torch.long, device=self.comm_device)
        dist.broadcast(size, src=0)
        buf = torch.empty(int(size), dtype=torch.uint8, device=self.comm_device)
        if self.is_main:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buf, src=0)
        return obj if self.is_main else pickle.loads(buf.cpu().numpy().tobytes())

    def gather_objects(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and hand its result to every rank.

        An exception raised by ``fn`` is raised on every rank (the other ranks get a
        :class:`SoftVQError` with rank 0's message), so all processes stop together
        instead of waiting for each other.
        """
        if not self.active:
            return fn()
        result: tuple[bool, Any] = (True, None)
        error: BaseException | None = None
        if self.is_main:
            try:
                result = (True, fn())
            except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
                error = exc
                result = (False, exc if isinstance(exc, SoftVQError) else SoftVQError(f"rank 0: {exc}"))
        ok, value = self.broadcast_object(result)
        if error is not None:
            raise error
        if not ok:
            raise value
        return value

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def check_same(self, tensors: Iterable[torch.Tensor], what: str) -> list[str]:
        """Every rank's SHA-256 of ``tensors``, in rank order; raise when they differ."""
        digests = self.gather_objects(state_digest(tensors))
        if len(set(digests)) > 1:
            raise SoftVQError(f"ranks disagree on the {what}: SHA-256 per rank {digests}")
        return digests


def state_digest(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 over the raw bytes of ``tensors`` (order matters)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def launched() -> bool:
    """True when the environment says this process is one worker of a launched job."""
    return all(v in os.environ for v in LAUNCH_VARS)


def setup() -> Context:
    """Join (or reuse) the process group; a plain :class:`Context` when not launched.

    The group is joined once per process and left at exit, so several ``train`` calls
    in one worker share it.
    """
    if not dist.is_available():
        return Context()
    if not dist.is_initialized():
        if not launched():
            return Context()
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise SoftVQError(
                f"could not join the distributed job (RANK={os.environ.get('RANK')}, "
                f"WORLD_SIZE={os.environ.get('WORLD_SIZE')}, MASTER_ADDR={os.environ.get('MASTER_ADDR')}, "
                f"MASTER_PORT={os.environ.get('MASTER_PORT')}): {str(exc).splitlines()[0]}"
            ) from None
        atexit.register(_leave)
    backend = str(dist.get_backend())
    return Context(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
        active=True,
        comm_device="cpu" if "gloo" in backend else "cuda",
    )


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, checked to exist in this torch build (SoftVQError if not)."""
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, TypeError) as exc:  # e.g. "Torch not compiled with CUDA enabled"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise SoftVQError(f"device {str(device)!r} is not available here (torch {torch.__version__}): {reason}") from None
    return dev


def device_for(ctx: Context, device: str) -> torch.device:
    """The device this rank trains on: ``cuda`` means ``cuda:LOCAL_RANK`` in a job."""
    dev = check_device(device)
    if ctx.active and dev.type == "cuda" and dev.index is None:
        dev = check_device(torch.device("cuda", ctx.local_rank % max(torch.cuda.device_count(), 1)))
    return dev


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s global torch RNG (noise, sampling); rank 0 keeps ``seed``."""
    return seed if rank == 0 else seed * 1_000_003 + 7_919 * rank


def _leave() -> None:
    # Free what still references the group (a DistributedDataParallel wrapper lives in
    # reference cycles until the collector runs), and let every rank reach the barrier,
    # before the group is torn down. Otherwise the wrapper's gloo process group can be
    # destroyed during interpreter shutdown with its threads still joinable, which aborts
    # the process ("terminate called without an active exception", exit code -6; seen in
    # about 1 of 6 two-process runs, none in 32 with this order).
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
