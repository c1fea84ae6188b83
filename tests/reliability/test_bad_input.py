"""Bad input: each gets a specific message and a non-zero exit, never a traceback.

Most cases call ``softvq.cli.main`` in-process (it is what the ``softvq`` command runs;
an exception escaping it would fail the test), which avoids a Python start-up per case.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import softvq
from softvq import VQ, SoftVQ, training
from softvq.cli import main
from softvq.errors import TrainingDiverged
from softvq.run import safe_torch_load

from reliability_helpers import assert_run_files_load, small_cfg, softvq_cli

TRAIN = ["train", "--steps", "5", "--log-every", "5", "--plots", "false", "--threads", "1", "-q"]


def fails(capsys, argv: list[str], *messages: str) -> str:
    """``softvq ARGV`` exits 2 with one ``error:`` line naming the problem."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    for m in messages:
        assert m in err, err
    return err


# -- the quantizer layers ---------------------------------------------------------------
@pytest.mark.parametrize("layer", [SoftVQ(8, 4), VQ(8, 4)], ids=["SoftVQ", "VQ"])
@pytest.mark.parametrize(
    "z, message",
    [
        (torch.zeros(3, 5), r"z must have shape \(\.\.\., code_dim=4\) with channels last, got shape \(3, 5\)"),
        (torch.zeros(3, 4, dtype=torch.long), "z must be a floating-point tensor, got dtype torch.int64"),
        (np.zeros((3, 4), np.float32), "z must be a torch.Tensor, got ndarray"),
        (torch.zeros(()), r"got shape \(\)"),
        (torch.zeros(0, 4), r"z holds no vectors \(shape \(0, 4\)\)"),
        (torch.zeros(2, 0, 4), r"z holds no vectors \(shape \(2, 0, 4\)\)"),
    ],
)
def test_wrong_shapes_and_dtypes_for_the_layers(layer, z, message):
    with pytest.raises(ValueError, match=message):
        layer(z)


def test_predicted_sigma_shape_is_checked():
    layer = SoftVQ(8, 4, sigma="predicted")
    with pytest.raises(ValueError, match=r"log_sigma must have shape \(3, 8\)"):
        layer(torch.zeros(3, 4), torch.zeros(3, 7))


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf])
def test_layer_sigma_must_be_positive_and_finite(sigma):
    with pytest.raises(ValueError, match="init_sigma must be a positive finite number"):
        SoftVQ(8, 4, sigma="fixed", init_sigma=sigma)
    with pytest.raises(ValueError, match="sigma must be a positive finite number"):
        SoftVQ(8, 4, sigma="fixed").set_sigma(sigma)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_layer_num_codes_below_one(k):
    for layer in (SoftVQ, VQ):
        with pytest.raises(ValueError, match="num_codes must be a positive integer"):
            layer(k, 4)


# -- command-line values ----------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--init-sigma", "0"], "init_sigma must be positive, got 0.0"),
        (["--init-sigma", "-2"], "init_sigma must be positive, got -2.0"),
        (["--init-sigma", "nan"], "init_sigma must be a finite number, got nan"),
        (["--init-sigma", "inf"], "init_sigma must be a finite number, got inf"),
        (["--init-sigma", "1e9"], "lies outside [min_sigma, max_sigma]"),
        (["--sigma-final", "0"], "sigma_final must be positive"),
        (["--num-codes", "0"], "num_codes must be positive, got 0"),
        (["--num-codes", "-1"], "num_codes must be positive, got -1"),
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--seed", "-1"], "seed must lie in 0..2**32-1, got -1"),
        (["--device", "tpu:x"], "device 'tpu:x' is not a torch device"),
        (["--device", "cuda:99"], "device 'cuda:99' is not available here"),  # no such GPU, with or without CUDA
        (["--warmup-steps", "5"], "warmup_steps=5 is not below steps=5"),
        (["--evaluate", "--n-init", "0"], "n_init (k-means restarts) must be an integer >= 1, got 0"),
    ],
)
def test_bad_values_on_the_command_line(tmp_path, capsys, flags, message):
    fails(capsys, [*TRAIN, "--out", str(tmp_path / "r"), *flags], message)
    assert not (tmp_path / "r").exists()  # refused before anything was written


