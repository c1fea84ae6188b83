"""Training throughput of the METHOD section 5 MLP with each bottleneck, and evaluation speed.

Models: ``softvq.run.build_model(cfg.resolved((1, 28, 28)), (1, 28, 28))`` with
``softvq.TrainConfig(bottleneck=name, dataset="fashion-mnist")`` (the 784-500-500-2000-64
MLP; vq and soft VQ with the defaults: 16 groups of 4 dimensions sharing K = 64 codewords,
for soft VQ a sigma predicted by an encoder head (16 x 64 outputs) and the straight-through
gradient, unless a variant says otherwise; the "1 group, K=128" variant is the reference
code's shape). The quantizers are timed
switched on, as after the AE warm-up: the warm-up steps themselves cost what an ``ae``
step costs. Data: 60,000 random images ``(60000, 1, 28, 28)`` in memory (Fashion-MNIST's
training-set size). A step is what :func:`softvq.training.train` does each step: indices
from :func:`softvq.training.batch_indices`, one gather ``x_train[idx]``, forward,
:func:`softvq.training.recon_loss` plus the bottleneck's loss, the finiteness check,
``zero_grad(set_to_none=True)``, backward, ``Adam.step()`` and the per-step conversion of
the logged scalars to floats. There is no per-sample Python work anywhere.

Timing: all models run round-robin, ``--steps`` steps each per round (the order shuffled
every round), so every round sees the same machine load; samples/s and the ratio of each
model's step time to the plain ``ae`` step are medians over rounds. The data path alone
(``batch_indices`` + gather) is timed in the same rounds.

Evaluation: :func:`softvq.evaluation.metrics.kmeans_metrics` (n_init=10, as the harness
uses) on 10,000 random 64-d latents with 10 labels (Gaussian clusters around random
centres, so k-means has structure to find), and
:func:`softvq.evaluation.metrics.linear_probe` trained on those 10,000 latents and tested
on 10,000 more.

    python benchmarks/train_throughput.py            # batch 64 and 256, 2 threads
    python benchmarks/train_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Callable

import numpy as np
import torch

import softvq
from softvq.run import build_model
from softvq.training import batch_indices, recon_loss

SAMPLE_SHAPE = (1, 28, 28)
N_TRAIN = 60_000
#: (label, TrainConfig overrides)
MODELS: tuple[tuple[str, dict], ...] = (
    ("ae", {"bottleneck": "ae"}),
    ("dae", {"bottleneck": "dae"}),
    ("vae", {"bottleneck": "vae"}),
    ("infodrop", {"bottleneck": "infodrop"}),
    ("vq", {"bottleneck": "vq"}),
    ("softvq", {"bottleneck": "softvq"}),
    ("softvq 1 group, K=128", {"bottleneck": "softvq", "groups": 1, "num_codes": 128}),
    ("softvq sigma head rank 64", {"bottleneck": "softvq", "sigma_head_rank": 64}),
    ("softvq learned-sigma", {"bottleneck": "softvq", "sigma": "learned"}),
    ("softvq exact", {"bottleneck": "softvq", "gradient": "exact"}),
)


def make_trainer(overrides: dict, x_train: torch.Tensor, batch_size: int, seed: int = 0) -> Callable[[int], None]:
    """A closure running ``n`` training steps exactly as ``softvq.training.train`` does."""
    cfg = softvq.TrainConfig(dataset="fashion-mnist", batch_size=batch_size, seed=seed, **overrides).resolved(SAMPLE_SHAPE)
    torch.manual_seed(seed)
    model = build_model(cfg, SAMPLE_SHAPE).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    pixel_var = float(x_train.var().clamp_min(1e-8))
    state = {"step": 0, "sums": {}}

    def run(n: int) -> None:
        sums = state["sums"]
        for _ in range(n):
            step = state["step"]
            x = x_train[batch_indices(step, len(x_train), batch_size, seed)]
            out = model(x)
            recon = recon_loss(out.x_hat, x, pixel_var)
            loss = recon + out.bottleneck.loss
            if not bool(torch.isfinite(loss)):
                raise RuntimeError(f"loss became {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in {"loss": loss, "recon": recon, "reg": out.bottleneck.loss, **out.bottleneck.logs}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
            state["step"] = step + 1

    return run


def make_data_path(x_train: torch.Tensor, batch_size: int, seed: int = 0) -> Callable[[int], None]:
    """Only the data path: ``batch_indices`` + gather."""
    state = {"step": 0}

    def run(n: int) -> None:
        for _ in range(n):
            idx = batch_indices(state["step"], len(x_train), batch_size, seed)
            x_train[idx].sum()  # touch the gathered batch
            state["step"] += 1

    return run


def bench_training(batch_size: int, steps: int, rounds: int, models: list[tuple[str, dict]]) -> dict:
    g = torch.Generator().manual_seed(0)
    x_train = torch.rand((N_TRAIN, *SAMPLE_SHAPE), generator=g)
    runners = {label: make_trainer(over, x_train, batch_size) for label, over in models}
    runners["data path (batch_indices)"] = make_data_path(x_train, batch_size)
    for f in runners.values():  # warm-up: allocator, Adam state, thread pool
        f(3)
    times: dict[str, list[float]] = {name: [] for name in runners}
    rng = random.Random(0)
    names = list(runners)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            runners[name](steps)
            times[name].append((time.perf_counter() - t0) / steps)
    rows = []
    for name, ts in times.items():
        rows.append({
            "model": name,
            "ms_per_step": 1e3 * statistics.median(ts),
            "samples_per_s": batch_size / statistics.median(ts),
            "x_ae": statistics.median(a / b for a, b in zip(ts, times["ae"])) if "ae" in times else None,
        })
    return {"batch_size": batch_size, "steps_per_round": steps, "rounds": rounds, "rows": rows}


def bench_evaluation(n: int = 10_000, dim: int = 64, classes: int = 10, seed: int = 0) -> dict:
    from softvq.evaluation.metrics import kmeans_metrics, linear_probe

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32) * 2.0
    y_train, y_test = rng.integers(0, classes, n), rng.integers(0, classes, n)
    z_train = (centres[y_train] + rng.normal(size=(n, dim))).astype(np.float32)
    z_test = (centres[y_test] + rng.normal(size=(n, dim))).astype(np.float32)
    t0 = time.perf_counter()
    km = kmeans_metrics(z_train, y_train)
    t1 = time.perf_counter()
    acc = linear_probe(z_train, y_train, z_test, y_test)
    t2 = time.perf_counter()
    return {"n": n, "dim": dim, "kmeans_s": t1 - t0, "kmeans": km, "linear_probe_s": t2 - t1, "linear_probe_acc": acc}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="64,256", help="comma-separated (default 64,256)")
    parser.add_argument("--steps", type=int, default=None, help="steps per model per round (default 10; --quick 5)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7; --quick 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--only", default=None, help="comma-separated model labels (ae is always included)")
    parser.add_argument("--no-eval", action="store_true", help="skip the k-means / linear-probe timing")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps or (5 if args.quick else 10)
    rounds = args.rounds or (3 if args.quick else 7)
    models = [m for m in MODELS if not args.only or m[0] == "ae" or m[0] in args.only.split(",")]
    print(f"# training throughput: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    t_start = time.perf_counter()
    results: dict = {"threads": torch.get_num_threads(), "loadavg_start": os.getloadavg(), "training": []}
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        res = bench_training(bs, steps, rounds, models)
        results["training"].append(res)
        print(f"\n### batch {bs}: {rounds} rounds of {steps} steps per model\n")
        print("| model | ms / step | samples / s | step time / ae step |")
        print("|---|---:|---:|---:|")
        for r in res["rows"]:
            ratio = "" if r["x_ae"] is None else f"{r['x_ae']:.2f}"
            print(f"| {r['model']} | {r['ms_per_step']:.2f} | {r['samples_per_s']:.0f} | {ratio} |")
        sys.stdout.flush()
    if not args.no_eval:
        ev = bench_evaluation()
        results["evaluation"] = ev
        print(f"\n### evaluation on {ev['n']} latents of dimension {ev['dim']}\n")
        print(f"- kmeans_metrics (n_init=10): {ev['kmeans_s']:.2f} s (acc {ev['kmeans']['acc']:.3f})")
        print(f"- linear_probe ({ev['n']} train + {ev['n']} test): {ev['linear_probe_s']:.2f} s (acc {ev['linear_probe_acc']:.3f})")
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    print(f"\nload average at end {results['loadavg_end'][0]:.2f}; total {results['seconds']} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
