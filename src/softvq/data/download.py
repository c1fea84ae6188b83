"""Checksum-verified downloads of the canonical dataset files.

Sources of the SHA-256 values in :data:`FILES` (sizes in bytes):

* Fashion-MNIST, MNIST, SVHN: TensorFlow Datasets' url_checksums files
  (``fashion_mnist.txt``, ``mnist.txt``, ``svhn_cropped.txt``), matching values
  in several independent projects. The ossci-datasets MNIST mirror serves the
  original LeCun files (same sizes), so tfds' hashes apply to it.
* CIFAR-10 (python version): the ``file_hash`` Keras passes for
  ``cifar-10-python.tar.gz`` in ``keras.datasets.cifar10`` (tfds pins only the
  binary version).

The Debian ``dataset-fashion-mnist`` files in /usr/share/datasets are NOT
byte-identical to the canonical downloads: their gzip headers were rewritten
(no file name, new mtime; each 23-24 bytes shorter), so their SHA-256 differs.
Their decompressed contents match the published uncompressed checksums. Files
from that folder or from a user's ``--data-dir`` are format-checked, not hashed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from softvq._io import atomic_path
from softvq.data._common import looks_like_html
from softvq.errors import DataError

_CHUNK = 1 << 20
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class FileSpec:
    """A canonical file: where to get it, its size in bytes and its SHA-256 (hex)."""

    url: str
    size: int
    sha256: str


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"
_CIFAR = "https://www.cs.toronto.edu/~kriz/"

#: dataset -> file name -> FileSpec, for every file a loader may download.
FILES: dict[str, dict[str, FileSpec]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": FileSpec(
            _FASHION + "train-images-idx3-ubyte.gz", 26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": FileSpec(
            _FASHION + "train-labels-idx1-ubyte.gz", 29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": FileSpec(
            _FASHION + "t10k-images-idx3-ubyte.gz", 4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": FileSpec(
            _FASHION + "t10k-labels-idx1-ubyte.gz", 5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": FileSpec(
            _MNIST + "train-images-idx3-ubyte.gz", 9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": FileSpec(
            _MNIST + "train-labels-idx1-ubyte.gz", 28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": FileSpec(
            _MNIST + "t10k-images-idx3-ubyte.gz", 1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": FileSpec(
            _MNIST + "t10k-labels-idx1-ubyte.gz", 4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "svhn": {
        "train_32x32.mat": FileSpec(
            _SVHN + "train_32x32.mat", 182040794,
            "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8"),
        "test_32x32.mat": FileSpec(
            _SVHN + "test_32x32.mat", 64275384,
            "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b"),
    },
    "cifar10": {
        "cifar-10-python.tar.gz": FileSpec(
            _CIFAR + "cifar-10-python.tar.gz", 170498071,
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    },
}


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _manual_hint(url: str, dest: Path) -> str:
    return (f"download {url} yourself and place the file at {dest} "
            f"or pass --data-dir <folder containing {dest.name}>")


def _check_sha(path: Path, sha256: str, dest: Path, url: str) -> None:
    if not sha256 or len(sha256) != 64:
        # Never skip verification: a missing hash is a bug in the table.
        raise DataError(f"{dest.name}: no SHA-256 is known for {url}; refusing to use an unverified file")
    got = sha256_of(path)
    if got != sha256.lower():
        with open(path, "rb") as fh:
            html = looks_like_html(fh.read(512))
        what = " (the server sent an HTML page)" if html else ""
        raise DataError(
            f"{dest.name}: SHA-256 mismatch for {url}{what}: expected {sha256}, got {got} "
            f"({path.stat().st_size} bytes); the file was deleted. Try again, or "
            + _manual_hint(url, dest)
        )


def download(url: str, dest_path: str | os.PathLike, sha256: str) -> Path:
    """Download ``url`` to ``dest_path`` and verify its SHA-256 (hex).

    Streams to a temporary file beside ``dest_path`` that is renamed onto it
    only once the checksum matches: a failure never leaves a (partial) file at
    ``dest_path``. Raises DataError when offline, on HTTP errors or on a
    checksum mismatch. Returns ``dest_path`` as a Path.
    """
    dest = Path(dest_path)
    progress = None
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as out:
                total = resp.headers.get("Content-Length") if resp.headers else None
                if sys.stderr.isatty():
                    from tqdm import tqdm

                    progress = tqdm(total=int(total) if total and total.isdigit() else None,
                                    unit="B", unit_scale=True, desc=dest.name, leave=False)
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
            _check_sha(tmp, sha256, dest, url)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {dest.name} from {url} ({reason}); " + _manual_hint(url, dest)
        ) from exc
    except OSError as exc:
        raise DataError(f"could not write {dest}: {exc.strerror or exc}") from exc
    finally:
        if progress is not None:
            progress.close()
    return dest


def fetch(dataset: str, filename: str, folder: Path, *, allow_download: bool = True) -> Path:
    """Path of a verified canonical file in ``folder``, downloading it when missing.

    A file already in ``folder`` is hashed too: it must be the canonical one.
    """
    spec = FILES[dataset][filename]
    dest = folder / filename
    if dest.is_file():
        got = sha256_of(dest)
        if got != spec.sha256:
            raise DataError(
                f"{dest}: SHA-256 mismatch: expected {spec.sha256}, got {got}; delete the file to "
                f"download it again, or pass --data-dir to use your own copy without verification"
            )
        return dest
    if not allow_download:
        raise DataError(f"{dest} not found and downloads are disabled; " + _manual_hint(spec.url, dest))
    return download(spec.url, dest, spec.sha256)
