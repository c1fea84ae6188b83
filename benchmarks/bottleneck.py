"""Bottleneck benchmark: forward + backward of SoftVQ, VQ and vector-quantize-pytorch.

For each shape ``(batch N, num_codes K, code_dim d)`` it times one training-style step
(forward, ``(z_q.sum() + loss).backward()``) of

- ``SoftVQ`` in every sigma mode (fixed, learned, learned_per_code, predicted) and both
  gradient modes (straight_through, exact), uniform prior;
- ``VQ`` (hard nearest codeword, codebook learned by gradient);
- vector-quantize-pytorch's ``VectorQuantize(dim=d, codebook_size=K, decay=0.99,
  commitment_weight=0.25)`` in training mode (EMA codebook), step
  ``(quantized.sum() + loss).backward()`` on input ``(1, N, d)`` (optional: install it
  with ``pip install vector-quantize-pytorch``);
- the GEMM floor: the matrix products the math needs, timed alone with ``torch.mm``
  (operands preallocated, each product allocating its output as a plain call does):
  forward ``z E^T`` and ``P E``; backward ``gZ E^T``, ``P^T gZ`` and ``gL^T z``
  (codebook), plus ``gL E`` (encoder) in exact mode. Five products for straight-through,
  six for exact; one (``z E^T``) for VQ.

Timing: all cases of a shape run round-robin (the order shuffled every round), so each
round sees the same machine load; the reported ratios are medians over rounds of the
per-round ratios. Peak memory: one extra step of each case (the warm-up step at the
large shapes) runs under ``torch.profiler.profile(profile_memory=True)``; replaying its allocation and free events
in time order gives the peak of live bytes allocated during the step (inputs and
parameters exist beforehand and are not counted; gradients are reset to None before each
step, so they are). It is reported in MiB and in units of ``N * K * 4`` bytes (one float32
``(N, K)`` tensor).

    python benchmarks/bottleneck.py               # the three issue shapes, 2 threads
    python benchmarks/bottleneck.py --quick       # fewer rounds
    python benchmarks/bottleneck.py --shapes 4096x512x64 --repeats 30 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import time
from typing import Callable, Iterator

import torch

from softvq import VQ, SoftVQ

SHAPES = ((4096, 512, 64), (16384, 4096, 64), (1024, 65536, 32))
SIGMAS = ("fixed", "learned", "learned_per_code", "predicted")
GRADIENTS = ("straight_through", "exact")


def _reset_grads(tensors: list[torch.Tensor]) -> None:
    for t in tensors:
        t.grad = None


def softvq_case(n: int, k: int, d: int, sigma: str, gradient: str, chunk_size: int | None) -> Callable[[], None]:
    torch.manual_seed(0)
    q = SoftVQ(k, d, sigma=sigma, gradient=gradient, chunk_size=chunk_size).train()  # type: ignore[arg-type]
    z = torch.randn(n, d, requires_grad=True)
    ls = (0.1 * torch.randn(n, k)).requires_grad_() if sigma == "predicted" else None
    leaves = [z, *q.parameters()] + ([ls] if ls is not None else [])

    def step() -> None:
        _reset_grads(leaves)
        out = q(z, ls)
        (out.z_q.sum() + out.loss).backward()

    return step


def vq_case(n: int, k: int, d: int, chunk_size: int | None) -> Callable[[], None]:
    torch.manual_seed(0)
    q = VQ(k, d, chunk_size=chunk_size).train()
    z = torch.randn(n, d, requires_grad=True)
    leaves = [z, *q.parameters()]

    def step() -> None:
        _reset_grads(leaves)
        out = q(z)
        (out.z_q.sum() + out.loss).backward()

    return step


def vqpt_case(n: int, k: int, d: int) -> Callable[[], None] | None:
    try:
        from vector_quantize_pytorch import VectorQuantize
    except ImportError:
        return None
    torch.manual_seed(0)
    q = VectorQuantize(dim=d, codebook_size=k, decay=0.99, commitment_weight=0.25).train()
    z = torch.randn(1, n, d, requires_grad=True)
    leaves = [z, *q.parameters()]

    def step() -> None:
        _reset_grads(leaves)
        quantized, _, loss = q(z)
        (quantized.sum() + loss.sum()).backward()

    return step


def floor_case(n: int, k: int, d: int, products: str) -> Callable[[], None]:
    """The GEMMs of one step, alone: "vq" (1), "st" (5) or "exact" (6)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, d, generator=g)
    e = torch.randn(k, d, generator=g)
    p = torch.rand(n, k, generator=g)

    def step() -> None:
        torch.mm(z, e.t())  # logits
        if products == "vq":
            return
        torch.mm(p, e)  # posterior mean
        torch.mm(z, e.t())  # gZ E^T
        torch.mm(p.t(), z)  # P^T gZ (codebook, from z_hat)
        torch.mm(p.t(), z)  # gL^T z (codebook, sigma and prior, through the logits)
        if products == "exact":
            torch.mm(p, e)  # gL E (encoder)

    return step


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: the profiler's C++ side logs every start and stop there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_bytes(step: Callable[[], None]) -> int:
    """Peak of live bytes allocated during ``step`` (allocation events replayed in order)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def run_shape(n: int, k: int, d: int, repeats: int, chunk_size: int | None, memory: bool, only: list[str] | None,
              warm_by_memory_pass: bool = False) -> dict:
    """Time every case round-robin; ``warm_by_memory_pass``: the profiled step is the warm-up."""
    cases: dict[str, Callable[[], None]] = {}
    floors = {"floor-st": floor_case(n, k, d, "st"), "floor-exact": floor_case(n, k, d, "exact"), "floor-vq": floor_case(n, k, d, "vq")}
    for sigma in SIGMAS:
        for gradient in GRADIENTS:
            cases[f"softvq {sigma} {gradient}"] = softvq_case(n, k, d, sigma, gradient, chunk_size)
    cases["vq"] = vq_case(n, k, d, chunk_size)
    vqpt = vqpt_case(n, k, d)
    if vqpt is not None:
        cases["vector-quantize-pytorch"] = vqpt
    if only:
        cases = {name: f for name, f in cases.items() if any(o in name for o in only) or name == "vector-quantize-pytorch"}
    allcases = {**floors, **cases}
    peaks: dict[str, int] = {}
    for name, f in allcases.items():  # warm-up (allocator, thread pool, first-call paths) ...
        if not warm_by_memory_pass:
            f()
        if memory and not name.startswith("floor"):  # ... and the peak-memory step
            peaks[name] = peak_bytes(f)
        elif warm_by_memory_pass:
            f()
    times: dict[str, list[float]] = {name: [] for name in allcases}
    rng = random.Random(0)
    names = list(allcases)
    for _ in range(repeats):
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            allcases[name]()
            times[name].append(time.perf_counter() - t0)
    rows = []
    ref = times.get("vector-quantize-pytorch")
    for name, ts in times.items():
        floor = "floor-vq" if name in ("vq", "vector-quantize-pytorch") else "floor-exact" if name.endswith("exact") else "floor-st"
        row = {
            "case": name,
            "ms": 1e3 * statistics.median(ts),
            "floor": None if name.startswith("floor") else floor,
            "x_floor": None if name.startswith("floor") else statistics.median(a / b for a, b in zip(ts, times[floor])),
            "x_vqpt": None if ref is None or name.startswith("floor") else statistics.median(a / b for a, b in zip(ts, ref)),
        }
        if name in peaks:
            row["peak_bytes"] = peaks[name]
            row["peak_x_nk4"] = peaks[name] / (n * k * 4)
        rows.append(row)
    return {"shape": [n, k, d], "repeats": repeats, "rows": rows}


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)


def print_table(result: dict) -> None:
    n, k, d = result["shape"]
    print(f"\n### (batch, num_codes, code_dim) = ({n}, {k}, {d}), {result['repeats']} rounds\n")
    print("| case | median ms | x GEMM floor | x vector-quantize-pytorch | peak MiB | peak / (N*K*4 B) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in result["rows"]:
        floor = f" ({r['floor']})" if r["floor"] else ""
        mib = r["peak_bytes"] / 2**20 if "peak_bytes" in r else None
        print(f"| {r['case']} | {r['ms']:.1f} | {_fmt(r['x_floor'], '.2f')}{floor if r['x_floor'] else ''} | "
              f"{_fmt(r['x_vqpt'], '.2f')} | {_fmt(mib, '.1f')} | {_fmt(r.get('peak_x_nk4'), '.2f')} |")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join("x".join(map(str, s)) for s in SHAPES),
                        help="comma-separated NxKxd shapes (default: the three issue shapes)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds per shape (default: 15 for N*K <= 2^22, else 2; --quick: 5 and 1)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--chunk-size", type=int, default=None, help="rows per chunk for SoftVQ/VQ (default: automatic)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--only", default=None, help="comma-separated substrings: run only matching cases (+ the references)")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s]
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    print(f"# bottleneck benchmark: torch {info['torch']}, {info['threads']} threads, "
          f"{info['cpus']} CPUs, load average at start {info['loadavg_start'][0]:.2f}")
    t_start = time.perf_counter()
    results = []
    for n, k, d in shapes:
        big = n * k > 2**22
        repeats = args.repeats or ((1 if big else 5) if args.quick else (2 if big else 15))
        only = args.only.split(",") if args.only else None
        result = run_shape(n, k, d, repeats, args.chunk_size, not args.no_memory, only, warm_by_memory_pass=big)
        results.append(result)
        print_table(result)
    info["loadavg_end"] = os.getloadavg()
    info["seconds"] = round(time.perf_counter() - t_start, 1)
    print(f"\nload average at end {info['loadavg_end'][0]:.2f}; total {info['seconds']} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"info": info, "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
