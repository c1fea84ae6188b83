"""load_dataset(), the registry, digits, the Dataset container and the real Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softvq.data import DATASETS, Dataset, load_dataset
from softvq.data import sources
from softvq.errors import DataError

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_registry_names():
    assert set(DATASETS) == {"digits", "fashion-mnist", "mnist", "svhn", "cifar10"}
    assert all(callable(f) for f in DATASETS.values())


def test_unknown_name_lists_valid_names():
    with pytest.raises(DataError) as e:
        load_dataset("imagenet")
    msg = str(e.value)
    assert "'imagenet'" in msg
    for name in DATASETS:
        assert name in msg


def test_digits_split_sizes_and_values():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert torch.all(ds.x_train * 16 == torch.round(ds.x_train * 16))  # values k/16
    assert ds.num_classes == 10 and ds.num_features == 64 and ds.sample_shape == (1, 8, 8)
    assert ds.output == "sigmoid" and ds.is_image


def test_digits_split_is_stratified_and_deterministic():
    from sklearn.datasets import load_digits

    ds, again = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(ds.x_test, again.x_test) and torch.equal(ds.y_train, again.y_train)
    full = np.bincount(load_digits().target) / 1797
    for y in (ds.y_train, ds.y_test):
        frac = torch.bincount(y, minlength=10).numpy() / len(y)
        assert np.abs(frac - full).max() < 0.01
    # Train and test are disjoint and together are the whole set.
    flat = lambda t: {tuple(r) for r in (t.reshape(len(t), -1) * 16).round().int().tolist()}  # noqa: E731
    everything = {tuple(r) for r in load_digits().data.astype(int).tolist()}
    assert flat(ds.x_train) | flat(ds.x_test) == everything


def test_name_normalisation():
    assert load_dataset("DIGITS").name == "digits"


def test_dataset_validation_and_repr():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError):
        Dataset("t", x.double(), None, x, None, "linear")
    with pytest.raises(ValueError):
        Dataset("t", x, torch.zeros(3, dtype=torch.int64), x, torch.zeros(4, dtype=torch.int64), "linear")
    with pytest.raises(ValueError):
        Dataset("t", x, None, x, None, "softmax")
    ds = Dataset("t", x, torch.tensor([0, 2, 1, 0]), x[:2], torch.tensor([1, 0]), "linear")
    assert ds.num_classes == 3 and ds.num_features == 3 and not ds.is_image
    assert "train=(4, 3)" in repr(ds)


def test_fashion_lookup_prefers_data_dir_then_system_dir(tmp_path, monkeypatch, fmt):
    system = tmp_path / "system"
    _, sys_y, _, _ = fmt.write_idx_set(system, 4, 2, seed=1)
    _, user_y, _, _ = fmt.write_idx_set(tmp_path / "user", 5, 2, seed=2)
    monkeypatch.setattr(sources, "FASHION_SYSTEM_DIR", system)
    assert load_dataset("fashion-mnist").y_train.tolist() == sys_y.tolist()
    assert load_dataset("fashion-mnist", tmp_path / "user").y_train.tolist() == user_y.tolist()


def test_fashion_falls_back_to_cache_without_system_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match=r"fashion-mnist.*downloads are disabled"):
        load_dataset("fashion-mnist", cache_dir=tmp_path / "c", download=False)


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert int(ds.y_train.min()) == 0 and int(ds.y_train.max()) == 9
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert float(ds.x_train.mean()) == pytest.approx(0.2860, abs=5e-4)  # the well-known train mean
    assert ds.y_train[:8].tolist() == [9, 0, 0, 3, 0, 2, 7, 2]
    assert ds.y_test[:4].tolist() == [9, 2, 1, 1]
    assert ds.class_names[9] == "Ankle boot"
