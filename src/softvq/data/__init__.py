"""Datasets: built-in image sets (digits, MNIST, Fashion-MNIST, SVHN, CIFAR-10) and user files.

>>> ds = load_dataset("digits")      # x_train (1437, 1, 8, 8) float32 in [0, 1]
"""

from softvq.data.dataset import Dataset
from softvq.data.registry import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
