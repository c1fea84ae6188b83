"""One self-contained HTML page for a run or a comparison directory (``softvq report DIR``).

The page is plain HTML with inline CSS: no scripts, no web fonts, no external
references of any kind. Figures are the PNGs already in the run directories,
embedded as base64 ``data:`` URIs; a comparison report adds two figures drawn
here (training curves of every bottleneck on one axis, and the 2-D embeddings of
every bottleneck side by side). A figure whose PNG is missing (e.g. a run trained
with plots off) is left out with a note, never an error.

``DIR`` is a run directory when it holds ``config.json`` and a comparison
directory when it holds ``results.json`` (see :mod:`softvq.run` and
:func:`softvq.compare.compare` for their layouts).
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import json
import math
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from softvq import _io
from softvq.errors import SoftVQError

__all__ = ["build_report"]

REPORT_NAME = "report.html"
ANCHORS = ("raw", "pca")

#: table column order; metrics not listed here follow in file order
METRIC_ORDER = (
    "kmeans_acc", "nmi", "ari", "probe_acc", "recon_mse_train", "recon_mse_test", "recon_gap",
    "perplexity", "dead_codes",
)
METRIC_LABELS = {
    "kmeans_acc": "k-means acc", "nmi": "NMI", "ari": "ARI", "probe_acc": "probe acc",
    "recon_mse_train": "MSE train", "recon_mse_test": "MSE test", "recon_gap": "MSE gap",
    "perplexity": "perplexity", "dead_codes": "dead codes", "wall_seconds": "wall time (s)",
    "kmeans_seconds": "k-means time (s)", "probe_seconds": "probe time (s)",
}
METRIC_HELP = {
    "kmeans_acc": "k-means on the test latents (k = number of classes), best label matching",
    "nmi": "normalized mutual information of k-means clusters and labels",
    "ari": "adjusted Rand index of k-means clusters and labels",
    "probe_acc": "linear softmax probe trained on training latents, test accuracy",
    "recon_mse_train": "reconstruction MSE per element on the training split",
    "recon_mse_test": "reconstruction MSE per element on the test split",
    "recon_gap": "test minus train reconstruction MSE",
    "perplexity": "exp(entropy) of code usage on the test split",
    "dead_codes": "codes never used on the test split",
}
#: metrics for the "at a glance" cards of a comparison
HEADLINE = ("kmeans_acc", "nmi", "probe_acc", "recon_mse_test")
#: run-level bookkeeping that is not a result
NOT_METRICS = {"seed", "n_init", "num_test"}
#: config keys that differ between the runs of a comparison by construction
PER_RUN_KEYS = {"bottleneck", "seed", "plots"}


def lower_is_better(metric: str) -> bool:
    """Reconstruction errors, their gap and dead codes; everything else is higher-is-better."""
    return metric.startswith("recon_mse") or metric in {"recon_gap", "dead_codes"} or metric.endswith("_seconds")


def _precision(metric: str) -> int:
    if metric.startswith("recon_mse") or metric == "recon_gap":
        return 4
    if metric in {"perplexity", "dead_codes"} or metric.endswith("_seconds"):
        return 1
    return 3


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


# ----------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    """Parsed JSON, or None when the file is absent."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SoftVQError(f"{path} is not valid JSON: {exc}") from None


def _read_history(path: Path) -> list[dict[str, float]]:
    """history.csv as a list of {column: float}; unparsable cells are dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row = {}
        for k, v in raw.items():
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                pass
        rows.append(row)
    return rows


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class _Run:
    name: str
    seed: int | None
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    meta: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> _Run:
        config = _read_json(path / "config.json")
        if not isinstance(config, dict):
            raise SoftVQError(f"{path / 'config.json'} not found or not an object: is {path} a softvq run directory?")
        seed = config.get("seed")
        return cls(
            name=str(name or config.get("bottleneck", path.name)),
            seed=seed if isinstance(seed, int) else None,
            path=path,
            config=config,
            metrics=_read_json(path / "metrics.json"),
            meta=_read_json(path / "meta.json"),
            history=_read_history(path / "history.csv"),
        )


def _seed_of(path: Path) -> int | None:
    m = re.fullmatch(r"seed(-?\d+)", path.name)
    return int(m.group(1)) if m else None


def _comparison_runs(root: Path, names: Iterable[str]) -> dict[str, list[_Run]]:
    """``{bottleneck: [runs sorted by seed]}`` from ``root/<name>/seed<k>/`` for the tabulated names.

    Folders results.json does not name (e.g. left from an earlier comparison) are ignored.
    """
    runs: dict[str, list[_Run]] = {}
    for name in dict.fromkeys(n for n in names if n not in ANCHORS):
        folder = root / name
        if not folder.is_dir():
            continue
        dirs = sorted((p for p in folder.iterdir() if p.is_dir() and _seed_of(p) is not None
                       and (p / "config.json").is_file()), key=lambda p: _seed_of(p))  # type: ignore[arg-type,return-value]
        if dirs:
            runs[name] = [_Run.load(d, name) for d in dirs]
    return runs


# ----------------------------------------------------------------------------- images


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _file_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return _png_uri(data) if data.startswith(b"\x89PNG\r\n\x1a\n") else None


def _figure_uri(draw: Callable[[Any], None], size: tuple[float, float]) -> str:
    """Render ``draw(fig)`` on a fresh Agg figure (no pyplot) to a PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return _png_uri(buf.getvalue())


