"""Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

Layout: big-endian magic ``0x0000 <dtype> <ndim>`` (dtype 0x08 = uint8), then
``ndim`` big-endian uint32 sizes, then the row-major payload.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from softvq.data._common import looks_like_html
from softvq.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Whole content of ``path``, decompressed when it is gzip (detected by content)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if looks_like_html(raw[:512]):
        raise DataError(f"{path}: looks like an HTML page (a failed download?), not an IDX file")
    if raw[:2] != _GZIP_MAGIC:
        if path.suffix == ".gz" and raw[:2] != b"\x00\x00":
            raise DataError(f"{path}: not a gzip file (bad magic bytes {raw[:2].hex()})")
        return raw
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip ({exc})") from exc
    if looks_like_html(data[:512]):
        raise DataError(f"{path}: looks like an HTML page (a failed download?), not an IDX file")
    return data


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file of uint8 values whose magic number must equal ``magic``.

    Returns a read-only uint8 array of the shape in the header, e.g. (N, 28, 28)
    for ``IMAGES_MAGIC`` and (N,) for ``LABELS_MAGIC``. Any format problem
    raises DataError naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    if len(data) < 4:
        raise DataError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {kind}, uint8)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: header needs {header} bytes, found {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DataError(f"{path}: invalid image size {dims[1]}x{dims[2]}")
    expected, found_len = math.prod(dims), len(data) - header
    what = "pixel" if kind == "images" else "label"
    if found_len < expected:
        raise DataError(f"{path}: truncated: expected {expected} bytes of {what} data, found {found_len}")
    if found_len > expected:
        raise DataError(f"{path}: {found_len - expected} unexpected bytes after "
                        f"the {expected} bytes of {what} data")
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image (N, H, W) and label (N,) IDX files; counts must agree."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels"
        )
    return images, labels
