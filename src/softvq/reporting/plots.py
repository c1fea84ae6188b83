"""Figures for reports: reconstructions, latent embeddings, code usage, training curves.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg
canvas directly: pyplot (and its global figure registry / GUI backends) is never
touched, so nothing needs closing and nothing is ever shown. Every PNG is
written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from softvq._io import atomic_path
from softvq.evaluation.metrics import codebook_usage_from_counts

__all__ = [
    "image_grid",
    "save_reconstructions",
    "embed_2d",
    "save_embedding",
    "save_codebook_usage",
    "save_training_curve",
    "save_embeddings_grid",
]


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def image_grid(
    images: np.ndarray, nrow: int, pad: int = 1, pad_value: float = 1.0
) -> np.ndarray:
    """Tile images (N, C, H, W) (or (N, H, W)) into one picture, ``nrow`` images per row.

    Each image sits at ``(pad + r*(H+pad), pad + c*(W+pad))``; the rest is
    ``pad_value``. Returns (H', W') for one channel, else (H', W', C), with
    H' = rows*(H+pad)+pad, W' = min(nrow, N)*(W+pad)+pad. Values are not clipped.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"images must be (N, C, H, W) with N >= 1, got shape {x.shape}")
    if nrow < 1 or pad < 0:
        raise ValueError(f"need nrow >= 1 and pad >= 0, got nrow={nrow}, pad={pad}")
    n, c, h, w = x.shape
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value)
    for i in range(n):
        top, left = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        grid[top : top + h, left : left + w] = x[i].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def _show_images(ax: Any, batch: np.ndarray, nrow: int, title: str) -> None:
    grid = np.clip(image_grid(batch, nrow), 0.0, 1.0)
    if grid.ndim == 3 and grid.shape[2] not in (3, 4):
        grid = grid[..., 0]  # e.g. 2-channel data: show the first channel
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


def save_reconstructions(
    x: np.ndarray, x_hat: np.ndarray, path: str | os.PathLike, n: int = 16,
    title: str | None = None,
) -> None:
    """Originals (top) above reconstructions (bottom) for the first ``n`` samples.

    x, x_hat: (N, C, H, W) or (N, H, W) images in [0, 1] (clipped for display), or
    (N, F) feature vectors, drawn as heat-map rows on a shared colour scale.
    """
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape or x.ndim not in (2, 3, 4) or x.shape[0] == 0:
        raise ValueError(f"need matching non-empty (N,F)/(N,H,W)/(N,C,H,W) arrays, "
                         f"got {x.shape} and {x_hat.shape}")
    x, x_hat = x[:n], x_hat[:n]
    if x.ndim == 2:
        fig = _figure(8, 2 + 0.25 * len(x))
        axes = fig.subplots(2, 1, sharex=True)
        lo = float(np.nanmin([x.min(), x_hat.min()]))
        hi = float(np.nanmax([x.max(), x_hat.max()]))
        for ax, data, name in zip(axes, (x, x_hat), ("original", "reconstruction")):
            im = ax.imshow(data, aspect="auto", cmap="viridis", vmin=lo, vmax=hi,
                           interpolation="nearest")
            ax.set_title(name)
            ax.set_ylabel("sample")
        axes[1].set_xlabel("feature")
        fig.colorbar(im, ax=list(axes), shrink=0.8)
    else:
        per_row = min(len(x), 8)
        rows = math.ceil(len(x) / per_row)
        fig = _figure(max(4.0, 1.0 * per_row), 2.2 * rows + 0.8)
        axes = fig.subplots(2, 1)
        _show_images(axes[0], x, per_row, "original")
        _show_images(axes[1], x_hat, per_row, "reconstruction")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def embed_2d(
    z: np.ndarray, method: str = "tsne", max_points: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D embedding of latents z (N, D) on a random subsample of at most max_points.

    Returns ``(coords, idx)``: coords (M, 2), M = min(N, max_points), for the rows
    ``z[idx]`` (idx sorted; deterministic for a given seed).
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z must be (N, D) with N >= 2, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("z contains non-finite values (NaN/inf)")
    if method not in ("tsne", "pca"):
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    n = z.shape[0]
    idx = np.arange(n)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    sub = z[idx]
    if sub.shape[1] < 2:  # 1-D latents: nothing to reduce, put them on the x axis
        return np.column_stack([sub[:, 0], np.zeros(len(sub))]), idx
    if method == "pca":
        coords = PCA(n_components=2, random_state=seed).fit_transform(sub)
    else:
        perplexity = min(30.0, max(1.0, (len(sub) - 1) / 3))
        coords = TSNE(n_components=2, init="pca", perplexity=perplexity,
                      random_state=seed).fit_transform(sub)
    return coords, idx


def _class_colors(labels: Sequence[Any]) -> dict[Any, Any]:
    k = len(labels)
    cmap = colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "viridis"]
    pos = range(k) if k <= 20 else np.linspace(0, 1, k)
    return {lab: cmap(p) for lab, p in zip(labels, pos)}


