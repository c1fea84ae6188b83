"""IDX parsing and the MNIST / Fashion-MNIST loaders on small files written in the real format."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from softvq.data import load_dataset
from softvq.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from softvq.errors import DataError


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_exact_values(tmp_path, fmt, compress):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = fmt.write_idx(tmp_path / ("img.gz" if compress else "img"), images, compress)
    out = read_idx(path, IMAGES_MAGIC)
    assert out.shape == (7, 5, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)
    labels = np.array([3, 0, 9, 1], dtype=np.uint8)
    lpath = fmt.write_idx(tmp_path / "lbl", labels, compress)
    np.testing.assert_array_equal(read_idx(lpath, LABELS_MAGIC), labels)


def test_header_is_big_endian(tmp_path):
    # Hand-built file: 2 images of 1x2 pixels.
    raw = struct.pack(">IIII", 0x803, 2, 1, 2) + bytes([0, 255, 7, 128])
    (tmp_path / "f").write_bytes(raw)
    out = read_idx(tmp_path / "f", IMAGES_MAGIC)
    assert out.tolist() == [[[0, 255]], [[7, 128]]]


def test_truncated_payload(tmp_path, fmt):
    data = fmt.idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5]
    (tmp_path / "t.gz").write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match=r"truncated: expected 48 bytes of pixel data, found 43"):
        read_idx(tmp_path / "t.gz", IMAGES_MAGIC)


def test_truncated_header(tmp_path):
    (tmp_path / "t").write_bytes(struct.pack(">II", 0x803, 3))
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "t", IMAGES_MAGIC)


def test_extra_bytes_rejected(tmp_path, fmt):
    (tmp_path / "x").write_bytes(fmt.idx_bytes(np.zeros(4, np.uint8)) + b"\x00\x01")
    with pytest.raises(DataError, match="2 unexpected bytes"):
        read_idx(tmp_path / "x", LABELS_MAGIC)


def test_wrong_magic(tmp_path, fmt):
    path = fmt.write_idx(tmp_path / "labels.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"bad magic number 0x00000801, expected 0x00000803"):
        read_idx(path, IMAGES_MAGIC)


def test_html_saved_as_gz(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"<!DOCTYPE html>\n<html><body>Access denied</body></html>")
    with pytest.raises(DataError, match=r"looks like an HTML page \(a failed download\?\), not an IDX file") as e:
        read_idx(path, IMAGES_MAGIC)
    assert str(path) in str(e.value)


def test_html_inside_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"  <html><head></head></html>"))
    with pytest.raises(DataError, match="HTML page"):
        read_idx(path, IMAGES_MAGIC)


def test_corrupt_gzip_crc(tmp_path, fmt):
    blob = bytearray(gzip.compress(fmt.idx_bytes(np.arange(20, dtype=np.uint8))))
    blob[-8] ^= 0xFF  # damage the CRC32 trailer
    (tmp_path / "c.gz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(tmp_path / "c.gz", LABELS_MAGIC)


def test_corrupt_gzip_eof(tmp_path, fmt):
    blob = gzip.compress(fmt.idx_bytes(np.arange(200, dtype=np.uint8)))
    (tmp_path / "c.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(tmp_path / "c.gz", LABELS_MAGIC)


def test_gz_name_but_not_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataError, match="not a gzip file"):
        read_idx(tmp_path / "x.gz", LABELS_MAGIC)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_data_dir(tmp_path, fmt, compress):
    tr_x, tr_y, te_x, te_y = fmt.write_idx_set(tmp_path / "d", 6, 4, compress=compress)
    ds = load_dataset("fashion-mnist", tmp_path / "d")
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    expected = torch.from_numpy(tr_x.astype(np.float32) / np.float32(255))[:, None]
    assert torch.equal(ds.x_train, expected)
    assert ds.x_test[2, 0, 13, 7].item() == pytest.approx(te_x[2, 13, 7] / 255)
    assert ds.y_train.tolist() == tr_y.tolist() and ds.y_test.tolist() == te_y.tolist()
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.output == "sigmoid" and ds.is_image and ds.num_features == 784


def test_mnist_from_data_dir_and_digit_names(tmp_path, fmt):
    fmt.write_idx_set(tmp_path, 3, 2)
    ds = load_dataset("mnist", tmp_path)
    assert ds.name == "mnist" and ds.class_names == [str(i) for i in range(10)]
    assert len(ds.x_train) == 3 and len(ds.y_test) == 2


def test_data_dir_missing_file_is_named(tmp_path, fmt):
    fmt.write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", tmp_path)


def test_data_dir_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nope")


def test_image_label_count_mismatch(tmp_path, fmt):
    fmt.write_idx_set(tmp_path, 6, 4)
    fmt.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="6 images but .* 5 labels"):
        load_dataset("mnist", tmp_path)


def test_label_out_of_range(tmp_path, fmt):
    fmt.write_idx_set(tmp_path, 6, 4)
    fmt.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 10, 3], np.uint8))
    with pytest.raises(DataError, match=r"labels must lie in 0..9"):
        load_dataset("mnist", tmp_path)


def test_wrong_image_size(tmp_path, fmt):
    fmt.write_idx_set(tmp_path, 6, 4)
    fmt.write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((6, 28, 27), np.uint8))
    with pytest.raises(DataError, match="28x27, expected 28x28"):
        load_dataset("mnist", tmp_path)


def test_parses_60000_images_fast(tmp_path, fmt):
    import time

    images = np.random.default_rng(0).integers(0, 256, (60000, 28, 28), dtype=np.uint8)
    path = fmt.write_idx(tmp_path / "big", images, compress=False)
    start = time.perf_counter()
    out = read_idx(path, IMAGES_MAGIC)
    assert time.perf_counter() - start < 1.0
    assert out.shape == (60000, 28, 28) and out[59999, 27, 27] == images[59999, 27, 27]
