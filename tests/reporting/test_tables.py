"""Table aggregation and rendering, checked against hand-computed numbers."""

import csv
import io
import json
import math

import pytest

from softvq.reporting.tables import (
    format_terminal,
    paired_differences,
    paired_to_markdown,
    summarize,
    to_csv,
    to_markdown,
    write_tables,
)

ROWS = [
    {"bottleneck": "softvq", "seed": 0, "kmeans_acc": 0.60, "recon_mse": 0.010, "tag": "a"},
    {"bottleneck": "vq", "seed": 0, "kmeans_acc": 0.50, "recon_mse": 0.020, "tag": "b"},
    {"bottleneck": "softvq", "seed": 1, "kmeans_acc": 0.70, "recon_mse": 0.030, "tag": "a"},
    {"bottleneck": "vq", "seed": 1, "kmeans_acc": 0.40, "recon_mse": 0.020, "tag": "b"},
    {"bottleneck": "softvq", "seed": 2, "kmeans_acc": 0.80, "recon_mse": 0.020, "tag": "a"},
    {"bottleneck": "vq", "seed": 2, "kmeans_acc": 0.60, "recon_mse": 0.020, "tag": "b"},
    {"bottleneck": "ae", "seed": 0, "kmeans_acc": 0.55, "recon_mse": 0.005, "tag": "c"},
]


def test_summarize_by_hand():
    s = summarize(ROWS)
    assert [r["bottleneck"] for r in s] == ["softvq", "vq", "ae"]  # first appearance
    assert [r["n"] for r in s] == [3, 3, 1]
    soft, vq, ae = s
    # softvq acc 0.6, 0.7, 0.8: mean 0.7, sample var (0.01 + 0 + 0.01) / 2 = 0.01 -> std 0.1
    assert soft["kmeans_acc_mean"] == pytest.approx(0.7)
    assert soft["kmeans_acc_std"] == pytest.approx(0.1)
    # vq acc 0.5, 0.4, 0.6: mean 0.5, std 0.1; recon all 0.02: std 0
    assert vq["kmeans_acc_mean"] == pytest.approx(0.5)
    assert vq["kmeans_acc_std"] == pytest.approx(0.1)
    assert vq["recon_mse_mean"] == pytest.approx(0.02) and vq["recon_mse_std"] == pytest.approx(0.0)
    # single run: std is 0.0, not NaN
    assert ae["kmeans_acc_mean"] == 0.55 and ae["kmeans_acc_std"] == 0.0
    # seed (excluded) and strings are not metrics
    assert set(soft) == {"bottleneck", "n", "kmeans_acc_mean", "kmeans_acc_std",
                         "recon_mse_mean", "recon_mse_std"}
    assert not any(isinstance(v, float) and math.isnan(v) for r in s for v in r.values())


def test_summarize_metric_subset_and_missing_values():
    rows = ROWS[:2] + [{"bottleneck": "softvq", "seed": 1, "kmeans_acc": float("nan")}]
    s = summarize(rows, metrics=["kmeans_acc"])
    soft = s[0]
    assert soft["n"] == 2 and soft["kmeans_acc_mean"] == 0.6 and soft["kmeans_acc_std"] == 0.0
    assert soft["kmeans_acc_n"] == 1  # the NaN run was dropped, visibly
    assert "recon_mse_mean" not in soft
    with pytest.raises(ValueError, match="bottleneck"):
        summarize([{"seed": 0, "x": 1.0}])


def test_paired_differences_by_hand():
    d = paired_differences(ROWS)
    assert [r["bottleneck"] for r in d] == ["vq", "ae"]
    vq, ae = d
    # softvq - vq acc per seed: 0.1, 0.3, 0.2 -> mean 0.2, std 0.1
    assert vq["n_pairs"] == 3 and vq["reference"] == "softvq"
    assert vq["kmeans_acc_diff_mean"] == pytest.approx(0.2)
    assert vq["kmeans_acc_diff_std"] == pytest.approx(0.1)
    # recon diffs: -0.01, 0.01, 0.0 -> mean 0, std 0.01
    assert vq["recon_mse_diff_mean"] == pytest.approx(0.0)
    assert vq["recon_mse_diff_std"] == pytest.approx(0.01)
    # ae has only seed 0: one pair, 0.60 - 0.55
    assert ae["n_pairs"] == 1
    assert ae["kmeans_acc_diff_mean"] == pytest.approx(0.05) and ae["kmeans_acc_diff_std"] == 0.0


