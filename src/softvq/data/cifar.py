"""CIFAR-10, python version: cifar-10-python.tar.gz -> cifar-10-batches-py/.

The batches are pickles of dicts with b"data" (N, 3072) uint8 (row-major
C, H, W) and b"labels" (list of N ints); batches.meta holds b"label_names".

Security: unpickling can run code. These pickles are only ever loaded from an
archive whose SHA-256 was verified (cache downloads), or from the user's own
``data_dir``, which they chose to trust.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from softvq.data._common import (cache_root, check_label_range, check_not_html, images_to_tensor,
                                 labels_to_tensor)
from softvq.data.dataset import Dataset
from softvq.data.download import fetch
from softvq.data.sources import user_dir
from softvq.errors import DataError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
MEMBERS = (*TRAIN_BATCHES, "test_batch", "batches.meta")


def extract_archive(archive: Path, parent: Path) -> Path:
    """Extract the CIFAR-10 batch files of ``archive`` into ``parent/cifar-10-batches-py``.

    Only the eight expected member names are extracted, as regular files, with
    tarfile's "data" filter: no other member (absolute or ``../`` paths, links,
    devices) is ever written. Extraction goes to a temporary folder renamed
    into place, so a failure leaves no partial folder.
    """
    check_not_html(archive, "a tar.gz archive")
    wanted = {f"{FOLDER}/{m}" for m in MEMBERS}
    target = parent / FOLDER
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tempfile.TemporaryDirectory(prefix=".cifar-extract-", dir=parent) as tmp:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    if member.isfile() and os.path.normpath(member.name) in wanted:
                        member.name = os.path.normpath(member.name)
                        tar.extract(member, tmp, **safe)
            got = {f"{FOLDER}/{m}" for m in MEMBERS if (Path(tmp) / FOLDER / m).is_file()}
            if got != wanted:
                missing = sorted(w.split("/")[-1] for w in wanted - got)
                raise DataError(f"{archive}: archive lacks batch file(s) {', '.join(missing)}")
            os.replace(Path(tmp) / FOLDER, target)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(f"{archive}: corrupt or not a tar.gz archive ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{archive}: cannot extract into {parent} ({exc.strerror or exc})") from exc
    return target


def _unpickle(path: Path) -> dict:
    """Unpickle one batch file (see the module docstring about trust)."""
    if not path.is_file():
        raise DataError(f"{path.parent}: missing CIFAR-10 batch file {path.name}")
    check_not_html(path, "a pickled CIFAR-10 batch")
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # any unpickling failure means a damaged file
        raise DataError(f"{path}: bad pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch -> (uint8 images (N, 3, 32, 32), int64 labels (N,) in 0..9)."""
    path = Path(path)
    d = _unpickle(path)
    data, labels = _get(d, "data"), _get(d, "labels")
    if data is None or labels is None:
        raise DataError(f"{path}: batch lacks b'data' or b'labels' (keys: {sorted(map(str, d))})")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: b'labels' must hold {data.shape[0]} integers, "
                        f"got {labels.dtype} {labels.shape}")
    check_label_range(labels, 10, path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_class_names(path: str | Path) -> list[str]:
    """The 10 class names from batches.meta."""
    path = Path(path)
    names = _get(_unpickle(path), "label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise DataError(f"{path}: expected 10 b'label_names', got {names!r:.80}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _batches_dir(data_dir, cache_dir, download: bool) -> Path:
    if data_dir is not None:
        folder = user_dir(data_dir, "cifar10")
        for cand in (folder / FOLDER, folder):
            if (cand / "data_batch_1").is_file():
                return cand
        if (folder / ARCHIVE).is_file():
            return extract_archive(folder / ARCHIVE, folder)
        raise DataError(f"cifar10: neither {ARCHIVE} nor an extracted {FOLDER}/ folder found in {folder}")
    folder = cache_root(cache_dir) / "cifar10"
    if (folder / FOLDER).is_dir():
        return folder / FOLDER  # created atomically from a verified archive
    archive = fetch("cifar10", ARCHIVE, folder, allow_download=download)
    return extract_archive(archive, folder)


def load_cifar10(data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 download: bool = True) -> Dataset:
    """CIFAR-10: 50,000 train / 10,000 test images (N, 3, 32, 32) in [0, 1], 10 classes."""
    folder = _batches_dir(data_dir, cache_dir, download)
    train = [read_batch(folder / name) for name in TRAIN_BATCHES]
    x_te, y_te = read_batch(folder / "test_batch")
    x_tr = np.concatenate([x for x, _ in train])
    y_tr = np.concatenate([y for _, y in train])
    return Dataset("cifar10", images_to_tensor(x_tr), labels_to_tensor(y_tr),
                   images_to_tensor(x_te), labels_to_tensor(y_te), "sigmoid",
                   read_class_names(folder / "batches.meta"))
