"""Real SIGTERM/SIGINT to a running ``softvq train``: exit 128 + signal (143, 130), a checkpoint, exact resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import softvq
from softvq.run import safe_torch_load

from reliability_helpers import ENV, assert_same_weights, small_cfg, weights

STEPS = 300
ARGS = ["--dataset", "digits", "--bottleneck", "softvq", "--steps", str(STEPS), "--log-every", "50",
        "--plots", "false", "--threads", "1", "-q"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "softvq.cli", "train", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 120) -> tuple[int, str]:
    """Send ``sig`` as soon as ``ready()`` holds (the loop is running); return (rc, stderr)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"exited early ({proc.returncode}): {proc.stderr.read()}"
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


def test_sigterm_then_sigint_then_resume_equals_uninterrupted(tmp_path, digits):
    run = tmp_path / "run"
    meta = run / "meta.json"  # written right before the first step, after the handlers are installed

    rc, err = _signal_when(_start(*ARGS, "--out", str(run)), meta.exists, signal.SIGTERM)
    assert rc == 143, err  # 128 + SIGTERM, as a shell reports it
    assert "interrupted by SIGTERM at step" in err and "--resume" in err and "Traceback" not in err
    first = safe_torch_load(run / "checkpoint.pt")["step"]
    assert 1 <= first < STEPS

    seen = _mtime(meta)
    rc, err = _signal_when(_start("--resume", str(run), "-q"), lambda: _mtime(meta) != seen, signal.SIGINT)
    assert rc == 130, err
    assert "interrupted by SIGINT at step" in err and "Traceback" not in err
    second = safe_torch_load(run / "checkpoint.pt")["step"]
    assert first <= second < STEPS

    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False)  # (in-process: saves a start-up)
    state = safe_torch_load(run / "checkpoint.pt")
    assert state["step"] == STEPS and [r["step"] for r in state["history"]] == [50.0 * i for i in range(1, 7)]
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]

    # two real signals and two resumes later, the weights are those of a run that never stopped
    ref = softvq.train(small_cfg(steps=STEPS, log_every=50), tmp_path / "ref", dataset=digits, progress=False)
    assert_same_weights(weights(ref), weights(run))
