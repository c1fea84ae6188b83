"""Interrupt a run at step s, resume it, and get bit-identical weights, optimizer and curve."""

from __future__ import annotations

import signal

import pytest
import torch

import softvq
from softvq import training
from softvq.errors import TrainingInterrupted
from softvq.run import safe_torch_load

from reliability_helpers import assert_same_weights, small_cfg, weights

CASES = {
    # learned sigma, interrupted in the middle of a logging window
    "softvq": (dict(bottleneck="softvq"), 17),
    # fixed sigma annealed + training-time noise: the torch RNG and the schedule matter
    "softvq-anneal-noise": (dict(bottleneck="softvq", sigma="fixed", sigma_final=0.1, noise_std=0.05), 9),
    # EMA codebook, AE warm-up, k-means init at step 10, dead-code restarts every 8 steps:
    # interrupted at 13, between two restarts, so the usage counts must survive
    "vq-ema-kmeans-restart": (dict(bottleneck="vq", vq_ema_decay=0.9, codebook_init="kmeans", warmup_steps=10,
                                   dead_code_restart=8), 13),
    # sampling bottleneck
    "vae": (dict(bottleneck="vae"), 5),
}


def interrupt_at(monkeypatch, stop_step: int) -> None:
    """Deliver a real SIGTERM to this process while step ``stop_step - 1`` runs."""
    original = training.batch_indices

    def hooked(step, *args, **kwargs):
        if step == stop_step - 1:
            signal.raise_signal(signal.SIGTERM)
        return original(step, *args, **kwargs)

    monkeypatch.setattr(training, "batch_indices", hooked)


def run_interrupted(cfg, run, digits, monkeypatch, stop_step):
    with monkeypatch.context() as m:
        interrupt_at(m, stop_step)
        with pytest.raises(TrainingInterrupted, match=f"SIGTERM at step {stop_step}; checkpoint saved"):
            softvq.train(cfg, run, dataset=digits, progress=False)
    assert safe_torch_load(run / "checkpoint.pt")["step"] == stop_step


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_and_resume_is_bit_identical(tmp_path, digits, monkeypatch, case):
    kw, stop_step = CASES[case]
    cfg = small_cfg(**kw)
    ref = softvq.train(cfg, tmp_path / "ref", dataset=digits, progress=False)
    run = tmp_path / "run"
    run_interrupted(cfg, run, digits, monkeypatch, stop_step)
    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False)

    assert_same_weights(weights(ref), weights(run))
    a, b = safe_torch_load(ref / "checkpoint.pt"), safe_torch_load(run / "checkpoint.pt")
    assert a["step"] == b["step"] == cfg.steps
    assert_same_weights(a["model"], b["model"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_same_weights(sa, sb)
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert a["history"] == b["history"]
    assert (ref / "history.csv").read_text() == (run / "history.csv").read_text()


def test_usage_counts_are_needed_for_exact_resume(tmp_path, digits, monkeypatch):
    """The check above has teeth: resuming without the saved dead-code usage diverges."""
    kw, stop_step = CASES["vq-ema-kmeans-restart"]
    cfg = small_cfg(**kw)
    ref = softvq.train(cfg, tmp_path / "ref", dataset=digits, progress=False)
    run = tmp_path / "run"
    run_interrupted(cfg, run, digits, monkeypatch, stop_step)
    state = safe_torch_load(run / "checkpoint.pt")
    assert int(state["loop"]["usage"].sum()) > 0
    state["loop"]["usage"].zero_()  # what a checkpoint without the counts would restore
    torch.save(state, run / "checkpoint.pt")
    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False)
    ref_w, run_w = weights(ref), weights(run)
    assert not torch.equal(ref_w["bottleneck.quantizer.codebook"], run_w["bottleneck.quantizer.codebook"])


def test_resume_of_a_finished_run_changes_nothing(tmp_path, digits):
    cfg = small_cfg(steps=10, log_every=5)
    run = softvq.train(cfg, tmp_path / "r", dataset=digits, progress=False)
    before = weights(run)
    softvq.train(softvq.TrainConfig(), run, resume=True, dataset=digits, progress=False)
    assert_same_weights(before, weights(run))
    assert len(safe_torch_load(run / "checkpoint.pt")["history"]) == 2
