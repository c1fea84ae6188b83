"""User .npz / .npy files: shapes, scaling, labels, splits and every rejection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softvq.data import load_dataset
from softvq.errors import DataError


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_features_standardized_with_train_stats(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (50, 4))
    x[:, 3] = 7.0  # a constant feature
    path = _npz(tmp_path, X=x)
    ds = load_dataset(str(path))
    assert ds.output == "linear" and ds.x_train.shape == (40, 4) and ds.x_test.shape == (10, 4)
    assert ds.y_train is None and ds.num_classes is None and not ds.is_image
    assert ds.name == "d" and ds.sample_shape == (4,)
    # Recover which rows went to train: the split is the fixed 80/20 one (random_state=0).
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(50), test_size=0.2, random_state=0)
    mean, std = x[tr].mean(0), x[tr].std(0)
    std[3] = 1.0
    np.testing.assert_allclose(ds.x_train.numpy(), (x[tr] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), (x[te] - mean) / std, rtol=1e-5, atol=1e-5)
    assert ds.x_train[:, :3].mean(0).abs().max() < 1e-5          # train is centred ...
    assert ds.x_test[:, :3].mean(0).abs().max() > 1e-3           # ... test (other stats) is not
    assert torch.all(ds.x_train[:, 3] == 0) and torch.isfinite(ds.x_test).all()


def test_explicit_split_and_remapped_labels(tmp_path):
    x = np.linspace(0, 1, 24, dtype=np.float32).reshape(6, 4)
    path = _npz(tmp_path, X=x, y=np.array([3, 7, 9, 3, 7, 9]), X_test=x[:2], y_test=np.array([9, 3]))
    ds = load_dataset(str(path))
    assert ds.output == "sigmoid"  # already within [0, 1]: used as-is
    assert torch.equal(ds.x_train, torch.from_numpy(x)) and torch.equal(ds.x_test, torch.from_numpy(x[:2]))
    assert ds.y_train.tolist() == [0, 1, 2, 0, 1, 2] and ds.y_test.tolist() == [2, 0]
    assert ds.class_names == ["3", "7", "9"] and ds.num_classes == 3


def test_string_labels_and_stratified_split(tmp_path):
    y = np.array(["cat", "dog"] * 10)
    path = _npz(tmp_path, X=np.arange(40, dtype=np.float64).reshape(20, 2), y=y)
    ds = load_dataset(str(path))
    assert ds.class_names == ["cat", "dog"]
    assert sorted(ds.y_test.tolist()) == [0, 0, 1, 1] and ds.y_train.bincount().tolist() == [8, 8]
    again = load_dataset(str(path))
    assert torch.equal(ds.x_test, again.x_test)  # fixed split


def test_labels_already_0_to_k_keep_no_names(tmp_path):
    path = _npz(tmp_path, X=np.random.default_rng(0).random((10, 3)), y=np.array([0, 1] * 5))
    ds = load_dataset(str(path))
    assert ds.class_names is None and ds.num_classes == 2 and ds.y_train.dtype == torch.int64


def test_integral_float_labels_accepted(tmp_path):
    path = _npz(tmp_path, X=np.random.default_rng(0).random((10, 3)), y=np.array([1.0, 2.0] * 5))
    ds = load_dataset(str(path))
    assert ds.class_names == ["1", "2"]


def test_singleton_class_is_refused_by_the_automatic_split(tmp_path):
    y = np.array([0] * 9 + [1])
    with pytest.raises(DataError, match="class\\(es\\) 1 of y have a single sample"):
        load_dataset(str(_npz(tmp_path, X=np.random.default_rng(0).random((10, 2)), y=y)))


def test_too_few_test_samples_for_every_class_gives_a_plain_split(tmp_path):
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])  # 2 test samples cannot hold 5 classes
    ds = load_dataset(str(_npz(tmp_path, X=np.random.default_rng(0).random((10, 2)), y=y)))
    assert len(ds.y_train) == 8 and len(ds.y_test) == 2
    assert set(ds.y_test.tolist()) <= set(ds.y_train.tolist())


def test_test_classes_absent_from_training_are_refused(tmp_path):
    x = np.random.default_rng(0).random((6, 2))
    with pytest.raises(DataError, match="class\\(es\\) 9 absent from the training labels"):
        load_dataset(str(_npz(tmp_path, X=x, y=[0, 0, 1, 1, 0, 1], X_test=x[:2], y_test=[9, 0])))
    with pytest.raises(DataError, match="class\\(es\\) 100 absent from the training labels"):
        load_dataset(str(_npz(tmp_path, name="e.npz", X=x[:3], y=[3, 7, 3], X_test=x[:1], y_test=[100])))


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_text_file_under_a_numpy_name(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_text("just some notes\n")
    with pytest.raises(DataError, match=r"notes\%s: not a NumPy \.npy or \.npz file \(it starts with b'just som'\)" % suffix):
        load_dataset(str(path))


@pytest.mark.parametrize("shape, expected", [
    ((10, 6, 5), (1, 6, 5)),          # greyscale (N, H, W)
    ((10, 6, 5, 3), (3, 6, 5)),       # (N, H, W, C)
    ((10, 3, 6, 5), (3, 6, 5)),       # (N, C, H, W)
    ((10, 6, 5, 1), (1, 6, 5)),
])
def test_image_layouts_uint8(tmp_path, shape, expected):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    ds = load_dataset(str(_npz(tmp_path, X=x, X_test=x[:2])))
    assert ds.is_image and ds.sample_shape == expected and ds.output == "sigmoid"
    ref = x[:, None] if len(shape) == 3 else (x.transpose(0, 3, 1, 2) if shape[3] in (1, 3) else x)
    assert torch.equal(ds.x_train, torch.from_numpy(ref.astype(np.float32) / np.float32(255)))


def test_npy_file(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", x)
    ds = load_dataset(str(tmp_path / "imgs.npy"))
    assert ds.x_train.shape == (8, 1, 4, 4) and ds.y_train is None
    assert float(ds.x_train.max()) <= 1.0


def test_existing_file_without_suffix(tmp_path):
    path = tmp_path / "mydata"
    with open(path, "wb") as fh:
        np.save(fh, np.random.default_rng(0).random((5, 2)))
    assert load_dataset(str(path)).x_train.shape == (4, 2)


# ------------------------------------------------------------- rejections

@pytest.mark.parametrize("arrays, message", [
    ({"X": np.array([[1.0, np.nan], [0.0, 1.0], [1, 1]])}, "NaN or inf"),
    ({"X": np.array([[1.0, np.inf], [0.0, 1.0], [1, 1]])}, "NaN or inf"),
    ({"X": np.zeros((0, 3))}, r"empty \(0 samples\)"),
    ({"X": np.arange(5.0)}, "1 dimension"),
    ({"X": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, "3 labels but there are 4 samples"),
    ({"X": np.zeros((4, 2)), "y": np.array([0, 1.5, 0, 1])}, "non-integer float labels"),
    ({"X": np.zeros((1, 2))}, "fewer than the 2 needed"),
    ({"features": np.zeros((4, 2)), "labels": np.zeros(4)}, r"no array named 'X' \(found: \['features', 'labels'\]\)"),
    ({"X": np.array([["a", "b"], ["c", "d"]])}, "non-numeric or unsupported dtype"),
    ({"X": np.zeros((4, 2, 5, 7))}, "C in {1, 3}"),
    ({"X": np.zeros((4, 2)), "X_test": np.zeros((2, 3))}, "X_test samples have shape"),
    ({"X": np.zeros((4, 2)), "y": np.zeros(4), "X_test": np.zeros((2, 2))}, "both y and y_test"),
    ({"X": np.zeros((4, 2)), "y_test": np.zeros(2)}, "y_test given without X_test"),
    ({"X": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "X_test": np.zeros((2, 2)),
      "y_test": np.array(["a", "b"])}, "both be numbers or both be strings"),
    ({"X": np.zeros((4, 2)), "y": np.zeros((4, 2))}, "must be 1-D"),
    ({"X": np.zeros((4, 2), dtype=np.complex64)}, "non-numeric or unsupported dtype"),
])
def test_rejections_name_file_and_problem(tmp_path, arrays, message):
    path = _npz(tmp_path, "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as e:
        load_dataset(str(path))
    assert str(path) in str(e.value)


def test_pickled_object_array_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="pickled Python objects"):
        load_dataset(str(path))


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(DataError, match="junk.npz: unreadable or corrupt"):
        load_dataset(str(tmp_path / "junk.npz"))
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError, match="junk.npy: unreadable or corrupt"):
        load_dataset(str(tmp_path / "junk.npy"))
    with pytest.raises(DataError, match="file not found"):
        load_dataset(str(tmp_path / "absent.npz"))


def test_truncated_npz(tmp_path):
    path = _npz(tmp_path, X=np.random.default_rng(0).random((100, 10)))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="unreadable or corrupt"):
        load_dataset(str(path))


def test_html_page_saved_as_npz_is_named_as_such(tmp_path):
    from softvq.data import load_dataset
    from softvq.errors import DataError

    bad = tmp_path / "data.npz"
    bad.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(DataError, match="looks like an HTML page"):
        load_dataset(str(bad))
