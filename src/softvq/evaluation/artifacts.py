"""Plots written into a run directory after training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import _io
from ..config import TrainConfig
from ..data import Dataset
from ..model import Autoencoder
from ..reporting import plots
from .encode import encode_split

#: how many test samples the embedding plot uses (t-SNE cost grows with it)
EMBED_POINTS = 2000


def write_plots(run_dir: Path, model: Autoencoder, data: Dataset, cfg: TrainConfig, history: list[dict]) -> None:
    """curve.png, reconstructions.png, embedding.png and (quantizers) codebook_usage.png."""
    model.eval()
    if history:
        plots.save_training_curve(history, run_dir / "curve.png", keys=["loss", "recon", "reg"])
    x = data.x_test[:16]
    plots.save_reconstructions(x.numpy(), model.reconstruct(x).numpy(), run_dir / "reconstructions.png")
    enc = encode_split(model, data.x_test[:EMBED_POINTS], cfg.eval_batch_size)
    y = None if data.y_test is None else data.y_test[:EMBED_POINTS].numpy()
    coords = plots.save_embedding(enc.latents, y, run_dir / "embedding.png", method="tsne", seed=cfg.seed,
                                  title=f"{cfg.bottleneck}: test latents (t-SNE)")
    _io.write_npy(run_dir / "embedding_2d.npy", np.asarray(coords, dtype=np.float32))
    if enc.indices is not None and cfg.num_codes:
        counts = np.bincount(encode_split(model, data.x_test, cfg.eval_batch_size).indices.ravel(), minlength=cfg.num_codes)
        plots.save_codebook_usage(counts, run_dir / "codebook_usage.png", title=f"{cfg.bottleneck}: code usage on the test split")
