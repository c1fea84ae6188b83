"""Loading is safe: weights_only checkpoints, crafted pickles refused, safe tar extraction, SHA-256."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

import softvq
from softvq.cli import main
from softvq.data.cifar import extract_archive
from softvq.data.download import download, sha256_of
from softvq.errors import DataError, SoftVQError
from softvq.run import safe_torch_load

from reliability_helpers import small_cfg


class Payload:
    """Unpickling this runs a shell command (the classic malicious checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_files(folder: Path, marker: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    evil = {"model": {"encoder.0.weight": Payload(marker)}}
    raw = folder / "raw.pt"
    raw.write_bytes(pickle.dumps(evil, protocol=2))  # a bare pickle stream
    zipped = folder / "zipped.pt"
    torch.save(evil, zipped)  # the same payload inside torch's zip container
    assert not marker.exists()  # writing it ran nothing
    return {"raw": raw, "zip": zipped}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, digits):
    return softvq.train(small_cfg(steps=5, log_every=5), tmp_path_factory.mktemp("run") / "r", dataset=digits,
                        progress=False)


@pytest.mark.parametrize("kind", ["raw", "zip"])
def test_crafted_checkpoint_is_refused_and_never_runs(tmp_path, trained_run, capsys, kind):
    marker = tmp_path / "PWNED"
    evil = crafted_files(tmp_path / "files", marker)[kind]
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)

    with pytest.raises(SoftVQError, match="refusing to load .*weights-only"):
        safe_torch_load(evil)

    shutil.copy(evil, run / "model.pt")
    with pytest.raises(SoftVQError, match="refusing to load"):
        softvq.load(run)
    assert main(["evaluate", str(run), "--n-init", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "model.pt" in err and "Traceback" not in err

    shutil.copy(evil, run / "checkpoint.pt")
    assert main(["train", "--resume", str(run), "-q"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists(), "the payload ran"


def test_blocked_global_is_named_and_the_payload_is_real(tmp_path):
    marker = tmp_path / "PWNED"
    files = crafted_files(tmp_path, marker)
    with pytest.raises(SoftVQError, match=r"would import or call (posix|nt)\.system"):
        safe_torch_load(files["zip"])
    assert not marker.exists()
    pickle.loads(files["raw"].read_bytes())  # what a plain unpickler does with it
    assert marker.exists()


def test_truncated_and_foreign_checkpoints_get_clear_errors(tmp_path, trained_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    assert main(["train", "--resume", str(run), "-q"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    # a valid checkpoint of a different architecture
    torch.save({"model": {"nope": torch.zeros(1)}, "optimizer": {}, "step": 1, "history": [],
                "torch_rng": torch.get_rng_state()}, run / "checkpoint.pt")
    assert main(["train", "--resume", str(run), "-q"]) == 2
    assert "does not fit this run" in capsys.readouterr().err


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_archive_extraction_cannot_escape(tmp_path):
    good = {f"cifar-10-batches-py/{m}": b"x" for m in
            ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")}
    evil = {"../escaped.txt": b"pwned", "cifar-10-batches-py/../../escaped2.txt": b"pwned",
            str(tmp_path / "absolute.txt"): b"pwned"}
    parent = tmp_path / "a" / "b"
    parent.mkdir(parents=True)
    _tar(parent / "cifar.tar.gz", {**evil, **good})
    target = extract_archive(parent / "cifar.tar.gz", parent)
    assert sorted(p.name for p in target.iterdir()) == sorted(n.split("/")[-1] for n in good)
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped2.txt").exists()
    assert not (tmp_path / "absolute.txt").exists()


def test_download_with_wrong_sha256_is_deleted(tmp_path):
    src = tmp_path / "served.bin"
    src.write_bytes(b"<html>not the dataset</html>")
    dest = tmp_path / "cache" / "train.gz"
    with pytest.raises(DataError, match="SHA-256 mismatch.*the file was deleted"):
        download(src.as_uri(), dest, "0" * 64)
    assert not dest.exists() and os.listdir(dest.parent) == []
    assert download(src.as_uri(), dest, sha256_of(src)) == dest and dest.read_bytes() == src.read_bytes()