def test_paired_to_markdown():
    md = paired_to_markdown(paired_differences(ROWS, metrics=["kmeans_acc"]),
                            labels={"kmeans_acc": "acc"})
    lines = md.strip().splitlines()
    assert lines[0].startswith("Paired differences softvq")
    assert lines[2] == "| bottleneck | pairs | Δ acc |"
    assert lines[4] == "| vq | 3 | +0.200 ± 0.100 |"
    assert lines[5] == "| ae | 1 | +0.050 |"  # one pair: no spread to show
    assert paired_to_markdown([]) == ""


def test_metric_absent_from_a_group_is_none_not_nan():
    rows = ROWS + [{"bottleneck": "pca", "seed": 0, "kmeans_acc": 0.3}]  # no recon_mse
    s = summarize(rows)
    pca = s[-1]
    assert pca["recon_mse_mean"] is None and pca["recon_mse_std"] is None
    assert "recon_mse_n" not in pca
    md = to_markdown(s, ["kmeans_acc", "recon_mse"])
    assert "| pca | 1 | 0.300 | – |" in md
    assert list(csv.DictReader(io.StringIO(to_csv(s))))[-1]["recon_mse_mean"] == ""


def test_paired_differences_validates():
    with pytest.raises(ValueError, match="reference"):
        paired_differences(ROWS, reference="nope")
    with pytest.raises(ValueError, match="duplicate"):
        paired_differences(ROWS + [dict(ROWS[0])])


def test_markdown_table():
    s = summarize(ROWS)
    md = to_markdown(s, ["kmeans_acc", "recon_mse"], labels={"kmeans_acc": "k-means acc"})
    lines = md.strip().splitlines()
    assert lines[0] == "| bottleneck | n | k-means acc | recon_mse |"
    assert lines[1] == "|---|---:|---:|---:|"
    assert len(lines) == 2 + 3
    # acc: higher is better -> softvq bold; recon_mse: lower is better -> ae bold
    assert lines[2] == "| softvq | 3 | **0.700 ± 0.100** | 0.020 ± 0.010 |"
    assert lines[3] == "| vq | 3 | 0.500 ± 0.100 | 0.020 ± 0.000 |"
    assert lines[4] == "| ae | 1 | 0.550 | **0.005** |"  # one run: the mean alone


def test_markdown_lower_is_better_override_and_ties():
    s = summarize(ROWS[:4])  # softvq/vq seeds 0-1: recon means 0.02 and 0.02 tie
    md = to_markdown(s, ["kmeans_acc", "recon_mse"], precision=2, lower_is_better={"kmeans_acc"})
    assert "| vq | 2 | **0.45 ± 0.07** | **0.02 ± 0.00** |" in md
    assert "| softvq | 2 | 0.65 ± 0.07 | **0.02 ± 0.01** |" in md


def test_csv_parses_back():
    s = summarize(ROWS)
    parsed = list(csv.DictReader(io.StringIO(to_csv(s))))
    assert len(parsed) == len(s)
    for got, want in zip(parsed, s):
        assert got["bottleneck"] == want["bottleneck"]
        assert int(got["n"]) == want["n"]
        for k, v in want.items():
            if k.endswith(("_mean", "_std")):
                assert float(got[k]) == v  # exact: repr round-trips floats


def test_write_tables_round_trip(tmp_path):
    s = summarize(ROWS)
    paths = write_tables(s, tmp_path / "out", stem="mnist")
    assert {k: p.name for k, p in paths.items()} == {
        "md": "mnist.md", "csv": "mnist.csv", "json": "mnist.json"}
    assert json.loads(paths["json"].read_text()) == s
    assert paths["md"].read_text() == to_markdown(s, ["kmeans_acc", "recon_mse"])
    assert paths["csv"].read_text() == to_csv(s)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mnist.csv", "mnist.json", "mnist.md"]  # no temp files left behind


def test_format_terminal_is_aligned():
    s = summarize(ROWS)
    text = format_terminal(s, ["kmeans_acc"])
    lines = text.rstrip("\n").splitlines()
    assert lines[0].split() == ["bottleneck", "n", "kmeans_acc"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["softvq", "3", "0.700", "±", "0.100"]
    assert "**" not in text
    assert len({len(line) for line in lines}) == 1  # right-aligned last column
