"""Atomic writes: kill -9 during a checkpoint write never leaves a torn file."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import stat
import time

import pytest
import torch

import softvq
from softvq import _io
from softvq.errors import SoftVQError
from softvq.run import safe_torch_load

from reliability_helpers import assert_run_files_load, assert_same_weights, small_cfg, weights

FORK = mp.get_context("fork")  # the child inherits torch and the data: no start-up cost


def _stale(run) -> list[str]:
    return sorted(p for p in os.listdir(run) if p.endswith(".tmp"))


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.json"
    _io.write_json(target, {"v": 1})

    def boom(path):
        path.write_text('{"v": 2, "trunc')
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        _io.write_with(target, boom)
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert _stale(tmp_path) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_io._UMASK  # not mkstemp's 0600


def _killed_mid_checkpoint(cfg, run, digits):
    """Child: the 2nd checkpoint write stops half-way through torch.save with SIGKILL."""
    real_save = torch.save
    calls = []

    def dying_save(obj, path, *a, **kw):
        if isinstance(obj, dict) and "optimizer" in obj:
            calls.append(path)
            if len(calls) == 2:
                real_save(obj, path, *a, **kw)
                with open(path, "r+b") as fh:
                    fh.truncate(os.path.getsize(path) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, path, *a, **kw)

    torch.save = dying_save
    softvq.train(cfg, run, dataset=digits, progress=False, checkpoint_every=5)


def test_kill_9_in_the_middle_of_torch_save(tmp_path, digits):
    cfg = small_cfg(steps=20, log_every=5)
    run = tmp_path / "run"
    child = FORK.Process(target=_killed_mid_checkpoint, args=(cfg, run, digits))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL

    torn = _stale(run)
    assert len(torn) == 1 and torn[0].startswith(".checkpoint.pt.")  # the kill did land mid-write
    with pytest.raises(SoftVQError, match="truncated or corrupt"):
        safe_torch_load(run / torn[0])
    assert assert_run_files_load(run)["step"] == 5  # the previous checkpoint is whole

    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False)
    assert _stale(run) == []  # resume removes what the killed writer left
    ref = softvq.train(cfg, tmp_path / "ref", dataset=digits, progress=False)
    assert_same_weights(weights(ref), weights(run))


def _train_forever(cfg, run, digits, resume):
    softvq.train(cfg, run, dataset=digits, progress=False, resume=resume, checkpoint_every=1)


def test_kill_9_at_random_moments(tmp_path, digits):
    """Checkpoint every step, SIGKILL at random times, resume each time: files always load."""
    cfg = small_cfg(steps=40, log_every=5)
    run = tmp_path / "run"
    rng = random.Random(0)
    kills, mid_write = 0, 0
    while True:
        resume = (run / "checkpoint.pt").exists()
        child = FORK.Process(target=_train_forever, args=(cfg, run, digits, resume))
        child.start()
        time.sleep(rng.uniform(0.05, 0.6))
        if child.exitcode is None:
            os.kill(child.pid, signal.SIGKILL)
        child.join(120)
        if child.exitcode == 0:
            break
        assert child.exitcode == -signal.SIGKILL
        kills += 1
        mid_write += bool(_stale(run))
        assert_run_files_load(run)
        assert kills < 40, "the run never finished"
    state = assert_run_files_load(run)
    assert state["step"] == cfg.steps and kills >= 1
    ref = softvq.train(cfg, tmp_path / "ref", dataset=digits, progress=False)
    assert_same_weights(weights(ref), weights(run))
    print(f"{kills} kills, {mid_write} left a temporary file behind")


def test_unwritable_checkpoint_keeps_the_previous_one(tmp_path, digits, monkeypatch):
    """Disk full while writing a checkpoint: a clear error, the last checkpoint intact."""
    cfg = small_cfg(steps=20, log_every=5)
    run = tmp_path / "run"
    real_save = torch.save
    count = []

    def full_disk(obj, path, *a, **kw):
        if isinstance(obj, dict) and "optimizer" in obj:
            count.append(1)
            if len(count) == 2:
                raise OSError(28, "No space left on device")
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SoftVQError, match="could not write the checkpoint for step 10 .*No space left on device"):
        softvq.train(cfg, run, dataset=digits, progress=False, checkpoint_every=5)
    assert assert_run_files_load(run)["step"] == 5 and _stale(run) == []


def test_errors_name_the_target_not_the_temporary(tmp_path):
    import errno

    from softvq import _io

    target = tmp_path / "z.npz"
    with pytest.raises(OSError) as err:
        with _io.atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert err.value.filename == str(target) and err.value.strerror == "No space left on device"
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary is left
