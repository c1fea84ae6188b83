"""Training end to end on small data: determinism, the run directory, loading."""

import json

import numpy as np
import pytest
import torch

import softvq
from softvq import SoftVQError, TrainConfig
from softvq.data import load_dataset
from softvq.training import batch_indices


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _cfg(**kw):
    return TrainConfig(steps=40, log_every=10, plots=False, **kw)


def test_batch_indices_cover_each_epoch_once():
    seen = torch.cat([batch_indices(s, 100, 10, seed=3) for s in range(10)])
    assert sorted(seen.tolist()) == list(range(100))
    assert not torch.equal(batch_indices(0, 100, 10, 3), batch_indices(10, 100, 10, 3))  # new epoch, new order


@pytest.mark.parametrize("bottleneck", ["softvq", "vae"])
def test_same_seed_same_weights(tmp_path, digits, bottleneck):
    a = softvq.train(_cfg(bottleneck=bottleneck), tmp_path / "a", dataset=digits, progress=False)
    b = softvq.train(_cfg(bottleneck=bottleneck), tmp_path / "b", dataset=digits, progress=False)
    sa, sb = torch.load(a / "model.pt", weights_only=True), torch.load(b / "model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_run_directory_and_load(tmp_path, digits):
    run = softvq.train(_cfg(), tmp_path / "r", dataset=digits, progress=False)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["latent_dim"] == 16 and cfg["network"] == "small-mlp"  # resolved values are stored
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,loss,recon,reg") and len(history) == 5
    model = softvq.load(run)
    assert not model.training
    x = digits.x_test[:5]
    z = model.encode(x)
    assert z.shape == (5, 16)
    assert model.decode(z).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match=r"x must be a floating-point torch.Tensor of shape \(B, 1, 8, 8\), got ndarray"):
        model.encode(x.numpy())
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\), got \(5, 1, 28, 28\)"):
        model.encode(torch.rand(5, 1, 28, 28))
    # the config file alone reproduces the run
    again = softvq.train(TrainConfig.load(run / "config.json"), tmp_path / "again", dataset=digits, progress=False)
    s1, s2 = (torch.load(p / "model.pt", weights_only=True) for p in (run, again))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_refuses_to_overwrite_a_different_run(tmp_path, digits):
    softvq.train(_cfg(), tmp_path / "r", dataset=digits, progress=False)
    with pytest.raises(SoftVQError, match="already holds a different run"):
        softvq.train(_cfg(lr=1e-3), tmp_path / "r", dataset=digits, progress=False)
    softvq.train(_cfg(lr=1e-3), tmp_path / "r", dataset=digits, progress=False, overwrite=True)


def test_evaluate_and_embed(tmp_path, digits):
    run = softvq.train(_cfg(bottleneck="vq"), tmp_path / "r", dataset=digits, progress=False)
    m = softvq.evaluate(run, n_init=2, dataset=digits)
    for key in ("kmeans_acc", "nmi", "ari", "probe_acc", "recon_mse_train", "recon_mse_test", "perplexity", "dead_codes"):
        assert key in m and np.isfinite(m[key])
    assert 0 <= m["kmeans_acc"] <= 1 and 1 <= m["perplexity"] <= 32
    assert json.loads((run / "metrics.json").read_text())["kmeans_acc"] == m["kmeans_acc"]
    out = softvq.embed(run, tmp_path / "z.npz", dataset=digits)
    with np.load(out) as f:
        assert f["z"].shape == (360, 16) and f["y"].shape == (360,)
        # anyone can recompute the metrics from the file
        from softvq.evaluation.metrics import kmeans_metrics
        assert kmeans_metrics(f["z"], f["y"], n_init=2, seed=0)["acc"] == pytest.approx(m["kmeans_acc"])


def test_user_network_injection():
    from torch import nn
    enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU())
    bottleneck = softvq.build_bottleneck("softvq", 20, TrainConfig(latent_dim=6, num_codes=4))
    model = softvq.Autoencoder(enc, bottleneck, nn.Sequential(nn.Linear(6, 64), nn.Unflatten(1, (1, 8, 8))))
    out = model(torch.rand(3, 1, 8, 8))
    assert out.x_hat.shape == (3, 1, 8, 8) and out.bottleneck.probs.shape == (3, 1, 4)