# -- data -------------------------------------------------------------------------------
def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_nan_and_inf_in_the_data(tmp_path, capsys):
    x = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    x[3, 2] = np.nan
    fails(capsys, [*TRAIN, "--dataset", _npz(tmp_path / "nan.npz", X=x), "--out", str(tmp_path / "r")],
          "nan.npz: X contains 1 NaN or inf values")
    x[3, 2], x[5, 1], x[6, 0] = 1.0, np.inf, -np.inf
    fails(capsys, [*TRAIN, "--dataset", _npz(tmp_path / "inf.npz", X=x), "--out", str(tmp_path / "r")],
          "inf.npz: X contains 2 NaN or inf values")


def test_empty_dataset(tmp_path, capsys):
    fails(capsys, [*TRAIN, "--dataset", _npz(tmp_path / "e.npz", X=np.zeros((0, 6), np.float32)),
                   "--out", str(tmp_path / "r")], "X is empty (0 samples)")


def test_labels_not_0_to_k_minus_1_are_remapped(tmp_path, digits):
    rng = np.random.default_rng(0)
    path = _npz(tmp_path / "odd.npz", X=rng.random((40, 6)).astype(np.float32), y=np.repeat([3, 7, 100, -2], 10))
    run = softvq.train(small_cfg(dataset=path, steps=3, log_every=3, num_codes=4), tmp_path / "r", progress=False)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["class_names"] == ["-2", "3", "7", "100"] and meta["num_classes"] == 4
    with np.load(softvq.embed(run, tmp_path / "z.npz")) as f:  # the mapping travels with the labels
        assert f["class_names"].tolist() == ["-2", "3", "7", "100"]
        assert sorted(set(f["class_names"][f["y"]].tolist())) == ["-2", "100", "3", "7"]


def _write_mnist(folder: Path, n: int = 8, truncate: str | None = None, html: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n, dtype=np.uint8)}
    for name, arr in arrays.items():
        raw = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
        if name == truncate:
            raw = raw[: len(raw) - 100]
        blob = b"<!DOCTYPE html><html><body>404 Not Found</body></html>" if name == html else gzip.compress(raw)
        (folder / f"{name}.gz").write_bytes(blob)
    return folder


def test_truncated_idx_file(tmp_path, capsys):
    data = _write_mnist(tmp_path / "mnist", truncate="train-images-idx3-ubyte")
    fails(capsys, [*TRAIN, "--dataset", "mnist", "--data-dir", str(data), "--out", str(tmp_path / "r")],
          "train-images-idx3-ubyte.gz: truncated: expected 6272 bytes of pixel data, found 6172")


def test_html_page_under_a_dataset_file_name(tmp_path, capsys):
    data = _write_mnist(tmp_path / "mnist", html="t10k-labels-idx1-ubyte")
    fails(capsys, [*TRAIN, "--dataset", "mnist", "--data-dir", str(data), "--out", str(tmp_path / "r")],
          "t10k-labels-idx1-ubyte.gz: looks like an HTML page (a failed download?), not an IDX file")


def test_html_page_saved_as_npz_is_refused(tmp_path, capsys):
    page = tmp_path / "data.npz"
    page.write_text("<!DOCTYPE html><html><body>Sign in to download</body></html>")
    # refused with a DataError naming the file (the wording is the data loader's)
    fails(capsys, [*TRAIN, "--dataset", str(page), "--out", str(tmp_path / "r")], "data.npz")