def _curves_uri(runs: Mapping[str, list[_Run]]) -> str | None:
    """Reconstruction term vs step, one colour per bottleneck (first seed bold, others faint)."""
    series = {name: [(r.seed, r.history) for r in rs if r.history] for name, rs in runs.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(series) <= 10 else "tab20"]

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        values: list[float] = []
        for i, (name, seeds) in enumerate(series.items()):
            for j, (seed, hist) in enumerate(seeds):
                key = "recon" if any("recon" in row for row in hist) else "loss"
                pts = [(row["step"] if "step" in row else n, row[key]) for n, row in enumerate(hist)
                       if key in row and math.isfinite(row[key])]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                values += ys
                if j == 0:
                    ax.plot(xs, ys, color=cmap(i), lw=2.0, label=name, marker="." if len(pts) < 30 else None)
                else:
                    ax.plot(xs, ys, color=cmap(i), lw=0.9, alpha=0.35)
        if values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_yscale("log")  # only when the curves span decades: log ticks are hard to read
        ax.set_xlabel("step")
        ax.set_ylabel("reconstruction loss (training)")
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="bottleneck")

    return _figure_uri(draw, (8.5, 4.0))


def _labels_for(config: Mapping[str, Any], meta: Mapping[str, Any] | None, n: int,
                cache: dict[tuple, Any]) -> np.ndarray | None:
    """The first ``n`` labels of the run's evaluation split (class names where known), or None."""
    key = (config.get("dataset"), config.get("data_dir"), bool(config.get("validation")))
    if key not in cache:
        try:
            from softvq.data import load_dataset

            # a run evaluated on a validation split drew its embedding from that split
            extra = {"validation": True} if key[2] else {}
            data = load_dataset(str(key[0]), key[1], download=False, **extra)
            cache[key] = None if data.y_test is None else data.y_test.numpy()
        except Exception:  # noqa: BLE001 - any data problem only costs the colours
            cache[key] = None
    y = cache[key]
    if y is None or len(y) < n:
        return None
    y = np.asarray(y[:n])
    names = (meta or {}).get("class_names")
    if isinstance(names, list) and names and y.min() >= 0 and y.max() < len(names):
        return np.asarray([str(s) for s in names])[y]
    return y


def _embeddings_uri(runs: Mapping[str, _Run]) -> tuple[str | None, bool]:
    """Side-by-side t-SNE panels of each run's embedding_2d.npy; (uri, coloured by label)."""
    from softvq.reporting.plots import save_embeddings_grid

    panels: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    cache: dict[tuple, Any] = {}
    for name, run in runs.items():
        try:
            coords = np.load(run.path / "embedding_2d.npy", allow_pickle=False)
        except (OSError, ValueError):
            continue
        if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
            continue
        panels[name] = (coords, _labels_for(run.config, run.meta, len(coords), cache))
    if not panels:
        return None, False
    if any(y is None for _, y in panels.values()):  # colours must mean the same in every panel
        panels = {k: (c, None) for k, (c, _) in panels.items()}
    n = len(panels)
    ncols = n if n <= 4 else math.ceil(n / math.ceil(n / 4))
    with tempfile.TemporaryDirectory(prefix="softvq-report-") as tmp:
        out = Path(tmp) / "embeddings.png"
        save_embeddings_grid(panels, out, ncols=ncols)
        uri = _file_uri(out)
    return uri, all(y is not None for _, y in panels.values())


# ----------------------------------------------------------------------------- HTML pieces


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(v: Any, metric: str) -> str:
    if not _finite(v):
        return "–"
    if isinstance(v, int):  # counts (dead codes of one run): no decimals
        return str(v)
    return f"{float(v):.{_precision(metric)}f}"


