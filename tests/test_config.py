"""TrainConfig: round trips, type checks, per-dataset resolution."""

import json
import typing

import pytest

from softvq import ConfigError, TrainConfig
from softvq.config import parse_value


def test_json_round_trip(tmp_path):
    cfg = TrainConfig(bottleneck="vq", latent_dim=32, lr=1e-3, vq_ema_decay=0.99, plots=False)
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg


def test_toml_file(tmp_path):
    (tmp_path / "c.toml").write_text('bottleneck = "vae"\nkl_weight = 1\nsteps = 10\n')
    cfg = TrainConfig.load(tmp_path / "c.toml")
    assert (cfg.bottleneck, cfg.kl_weight, cfg.steps) == ("vae", 1.0, 10)


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"latent_dims": 3}))
    with pytest.raises(ConfigError, match="unknown option.*latent_dims"):
        TrainConfig.load(tmp_path / "c.json")


@pytest.mark.parametrize("key, value", [("steps", "100"), ("lr", "fast"), ("plots", 1), ("batch_size", 3.5), ("seed", None)])
def test_wrong_type_is_named(tmp_path, key, value):
    (tmp_path / "c.json").write_text(json.dumps({key: value}))
    with pytest.raises(ConfigError, match=key):
        TrainConfig.load(tmp_path / "c.json")


@pytest.mark.parametrize("kw, name", [
    ({"batch_size": 0}, "batch_size"), ({"sigma": "big"}, "sigma"),
    ({"latent_dim": 10, "groups": 3}, "divisible"), ({"lr": -1.0}, "lr"),
    ({"seed": -1}, r"seed must lie in 0..2\*\*32-1, got -1"), ({"seed": 2**32}, "seed must lie"),
    ({"steps": "10"}, "steps must be of type int, got str '10'"), ({"lr": "fast"}, "lr must be of type float"),
    ({"device": "tpu:x"}, "device 'tpu:x' is not a torch device"),
    ({"bottleneck": "softvq", "steps": 100, "warmup_steps": 100}, "warmup_steps=100 is not below steps=100"),
])
def test_invalid_values(kw, name):
    with pytest.raises(ConfigError, match=name):
        TrainConfig(**kw).validate()


def test_broken_file(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.load(tmp_path / "missing.json")


def test_resolution_by_sample_shape():
    assert TrainConfig().resolved((1, 28, 28)).network == "mlp"
    assert TrainConfig().resolved((1, 28, 28)).latent_dim == 64
    assert TrainConfig().resolved((3, 32, 32)).network == "conv"
    small = TrainConfig().resolved((1, 8, 8))
    assert small.network == "small-mlp" and small.latent_dim == 16
    assert TrainConfig(latent_dim=7).resolved((5,)).latent_dim == 7


def test_parse_value_from_command_line():
    hints = typing.get_type_hints(TrainConfig)
    assert parse_value("vq_ema_decay", "none", hints["vq_ema_decay"]) is None
    assert parse_value("vq_ema_decay", "0.9", hints["vq_ema_decay"]) == 0.9
    assert parse_value("plots", "false", hints["plots"]) is False
    with pytest.raises(ConfigError, match="--steps: expected int"):
        parse_value("steps", "ten", hints["steps"])


def test_non_finite_floats_are_refused():
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        TrainConfig(lr=float("inf")).validate()
    with pytest.raises(ConfigError, match="kl_weight must be a finite number"):
        TrainConfig(kl_weight=float("nan")).validate()


def test_small_networks_default_to_one_thread():
    assert TrainConfig().resolved((1, 8, 8)).threads == 1
    assert TrainConfig().resolved((1, 28, 28)).threads is None
    assert TrainConfig(threads=2).resolved((1, 8, 8)).threads == 2


def test_groups_default_by_network():
    mlp = TrainConfig().resolved((1, 28, 28))  # the MLP: chosen on Fashion-MNIST validation
    assert (mlp.groups, mlp.num_codes, mlp.latent_dim) == (16, 64, 64)
    small = TrainConfig().resolved((1, 8, 8))
    assert (small.groups, small.num_codes, small.latent_dim) == (1, 32, 16)
    assert TrainConfig().resolved((1, 8, 8)).groups == 1
    assert TrainConfig().resolved((3, 32, 32)).groups == 1
    assert TrainConfig(groups=4).resolved((1, 28, 28)).groups == 4
    assert TrainConfig(latent_dim=24).resolved((1, 28, 28)).groups == 1  # not divisible by 16: not split
    with pytest.raises(ConfigError, match="groups must be positive"):
        TrainConfig(groups=0).validate()


def test_warmup_longer_than_training_is_fine_for_bottlenecks_without_a_quantizer():
    TrainConfig(bottleneck="ae", steps=10, warmup_steps=500).validate()