# -- config files and run directories -----------------------------------------------------
@pytest.mark.parametrize(
    "name, text, message",
    [
        ("c.json", json.dumps({"stepz": 3}), "unknown option(s) stepz; valid options:"),
        ("c.json", json.dumps({"steps": "ten"}), "steps must be of type int, got str 'ten'"),
        ("c.json", json.dumps({"plots": 1}), "plots must be of type bool, got 1"),
        ("c.json", json.dumps([1, 2]), "expected a mapping of option names to values"),
        ("c.json", '{"steps": 3,', "is not valid JSON"),
        ("c.toml", 'lr = "fast"\n', "lr must be of type float, got str 'fast'"),
        ("c.toml", "steps = 3\nsteps = 4\n", "is not valid TOML"),
    ],
)
def test_bad_config_files(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    fails(capsys, ["train", "--config", str(tmp_path / name), "--out", str(tmp_path / "r")], message)


def test_output_directory_holding_a_different_run(tmp_path, capsys, digits):
    run = softvq.train(small_cfg(steps=3, log_every=3), tmp_path / "r", dataset=digits, progress=False)
    before = (run / "checkpoint.pt").read_bytes()
    fails(capsys, [*TRAIN, "--out", str(run), "--lr", "0.01"], "already holds a different run", "--overwrite")
    assert (run / "checkpoint.pt").read_bytes() == before


def test_resume_takes_no_other_options(tmp_path, capsys, digits):
    run = softvq.train(small_cfg(steps=3, log_every=3), tmp_path / "r", dataset=digits, progress=False)
    fails(capsys, ["train", "--resume", str(run), "--steps", "9"], "--steps cannot be combined with it")
    fails(capsys, ["train", "--resume", str(tmp_path / "nothing")], "config.json not found", "a softvq run directory?")


@pytest.mark.parametrize("where", ["under a file", "is a file"])
def test_unwritable_output_directory(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    out = blocker / "run" if where == "under a file" else blocker
    fails(capsys, [*TRAIN, "--out", str(out)], "cannot write the run")
    assert blocker.read_text() == "a regular file"


def _train_as_nobody(out: str, conn) -> None:
    """Child process: drop root, then run the CLI; send back (exit code, stderr)."""
    import contextlib
    import io
    import os

    err = io.StringIO()
    try:
        os.setgid(65534)
        os.setuid(65534)
        with contextlib.redirect_stderr(err):
            rc = main([*TRAIN, "--out", out])
        conn.send((rc, err.getvalue()))
    except BaseException as e:  # report, never hang the parent
        conn.send((-1, f"{err.getvalue()}\n{type(e).__name__}: {e}"))


def test_read_only_output_directory(tmp_path, capsys):
    import multiprocessing
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() != 0:
            fails(capsys, [*TRAIN, "--out", str(folder / "r")], "cannot write the run directory", "Permission denied")
            return
        # root ignores permissions: run the same command in a forked child that dropped to
        # 'nobody'. One good run first imports every lazily imported module (nobody cannot
        # read root's Python installation).
        assert main([*TRAIN, "--out", str(tmp_path / "ok")]) == 0
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_train_as_nobody, args=(str(folder / "r"), child))
        proc.start()
        child.close()
        assert parent.poll(120), "the child process sent nothing"
        rc, err = parent.recv()
        proc.join(60)
        assert rc == 2 and "Traceback" not in err, err
        assert "cannot write the run directory" in err and "Permission denied" in err, err
    finally:
        folder.chmod(0o755)
    assert not (folder / "r").exists()


# -- a loss that becomes NaN ----------------------------------------------------------------
def _poison(monkeypatch, at_call: int, how: str) -> None:
    original = training.recon_loss
    calls = []

    def poisoned(x_hat, x, pixel_var):
        calls.append(1)
        loss = original(x_hat, x, pixel_var)
        if len(calls) == at_call:
            if how == "loss":
                return loss * float("nan")
            # a finite loss whose gradient is NaN: the weights, not the loss, go bad
            return loss + (x_hat - x_hat.detach()).abs().sqrt().sum()
        return loss

    monkeypatch.setattr(training, "recon_loss", poisoned)


def test_nan_loss_before_any_checkpoint(tmp_path, digits, monkeypatch):
    _poison(monkeypatch, 3, "loss")
    with pytest.raises(TrainingDiverged, match="loss became nan .* at step 3; stopped. No checkpoint had been written yet"):
        softvq.train(small_cfg(steps=20), tmp_path / "r", dataset=digits, progress=False, checkpoint_every=5)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    monkeypatch.undo()  # the same command again simply starts over
    softvq.train(small_cfg(steps=20), tmp_path / "r", dataset=digits, progress=False, checkpoint_every=5)


@pytest.mark.parametrize("how, step", [("loss", 8), ("gradient", 10)])
def test_nan_keeps_the_last_good_checkpoint(tmp_path, digits, monkeypatch, how, step):
    """NaN loss at step 8; or a NaN gradient at step 10 that would have gone into its checkpoint."""
    run = tmp_path / "r"
    _poison(monkeypatch, step, how)
    with pytest.raises(TrainingDiverged, match=f"at step {step}; stopped. The last good checkpoint \\(step 5\\) is kept"):
        softvq.train(small_cfg(steps=20), run, dataset=digits, progress=False, checkpoint_every=5)
    state = assert_run_files_load(run)
    assert state["step"] == 5 and all(torch.isfinite(v).all() for v in state["model"].values())
    monkeypatch.undo()
    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False, checkpoint_every=5)
    assert safe_torch_load(run / "checkpoint.pt")["step"] == 20


