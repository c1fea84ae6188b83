"""Helpers shared by the reliability tests (imported as a plain module)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from softvq import TrainConfig
from softvq.run import safe_torch_load

#: environment for subprocesses: one thread, unbuffered output
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def small_cfg(**kw) -> TrainConfig:
    """A few-second digits config (small-mlp, K=32)."""
    kw.setdefault("steps", 30)
    kw.setdefault("log_every", 10)
    return TrainConfig(plots=False, threads=1, **kw)


def softvq_cli(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "softvq.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"softvq {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model.pt", weights_only=True)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"tensors differ: {differing}"


def assert_run_files_load(run: Path) -> dict:
    """Every run file present parses completely; returns the checkpoint (or {})."""
    for name in ("config.json", "meta.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    if (run / "history.csv").exists():
        with open(run / "history.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert all(float(r["step"]) > 0 for r in rows)
    if (run / "model.pt").exists():
        safe_torch_load(run / "model.pt")
    return safe_torch_load(run / "checkpoint.pt") if (run / "checkpoint.pt").exists() else {}
