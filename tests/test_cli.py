"""The command line, end to end on digits, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest


def softvq(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "softvq.cli", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"softvq {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_train_evaluate_embed_compare(tmp_path):
    run = tmp_path / "run"
    softvq("train", "--dataset", "digits", "--bottleneck", "softvq", "--steps", "60", "--log-every", "20",
           "--num-codes", "10", "--out", str(run), "-q")
    for name in ("config.json", "meta.json", "model.pt", "checkpoint.pt", "history.csv",
                 "curve.png", "reconstructions.png", "embedding.png", "codebook_usage.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["num_codes"] == 10
    proc = softvq("evaluate", str(run), "--n-init", "2")
    metrics = json.loads((run / "metrics.json").read_text())
    assert "kmeans_acc" in proc.stdout and 0 <= metrics["kmeans_acc"] <= 1
    softvq("embed", str(run), "--split", "train", "--out", str(tmp_path / "z.npz"))
    with np.load(tmp_path / "z.npz") as f:
        assert f["z"].shape == (1437, 16)

    cmp_dir = tmp_path / "cmp"
    proc = softvq("compare", "--dataset", "digits", "--bottlenecks", "ae,softvq", "--seeds", "2", "--steps", "40",
                  "--n-init", "2", "--out", str(cmp_dir), "-q", "--plots", "false")
    rows = {r["bottleneck"]: r for r in json.loads((cmp_dir / "results.json").read_text())}
    assert set(rows) == {"ae", "softvq", "raw", "pca"} and rows["ae"]["n"] == 2
    assert "softvq" in proc.stdout and (cmp_dir / "results.md").exists() and (cmp_dir / "results.csv").exists()


def test_config_file_with_flag_override(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"bottleneck": "ae", "steps": 30, "plots": False}))
    softvq("train", "--config", str(tmp_path / "c.json"), "--steps", "20", "--log-every", "10", "--out", str(tmp_path / "r"), "-q")
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["bottleneck"] == "ae" and cfg["steps"] == 20


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "nope", "--out", "X"], "unknown dataset"),
        (["train", "--steps", "ten", "--out", "X"], "argument --steps: expected int"),
        (["train", "--sigma", "huge", "--out", "X"], "sigma must be one of"),
        (["train", "--batch-size", "0", "--out", "X"], "batch_size must be positive"),
        (["evaluate", "does/not/exist"], "does not exist"),
        (["compare", "--bottlenecks", "ae,magic", "--out", "X"], "unknown bottleneck"),
        (["train", "--config", "missing.json", "--out", "X"], "cannot read config file"),
    ],
)
def test_user_mistakes_get_one_line_errors(tmp_path, args, message):
    proc = softvq(*[a.replace("X", str(tmp_path / "x")) for a in args], check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["train", "compare", "evaluate", "embed", "report"])
def test_help_pages_render(command):
    proc = softvq(command, "--help")
    assert "usage: softvq " + command in proc.stdout


@pytest.mark.parametrize(
    "flags, expected",
    [([], {}), (["--validation"], {"validation": True}), (["--validation", "false"], {"validation": False}),
     (["--no-plots"], {"plots": False}), (["--plots", "yes", "--validation", "0"], {"plots": True, "validation": False})],
)
def test_boolean_flags_take_the_usual_forms(flags, expected):
    from softvq.cli import build_parser

    args = build_parser().parse_args(["train", "--out", "r", *flags])
    assert {k: getattr(args, k) for k in ("validation", "plots") if hasattr(args, k)} == expected


def test_anchor_flags_and_presets():
    from softvq.cli import build_parser
    from softvq.presets import PRESETS

    parse = build_parser().parse_args
    assert parse(["compare", "--out", "x"]).anchors is None  # the preset decides
    assert parse(["compare", "--out", "x", "--anchors"]).anchors is True
    assert parse(["compare", "--out", "x", "--no-anchors"]).anchors is False
    assert PRESETS["fashion-mnist"].anchors and PRESETS["fashion-mnist"].jobs == 2
    quick = PRESETS["fashion-mnist-quick"]
    assert (quick.anchors, quick.seeds, quick.config["steps"]) == (False, 1, 300)


def test_help_lists_the_choices_of_every_option_that_has_them(capsys):
    from softvq.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for listed in ("one of fixed, learned, learned_per_code, predicted", "one of uniform, learned",
                   "one of straight_through, exact", "one of gaussian, reference, none"):
        assert listed in out
    assert out.count("mlp, conv, small-mlp") == 1  # a help text that already names its choices is not repeated