def _metric_head(m: str) -> str:
    arrow = "↓" if lower_is_better(m) else "↑"
    tip = METRIC_HELP.get(m, m) + (" (lower is better)" if lower_is_better(m) else " (higher is better)")
    return f'<th class="num" title="{_e(tip)}">{_e(_label(m))} <span class="dir">{arrow}</span></th>'


def _figure(uri: str | None, alt: str, caption: str, missing: str, cls: str = "") -> str:
    if uri is None:
        return f'<div class="missing">{_e(missing)}</div>'
    return (f'<figure class="{cls}"><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _section(anchor: str, title: str, body: str, intro: str = "") -> str:
    intro_html = f'<p class="intro">{_e(intro)}</p>' if intro else ""
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{intro_html}{body}</section>'


def _metrics_in(rows: Sequence[Mapping[str, Any]], suffix: str) -> list[str]:
    found: dict[str, None] = {}
    for row in rows:
        for k, v in row.items():
            if k.endswith(suffix) and v is not None:
                found.setdefault(k[: -len(suffix)], None)
    ordered = [m for m in METRIC_ORDER if m in found]
    return ordered + [m for m in found if m not in ordered]


def _best(values: Sequence[Any], metric: str) -> float | None:
    shown = [round(float(v), _precision(metric)) for v in values if _finite(v)]
    if len(shown) < 2:
        return None
    return min(shown) if lower_is_better(metric) else max(shown)


def _spread(sd: Any, metric: str, count: Any) -> str:
    """`` ± std`` markup; nothing for a single value, which has no spread to show."""
    return f' <span class="pm">± {_fmt(sd, metric)}</span>' if _finite(sd) and count != 1 else ""


def _results_table(summary: Sequence[Mapping[str, Any]]) -> str:
    metrics = _metrics_in(summary, "_mean")
    head = '<tr><th>bottleneck</th><th class="num" title="runs (seeds)">n</th>' + "".join(map(_metric_head, metrics)) + "</tr>"
    best = {m: _best([r.get(f"{m}_mean") for r in summary], m) for m in metrics}
    body = []
    for r in summary:
        name = str(r.get("bottleneck", "?"))
        cells = [f'<th scope="row">{_e(name)}</th>', f'<td class="num">{_e(r.get("n", ""))}</td>']
        for m in metrics:
            mu, sd = r.get(f"{m}_mean"), r.get(f"{m}_std")
            if not _finite(mu):
                cells.append('<td class="num na">–</td>')
                continue
            is_best = best[m] is not None and round(float(mu), _precision(m)) == best[m]
            extra = ""
            if f"{m}_n" in r:
                extra = f' <span class="partial" title="finite values used">({_e(r[f"{m}_n"])}/{_e(r.get("n", "?"))})</span>'
            cells.append(f'<td class="num{" best" if is_best else ""}">{_fmt(mu, m)}{_spread(sd, m, r.get(f"{m}_n", r.get("n")))}{extra}</td>')
        cls = ' class="anchor"' if name in ANCHORS else ""
        body.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="results" id="results-table"><thead>{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _paired_table(paired: Sequence[Mapping[str, Any]]) -> str:
    metrics = _metrics_in(paired, "_diff_mean")
    ref = str(paired[0].get("reference", "softvq"))
    head = ('<tr><th>vs. bottleneck</th><th class="num" title="matched seeds">pairs</th>'
            + "".join(f'<th class="num">Δ {_e(_label(m))}</th>' for m in metrics) + "</tr>")
    body = []
    for r in paired:
        name = str(r.get("bottleneck", "?"))
        cells = [f'<th scope="row">{_e(name)}</th>', f'<td class="num">{_e(r.get("n_pairs", ""))}</td>']
        for m in metrics:
            mu, sd = r.get(f"{m}_diff_mean"), r.get(f"{m}_diff_std")
            if not _finite(mu):
                cells.append('<td class="num na">–</td>')
                continue
            ahead = (mu < 0) if lower_is_better(m) else (mu > 0)
            cls = "even" if round(float(mu), _precision(m)) == 0 else ("ahead" if ahead else "behind")
            spread = _spread(sd, m, r.get(f"{m}_diff_n", r.get("n_pairs")))
            cells.append(f'<td class="num {cls}">{float(mu):+.{_precision(m)}f}{spread}</td>')
        cls_row = ' class="anchor"' if name in ANCHORS else ""
        body.append(f"<tr{cls_row}>" + "".join(cells) + "</tr>")
    table = (f'<div class="scroll"><table class="paired" id="paired-table"><thead>{head}</thead>'
             f'<tbody>{"".join(body)}</tbody></table></div>')
    legend = (f'<p class="note"><span class="swatch ahead"></span>{_e(ref)} ahead on average '
              f'<span class="swatch behind"></span>{_e(ref)} behind on average. '
              f"Each cell is {_e(ref)} minus the row, mean ± sample std over the seeds both share.</p>")
    return table + legend


def _runs_table(rows: Sequence[Mapping[str, Any]]) -> str:
    metrics = [m for m in _metrics_in([{f"{k}_v": v for k, v in r.items() if _finite(v)} for r in rows], "_v")
               if m not in NOT_METRICS and not m.endswith("_seconds")]
    head = "<tr><th>bottleneck</th><th class=\"num\">seed</th>" + "".join(map(_metric_head, metrics)) + "</tr>"
    body = []
    for r in rows:
        cells = [f'<th scope="row">{_e(r.get("bottleneck", "?"))}</th>', f'<td class="num">{_e(r.get("seed", ""))}</td>']
        cells += [f'<td class="num">{_fmt(r.get(m), m)}</td>' for m in metrics]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="runs"><thead>{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _config_value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _config_grid(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f'<div class="kv"><span class="k">{_e(k)}</span><span class="v">{_e(v)}</span></div>'
                    for k, v in items)
    return f'<div class="config">{cells}</div>'


def _cards(cards: Sequence[tuple[str, str, str, str]]) -> str:
    """(label, headline, value, footnote) tiles."""
    out = []
    for label, head, value, foot in cards:
        out.append(f'<div class="card"><div class="card-label">{_e(label)}</div>'
                   f'<div class="card-head">{_e(head)}</div><div class="card-value">{_e(value)}</div>'
                   f'<div class="card-foot">{_e(foot)}</div></div>')
    return f'<div class="cards">{"".join(out)}</div>'


def _code(text: str) -> str:
    return f"<pre><code>{_e(text)}</code></pre>"


def _grid(figures: Sequence[str], cls: str = "grid") -> str:
    return f'<div class="{cls}">{"".join(figures)}</div>'


# ----------------------------------------------------------------------------- pages


CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --accent:#2f6fde; --best:#e6f5ea; --best-ink:#176b35; --behind:#fdf0ee; --behind-ink:#a32b1a; }
* { box-sizing:border-box; }
html { background:var(--bg); }
body { margin:0; color:var(--ink); font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1180px; margin:0 auto; padding:28px 32px 40px; }
header.top { background:linear-gradient(120deg,#1d3557,#2f6fde); color:#fff; }
header.top .inner { max-width:1180px; margin:0 auto; padding:26px 32px 22px; }
header.top h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:-.01em; }
header.top .sub { opacity:.85; font-size:14px; }
.chips { margin-top:12px; display:flex; flex-wrap:wrap; gap:6px; }
.chip { background:rgba(255,255,255,.16); border:1px solid rgba(255,255,255,.25); border-radius:999px;
  padding:2px 10px; font-size:13px; }
nav.toc { margin-top:14px; font-size:13px; display:flex; flex-wrap:wrap; gap:14px; }
nav.toc a { color:#dbe7ff; text-decoration:none; border-bottom:1px dotted rgba(255,255,255,.5); }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px 20px;
  margin:0 0 18px; box-shadow:0 1px 2px rgba(16,24,40,.04); }
h2 { font-size:18px; margin:0 0 10px; font-weight:650; }
h3 { font-size:13px; margin:18px 0 4px; font-weight:600; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
p.intro { margin:-4px 0 12px; color:var(--muted); font-size:14px; }
p.note, .missing { color:var(--muted); font-size:13px; margin:8px 0 0; }
.missing { border:1px dashed var(--line); border-radius:8px; padding:14px; background:#fafbfc; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:14px; font-variant-numeric:tabular-nums; }
th, td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:left; white-space:nowrap; }
thead th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); font-weight:600;
  border-bottom:2px solid var(--line); white-space:normal; vertical-align:bottom; }
table.results th, table.results td, table.paired th, table.paired td { padding:7px 8px; }
table.paired { width:auto; min-width:70%; }
tbody th { font-weight:600; }
tbody tr:nth-child(even) { background:#fafbfc; }
.num { text-align:right; }
.dir { color:#9aa5b1; font-weight:400; }
.pm { color:var(--muted); font-size:12px; }
table.results .pm, table.paired .pm { display:block; font-size:11px; line-height:1.2; }
table.results td, table.paired td { line-height:1.25; }
.partial { color:#b7791f; font-size:12px; }
td.best { background:var(--best); color:var(--best-ink); font-weight:700; }
td.best .pm { color:var(--best-ink); font-weight:400; }
td.ahead { color:var(--best-ink); background:var(--best); }
td.behind { color:var(--behind-ink); background:var(--behind); }
td.ahead .pm, td.behind .pm { color:inherit; opacity:.75; }
tr.anchor th, tr.anchor td { color:var(--muted); font-style:italic; }
tbody tr.anchor + tr:not(.anchor), tbody tr:not(.anchor) + tr.anchor th, tbody tr:not(.anchor) + tr.anchor td {
  border-top:2px solid var(--line); }
.swatch { display:inline-block; width:11px; height:11px; border-radius:3px; vertical-align:-1px; margin:0 4px 0 10px; }
.swatch.ahead { background:var(--best); border:1px solid var(--best-ink); }
.swatch.behind { background:var(--behind); border:1px solid var(--behind-ink); }
.swatch:first-child { margin-left:0; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:12px; margin:0 0 18px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 16px; }
.card-label { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.card-head { font-size:20px; font-weight:700; margin-top:2px; }
.card-value { font-size:15px; font-variant-numeric:tabular-nums; }
.card-foot { font-size:12px; color:var(--muted); margin-top:4px; }
figure { margin:0; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; border-radius:6px; }
figcaption { text-align:center; color:var(--muted); font-size:13px; margin-top:6px; }
figure.wide { text-align:center; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(340px,1fr)); gap:16px; align-items:start; }
.grid.two { grid-template-columns:repeat(auto-fill,minmax(460px,1fr)); }
.grid figure { border:1px solid var(--line); border-radius:8px; padding:10px; background:#fff; }
.grid .missing { min-height:80px; }
.config { display:grid; grid-template-columns:repeat(auto-fill,minmax(250px,1fr)); gap:0 18px; font-size:13px; }
.kv { display:flex; justify-content:space-between; gap:10px; padding:5px 0; border-bottom:1px solid var(--line); }
.kv .k { color:var(--muted); }
.kv .v { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace; text-align:right; word-break:break-all; }
pre { background:#111827; color:#e5e7eb; border-radius:8px; padding:12px 14px; font-size:13px; margin:8px 0 0;
  white-space:pre-wrap; overflow-wrap:anywhere; }
code { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace; }
details summary { cursor:pointer; color:var(--accent); font-size:14px; margin-top:10px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:4px 0 20px; }
@media print { header.top { background:#1d3557; } section { break-inside:avoid; } }
"""


def _page(title: str, subtitle: str, chips: Sequence[str], toc: Sequence[tuple[str, str]],
          body: Sequence[str], source: Path) -> str:
    from softvq import __version__

    chips_html = "".join(f'<span class="chip">{_e(c)}</span>' for c in chips)
    toc_html = "".join(f'<a href="#{_e(a)}">{_e(t)}</a>' for a, t in toc)
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="softvq {_e(__version__)}">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="top"><div class="inner">
<h1>{_e(title)}</h1>
<div class="sub">{_e(subtitle)}</div>
<div class="chips">{chips_html}</div>
<nav class="toc">{toc_html}</nav>
</div></header>
<main>
{"".join(body)}
</main>
<footer>softvq {_e(__version__)} · report of {_e(source)} · generated {_e(when)} · self-contained: no scripts, no network</footer>
</body>
</html>
"""


def _seed_text(seeds: Sequence[int]) -> str:
    if not seeds:
        return "no seeds"
    s = sorted(seeds)
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{len(s)} seeds ({s[0]}–{s[-1]})"
    return f"{len(s)} seed{'s' if len(s) > 1 else ''} ({', '.join(map(str, s))})"


def _split(cfg: Mapping[str, Any]) -> str:
    """The split a run is evaluated (and its figures drawn) on."""
    return "validation" if cfg.get("validation") else "test"


def _config_chips(cfg: Mapping[str, Any]) -> list[str]:
    chips = ["validation split (test labels unused)"] if cfg.get("validation") else []
    for key, fmt in (("steps", "{} steps"), ("network", "{} network"), ("latent_dim", "latent {}"),
                     ("num_codes", "{} codes"), ("batch_size", "batch {}")):
        if cfg.get(key) is not None:
            chips.append(fmt.format(cfg[key]))
    return chips


def _comparison_command(root: Path, runs: Mapping[str, list[_Run]], summary: Sequence[Mapping[str, Any]],
                        rows: Sequence[Mapping[str, Any]]) -> str | None:
    """A ``softvq compare`` line rebuilt from the run configs, when they allow one."""
    all_runs = [r for rs in runs.values() for r in rs]
    if not all_runs:
        return None
    shared = [{k: v for k, v in r.config.items() if k not in PER_RUN_KEYS} for r in all_runs]
    if any(s != shared[0] for s in shared):
        return None
    seed_sets = {tuple(sorted(r.seed for r in rs if r.seed is not None)) for rs in runs.values()}
    if len(seed_sets) != 1:
        return None
    seeds = list(next(iter(seed_sets)))
    if not seeds or seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        return None
    n_init = {r.get("n_init") for r in rows if r.get("bottleneck") not in ANCHORS and r.get("n_init") is not None}
    first = all_runs[0]
    parts = ["softvq", "compare", "--config", str(first.path / "config.json"),
             "--bottlenecks", ",".join(runs), "--seeds", str(len(seeds)), "--first-seed", str(seeds[0])]
    if len(n_init) == 1:
        parts += ["--n-init", str(n_init.pop())]
    if not any(r.get("bottleneck") in ANCHORS for r in summary):
        parts.append("--no-anchors")
    parts += ["--out", "NEW_DIR"]
    return " ".join(shlex.quote(p) for p in parts)


def _comparison_report(root: Path) -> tuple[str, Path]:
    summary = _read_json(root / "results.json")
    if not isinstance(summary, list):
        raise SoftVQError(f"{root / 'results.json'} is not a list of result rows")
    rows = _read_json(root / "runs.json") or []
    paired = _read_json(root / "paired.json") or []
    names = [str(r.get("bottleneck")) for r in summary]
    runs = _comparison_runs(root, names)
    first = {name: rs[0] for name, rs in runs.items()}
    cfg = next(iter(first.values())).config if first else {}
    seeds = sorted({r.seed for rs in runs.values() for r in rs if r.seed is not None}
                   | {r["seed"] for r in rows if isinstance(r.get("seed"), int)})
    trained = [n for n in names if n not in ANCHORS]
    split = _split(cfg)

    body: list[str] = []
    toc: list[tuple[str, str]] = []

    def add(anchor: str, title: str, html_body: str, intro: str = "") -> None:
        toc.append((anchor, title))
        body.append(_section(anchor, title, html_body, intro))

    # at a glance: the best trained bottleneck per headline metric, with the anchors for scale
    cards = []
    for m in HEADLINE:
        cand = [(r["bottleneck"], r[f"{m}_mean"], r.get(f"{m}_std")) for r in summary
                if r.get("bottleneck") not in ANCHORS and _finite(r.get(f"{m}_mean"))]
        if not cand:
            continue
        name, mu, sd = (min if lower_is_better(m) else max)(cand, key=lambda c: c[1])
        anchors = [f"{r['bottleneck']} {_fmt(r[f'{m}_mean'], m)}" for r in summary
                   if r.get("bottleneck") in ANCHORS and _finite(r.get(f"{m}_mean"))]
        foot = ("for scale: " + ", ".join(anchors)) if anchors else f"best of {len(cand)} bottleneck{'s' if len(cand) > 1 else ''}"
        value = _fmt(mu, m) + (f" ± {_fmt(sd, m)}" if _finite(sd) else "")
        cards.append((f"{_label(m)} {'↓' if lower_is_better(m) else '↑'}", str(name), value, foot))
    if cards:
        body.append(_cards(cards))

    add("results", "Results", _results_table(summary),
        f"Mean ± sample std over seeds on the {split} split; best value per column highlighted "
        f"(↑ higher is better, ↓ lower is better). Rows {', '.join(a for a in ANCHORS if a in names) or 'raw, pca'} "
        f"are untrained anchors: raw pixels and PCA to the latent size." if any(a in names for a in ANCHORS)
        else f"Mean ± sample std over seeds on the {split} split; best value per column highlighted "
             "(↑ higher is better, ↓ lower is better).")
    if paired:
        add("paired", "Paired differences", _paired_table(paired),
            f"{paired[0].get('reference', 'softvq')} minus each other row, paired by seed: "
            "seed-to-seed noise shared by both runs cancels out.")

    curves = _curves_uri(runs)
    add("curves", "Training curves",
        _figure(curves, "training curves of every bottleneck", "reconstruction term of the training loss; "
                "bold: first seed, faint: other seeds", "No history.csv found in the run directories.", "wide"))

    emb, coloured = _embeddings_uri(first)
    add("embeddings", "Latent embeddings",
        _figure(emb, "2-D embeddings of every bottleneck side by side",
                f"t-SNE of the {split} latents (first seed of each bottleneck)"
                + ("; colour: class label" if coloured else "; labels unavailable, one colour"),
                "No embedding_2d.npy found: the first-seed runs were trained with plots off.", "wide"))

    def per_run_grid(filename: str, what: str, only: Callable[[_Run], bool] = lambda r: True) -> tuple[str, int]:
        figs, found = [], 0
        for name in first:
            run = next((r for r in runs[name] if (r.path / filename).is_file()), first[name])
            if not only(run):
                continue
            uri = _file_uri(run.path / filename)
            found += uri is not None
            figs.append(_figure(uri, f"{what}: {name}", f"{name} (seed {run.seed})",
                                f"{name}: no {filename} in {run.path.name} (trained with plots off?)"))
        return _grid(figs, "grid two"), found

    grid, _ = per_run_grid("reconstructions.png", "reconstructions")
    add("reconstructions", "Reconstructions", grid, f"{split.capitalize()} images (top rows) and their reconstructions (bottom rows).")
    quantized = lambda r: bool(r.config.get("num_codes")) and (  # noqa: E731
        (r.path / "codebook_usage.png").is_file() or (r.metrics or {}).get("perplexity") is not None)
    grid, found = per_run_grid("codebook_usage.png", "codebook usage", quantized)
    if found or any(quantized(r) for r in first.values()):
        add("codebooks", "Codebook usage", grid, f"{split.capitalize()}-split code counts, sorted; perplexity near K means all codes are in use.")

    if rows:
        add("runs", "Every run", f"<details><summary>Show the metrics of all {len(rows)} runs</summary>{_runs_table(rows)}</details>")

    # configuration
    items: list[tuple[str, str]] = []
    differs = False
    all_runs = [r for rs in runs.values() for r in rs]
    for key in cfg:
        if key in PER_RUN_KEYS:
            continue
        vals = {name: _config_value(r.config.get(key)) for name, r in first.items()}
        if len(set(vals.values())) <= 1:
            items.append((key, next(iter(vals.values()), "")))
        else:
            differs = True
            items.append((key, ", ".join(f"{n}: {v}" for n, v in vals.items())))
    cfg_html = _config_grid(items) if items else _note("No run configurations found.")
    command = None
    try:
        command = (root / "command.txt").read_text(encoding="utf-8").strip() or None
    except OSError:
        pass
    if command:
        cmd_html = "<p class=\"note\">Command that produced this comparison:</p>" + _code(command)
    else:
        rebuilt = _comparison_command(root, runs, summary, rows)
        cmd_html = ("<p class=\"note\">Rebuilt from the run configurations (no command.txt); "
                    "use a new --out, or finished runs are reused:</p>" + _code(rebuilt)) if rebuilt else \
            _note("No command.txt, and the run configurations differ beyond bottleneck and seed.")
    if all_runs:
        cfg_html += _note("Resolved settings of the first seed of each bottleneck (config.json); "
                          + ("a value that differs by bottleneck is listed per bottleneck."
                             if differs else "every bottleneck used the same values."))
    add("config", "Configuration", cfg_html + cmd_html)

    dataset = cfg.get("dataset", "?")
    title = f"Bottleneck comparison on {dataset}"
    subtitle = f"{len(trained)} bottleneck{'s' if len(trained) != 1 else ''}: {', '.join(trained)}"
    chips = [_seed_text(seeds)] + _config_chips(cfg)
    return _page(title, subtitle, chips, toc, body, root), root / REPORT_NAME


def _run_report(root: Path) -> tuple[str, Path]:
    run = _Run.load(root)
    cfg, metrics, meta = run.config, run.metrics, run.meta or {}
    split = _split(cfg)
    body: list[str] = []
    toc: list[tuple[str, str]] = []

    def add(anchor: str, title: str, html_body: str, intro: str = "") -> None:
        toc.append((anchor, title))
        body.append(_section(anchor, title, html_body, intro))

    if isinstance(metrics, dict):
        shown = [m for m in _metrics_in([{f"{k}_v": v for k, v in metrics.items() if _finite(v)}], "_v")
                 if m not in NOT_METRICS]
        timings = [f"{_label(m).replace(' (s)', '')} {float(metrics[m]):.1f} s" for m in shown if m.endswith("_seconds")]
        shown = results = [m for m in shown if not m.endswith("_seconds")]
        cards = [(f"{_label(m)} {'↓' if lower_is_better(m) else '↑'}", _fmt(metrics[m], m), "", METRIC_HELP.get(m, ""))
                 for m in results if m in HEADLINE]
        if cards:
            body.append(_cards(cards))
        head = '<tr><th>metric</th><th class="num">value</th><th>meaning</th></tr>'
        trs = "".join(
            f'<tr><th scope="row">{_e(_label(m))} <span class="dir">{"↓" if lower_is_better(m) else "↑"}</span></th>'
            f'<td class="num">{_fmt(metrics[m], m)}</td><td class="meaning">{_e(METRIC_HELP.get(m, ""))}</td></tr>'
            for m in shown)
        extra = []
        if timings:
            extra.append(", ".join(timings))
        if metrics.get("num_test") is not None:
            extra.append(f"{metrics['num_test']} {split} samples")
        if metrics.get("n_init") is not None:
            extra.append(f"k-means with {metrics['n_init']} restarts")
        add("metrics", "Metrics", f'<div class="scroll"><table class="metrics" id="metrics-table"><thead>{head}</thead>'
            f"<tbody>{trs}</tbody></table></div>" + (_note("; ".join(extra) + ".") if extra else ""),
            f"Evaluation on the {split} split (softvq evaluate).")
    else:
        add("metrics", "Metrics", _note(f"Not evaluated yet: run `softvq evaluate {root}` to write metrics.json."))

    curve = _file_uri(root / "curve.png")
    if curve is None and run.history:
        curve = _curves_uri({run.name: [run]})
    figs = [_figure(curve, "training curve", "training curve: loss and its terms against step",
                    "No curve.png or history.csv in this run.")]
    for name, caption in (("reconstructions.png", f"reconstructions: {split} images (top), model output (bottom)"),
                          ("embedding.png", f"latent embedding: t-SNE of the {split} latents"),
                          ("codebook_usage.png", f"codebook usage: {split}-split code counts, sorted")):
        uri = _file_uri(root / name)
        if uri is None and name == "codebook_usage.png" and (metrics or {}).get("perplexity") is None:
            continue  # not a quantizer: nothing to show or to miss
        figs.append(_figure(uri, caption.split(":")[0] + f": {run.name}", caption,
                            f"No {name} in this run (trained with plots off?)."))
    add("figures", "Figures", _grid(figs, "grid two"))

    items = [(k, _config_value(v)) for k, v in cfg.items()]
    info = []
    for key, label in (("sample_shape", "sample shape"), ("output", "decoder output"), ("num_train", "training samples"),
                       ("num_classes", "classes"), ("train_seconds_last_session", "training time (s)"),
                       ("softvq_version", "softvq version")):
        if meta.get(key) is not None:
            info.append((label, _config_value(meta[key])))
    cmd = "\n".join([
        f"softvq train --config {shlex.quote(str(root / 'config.json'))} --out NEW_RUN_DIR",
        "softvq evaluate NEW_RUN_DIR" + (f" --n-init {metrics['n_init']}" if isinstance(metrics, dict) and metrics.get("n_init") else ""),
    ])
    cfg_html = _config_grid(items)
    if info:
        cfg_html += "<h3>Run</h3>" + _config_grid(info)
    add("config", "Configuration", cfg_html + "<p class=\"note\">Reproduce:</p>" + _code(cmd))

    title = f"{run.name} on {cfg.get('dataset', '?')}"
    subtitle = f"softvq run {root.name}"
    chips = ([f"seed {run.seed}"] if run.seed is not None else []) + _config_chips(cfg)
    return _page(title, subtitle, chips, toc, body, root), root / REPORT_NAME


def build_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write one self-contained HTML report of a run or comparison directory; return its path.

    ``path`` holding ``results.json`` is a comparison (``softvq compare --out``), one
    holding ``config.json`` a run (``softvq train --out``). ``out`` defaults to
    ``<path>/report.html``; the file is written atomically.
    """
    root = Path(path)
    if not root.is_dir():
        raise SoftVQError(f"{root} is not a directory")
    if (root / "results.json").is_file():
        text, default = _comparison_report(root)
    elif (root / "config.json").is_file():
        text, default = _run_report(root)
    else:
        raise SoftVQError(f"{root} is neither a run directory (config.json) nor a comparison directory (results.json)")
    target = Path(out) if out is not None else default
    _io.write_text(target, text)
    return target
