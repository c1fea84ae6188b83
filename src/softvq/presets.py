"""Named comparison protocols for ``softvq compare --preset NAME``.

A preset fixes the dataset, the training budget, the bottlenecks, the seeds, the
k-means restarts, whether the raw-pixel and PCA rows are added and how many runs train
at once; any flag given on the command line still overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A comparison protocol: config overrides plus what to compare."""

    description: str
    config: dict[str, Any] = field(default_factory=dict)
    bottlenecks: str = "all"
    seeds: int = 3
    n_init: int = 10
    jobs: int = 1
    anchors: bool = True


PRESETS: dict[str, Preset] = {
    "digits": Preset(
        "scikit-learn digits, every bottleneck, 3 seeds, the default budget (3,000 steps of 64)",
        {"dataset": "digits"},
    ),
    "fashion-mnist": Preset(
        "the full protocol: Fashion-MNIST 60,000/10,000, METHOD section 5 MLP, every bottleneck, "
        "3 seeds, 4,000 steps of 64 each, two runs at a time (see docs/results.md for the measured time)",
        {"dataset": "fashion-mnist", "steps": 4000},
        jobs=2,
    ),
    "fashion-mnist-quick": Preset(
        "a smoke test of the full protocol in under 5 minutes: 1 seed, 300 steps, 3 k-means restarts, "
        "two runs at a time, no raw-pixel/PCA rows (the raw-pixel probe alone takes 2 minutes)",
        {"dataset": "fashion-mnist", "steps": 300, "plots": False},
        seeds=1,
        n_init=3,
        jobs=2,
        anchors=False,
    ),
}
