"""SVHN .mat and CIFAR-10 pickle/tarball loaders on small files in the real formats."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch

from softvq.data import load_dataset
from softvq.data.cifar import extract_archive
from softvq.errors import DataError


def _write_svhn(folder, n_train=5, n_test=3):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0, 0] = 10  # label 10 means digit 0
        scipy.io.savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        out[name] = (x, y)
    return out


def test_svhn_layout_and_label_10_maps_to_0(tmp_path):
    raw = _write_svhn(tmp_path)
    ds = load_dataset("svhn", tmp_path)
    x, y = raw["train"]
    assert ds.x_train.shape == (5, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    # Pixel (row 4, col 9, channel 2) of image 3 in MATLAB layout X[h, w, c, n].
    assert ds.x_train[3, 2, 4, 9].item() == pytest.approx(x[4, 9, 2, 3] / 255)
    expected = torch.from_numpy(x.transpose(3, 2, 0, 1).astype(np.float32) / np.float32(255))
    assert torch.equal(ds.x_train, expected)
    assert ds.y_train[0].item() == 0
    assert ds.y_train.tolist() == [0 if v == 10 else int(v) for v in y[:, 0]]
    assert ds.y_test[0].item() == 0 and int(ds.y_train.max()) <= 9
    assert ds.num_classes == 10 and ds.output == "sigmoid"


def test_svhn_missing_key(tmp_path):
    _write_svhn(tmp_path)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "labels": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"test_32x32.mat: missing variable\(s\) y; found: \['X', 'labels'\]"):
        load_dataset("svhn", tmp_path)


@pytest.mark.parametrize("x, y", [
    (np.zeros((28, 28, 3, 2), np.uint8), np.ones((2, 1), np.uint8)),   # wrong image size
    (np.zeros((32, 32, 3, 2), np.float64), np.ones((2, 1), np.uint8)),  # wrong dtype
    (np.zeros((32, 32, 3, 2), np.uint8), np.ones((3, 1), np.uint8)),    # label count
])
def test_svhn_wrong_shapes(tmp_path, x, y):
    _write_svhn(tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": y})
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", tmp_path)


def test_svhn_html_and_garbage(tmp_path):
    _write_svhn(tmp_path)
    (tmp_path / "train_32x32.mat").write_bytes(b"<html><body>503</body></html>")
    with pytest.raises(DataError, match="HTML page"):
        load_dataset("svhn", tmp_path)
    (tmp_path / "train_32x32.mat").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="unreadable .mat file"):
        load_dataset("svhn", tmp_path)


def test_svhn_missing_file(tmp_path):
    _write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DataError, match="test_32x32.mat not found"):
        load_dataset("svhn", tmp_path)


# ---------------------------------------------------------------- CIFAR-10

def _tar_members(fmt, prefix="cifar-10-batches-py/", n=3):
    return {prefix + k: v for k, v in fmt.cifar_members(n).items()}


def _check_cifar(ds, fmt, n=3):
    members = fmt.cifar_members(n)
    first = pickle.loads(members["data_batch_1"])
    last = pickle.loads(members["data_batch_5"])
    test = pickle.loads(members["test_batch"])
    assert ds.x_train.shape == (5 * n, 3, 32, 32) and ds.x_test.shape == (n, 3, 32, 32)
    # Row-major CHW: value k of a row is channel k // 1024, row (k % 1024) // 32, col k % 32.
    k = 1 * 1024 + 5 * 32 + 17
    assert ds.x_train[0, 1, 5, 17].item() == pytest.approx(first[b"data"][0, k] / 255)
    assert torch.equal(ds.x_train[-n:], torch.from_numpy(last[b"data"].reshape(n, 3, 32, 32) / np.float32(255)))
    assert ds.y_train[:n].tolist() == first[b"labels"] and ds.y_test.tolist() == test[b"labels"]
    assert ds.class_names == fmt.cifar_names


def test_cifar_from_tarball_in_data_dir(tmp_path, fmt):
    fmt.write_tar(tmp_path / "cifar-10-python.tar.gz", _tar_members(fmt))
    ds = load_dataset("cifar10", tmp_path)
    _check_cifar(ds, fmt)
    assert (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cifar-extract")]


def test_cifar_from_extracted_dir(tmp_path, fmt):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, blob in fmt.cifar_members().items():
        (folder / name).write_bytes(blob)
    _check_cifar(load_dataset("cifar10", tmp_path), fmt)
    _check_cifar(load_dataset("cifar10", folder), fmt)  # the batches folder itself works too


def test_cifar_tar_path_traversal_not_extracted(tmp_path, fmt):
    members = _tar_members(fmt)
    members["../evil.txt"] = b"pwned"
    members["cifar-10-batches-py/../../evil2.txt"] = b"pwned"
    members["/tmp/softvq-evil-abs.txt"] = b"pwned"
    data = tmp_path / "data"
    data.mkdir()
    fmt.write_tar(data / "cifar-10-python.tar.gz", members)
    ds = load_dataset("cifar10", data)
    assert len(ds.x_train) == 15
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "evil2.txt").exists()
    assert not (data / "evil.txt").exists()
    assert not os.path.exists("/tmp/softvq-evil-abs.txt")
    assert sorted(p.name for p in (data / "cifar-10-batches-py").iterdir()) == sorted(fmt.cifar_members())


def test_cifar_tar_batch_as_symlink_refused(tmp_path, fmt):
    import io
    import tarfile

    path = tmp_path / "cifar-10-python.tar.gz"
    members = _tar_members(fmt)
    del members["cifar-10-batches-py/test_batch"]
    fmt.write_tar(path, members)
    with tarfile.open(path, "r:gz") as src, tarfile.open(tmp_path / "l.tar.gz", "w:gz") as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m))
        link = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        dst.addfile(link, io.BytesIO())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match="lacks batch file.*test_batch"):
        extract_archive(tmp_path / "l.tar.gz", out)
    assert list(out.iterdir()) == []


def test_cifar_missing_batch(tmp_path, fmt):
    members = _tar_members(fmt)
    del members["cifar-10-batches-py/data_batch_3"]
    fmt.write_tar(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="lacks batch file.*data_batch_3"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_cifar_missing_batch_in_extracted_dir(tmp_path, fmt):
    for name, blob in fmt.cifar_members().items():
        if name != "test_batch":
            (tmp_path / name).write_bytes(blob)
    with pytest.raises(DataError, match="missing CIFAR-10 batch file test_batch"):
        load_dataset("cifar10", tmp_path)


def _extracted(tmp_path, fmt, **override):
    for name, blob in {**fmt.cifar_members(), **override}.items():
        (tmp_path / name).write_bytes(blob)


def test_cifar_bad_pickle(tmp_path, fmt):
    _extracted(tmp_path, fmt, data_batch_2=b"\x80\x04not really a pickle")
    with pytest.raises(DataError, match="data_batch_2: bad pickle"):
        load_dataset("cifar10", tmp_path)


def test_cifar_wrong_array_size(tmp_path, fmt):
    bad = pickle.dumps({b"data": np.zeros((3, 3000), np.uint8), b"labels": [0, 1, 2]})
    _extracted(tmp_path, fmt, test_batch=bad)
    with pytest.raises(DataError, match=r"test_batch: b'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10", tmp_path)


def test_cifar_label_count_mismatch(tmp_path, fmt):
    bad = pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]})
    _extracted(tmp_path, fmt, data_batch_1=bad)
    with pytest.raises(DataError, match="must hold 3 integers"):
        load_dataset("cifar10", tmp_path)


def test_cifar_html_instead_of_tarball(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"<!doctype html><title>moved</title>")
    with pytest.raises(DataError, match="HTML page .* not a tar.gz archive"):
        load_dataset("cifar10", tmp_path)


def test_cifar_corrupt_tarball(tmp_path, fmt):
    fmt.write_tar(tmp_path / "good.tar.gz", _tar_members(fmt))
    blob = (tmp_path / "good.tar.gz").read_bytes()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or not a tar.gz"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_cifar_nothing_in_data_dir(tmp_path):
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", tmp_path)


def test_cifar_cache_download_and_extract(tmp_path, monkeypatch, fmt, no_network):
    import hashlib

    from softvq.data import download as dl

    archive = fmt.write_tar(tmp_path / "served.tar.gz", _tar_members(fmt))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(dl.FILES["cifar10"], "cifar-10-python.tar.gz",
                        dl.FileSpec(archive.as_uri(), archive.stat().st_size, sha))
    ds = load_dataset("cifar10", cache_dir=tmp_path / "c")
    _check_cifar(ds, fmt)
    assert (tmp_path / "c" / "cifar10" / "cifar-10-batches-py" / "batches.meta").is_file()
    archive.unlink()
    _check_cifar(load_dataset("cifar10", cache_dir=tmp_path / "c", download=False), fmt)