def _scatter(ax: Any, coords: np.ndarray, y: np.ndarray | None, colors: dict | None) -> None:
    if y is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=4, alpha=0.7, color="tab:blue", linewidths=0)
    else:
        for lab, col in colors.items():
            mask = y == lab
            if mask.any():
                ax.scatter(coords[mask, 0], coords[mask, 1], s=4, alpha=0.7, color=col,
                           linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(target: Any, colors: dict | None) -> None:
    """Class legend from explicit handles, right of an Axes or of a whole Figure."""
    if not colors or len(colors) > 30:
        return
    handles = [Line2D([], [], ls="", marker="o", color=c, label=str(lab))
               for lab, c in colors.items()]
    where = ({"loc": "outside right center"} if isinstance(target, Figure)
             else {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)})
    target.legend(handles=handles, title="class", fontsize="small",
                  ncol=1 + len(colors) // 16, **where)


def save_embedding(
    z: np.ndarray, y: np.ndarray | None, path: str | os.PathLike, method: str = "tsne",
    max_points: int = 2000, seed: int = 0, title: str | None = None,
) -> np.ndarray:
    """Scatter a t-SNE/PCA embedding of z (N, D) coloured by label y (N,) or one colour.

    Returns the 2-D coordinates (min(N, max_points), 2) of the plotted subsample.
    """
    if y is not None and len(np.asarray(y)) != len(np.asarray(z)):
        raise ValueError(f"z and y differ in length: {len(z)} != {len(y)}")
    coords, idx = embed_2d(z, method=method, max_points=max_points, seed=seed)
    y_sub = None if y is None else np.asarray(y)[idx]
    colors = None if y_sub is None else _class_colors(np.unique(y_sub).tolist())
    fig = _figure(6.5, 5)
    ax = fig.subplots()
    _scatter(ax, coords, y_sub, colors)
    _legend(ax, colors)
    name = {"tsne": "t-SNE", "pca": "PCA"}[method]
    ax.set_title(title or f"{name} of latents ({len(coords)} points)")
    _save(fig, path)
    return coords


def save_embeddings_grid(
    embeddings: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    path: str | os.PathLike, ncols: int | None = None, title: str | None = None,
) -> None:
    """One panel per name -> (coords (M, 2), labels (M,) or None); colours shared across panels."""
    if not embeddings:
        raise ValueError("embeddings is empty")
    all_y = [np.asarray(y) for _, y in embeddings.values() if y is not None]
    colors = _class_colors(np.unique(np.concatenate(all_y)).tolist()) if all_y else None
    ncols = ncols or min(len(embeddings), 4)
    nrows = math.ceil(len(embeddings) / ncols)
    fig = _figure(3.6 * ncols + 1.0, 3.4 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (name, (coords, y)) in zip(axes, embeddings.items()):
        coords = np.asarray(coords)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"{name}: coords must be (M, 2), got {coords.shape}")
        _scatter(ax, coords, None if y is None else np.asarray(y), colors)
        ax.set_title(str(name))
    for ax in axes[len(embeddings):]:
        ax.set_axis_off()
    _legend(fig, colors)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def save_codebook_usage(
    counts: Sequence[int] | np.ndarray, path: str | os.PathLike, title: str | None = None
) -> None:
    """Bar chart of per-code counts (K,) sorted descending, annotated with perplexity and dead codes."""
    stats = codebook_usage_from_counts(counts)
    ordered = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    k = len(ordered)
    fig = _figure(7, 3.5)
    ax = fig.subplots()
    if k <= 512:
        ax.bar(np.arange(k), ordered, width=1.0, color="tab:blue")
    else:  # thousands of bars render slowly; a filled step curve looks the same
        ax.fill_between(np.arange(k), ordered, step="mid", color="tab:blue")
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_xlabel("code (sorted by usage)")
    ax.set_ylabel("count")
    ax.text(0.98, 0.95,
            f"perplexity {stats['perplexity']:.1f} / {k}\ndead codes {stats['dead_codes']}",
            transform=ax.transAxes, ha="right", va="top",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    ax.set_title(title or "codebook usage")
    _save(fig, path)


def save_training_curve(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike,
    keys: Sequence[str] | None = None, x_key: str = "step",
) -> None:
    """One line per key against ``x_key`` (row index if absent); log y-axis if all values > 0.

    keys defaults to every numeric key other than x_key. Non-finite values are skipped.
    """
    if not history:
        raise ValueError("history is empty")
    if keys is None:
        found: dict[str, None] = {}
        for row in history:
            found.update({k: None for k, v in row.items()
                          if k != x_key and isinstance(v, (int, float, np.number))
                          and not isinstance(v, bool)})
        keys = list(found)
    fig = _figure(7, 4)
    ax = fig.subplots()
    plotted: list[float] = []
    for key in keys:
        pts = [(float(r.get(x_key, i)), float(r[key])) for i, r in enumerate(history)
               if r.get(key) is not None and np.isfinite(float(r[key]))]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=key, marker="." if len(pts) < 30 else None)
            plotted.extend(ys)
    if plotted and min(plotted) > 0:
        ax.set_yscale("log")
    ax.set_xlabel(x_key)
    if plotted:
        ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
