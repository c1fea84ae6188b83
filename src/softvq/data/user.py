"""Datasets from the user's own .npz / .npy files.

``.npz``: ``X`` (required), ``y`` (optional), optionally ``X_test``/``y_test``
for an explicit split; otherwise a fixed 80/20 split (random_state=0),
stratified when every class has at least 2 members. ``.npy``: X only.

X shapes: (N, F) features, (N, H, W) greyscale, (N, H, W, C) or (N, C, H, W)
images with C in {1, 3}. Scaling: uint8 -> value / 255 ("sigmoid"); other
integer images within 0..255 likewise; data already within [0, 1] as-is
("sigmoid"); anything else standardized per feature with the TRAIN mean/std
("linear"). Labels that are not 0..k-1 are remapped in sorted order and
``class_names`` holds the original values as strings. Every test class must occur
in the training labels, and the automatic split needs at least 2 samples per class.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from softvq.data._common import check_not_html, read_head
from softvq.data.dataset import Dataset
from softvq.errors import DataError

_STD_FLOOR = 1e-8
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"  # .npz files are zip archives


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz (by name) or an .npy (as ``X``), refusing pickled objects."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    check_not_html(path, "a NumPy file")
    head = read_head(path, 8)
    if not head.startswith((_NPY_MAGIC, _ZIP_MAGIC)):
        raise DataError(f"{path}: not a NumPy .npy or .npz file (it starts with {head!r}); "
                        "save arrays with numpy.save or numpy.savez")
    try:
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return {"X": obj}
        with obj:
            return {k: obj[k] for k in obj.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: contains pickled Python objects (e.g. an object array); "
                            "refusing to load them: save plain numeric arrays") from exc
        raise DataError(f"{path}: unreadable or corrupt array file ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: unreadable or corrupt array file ({exc})") from exc


def _check_x(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Validate X and return it as (N, F) or (N, C, H, W), still in its dtype."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} has non-numeric or unsupported dtype {x.dtype}; "
                        "expected real numbers")
    if x.ndim < 2 or x.ndim > 4:
        raise DataError(f"{path}: {key} has {x.ndim} dimension(s), shape {x.shape}; expected (N, F), "
                        "(N, H, W), (N, H, W, C) or (N, C, H, W)")
    if x.shape[0] == 0:
        raise DataError(f"{path}: {key} is empty (0 samples)")
    if x.size == 0:
        raise DataError(f"{path}: {key} has samples of size 0, shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{path}: {key} contains {int((~np.isfinite(x)).sum())} NaN or inf values")
    big = float(np.abs(x).max()) if x.dtype.kind == "f" else 0.0
    if big > _FLOAT32_MAX:
        raise DataError(f"{path}: {key} holds values up to {big:.3g}, beyond the float32 range softvq trains in "
                        f"(±{_FLOAT32_MAX:.3g}); rescale the data first")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        if x.shape[1] in (1, 3):
            return x
        if x.shape[3] in (1, 3):
            return x.transpose(0, 3, 1, 2)
        raise DataError(f"{path}: 4-D {key} of shape {x.shape} must be (N, H, W, C) or (N, C, H, W) "
                        "with C in {1, 3}")
    return x


def _check_y(y: np.ndarray, n: int, key: str, path: Path) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{path}: {key} must be 1-D, got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: {key} has {len(y)} labels but there are {n} samples")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            raise DataError(f"{path}: {key} holds non-integer float labels; "
                            "labels must be integers or strings")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "biuUS":
        raise DataError(f"{path}: {key} has unsupported dtype {y.dtype}")
    return y


def _encode_labels(y_tr: np.ndarray, y_te: np.ndarray,
                   path: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Map labels to 0..k-1 (sorted order); names are returned only when remapped."""
    if (y_tr.dtype.kind in "US") != (y_te.dtype.kind in "US"):
        raise DataError(f"{path}: y and y_test must both be numbers or both be strings")
    unseen = np.setdiff1d(y_te, y_tr)
    if unseen.size:
        raise DataError(f"{path}: the test labels hold class(es) {', '.join(map(str, unseen[:10].tolist()))} "
                        "absent from the training labels; the linear probe could never predict them")
    classes = np.unique(np.concatenate([y_tr, y_te]))
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes))):
        return y_tr.astype(np.int64), y_te.astype(np.int64), None
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in classes.tolist()]
    return np.searchsorted(classes, y_tr), np.searchsorted(classes, y_te), names


