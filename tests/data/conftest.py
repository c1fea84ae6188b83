"""Fixtures for the data tests: writers for small files in the true on-disk formats."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

try:  # run from a checkout without an installed package
    import softvq.data  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, payload."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, compress: bool | None = None) -> Path:
    data = idx_bytes(arr)
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_idx_set(folder: Path, n_train: int = 6, n_test: int = 4, seed: int = 0, compress: bool = True):
    """Write the four (Fashion-)MNIST IDX files; return (train images, train labels, test images, test labels)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    suffix = ".gz" if compress else ""
    for name, arr in zip(names, arrays):
        write_idx(folder / (name + suffix), arr, compress)
    return arrays


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_members(n: int = 3) -> dict[str, bytes]:
    """Pickled CIFAR-10 batches (as bytes) keyed by file name: 5 train batches, test_batch, batches.meta."""
    members = {}
    for i in range(1, 6):
        data, labels = cifar_batch(n, i)
        members[f"data_batch_{i}"] = pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": labels})
    data, labels = cifar_batch(n, 99)
    members["test_batch"] = pickle.dumps({b"data": data, b"labels": labels})
    members["batches.meta"] = pickle.dumps({b"label_names": [s.encode() for s in CIFAR_NAMES]})
    return members


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz holding ``members`` (member name -> content), names used verbatim."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def fmt() -> SimpleNamespace:
    """The file writers above, for tests (test modules cannot import conftest reliably)."""
    return SimpleNamespace(idx_bytes=idx_bytes, write_idx=write_idx, write_idx_set=write_idx_set,
                           cifar_members=cifar_members, write_tar=write_tar, cifar_names=CIFAR_NAMES)


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly if a test tries to reach anything but file:// URLs."""
    import urllib.request

    real = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(getattr(url, "full_url", url)).startswith("file:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Point $SOFTVQ_CACHE at a per-test folder so nothing touches ~/.cache."""
    cache = tmp_path / "cache-root"
    monkeypatch.setenv("SOFTVQ_CACHE", str(cache))
    return cache
