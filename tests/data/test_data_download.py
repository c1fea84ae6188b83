"""download() and the cache lookup, against local file:// URLs only (no network)."""

from __future__ import annotations

import gzip
import hashlib
import re

import numpy as np
import pytest

from softvq.data import download as dl
from softvq.data import load_dataset
from softvq.errors import DataError

pytestmark = pytest.mark.usefixtures("no_network")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_checksum_match(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello softvq" * 1000)
    dest = tmp_path / "out" / "file.bin"
    got = dl.download(src.as_uri(), dest, _sha(src.read_bytes()))
    assert got == dest and dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # no temp left behind


def test_download_checksum_mismatch_deletes_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"tampered")
    dest = tmp_path / "out" / "file.bin"
    wrong = "0" * 64
    with pytest.raises(DataError) as e:
        dl.download(src.as_uri(), dest, wrong)
    msg = str(e.value)
    assert f"expected {wrong}" in msg and f"got {_sha(b'tampered')}" in msg
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_download_mismatch_keeps_previous_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"new")
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        dl.download(src.as_uri(), dest, "1" * 64)
    assert dest.read_bytes() == b"old"


def test_download_html_reply_is_named(tmp_path):
    src = tmp_path / "page"
    src.write_bytes(b"<!DOCTYPE html><html>Not found</html>")
    with pytest.raises(DataError, match="HTML page"):
        dl.download(src.as_uri(), tmp_path / "f.gz", "2" * 64)


def test_download_unreachable_gives_guidance(tmp_path):
    url = (tmp_path / "missing.gz").as_uri()
    dest = tmp_path / "cache" / "train-images-idx3-ubyte.gz"
    with pytest.raises(DataError) as e:
        dl.download(url, dest, "3" * 64)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and url in msg
    assert f"place the file at {dest}" in msg and "--data-dir" in msg
    assert not dest.exists()


def test_missing_checksum_fails_loudly(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    with pytest.raises(DataError, match="no SHA-256 is known"):
        dl.download(src.as_uri(), tmp_path / "f", "")
    assert not (tmp_path / "f").exists()


def test_checksum_table_is_complete():
    expected = {
        "fashion-mnist": {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
        "svhn": {"train_32x32.mat", "test_32x32.mat"},
        "cifar10": {"cifar-10-python.tar.gz"},
    }
    expected["mnist"] = expected["fashion-mnist"]
    assert {k: set(v) for k, v in dl.FILES.items()} == expected
    hashes = [spec.sha256 for files in dl.FILES.values() for spec in files.values()]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert len(set(hashes)) == len(hashes)
    for files in dl.FILES.values():
        for name, spec in files.items():
            assert spec.url.endswith("/" + name) and spec.size > 1000
    assert dl.FILES["mnist"]["train-images-idx3-ubyte.gz"].url.startswith("https://ossci-datasets.s3.amazonaws.com/")
    assert dl.FILES["cifar10"]["cifar-10-python.tar.gz"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _serve_mnist(tmp_path, monkeypatch, fmt):
    """Write fake MNIST .gz files and point the checksum table at them via file:// URLs."""
    arrays = fmt.write_idx_set(tmp_path / "server", 5, 3)
    for path in (tmp_path / "server").iterdir():
        spec = dl.FileSpec(path.as_uri(), path.stat().st_size, _sha(path.read_bytes()))
        monkeypatch.setitem(dl.FILES["mnist"], path.name, spec)
    return arrays


def test_load_downloads_into_cache_then_reuses_it(tmp_path, monkeypatch, fmt):
    tr_x, tr_y, _, te_y = _serve_mnist(tmp_path, monkeypatch, fmt)
    cache = tmp_path / "mycache"
    ds = load_dataset("mnist", cache_dir=cache)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(dl.FILES["mnist"])
    assert ds.y_train.tolist() == tr_y.tolist() and ds.y_test.tolist() == te_y.tolist()
    assert ds.x_train[4, 0, 27, 0].item() == pytest.approx(tr_x[4, 27, 0] / 255)
    for path in (tmp_path / "server").iterdir():
        path.unlink()  # the "server" is gone: the second load must use the cache
    again = load_dataset("mnist", cache_dir=cache, download=False)
    assert again.y_train.tolist() == tr_y.tolist()


def test_default_cache_is_softvq_cache_env(tmp_path, monkeypatch, fmt, isolated_cache):
    _serve_mnist(tmp_path, monkeypatch, fmt)
    load_dataset("mnist")
    assert (isolated_cache / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_download_disabled_and_missing(tmp_path, monkeypatch, fmt):
    _serve_mnist(tmp_path, monkeypatch, fmt)
    with pytest.raises(DataError, match="downloads are disabled.*--data-dir"):
        load_dataset("mnist", cache_dir=tmp_path / "c", download=False)
    assert not (tmp_path / "c" / "mnist").exists() or not any((tmp_path / "c" / "mnist").iterdir())


def test_tampered_cache_file_is_rejected(tmp_path, monkeypatch, fmt):
    _serve_mnist(tmp_path, monkeypatch, fmt)
    cache = tmp_path / "c"
    load_dataset("mnist", cache_dir=cache)
    (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x00"))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        load_dataset("mnist", cache_dir=cache)


def test_offline_load_names_file_url_and_fix(tmp_path, monkeypatch):
    url = (tmp_path / "gone" / "train-images-idx3-ubyte.gz").as_uri()
    monkeypatch.setitem(dl.FILES["mnist"], "train-images-idx3-ubyte.gz", dl.FileSpec(url, 10, "4" * 64))
    with pytest.raises(DataError) as e:
        load_dataset("mnist", cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert url in msg and str(tmp_path / "c" / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "--data-dir" in msg


def test_sha256_of_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (tmp_path / "f").write_bytes(data)
    assert dl.sha256_of(tmp_path / "f") == _sha(data)
