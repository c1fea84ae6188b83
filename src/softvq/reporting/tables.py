"""Aggregate per-run metric rows into per-bottleneck tables (Markdown, CSV, JSON, text).

A *row* is one run's flat metric dict, e.g.
``{"bottleneck": "softvq", "seed": 0, "kmeans_acc": 0.61, "recon_mse": 0.012}``.
Missing, ``None`` and non-finite (NaN/inf, e.g. a diverged run) values are left
out of a statistic; when that happens the output row carries ``<m>_n``, the number
of values actually used, so a dropped run is visible rather than silent.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from softvq._io import write_json, write_text

__all__ = [
    "LOWER_IS_BETTER",
    "summarize",
    "paired_differences",
    "to_markdown",
    "paired_to_markdown",
    "to_csv",
    "write_tables",
    "format_terminal",
]

#: Metric names for which a smaller mean is better (used to pick the bold cell).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"recon_mse", "recon_mse_train", "recon_mse_test", "recon_gap", "reconstruction_mse", "mse", "test_mse",
     "dead_codes", "loss", "test_loss"}
)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(float(v))


def _metric_names(rows: Sequence[dict], skip: Iterable[str]) -> list[str]:
    """Keys holding a number in at least one row, in first-appearance order."""
    skip, names = set(skip), {}
    for row in rows:
        for k, v in row.items():
            if k not in skip and _is_number(v):
                names.setdefault(k, None)
    return list(names)


def _groups(rows: Sequence[dict], key: str) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = {}
    for i, row in enumerate(rows):
        if key not in row:
            raise ValueError(f"row {i} has no {key!r} key: {sorted(row)}")
        out.setdefault(row[key], []).append(row)
    return out


def _stats(prefix: str, values: list[float], expected: int) -> dict[str, Any]:
    """``<prefix>_mean`` / ``_std`` (sample std, 0.0 for one value, None for none)."""
    out: dict[str, Any] = {
        f"{prefix}_mean": float(statistics.fmean(values)) if values else None,
        f"{prefix}_std": float(statistics.stdev(values)) if len(values) > 1 else (0.0 if values else None),
    }
    if 0 < len(values) < expected:  # none at all reads as None: metric not applicable
        out[f"{prefix}_n"] = len(values)
    return out


def summarize(
    rows: Sequence[dict],
    group_key: str = "bottleneck",
    metrics: Sequence[str] | None = None,
    exclude: Iterable[str] = ("seed",),
) -> list[dict]:
    """One row per group (first-appearance order): ``group_key``, ``n``, ``<m>_mean``, ``<m>_std``.

    metrics defaults to every numeric key except group_key and ``exclude``.
    """
    metrics = list(metrics) if metrics is not None else _metric_names(rows, {group_key, *exclude})
    summary = []
    for group, members in _groups(rows, group_key).items():
        out: dict[str, Any] = {group_key: group, "n": len(members)}
        for m in metrics:
            vals = [float(r[m]) for r in members if _finite(r.get(m))]
            out.update(_stats(m, vals, len(members)))
        summary.append(out)
    return summary


def paired_differences(
    rows: Sequence[dict],
    reference: str = "softvq",
    group_key: str = "bottleneck",
    pair_key: str = "seed",
    metrics: Sequence[str] | None = None,
) -> list[dict]:
    """Per other group: mean/std over matching ``pair_key`` values of (reference - other).

    Output keys: group_key, ``reference``, ``n_pairs`` and ``<m>_diff_mean`` /
    ``<m>_diff_std`` (plus ``<m>_diff_n`` when some pairs lack a finite value).
    """
    metrics = list(metrics) if metrics is not None else _metric_names(rows, {group_key, pair_key})
    indexed: dict[Any, dict[Any, dict]] = {}
    for group, members in _groups(rows, group_key).items():
        by_pair: dict[Any, dict] = {}
        for r in members:
            if pair_key not in r:
                raise ValueError(f"a {group!r} row has no {pair_key!r} key")
            if r[pair_key] in by_pair:
                raise ValueError(f"duplicate {pair_key}={r[pair_key]!r} for {group_key}={group!r}")
            by_pair[r[pair_key]] = r
        indexed[group] = by_pair
    if reference not in indexed:
        raise ValueError(f"reference {reference!r} not among {group_key} values {list(indexed)}")
    ref = indexed[reference]
    out = []
    for group, by_pair in indexed.items():
        if group == reference:
            continue
        pairs = [p for p in ref if p in by_pair]
        row: dict[str, Any] = {group_key: group, "reference": reference, "n_pairs": len(pairs)}
        for m in metrics:
            diffs = [
                float(ref[p][m]) - float(by_pair[p][m])
                for p in pairs
                if _finite(ref[p].get(m)) and _finite(by_pair[p].get(m))
            ]
            row.update(_stats(f"{m}_diff", diffs, len(pairs)))
        out.append(row)
    return out


def _fmt(mean: float | None, std: float | None, precision: int, count: Any = None) -> str:
    """``"mean ± std"``; the mean alone when it comes from one value (no spread to show)."""
    if mean is None:
        return "–"
    if count == 1:
        return f"{mean:.{precision}f}"
    return f"{mean:.{precision}f} ± {(std or 0.0):.{precision}f}"


def _cells(
    summary: Sequence[dict], m: str, precision: int, lower_is_better: Iterable[str], bold: bool
) -> list[str]:
    means = [r.get(f"{m}_mean") for r in summary]
    cells = [_fmt(mu, r.get(f"{m}_std"), precision, r.get(f"{m}_n", r.get("n"))) for mu, r in zip(means, summary)]
    for i, r in enumerate(summary):
        if f"{m}_n" in r:
            cells[i] += f" ({r[f'{m}_n']}/{r.get('n', '?')})"
    shown = [round(mu, precision) for mu in means if mu is not None]
    if bold and len(shown) > 1:
        best = min(shown) if m in set(lower_is_better) else max(shown)
        cells = [
            f"**{c}**" if mu is not None and round(mu, precision) == best else c
            for c, mu in zip(cells, means)
        ]
    return cells


def _esc(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _md_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    """Markdown lines; first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(_esc(h) for h in head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _metrics_in(summary: Sequence[dict]) -> list[str]:
    return [k[: -len("_mean")] for k in (summary[0] if summary else {}) if k.endswith("_mean")]


def _group_key(summary: Sequence[dict]) -> str:
    return next(iter(summary[0])) if summary else "bottleneck"


def to_markdown(
    summary: Sequence[dict],
    metrics: Sequence[str],
    labels: dict[str, str] | None = None,
    precision: int = 3,
    lower_is_better: Iterable[str] = LOWER_IS_BETTER,
    group_key: str | None = None,
) -> str:
    """Markdown table of "mean ± std" cells (the mean alone where there is one value);
    the best mean per column is bold.

    Best is the max unless the metric is in ``lower_is_better``; ties at the
    displayed precision are all bold. ``labels`` maps metric -> column header.
    """
    labels, gk = labels or {}, group_key or _group_key(summary)
    head = [gk, "n"] + [labels.get(m, m) for m in metrics]
    cols = [_cells(summary, m, precision, lower_is_better, bold=True) for m in metrics]
    body = [[_esc(r.get(gk, "")), str(r.get("n", ""))] + [c[i] for c in cols]
            for i, r in enumerate(summary)]
    return "\n".join(_md_table(head, body)) + "\n"


def paired_to_markdown(
    paired: Sequence[dict],
    metrics: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    precision: int = 3,
    group_key: str | None = None,
) -> str:
    """Markdown table of :func:`paired_differences`: signed "mean ± std" of (reference - row),
    the mean alone for a single pair."""
    if not paired:
        return ""
    labels, gk = labels or {}, group_key or _group_key(paired)
    if metrics is None:
        metrics = [k[: -len("_diff_mean")] for k in paired[0] if k.endswith("_diff_mean")]
    ref = paired[0].get("reference", "reference")
    head = [gk, "pairs"] + [f"Δ {labels.get(m, m)}" for m in metrics]
    body = []
    for r in paired:
        cells = [_esc(r.get(gk, "")), str(r.get("n_pairs", ""))]
        for m in metrics:
            mu, sd = r.get(f"{m}_diff_mean"), r.get(f"{m}_diff_std")
            count = r.get(f"{m}_diff_n", r.get("n_pairs"))
            cell = "–" if mu is None else f"{mu:+.{precision}f}" + ("" if count == 1 else f" ± {(sd or 0.0):.{precision}f}")
            if f"{m}_diff_n" in r:
                cell += f" ({r[f'{m}_diff_n']}/{r.get('n_pairs', '?')})"
            cells.append(cell)
        body.append(cells)
    caption = f"Paired differences {ref} − {gk} (mean ± sample std over matched seeds)"
    return "\n".join([caption, "", *_md_table(head, body)]) + "\n"


def to_csv(summary: Sequence[dict]) -> str:
    """CSV text with the union of keys as header (first-appearance order); None -> empty."""
    fields: dict[str, None] = {}
    for r in summary:
        fields.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for r in summary:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def write_tables(
    summary: Sequence[dict],
    out_dir: str | os.PathLike,
    stem: str = "results",
    metrics: Sequence[str] | None = None,
    **markdown_kwargs: Any,
) -> dict[str, Path]:
    """Atomically write ``<stem>.md``, ``.csv`` and ``.json``; return ``{"md", "csv", "json"}`` paths."""
    out = Path(out_dir)
    paths = {ext: out / f"{stem}.{ext}" for ext in ("md", "csv", "json")}
    metrics = list(metrics) if metrics is not None else _metrics_in(summary)
    write_text(paths["md"], to_markdown(summary, metrics, **markdown_kwargs))
    write_text(paths["csv"], to_csv(summary))
    write_json(paths["json"], list(summary))
    return paths


def format_terminal(
    summary: Sequence[dict],
    metrics: Sequence[str],
    precision: int = 3,
    group_key: str | None = None,
) -> str:
    """Plain-text table with aligned columns, for printing."""
    gk = group_key or _group_key(summary)
    head = [gk, "n", *metrics]
    cols = [_cells(summary, m, precision, (), bold=False) for m in metrics]
    body = [[str(r.get(gk, "")), str(r.get("n", ""))] + [c[i] for c in cols] for i, r in enumerate(summary)]
    widths = [max(len(row[j]) for row in [head, *body]) for j in range(len(head))]
    line = lambda row: "  ".join(  # noqa: E731
        c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
    ).rstrip()
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)]) + "\n"
