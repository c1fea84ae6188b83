"""softvq.compare: parallel runs give the same results as serial ones."""

from __future__ import annotations

import json

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


def test_a_different_config_in_out_is_refused_and_kept(tmp_path):
    data = load_dataset("digits")
    kw = dict(n_init=2, anchors=False, dataset=data, progress=False, log=lambda s: None)
    first = compare(TrainConfig(steps=20, log_every=10, plots=False), ["ae"], [0], tmp_path, **kw)
    model = (tmp_path / "ae" / "seed0" / "model.pt").read_bytes()
    with pytest.raises(SoftVQError, match=r"already holds 1 run\(s\) trained with a different config .*--overwrite"):
        compare(TrainConfig(steps=10, log_every=10, plots=False), ["ae"], [0], tmp_path, **kw)
    assert (tmp_path / "ae" / "seed0" / "model.pt").read_bytes() == model  # nothing was touched
    again = compare(TrainConfig(steps=20, log_every=10, plots=False), ["ae"], [0], tmp_path, **kw)
    assert again["runs"] == first["runs"]  # the same config is still reused
    other = compare(TrainConfig(steps=10, log_every=10, plots=False), ["ae"], [0], tmp_path, overwrite=True, **kw)
    assert json.loads((tmp_path / "ae" / "seed0" / "config.json").read_text())["steps"] == 10
    assert other["runs"][0]["recon_mse_test"] != first["runs"][0]["recon_mse_test"]


def test_an_unfinished_run_continues_from_its_checkpoint(tmp_path):
    data = load_dataset("digits")
    cfg = TrainConfig(steps=20, log_every=10, plots=False)
    kw = dict(n_init=2, anchors=False, dataset=data, progress=False, log=lambda s: None)
    first = compare(cfg, ["softvq"], [0], tmp_path, **kw)
    run = tmp_path / "softvq" / "seed0"
    (run / "metrics.json").unlink()  # as if stopped after training, before evaluation
    history = (run / "history.csv").read_text()
    again = compare(cfg, ["softvq"], [0], tmp_path, **kw)
    assert _without_timings(again["runs"]) == _without_timings(first["runs"])
    assert (run / "history.csv").read_text() == history


def test_n_init_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(SoftVQError, match="n_init .* must be an integer >= 1, got 0"):
        compare(TrainConfig(steps=2), ["ae"], [0], tmp_path / "c", n_init=0)
    assert not (tmp_path / "c").exists()


def test_a_run_made_before_an_option_existed_is_reused(tmp_path):
    """config.json of an older softvq lacks options added since; they compare as their defaults."""
    data = load_dataset("digits")
    cfg = TrainConfig(steps=20, log_every=10, plots=False)
    kw = dict(n_init=2, anchors=False, dataset=data, progress=False, log=lambda s: None)
    first = compare(cfg, ["softvq"], [0], tmp_path, **kw)
    path = tmp_path / "softvq" / "seed0" / "config.json"
    old = json.loads(path.read_text())
    del old["sigma_head_rank"]
    path.write_text(json.dumps(old))
    logged: list[str] = []
    again = compare(cfg, ["softvq"], [0], tmp_path, **{**kw, "log": logged.append})
    assert again["runs"] == first["runs"] and logged == [f"[softvq seed 0] reused {tmp_path / 'softvq' / 'seed0'}"]


def test_anchor_rows_raw_pixels_and_pca(tmp_path):
    from sklearn.decomposition import PCA

    from softvq.compare import anchor_rows
    from softvq.evaluation.metrics import kmeans_metrics, linear_probe

    data = load_dataset("digits")
    rows = anchor_rows(data, 16, [0, 1], n_init=2)
    assert [(r["bottleneck"], r["seed"]) for r in rows] == [("raw", 0), ("raw", 1), ("pca", 0), ("pca", 1)]
    x_tr, x_te = data.x_train.flatten(1).numpy(), data.x_test.flatten(1).numpy()
    y_tr, y_te = data.y_train.numpy(), data.y_test.numpy()
    assert rows[1]["kmeans_acc"] == kmeans_metrics(x_te, y_te, n_init=2, seed=1)["acc"]
    assert rows[0]["probe_acc"] == rows[1]["probe_acc"] == linear_probe(x_tr, y_tr, x_te, y_te)  # fit once
    pca = PCA(16, random_state=0).fit(x_tr)
    assert rows[2]["nmi"] == kmeans_metrics(pca.transform(x_te), y_te, n_init=2, seed=0)["nmi"]


def test_a_finished_run_is_evaluated_again_with_other_kmeans_restarts(tmp_path):
    data = load_dataset("digits")
    cfg = TrainConfig(steps=20, log_every=10, plots=False)
    kw = dict(anchors=False, dataset=data, progress=False, log=lambda s: None)
    first = compare(cfg, ["ae"], [0], tmp_path, n_init=1, **kw)
    model = (tmp_path / "ae" / "seed0" / "model.pt").read_bytes()
    logged: list[str] = []
    again = compare(cfg, ["ae"], [0], tmp_path, n_init=3, **{**kw, "log": logged.append})
    assert first["runs"][0]["n_init"] == 1 and again["runs"][0]["n_init"] == 3
    assert json.loads((tmp_path / "ae" / "seed0" / "metrics.json").read_text())["n_init"] == 3
    assert (tmp_path / "ae" / "seed0" / "model.pt").read_bytes() == model  # not retrained
    assert logged == [f"[ae seed 0] reused {tmp_path / 'ae' / 'seed0'}, evaluated again with n_init=3"]


@pytest.mark.parametrize(("spec", "message"), [
    ("ae,ae", "--bottlenecks lists ae more than once"),
    ("", "--bottlenecks names no bottleneck"),
    (" , ", "--bottlenecks names no bottleneck"),
    ("ae,gan", "unknown bottleneck(s) gan"),
])
def test_bottleneck_lists_that_name_nothing_or_repeat_are_refused(spec, message):
    from softvq.compare import parse_bottlenecks

    with pytest.raises(SoftVQError) as err:
        parse_bottlenecks(spec)
    assert message in str(err.value)
