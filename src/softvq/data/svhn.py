"""SVHN (cropped digits): train_32x32.mat / test_32x32.mat, MATLAB v5 files.

Each holds ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) with labels 1..10,
where 10 means digit 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from softvq.data._common import (cache_root, check_label_range, check_not_html, images_to_tensor,
                                 labels_to_tensor)
from softvq.data.dataset import Dataset
from softvq.data.download import fetch
from softvq.data.sources import DIGIT_CLASSES, user_dir
from softvq.errors import DataError

_FILES = ("train_32x32.mat", "test_32x32.mat")


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one SVHN .mat file -> (uint8 images (N, 3, 32, 32), int64 labels (N,) in 0..9)."""
    from scipy.io import loadmat

    path = Path(path)
    check_not_html(path, "a MATLAB .mat file")
    try:
        mat = loadmat(path)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
        raise DataError(f"{path}: unsupported MATLAB file version ({exc}); expected a v5 .mat file") from exc
    except Exception as exc:  # scipy raises many types for damaged files
        raise DataError(f"{path}: unreadable .mat file ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in ("X", "y") if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: missing variable(s) {', '.join(missing)}; found: {found}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise DataError(f"{path}: X must be uint8 of shape (32, 32, 3, N), got {x.dtype} {x.shape}")
    n = x.shape[3]
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must hold {n} integer labels (shape ({n}, 1)), "
                        f"got {y.dtype} {mat['y'].shape}")
    y = y.astype(np.int64)
    y[y == 10] = 0
    check_label_range(y, 10, path)
    return x.transpose(3, 2, 0, 1), y


def load_svhn(data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
              download: bool = True) -> Dataset:
    """SVHN: 73,257 train / 26,032 test images (N, 3, 32, 32) in [0, 1], digits 0-9."""
    if data_dir is not None:
        folder = user_dir(data_dir, "svhn")
        paths = [folder / name for name in _FILES]
        for path in paths:
            if not path.is_file():
                raise DataError(f"svhn: {path.name} not found in {folder}")
    else:
        folder = cache_root(cache_dir) / "svhn"
        paths = [fetch("svhn", name, folder, allow_download=download) for name in _FILES]
    (x_tr, y_tr), (x_te, y_te) = (read_svhn_mat(p) for p in paths)
    return Dataset("svhn", images_to_tensor(x_tr), labels_to_tensor(y_tr),
                   images_to_tensor(x_te), labels_to_tensor(y_te), "sigmoid", list(DIGIT_CLASSES))
