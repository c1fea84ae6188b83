"""Dataset registry and :func:`load_dataset`, the single entry point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from softvq.data.cifar import load_cifar10
from softvq.data.dataset import Dataset
from softvq.data.sources import load_digits, load_fashion_mnist, load_mnist
from softvq.data.svhn import load_svhn
from softvq.data.user import load_user_file
from softvq.errors import DataError

#: name -> loader(data_dir, cache_dir, download) -> Dataset
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "svhn": load_svhn,
    "cifar10": load_cifar10,
}

_USER_SUFFIXES = (".npz", ".npy")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None, download: bool = True,
                 validation: bool = False) -> Dataset:
    """Load a registered dataset by name, or a user's .npz / .npy file by path.

    ``name`` is a file path when it ends in .npz/.npy or names an existing file.
    ``data_dir``: folder holding the dataset's files (no download, no checksum).
    ``cache_dir``: cache root (default ``$SOFTVQ_CACHE`` or ``~/.cache/softvq``);
    files go to ``<root>/<name>/``. ``download=False`` never touches the network.
    ``validation=True`` returns :meth:`Dataset.validation_split` (10% of the
    training set, stratified, as the evaluation split; the test split is dropped).
    Raises DataError for unknown names and every data problem.
    """
    data = _load(name, data_dir, cache_dir, download)
    return data.validation_split() if validation else data


def _load(name: str, data_dir: str | os.PathLike | None, cache_dir: str | os.PathLike | None, download: bool) -> Dataset:
    name = str(name)
    if name.lower().endswith(_USER_SUFFIXES) or Path(name).expanduser().is_file():
        return load_user_file(name)
    loader = DATASETS.get(name.lower().replace("_", "-"))
    if loader is None:
        valid = ", ".join(sorted(DATASETS))
        raise DataError(f"unknown dataset {name!r}; valid names: {valid}, or a path to a .npz/.npy file")
    return loader(data_dir=data_dir, cache_dir=cache_dir, download=download)
