"""Small helpers shared by the dataset loaders (not public API)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from softvq.errors import DataError

_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<?xml")


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like an HTML/XML page."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_PREFIXES)


def read_head(path: Path, n: int = 512) -> bytes:
    """First ``n`` bytes of ``path``; DataError when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def check_not_html(path: Path, what: str) -> None:
    """Raise DataError when ``path`` holds an HTML page instead of ``what``."""
    if looks_like_html(read_head(path)):
        raise DataError(f"{path}: looks like an HTML page (a failed download?), not {what}")


def images_to_tensor(u8: np.ndarray) -> torch.Tensor:
    """uint8 array of shape (N, C, H, W) -> float32 tensor in [0, 1] (value / 255)."""
    # torch.tensor copies (the input may be a read-only or transposed view);
    # the float conversion and division then run multithreaded.
    return torch.tensor(u8, dtype=torch.uint8).to(torch.float32).div_(255.0).contiguous()


def labels_to_tensor(y: np.ndarray) -> torch.Tensor:
    """Integer label array of shape (N,) -> int64 tensor."""
    return torch.from_numpy(np.array(y, dtype=np.int64).reshape(-1))


def check_label_range(y: np.ndarray, k: int, path: Path) -> None:
    """Raise DataError unless every label lies in 0..k-1."""
    if y.size and (int(y.min()) < 0 or int(y.max()) >= k):
        raise DataError(
            f"{path}: labels must lie in 0..{k - 1}, found values in {int(y.min())}..{int(y.max())}"
        )


def cache_root(cache_dir: str | os.PathLike | None) -> Path:
    """Cache root: ``cache_dir``, else ``$SOFTVQ_CACHE``, else ``~/.cache/softvq``.

    Each dataset lives in its own sub-folder ``<root>/<dataset>`` (MNIST and
    Fashion-MNIST use identical file names).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SOFTVQ_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "softvq"
