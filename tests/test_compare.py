"""softvq.compare: parallel runs give the same results as serial ones."""

from __future__ import annotations

import pytest

from softvq import TrainConfig
from softvq.compare import compare
from softvq.data import load_dataset
from softvq.errors import SoftVQError

TIMINGS = {"wall_seconds", "kmeans_seconds", "probe_seconds"}


def _without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def test_jobs_give_the_serial_results(tmp_path):
    data = load_dataset("digits")
    cfg = TrainConfig(steps=30, log_every=10, plots=False)  # small-mlp: one thread either way
    kw = dict(n_init=2, anchors=False, dataset=data, progress=False, log=lambda s: None)
    serial = compare(cfg, ["ae", "softvq"], [0, 1], tmp_path / "serial", **kw)
    logged: list[str] = []
    parallel = compare(cfg, ["ae", "softvq"], [0, 1], tmp_path / "parallel", **{**kw, "jobs": 2, "log": logged.append})
    assert [(r["bottleneck"], r["seed"]) for r in parallel["runs"]] == [("ae", 0), ("ae", 1), ("softvq", 0), ("softvq", 1)]
    assert _without_timings(parallel["runs"]) == _without_timings(serial["runs"])
    assert len(logged) == 4 and all("kmeans_acc=" in line for line in logged)
    # a second call reuses every finished run, in order
    again = compare(cfg, ["ae", "softvq"], [0, 1], tmp_path / "parallel", **{**kw, "jobs": 2})
    assert again["runs"] == parallel["runs"]


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(SoftVQError, match="jobs must be >= 1, got 0"):
        compare(TrainConfig(steps=2), ["ae"], [0], tmp_path, jobs=0)
