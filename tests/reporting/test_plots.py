"""Figures: exact grid layout, valid PNGs, embedding shapes."""

import matplotlib.image as mpimg  # what plt.imread calls, without importing pyplot
import numpy as np
import pytest

from softvq.reporting.plots import (
    embed_2d,
    image_grid,
    save_codebook_usage,
    save_embedding,
    save_embeddings_grid,
    save_reconstructions,
    save_training_curve,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_side=100):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert min(img.shape[:2]) >= min_side and max(img.shape[:2]) <= 5000
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    return img


# ---------------------------------------------------------------- image_grid


def test_image_grid_exact_placement_single_channel():
    # 3 images 1x2x2 with values 1..12, 2 per row, pad 1, pad_value -1
    imgs = np.arange(1, 13, dtype=float).reshape(3, 1, 2, 2)
    g = image_grid(imgs, nrow=2, pad=1, pad_value=-1)
    # rows = 2 -> H' = 2*(2+1)+1 = 7; cols = 2 -> W' = 7
    expected = np.full((7, 7), -1.0)
    expected[1:3, 1:3] = [[1, 2], [3, 4]]
    expected[1:3, 4:6] = [[5, 6], [7, 8]]
    expected[4:6, 1:3] = [[9, 10], [11, 12]]
    np.testing.assert_array_equal(g, expected)


def test_image_grid_rgb_and_no_pad():
    imgs = np.zeros((2, 3, 1, 1))
    imgs[0, :, 0, 0] = [0.1, 0.2, 0.3]
    imgs[1, :, 0, 0] = [0.4, 0.5, 0.6]
    g = image_grid(imgs, nrow=4, pad=0)
    assert g.shape == (1, 2, 3)  # only as many columns as images
    np.testing.assert_allclose(g[0, 0], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(g[0, 1], [0.4, 0.5, 0.6])


def test_image_grid_shapes_and_validation():
    assert image_grid(np.zeros((5, 1, 28, 28)), nrow=2).shape == (3 * 29 + 1, 2 * 29 + 1)
    assert image_grid(np.zeros((4, 28, 28)), nrow=4, pad=2).shape == (32, 4 * 30 + 2)
    with pytest.raises(ValueError):
        image_grid(np.zeros((0, 1, 2, 2)), nrow=1)
    with pytest.raises(ValueError):
        image_grid(np.zeros((2, 1, 2, 2)), nrow=0)


# ---------------------------------------------------------------- save_*


def test_save_reconstructions_images(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 28, 28))
    x_hat = np.clip(x + rng.normal(scale=0.3, size=x.shape), -0.5, 1.5)  # out of range is fine
    out = tmp_path / "recon.png"
    save_reconstructions(x, x_hat, out, n=16, title="epoch 3")
    _check_png(out)
    save_reconstructions(rng.random((3, 3, 8, 8)), rng.random((3, 3, 8, 8)), tmp_path / "rgb.png")
    _check_png(tmp_path / "rgb.png")


def test_save_reconstructions_feature_vectors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 30))
    save_reconstructions(x, x + 0.1, tmp_path / "feat.png", n=10)
    _check_png(tmp_path / "feat.png")
    with pytest.raises(ValueError):
        save_reconstructions(x, x[:, :5], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_save_embedding_shapes(tmp_path, method):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    z = rng.normal(size=(150, 6)) + 5 * np.eye(6)[y]
    out = tmp_path / f"{method}.png"
    coords = save_embedding(z, y, out, method=method, max_points=100, seed=0)
    assert coords.shape == (100, 2) and np.isfinite(coords).all()
    _check_png(out)
    # fewer points than max_points: all of them, no labels -> one colour
    coords = save_embedding(z[:40], None, out, method=method, max_points=100, title="t")
    assert coords.shape == (40, 2)
    _check_png(out)


def test_embed_2d_subsample_is_deterministic():
    z = np.random.default_rng(0).normal(size=(300, 4))
    c1, i1 = embed_2d(z, method="pca", max_points=50, seed=3)
    c2, i2 = embed_2d(z, method="pca", max_points=50, seed=3)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(c1, c2)
    assert len(np.unique(i1)) == 50 and (np.diff(i1) > 0).all()
    with pytest.raises(ValueError, match="non-finite"):
        embed_2d(np.full((5, 2), np.nan), method="pca")
    with pytest.raises(ValueError, match="method"):
        embed_2d(z, method="umap")


def test_save_embeddings_grid(tmp_path):
    rng = np.random.default_rng(0)
    emb = {
        "softvq": (rng.normal(size=(50, 2)), rng.integers(0, 10, 50)),
        "vq": (rng.normal(size=(30, 2)), rng.integers(0, 10, 30)),
        "ae": (rng.normal(size=(20, 2)), None),
    }
    save_embeddings_grid(emb, tmp_path / "grid.png")
    img = _check_png(tmp_path / "grid.png")
    assert img.shape[1] > img.shape[0]  # panels side by side
    with pytest.raises(ValueError):
        save_embeddings_grid({}, tmp_path / "empty.png")


def test_save_codebook_usage(tmp_path):
    counts = [0, 5, 3, 0, 12, 1]
    save_codebook_usage(counts, tmp_path / "usage.png", title="softvq K=6")
    _check_png(tmp_path / "usage.png")
    big = np.random.default_rng(0).poisson(3.0, size=2048)
    save_codebook_usage(big, tmp_path / "big.png")
    _check_png(tmp_path / "big.png")


def test_save_training_curve(tmp_path):
    hist = [{"step": s, "loss": 1.0 / s, "recon": 0.5 / s, "vq_loss": 0.1} for s in range(1, 50)]
    save_training_curve(hist, tmp_path / "curve.png")
    _check_png(tmp_path / "curve.png")
    # negative values (linear axis), missing/NaN entries, explicit keys
    hist = [{"step": 10, "loss": -1.0}, {"step": 20, "loss": float("nan"), "acc": 0.5},
            {"step": 30, "loss": 0.3, "acc": 0.6}]
    save_training_curve(hist, tmp_path / "curve2.png", keys=["loss", "acc"])
    _check_png(tmp_path / "curve2.png")
    with pytest.raises(ValueError):
        save_training_curve([], tmp_path / "none.png")
