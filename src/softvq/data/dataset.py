"""The :class:`Dataset` container returned by every loader."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_OUTPUTS = ("sigmoid", "linear")


@dataclass(repr=False)
class Dataset:
    """A train/test split held in memory.

    ``x_*`` are float32: images (N, C, H, W) with values in [0, 1], or feature
    vectors (N, F). ``y_*`` are int64 labels 0..k-1 of shape (N,), or None.
    ``output`` is "sigmoid" for data in [0, 1] and "linear" for standardized
    features: the decoder output a model should use.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None
    output: str
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {self.output!r}")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.dim() not in (2, 4):
                raise ValueError(f"x_{split} must be float32 with 2 or 4 dims, "
                                 f"got {x.dtype} {tuple(x.shape)}")
            if y is not None and (y.dtype != torch.int64 or tuple(y.shape) != (x.shape[0],)):
                raise ValueError(f"y_{split} must be int64 of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")
        if tuple(self.x_train.shape[1:]) != tuple(self.x_test.shape[1:]):
            raise ValueError("x_train and x_test sample shapes differ")
        if (self.y_train is None) != (self.y_test is None):
            raise ValueError("y_train and y_test must both be given or both be None")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) for images, (F,) for feature vectors."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        """Number of scalar values per sample (product of ``sample_shape``)."""
        return math.prod(self.sample_shape)

    @property
    def num_classes(self) -> int | None:
        """Number of label classes, or None when unlabeled."""
        if self.y_train is None:
            return None
        if self.class_names is not None:
            return len(self.class_names)
        top = [int(y.max()) for y in (self.y_train, self.y_test) if y.numel()]
        return max(top, default=-1) + 1

    @property
    def is_image(self) -> bool:
        """True when samples are images (x is 4-D)."""
        return self.x_train.dim() == 4

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A new Dataset whose test split is a held-out ``fraction`` of the training set.

        Stratified by label when labels exist. The real test split is dropped, so
        choices made on this dataset never see the test labels.
        """
        from sklearn.model_selection import train_test_split

        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        idx = torch.arange(len(self.x_train)).numpy()
        strat = None if self.y_train is None else self.y_train.numpy()
        tr, va = train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)
        tr, va = torch.as_tensor(tr), torch.as_tensor(va)
        pick = lambda t, i: None if t is None else t[i]  # noqa: E731
        return Dataset(f"{self.name}:validation", self.x_train[tr], pick(self.y_train, tr),
                       self.x_train[va], pick(self.y_train, va), self.output, self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, classes={self.num_classes}, output={self.output!r})"
        )
