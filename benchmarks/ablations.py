"""One-factor-at-a-time ablations of soft VQ on a validation split (test labels unused).

Each setting trains ``softvq`` (or the bottleneck it names) for every seed on the training set minus a stratified
10% validation split and evaluates on that split. Writes ``<out>/ablations.md`` and
``ablations.json``: mean and std over seeds per setting.

    python benchmarks/ablations.py --dataset digits --seeds 3 --out runs/ablations-digits
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from softvq import TrainConfig, compare
from softvq.data import load_dataset
from softvq.reporting import tables

#: (name, overrides applied to the base config); the first row is the base.
SETTINGS: list[tuple[str, dict]] = [
    ("base", {}),
    ("gradient=exact", {"gradient": "exact"}),
    ("sigma=fixed 1.0", {"sigma": "fixed"}),
    ("sigma=fixed annealed 1.0->0.05", {"sigma": "fixed", "sigma_final": 0.05}),
    ("sigma=learned_per_code", {"sigma": "learned_per_code"}),
    ("sigma=predicted", {"sigma": "predicted"}),
    ("sigma=predicted, reference normalization", {"sigma": "predicted", "normalization": "reference"}),
    ("prior=learned", {"prior": "learned"}),
    ("downstream=post", {"downstream": "post"}),
    ("K=10", {"num_codes": 10}),
    ("K=128", {"num_codes": 128}),
    ("groups=2", {"groups": 2}),
    ("groups=4", {"groups": 4}),
    ("groups=8", {"groups": 8}),
    ("groups=16", {"groups": 16}),
    ("groups=16 + sigma=learned", {"groups": 16, "sigma": "learned"}),
    ("groups=16 + sigma=learned_per_code", {"groups": 16, "sigma": "learned_per_code"}),
    ("groups=16 + K=32", {"groups": 16, "num_codes": 32}),
    ("groups=16 + K=64", {"groups": 16, "num_codes": 64}),
    ("groups=32", {"groups": 32}),
    ("sigma head rank 64", {"sigma_head_rank": 64}),
    ("sigma head rank 16", {"sigma_head_rank": 16}),
    ("weights=reference (3, 7.5)", {"codebook_weight": 3.0, "commitment_weight": 7.5}),
    ("weights=small (0.1, 0.025)", {"codebook_weight": 0.1, "commitment_weight": 0.025}),
    ("noise_std=0.1", {"noise_std": 0.1}),
    ("k-means init", {"codebook_init": "kmeans"}),
    ("AE warm-up 1/3 + k-means init", {"codebook_init": "kmeans", "warmup_steps": -1}),
    # added for the Fashion-MNIST round (the base there is the digits-chosen defaults)
    ("sigma=learned", {"sigma": "learned"}),
    ("sigma=learned + weights=reference", {"sigma": "learned", "codebook_weight": 3.0, "commitment_weight": 7.5}),
    ("weights=half (0.5, 0.125)", {"codebook_weight": 0.5, "commitment_weight": 0.125}),
    ("weights=double (2, 0.5)", {"codebook_weight": 2.0, "commitment_weight": 0.5}),
    ("random init + no warm-up", {"codebook_init": "random", "warmup_steps": 0}),
    ("bottleneck=ae (reference row)", {"bottleneck": "ae"}),
    # the learning rate (the reference code's 3e-4 against a faster one), for soft VQ and the AE
    ("lr=1e-3", {"lr": 1e-3}),
    ("lr=1e-3 + bottleneck=ae", {"lr": 1e-3, "bottleneck": "ae"}),
]

METRICS = ["kmeans_acc", "nmi", "ari", "probe_acc", "recon_mse_test", "perplexity", "dead_codes"]


def _wanted(values: list[str], parser: argparse.ArgumentParser) -> set[str]:
    """Setting names from ``--only`` values: a whole name (commas allowed) or a comma-separated list."""
    names = {name for name, _ in SETTINGS}
    wanted: set[str] = set()
    for value in values:
        parts = [value] if value in names else [v.strip() for v in value.split(",")]
        unknown = [v for v in parts if v not in names]
        if unknown:
            parser.error(f"unknown setting(s) {', '.join(map(repr, unknown))}; known: {'; '.join(sorted(names))}")
        wanted.update(parts)
    return wanted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--n-init", type=int, default=10)
    p.add_argument("--only", action="append", default=None, metavar="NAMES",
                   help="setting names to run, comma-separated or one per --only (default: all)")
    p.add_argument("--base", default="{}", help="JSON overrides for the base config")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    data = load_dataset(args.dataset, validation=True)
    base = dataclasses.replace(TrainConfig(dataset=args.dataset, validation=True, plots=False, threads=1, steps=args.steps),
                               **json.loads(args.base))
    steps = base.resolved(data.sample_shape).steps
    out = Path(args.out)
    rows = []
    wanted = None if args.only is None else _wanted(args.only, p)
    for name, overrides in SETTINGS:
        if wanted is not None and name not in wanted:
            continue
        overrides = {k: (steps // 3 if k == "warmup_steps" and v == -1 else v) for k, v in overrides.items()}
        cfg = dataclasses.replace(base, **overrides)
        slug = name.replace(" ", "_").replace("/", "-").replace(",", "").replace("=", "-")
        result = compare(cfg, [cfg.bottleneck], list(range(args.seeds)), out / slug, n_init=args.n_init,
                         anchors=False, dataset=data, progress=False, log=lambda s: print(f"{name}: {s}", flush=True))
        for r in result["runs"]:
            rows.append({**r, "setting": name})
    summary = tables.summarize(rows, group_key="setting", metrics=METRICS)
    tables.write_tables(summary, out, stem="ablations", metrics=METRICS, group_key="setting")
    print(tables.format_terminal(summary, METRICS, group_key="setting"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