def test_huge_learning_rate_on_the_command_line(tmp_path):
    proc = softvq_cli(*TRAIN[:-1], "--steps", "20", "--lr", "1e30", "--out", str(tmp_path / "r"), "-q", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "training diverged: the loss became nan" in proc.stderr and "Try a lower --lr (was 1e+30)" in proc.stderr


# -- found by a fresh user trying to break the tool -----------------------------------------------

@pytest.mark.parametrize("argv", [
    ["compare", "--bottlenecks", "ae", "--out", "x", "--seed", "3"],         # would have meant --seeds
    ["compare", "--bottlenecks", "ae", "--out", "x", "--bottleneck", "vq"],  # would have meant --bottlenecks
    ["train", "--out", "x", "--step", "3"],                                  # would have meant --steps
])
def test_abbreviated_flags_are_refused(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "unrecognized arguments: " + " ".join(argv[-2:]) in capsys.readouterr().err


def test_config_file_that_is_not_utf8(tmp_path, capsys):
    (tmp_path / "c.json").write_bytes(b"\xff\xfe{")
    fails(capsys, ["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "r")],
          "is not UTF-8 text", "JSON (.json) or TOML (.toml)")
    assert not (tmp_path / "r").exists()


def test_config_file_in_another_format(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("steps: 3\n")
    fails(capsys, ["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")],
          "is not valid JSON (softvq reads JSON, or TOML from a .toml file)")


def test_data_beyond_float32_range(tmp_path, capsys):
    np.savez(tmp_path / "huge.npz", X=np.full((40, 5), 1e300) * np.arange(1, 6), y=np.arange(40) % 2)
    fails(capsys, [*TRAIN, "--dataset", str(tmp_path / "huge.npz"), "--out", str(tmp_path / "r")],
          "huge.npz: X holds values up to 5e+300, beyond the float32 range", "rescale")


def test_run_directory_with_damaged_meta(tmp_path, capsys, digits):
    run = softvq.train(small_cfg(steps=3, log_every=3), tmp_path / "r", dataset=digits, progress=False)
    (run / "meta.json").write_text('{"softvq_version": "0.1.0"}')
    fails(capsys, ["evaluate", str(run)], "meta.json lacks sample_shape, output", "damaged")
    fails(capsys, ["embed", str(run), "--out", str(tmp_path / "z.npz")], "meta.json lacks sample_shape")
    assert not (tmp_path / "z.npz").exists()


def test_embed_on_data_of_another_shape(tmp_path, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, X=np.random.default_rng(0).random((60, 6)), y=np.arange(60) % 3)
    assert main([*TRAIN, "--dataset", str(data), "--out", str(tmp_path / "r")]) == 0
    np.savez(data, X=np.random.default_rng(0).random((60, 4)), y=np.arange(60) % 3)
    fails(capsys, ["embed", str(tmp_path / "r"), "--out", str(tmp_path / "z.npz")],
          "has samples of shape (4,), but the run in", "was trained on (6,)")
    assert not (tmp_path / "z.npz").exists()


def test_a_diverged_run_does_not_block_its_directory(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--steps", "30", "--lr", "1e6", "--plots", "false", "-q", "--out", out]) != 0
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "--steps", "3", "--plots", "false", "-q", "--out", out]) == 0  # no --overwrite needed
    assert (tmp_path / "r" / "model.pt").exists()


@pytest.mark.parametrize("quantizer", [SoftVQ(8, 4), VQ(8, 4)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_latents_of_another_dtype_than_the_codebook(quantizer, dtype):
    with pytest.raises(ValueError, match=rf"z has dtype {dtype} but the codebook is torch.float32; convert"):
        quantizer(torch.randn(3, 4, dtype=dtype))
    assert quantizer.to(dtype)(torch.randn(3, 4, dtype=dtype)).z_q.dtype == dtype
    quantizer.float()


def test_model_input_of_another_dtype(tmp_path, digits):
    run = softvq.train(small_cfg(steps=3, log_every=3), tmp_path / "r", dataset=digits, progress=False)
    model = softvq.load(run)
    with pytest.raises(ValueError, match=r"x has dtype torch.float64 but the model is torch.float32"):
        model.encode(digits.x_test[:4].double())
    with pytest.raises(ValueError, match=r"x holds no samples"):
        model.encode(digits.x_test[:0])
    assert model.double().encode(digits.x_test[:4].double()).dtype == torch.float64


def test_python_api_bad_values_get_config_errors(tmp_path, digits):
    from softvq.errors import ConfigError, SoftVQError

    with pytest.raises(ConfigError, match="steps must be of type int, got str '200'"):
        softvq.train(softvq.TrainConfig(steps="200", plots=False), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    run = softvq.train(small_cfg(steps=3, log_every=3), tmp_path / "ok", dataset=digits, progress=False)
    with pytest.raises(SoftVQError, match=r"device 'nonsense' is not available here \(torch "):
        softvq.load(run, device="nonsense")
    with pytest.raises(SoftVQError, match=r"run directory .*nothing does not exist"):
        softvq.load(tmp_path / "nothing")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SoftVQError, match="afile is a file, not a run directory"):
        softvq.load(tmp_path / "afile")


def test_a_relative_dataset_path_resolves_from_where_the_run_was_trained(tmp_path, monkeypatch, capsys):
    (tmp_path / "work" / "data").mkdir(parents=True)
    np.savez(tmp_path / "work" / "data" / "d.npz", X=np.random.default_rng(0).random((60, 6)), y=np.arange(60) % 3)
    monkeypatch.chdir(tmp_path / "work")
    assert main([*TRAIN, "--dataset", "data/d.npz", "--out", "runs/r"]) == 0
    monkeypatch.chdir(tmp_path / "work" / "runs")  # data/d.npz does not exist from here
    assert main(["evaluate", "r", "--n-init", "1"]) == 0
    assert main(["embed", "r", "--out", "z.npz"]) == 0
    assert np.load(tmp_path / "work" / "runs" / "z.npz")["z"].shape[0] == 12
    (tmp_path / "work" / "data" / "d.npz").unlink()  # gone everywhere: the message names the path as given
    fails(capsys, ["evaluate", "r"], "data/d.npz")
