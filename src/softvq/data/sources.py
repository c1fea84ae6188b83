"""Built-in datasets stored as IDX files (MNIST, Fashion-MNIST) and scikit-learn digits,
plus the file-lookup rules shared by every downloadable dataset.

Lookup order for a dataset's files: ``data_dir`` when given (files must be
there), else a system folder where one exists (Fashion-MNIST), else the cache
``<cache root>/<dataset>``, downloading verified canonical files when missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from softvq.data._common import cache_root, check_label_range, images_to_tensor, labels_to_tensor
from softvq.data.dataset import Dataset
from softvq.data.download import fetch
from softvq.data.idx import read_idx_pair
from softvq.errors import DataError

#: Where the Debian package ``dataset-fashion-mnist`` installs its files.
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def user_dir(data_dir: str | os.PathLike, dataset: str) -> Path:
    """``data_dir`` as a Path; DataError when it is not an existing folder."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{dataset}: data directory {folder} does not exist or is not a folder")
    return folder


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _idx_paths(dataset: str, data_dir, cache_dir, download: bool, system_dir: Path | None) -> list[Path]:
    """Paths of the four IDX files (.gz or uncompressed), in ``_IDX_FILES`` order."""
    if data_dir is not None:
        folder = user_dir(data_dir, dataset)
        paths = []
        for base in _IDX_FILES:
            path = _first_existing(folder, [base + ".gz", base])
            if path is None:
                raise DataError(f"{dataset}: {base}.gz (or uncompressed {base}) not found in {folder}")
            paths.append(path)
        return paths
    if system_dir is not None and system_dir.is_dir():
        found = [_first_existing(system_dir, [b + ".gz", b]) for b in _IDX_FILES]
        if all(found):
            return found  # type: ignore[return-value]
    folder = cache_root(cache_dir) / dataset
    return [fetch(dataset, base + ".gz", folder, allow_download=download) for base in _IDX_FILES]


def _load_idx_dataset(dataset: str, classes: list[str], data_dir, cache_dir, download: bool,
                      system_dir: Path | None = None) -> Dataset:
    tr_img, tr_lbl, te_img, te_lbl = _idx_paths(dataset, data_dir, cache_dir, download, system_dir)
    splits = []
    for img_path, lbl_path in ((tr_img, tr_lbl), (te_img, te_lbl)):
        images, labels = read_idx_pair(img_path, lbl_path)
        if images.shape[1:] != (28, 28):
            raise DataError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
        check_label_range(labels, len(classes), lbl_path)
        splits.append((images_to_tensor(images[:, None]), labels_to_tensor(labels)))
    (x_tr, y_tr), (x_te, y_te) = splits
    return Dataset(dataset, x_tr, y_tr, x_te, y_te, "sigmoid", list(classes))


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                       download: bool = True) -> Dataset:
    """Fashion-MNIST: 60,000 train / 10,000 test images (N, 1, 28, 28) in [0, 1], 10 classes."""
    return _load_idx_dataset("fashion-mnist", FASHION_CLASSES, data_dir, cache_dir, download,
                             FASHION_SYSTEM_DIR)


def load_mnist(data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
               download: bool = True) -> Dataset:
    """MNIST: 60,000 train / 10,000 test images (N, 1, 28, 28) in [0, 1], digits 0-9."""
    return _load_idx_dataset("mnist", DIGIT_CLASSES, data_dir, cache_dir, download)


def load_digits(data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                download: bool = True) -> Dataset:
    """scikit-learn's 8x8 digits (offline): (N, 1, 8, 8) in [0, 1] (pixel / 16).

    Fixed stratified 80/20 split (random_state=0): 1,437 train / 360 test.
    ``data_dir``, ``cache_dir`` and ``download`` are ignored.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    return Dataset("digits", torch.from_numpy(np.ascontiguousarray(x[tr])), torch.from_numpy(y[tr]),
                   torch.from_numpy(np.ascontiguousarray(x[te])), torch.from_numpy(y[te]),
                   "sigmoid", list(DIGIT_CLASSES))