def _split(n: int, y: np.ndarray | None, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Fixed 80/20 index split (random_state=0), stratified when possible."""
    from sklearn.model_selection import train_test_split

    if n < 2:
        raise DataError(f"{path}: {n} sample(s) is fewer than the 2 needed for a train/test split")
    if y is not None:
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            rare = ", ".join(str(c) for c in classes[counts < 2][:10])
            raise DataError(f"{path}: class(es) {rare} of y have a single sample; every class needs at least 2 "
                            "(one for each split): drop them, or give X_test/y_test yourself")
    idx = np.arange(n)
    if y is not None:
        try:
            return train_test_split(idx, test_size=0.2, stratify=y, random_state=0)
        except ValueError:  # too few test samples to hold every class
            pass
    return train_test_split(idx, test_size=0.2, random_state=0)


def _scale(x_tr: np.ndarray, x_te: np.ndarray, is_image: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Return float32 (train, test, output) following the module's scaling rules."""
    if x_tr.dtype == np.uint8 or (is_image and x_tr.dtype.kind in "iu"
                                  and min(x_tr.min(), x_te.min()) >= 0
                                  and max(x_tr.max(), x_te.max()) <= 255
                                  and max(x_tr.max(), x_te.max()) > 1):
        return (x_tr.astype(np.float32) / np.float32(255), x_te.astype(np.float32) / np.float32(255),
                "sigmoid")
    lo, hi = min(x_tr.min(), x_te.min()), max(x_tr.max(), x_te.max())
    if lo >= 0 and hi <= 1:
        return x_tr.astype(np.float32), x_te.astype(np.float32), "sigmoid"
    mean = x_tr.mean(axis=0, dtype=np.float64)
    std = x_tr.std(axis=0, dtype=np.float64)
    std = np.where(std < _STD_FLOOR, 1.0, std)  # constant features: centre only
    return ((x_tr - mean) / std).astype(np.float32), ((x_te - mean) / std).astype(np.float32), "linear"


def load_user_file(path: str | os.PathLike) -> Dataset:
    """Load a user's .npz / .npy file as a Dataset (see the module docstring)."""
    path = Path(path).expanduser()
    arrays = _load_arrays(path)
    if "X" not in arrays:
        raise DataError(f"{path}: no array named 'X' (found: {sorted(arrays) or 'none'})")
    x = _check_x(arrays["X"], "X", path)
    y = _check_y(arrays["y"], len(x), "y", path) if "y" in arrays else None
    if "X_test" in arrays:
        x_te = _check_x(arrays["X_test"], "X_test", path)
        if x_te.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: X_test samples have shape {x_te.shape[1:]}, X samples {x.shape[1:]}")
        if (y is None) != ("y_test" not in arrays):
            raise DataError(f"{path}: give both y and y_test, or neither")
        y_te = _check_y(arrays["y_test"], len(x_te), "y_test", path) if y is not None else None
        x_tr, y_tr = x, y
    elif "y_test" in arrays:
        raise DataError(f"{path}: y_test given without X_test")
    else:
        tr, te = _split(len(x), y, path)
        x_tr, x_te = x[tr], x[te]
        y_tr, y_te = (y[tr], y[te]) if y is not None else (None, None)
    names = None
    if y_tr is not None:
        y_tr, y_te, names = _encode_labels(y_tr, y_te, path)
    if x_tr.dtype.kind == "b":
        x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)
    x_tr, x_te, output = _scale(x_tr, x_te, x.ndim == 4)
    to_t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Dataset(path.stem, to_t(x_tr), to_t(None if y_tr is None else y_tr.astype(np.int64)),
                   to_t(x_te), to_t(None if y_te is None else y_te.astype(np.int64)), output, names)
