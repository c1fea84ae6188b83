"""``softvq report``: the HTML page of a comparison and of a run, parsed, then rendered in Chromium.

One tiny real comparison (digits, 60 steps, ae and softvq over two seeds) is trained
once for the module. The pages are checked twice: parsed here (tables, images, no
external references, escaping), and loaded in headless Chromium (Debian's
``chromium``, installed by ``make install-test``): the rendered DOM holds the
tables, every image decodes to its PNG's size, and a screenshot is not blank.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import softvq
from softvq.cli import main
from softvq.errors import SoftVQError
from softvq.reporting.html import build_report

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOTTLENECKS = ["ae", "softvq"]
SEEDS = [0, 1]
COMMAND = "softvq compare --bottlenecks ae,softvq --out 'runs/<b>&\"x\"'"


# ----------------------------------------------------------------------------- helpers


class Page(HTMLParser):
    """Tables (header and body rows of cell texts and classes), images, scripts, links."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict] = {}
        self.images: list[dict[str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.body_attrs: dict[str, str] = {}
        self._table: dict | None = None
        self._part = "body"
        self._row: list | None = None
        self._cell: dict | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "body":
            self.body_attrs = a
        elif tag == "img":
            self.images.append(a)
        elif tag == "table":
            self._table = {"class": a.get("class", ""), "head": [], "body": []}
            self.tables[a.get("id") or a.get("class") or f"table{len(self.tables)}"] = self._table
        elif tag in ("thead", "tbody"):
            self._part = tag[1:]
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = {"text": "", "class": a.get("class", "")}

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self._table[self._part].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data

    def row_names(self, table: str) -> list[str]:
        return [row[0]["text"] for row in self.tables[table]["body"]]

    def alts(self) -> list[str]:
        return [img.get("alt", "") for img in self.images]


def png_bytes(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), f"image is not an embedded PNG: {src[:60]!r}"
    data = base64.b64decode(src[len(prefix):], validate=True)
    assert data.startswith(PNG_SIGNATURE), "data URI does not decode to a PNG"
    return data


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk."""
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if exe is None:
        pytest.fail("chromium is not installed; the HTML report test renders the page in headless Chromium. "
                    "Run `make install-test` (it installs Debian's chromium package) and rerun the tests.")
    return exe


def run_chromium(url_file: Path, tmp: Path, *flags: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *flags, url_file.resolve().as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within 60 s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc


# A probe for the test's own copy of the page (the report itself has no scripts): after
# load, record for every image whether it loaded, its natural size, and the mean RGBA
# of what the browser decoded (drawn on a canvas): a truncated or corrupt PNG shows up
# as a wrong mean even when its header alone gave the browser a size.
PROBE = """<script>
window.addEventListener("load", function () {
  var out = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i], mean = null;
    if (im.complete && im.naturalWidth > 0) {
      var c = document.createElement("canvas");
      c.width = im.naturalWidth;
      c.height = im.naturalHeight;
      var ctx = c.getContext("2d");
      ctx.drawImage(im, 0, 0);
      var d = ctx.getImageData(0, 0, c.width, c.height).data, sum = [0, 0, 0, 0];
      for (var k = 0; k < d.length; k += 4) {
        sum[0] += d[k]; sum[1] += d[k + 1]; sum[2] += d[k + 2]; sum[3] += d[k + 3];
      }
      mean = sum.map(function (v) { return v / (d.length / 4) / 255; });
    }
    out.push([im.complete, im.naturalWidth, im.naturalHeight, mean]);
  }
  document.body.setAttribute("data-images", JSON.stringify(out));
});
</script>"""


def mean_rgba(data: bytes) -> np.ndarray:
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(io.BytesIO(data)), dtype=np.float64)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    if pixels.shape[-1] == 3:
        pixels = np.concatenate([pixels, np.ones(pixels.shape[:-1] + (1,))], axis=-1)
    return pixels.reshape(-1, 4).mean(axis=0)


def render(report: Path, tmp: Path) -> tuple[Page, np.ndarray]:
    """Load ``report`` in Chromium: the DOM after load (of the probed copy) and a screenshot (of the page itself)."""
    tmp.mkdir(parents=True, exist_ok=True)
    probed = tmp / "probed.html"
    text = report.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = Page(run_chromium(probed, tmp, "--dump-dom").stdout)

    shot = tmp / "shot.png"
    run_chromium(report, tmp, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    import matplotlib.image

    assert shot.is_file() and shot.read_bytes().startswith(PNG_SIGNATURE), "chromium wrote no screenshot"
    pixels = matplotlib.image.imread(shot)
    return dom, pixels


def assert_rendered(report: Path, tmp: Path, tables: dict[str, list[str]]) -> None:
    source = Page(report.read_text(encoding="utf-8"))
    dom, pixels = render(report, tmp)
    # the tables came through the browser's parser intact
    for table, rows in tables.items():
        assert table in dom.tables, f"rendered DOM lacks table {table!r}"
        assert dom.row_names(table) == rows
    # every image loaded, decoded, and has the size of the PNG it embeds
    assert "data-images" in dom.body_attrs, "the page did not finish loading"
    states = json.loads(dom.body_attrs["data-images"])
    assert len(states) == len(source.images) > 0
    for img, (complete, width, height, mean) in zip(source.images, states):
        alt, data = img.get("alt"), png_bytes(img["src"])
        assert complete and width > 0 and height > 0 and mean is not None, f"image {alt!r} did not load"
        assert (width, height) == png_size(data), alt
        np.testing.assert_allclose(mean, mean_rgba(data), atol=0.01, err_msg=f"image {alt!r} decoded wrongly")
    # the screenshot is a real page, not a blank or single-colour canvas
    assert pixels.shape[:2] == (2000, 1280)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert float(rgb.std()) > 0.05
    assert len(np.unique((rgb[::7] * 255).astype(np.uint8), axis=0)) > 50


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "cmp"
    softvq.compare(softvq.TrainConfig(steps=60, log_every=10), BOTTLENECKS, SEEDS, out,
                   n_init=2, progress=False, log=lambda s: None)
    (out / "command.txt").write_text(COMMAND + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def comparison_report(comparison: Path) -> tuple[Path, str]:
    path = build_report(comparison)
    return path, path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- comparison


def test_comparison_report_is_written_beside_the_results(comparison: Path, comparison_report: tuple[Path, str]) -> None:
    path, text = comparison_report
    assert path == comparison / "report.html"
    assert text.startswith("<!DOCTYPE html>")
    assert not list(comparison.glob(".report.html.*")), "temporary file left behind"


def test_comparison_tables_have_one_row_per_bottleneck(comparison: Path, comparison_report: tuple[Path, str]) -> None:
    page = Page(comparison_report[1])
    summary = json.loads((comparison / "results.json").read_text())
    names = [r["bottleneck"] for r in summary]
    assert sorted(names) == sorted(BOTTLENECKS + ["raw", "pca"])
    assert page.row_names("results-table") == names
    head = [c["text"] for c in page.tables["results-table"]["head"][0]]
    assert head[:2] == ["bottleneck", "n"]
    assert any(h.startswith("k-means acc") for h in head) and any(h.startswith("MSE test") for h in head)
    for row in page.tables["results-table"]["body"]:
        assert row[1]["text"] == str(len(SEEDS))
    # mean ± std cells, and the best mean per column is highlighted
    col = next(i for i, h in enumerate(head) if h.startswith("k-means acc"))
    cells = [row[col] for row in page.tables["results-table"]["body"]]
    assert all(re.fullmatch(r"\d\.\d{3} ± \d\.\d{3}", c["text"]) for c in cells), [c["text"] for c in cells]
    best = max(round(r["kmeans_acc_mean"], 3) for r in summary)
    assert [c["text"].split()[0] == f"{best:.3f}" for c in cells] == ["best" in c["class"] for c in cells]
    col = next(i for i, h in enumerate(head) if h.startswith("MSE test"))  # lower is better
    cells = [row[col] for row in page.tables["results-table"]["body"]]
    means = [r.get("recon_mse_test_mean") for r in summary]
    best = min(round(m, 4) for m in means if m is not None)
    assert [m is not None and round(m, 4) == best for m in means] == ["best" in c["class"] for c in cells]
    assert cells[names.index("raw")]["text"] == "–"  # the anchors reconstruct nothing
    # paired differences: softvq against every other row
    assert sorted(page.row_names("paired-table")) == sorted(["ae", "raw", "pca"])
    assert all(row[1]["text"] == str(len(SEEDS)) for row in page.tables["paired-table"]["body"])


def test_comparison_figures(comparison_report: tuple[Path, str]) -> None:
    page = Page(comparison_report[1])
    alts = page.alts()
    assert "training curves of every bottleneck" in alts
    assert "2-D embeddings of every bottleneck side by side" in alts
    for name in BOTTLENECKS:
        assert f"reconstructions: {name}" in alts
    assert "codebook usage: softvq" in alts and "codebook usage: ae" not in alts
    assert len(alts) == 5
    for img in page.images:
        data = png_bytes(img["src"])
        width, height = png_size(data)
        assert 200 <= width <= 2000 and 100 <= height <= 2000, (img["alt"], width, height)
        assert mean_rgba(data)[3] > 0.99  # decodes in full (a truncated PNG raises), opaque


def test_comparison_report_is_self_contained(comparison_report: tuple[Path, str]) -> None:
    path, text = comparison_report
    assert not re.search(r"https?:", text, re.IGNORECASE)
    assert "url(" not in text and "@import" not in text
    page = Page(text)
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:image/png;base64,", "#")), (tag, attrs[key][:60])
    assert path.stat().st_size < 2_000_000


def test_comparison_report_shows_config_and_escaped_command(comparison_report: tuple[Path, str]) -> None:
    text = comparison_report[1]
    assert "softvq compare --bottlenecks ae,softvq --out &#x27;runs/&lt;b&gt;&amp;&quot;x&quot;&#x27;" in text
    assert "<b>" not in text
    assert ">small-mlp<" in text  # the shared network of the runs
    assert 'id="config"' in text


def test_comparison_report_renders_in_chromium(comparison_report: tuple[Path, str], tmp_path: Path) -> None:
    path = comparison_report[0]
    assert_rendered(path, tmp_path, {"results-table": ["ae", "softvq", "raw", "pca"],
                                     "paired-table": ["ae", "raw", "pca"]})


def test_comparison_command_is_rebuilt_without_command_txt(comparison: Path, tmp_path: Path) -> None:
    (comparison / "command.txt").unlink()
    try:
        text = build_report(comparison, tmp_path / "r.html").read_text(encoding="utf-8")
    finally:
        (comparison / "command.txt").write_text(COMMAND + "\n", encoding="utf-8")
    assert "softvq compare --config" in text
    assert "--bottlenecks ae,softvq --seeds 2 --first-seed 0 --n-init 2 --out NEW_DIR" in text


# ----------------------------------------------------------------------------- single runs


def test_run_report(comparison: Path, tmp_path: Path) -> None:
    run = comparison / "softvq" / "seed0"
    path = build_report(run)
    assert path == run / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    names = page.row_names("metrics-table")
    for label in ("k-means acc", "NMI", "ARI", "probe acc", "MSE test", "perplexity", "dead codes"):
        assert any(n.startswith(label) for n in names), (label, names)
    assert sorted(page.alts()) == sorted(["training curve", "reconstructions: softvq",
                                          "latent embedding: softvq", "codebook usage: softvq"])
    for img in page.images:
        png_bytes(img["src"])
    assert not re.search(r"https?:", path.read_text(encoding="utf-8"), re.IGNORECASE)
    assert f"softvq train --config {run / 'config.json'} --out NEW_RUN_DIR" in path.read_text(encoding="utf-8")
    assert_rendered(path, tmp_path, {"metrics-table": names})


def test_run_report_without_plots_notes_the_missing_figures(comparison: Path, tmp_path: Path) -> None:
    run = comparison / "ae" / "seed1"  # plots are drawn for the first seed only
    assert not list(run.glob("*.png"))
    out = build_report(run, tmp_path / "deep" / "ae.html")
    assert out == tmp_path / "deep" / "ae.html" and not (run / "report.html").exists()
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert page.alts() == ["training curve"]  # drawn here from history.csv
    png_bytes(page.images[0]["src"])
    assert "No reconstructions.png in this run" in text and "No embedding.png in this run" in text
    assert "codebook_usage.png" not in text  # ae has no codebook: nothing to miss


def test_run_report_before_evaluation(comparison: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "meta.json", "history.csv"):
        shutil.copy(comparison / "softvq" / "seed1" / name, run / name)
    text = build_report(run).read_text(encoding="utf-8")
    assert "Not evaluated yet" in text and "metrics-table" not in text


def test_report_of_a_directory_that_is_neither(tmp_path: Path) -> None:
    with pytest.raises(SoftVQError, match="neither a run directory"):
        build_report(tmp_path)
    with pytest.raises(SoftVQError, match="not a directory"):
        build_report(tmp_path / "absent")


# ----------------------------------------------------------------------------- CLI


def test_cli_report(comparison: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli.html"
    assert main(["report", str(comparison), "--out", str(out)]) == 0
    assert f"report written to {out}" in capsys.readouterr().out
    assert Page(out.read_text(encoding="utf-8")).row_names("results-table")
    assert main(["report", str(tmp_path / "empty-does-not-exist")]) == 2
    assert "softvq report: error:" in capsys.readouterr().err


def test_single_run_cells_show_no_spread() -> None:
    from softvq.reporting.html import _paired_table, _results_table

    summary = [{"bottleneck": "softvq", "n": 3, "kmeans_acc_mean": 0.6, "kmeans_acc_std": 0.01},
               {"bottleneck": "raw", "n": 1, "kmeans_acc_mean": 0.5, "kmeans_acc_std": 0.0}]
    page = Page(_results_table(summary))
    cells = [row[2]["text"] for row in page.tables["results-table"]["body"]]
    assert cells == ["0.600 ± 0.010", "0.500"]
    paired = [{"bottleneck": "raw", "reference": "softvq", "n_pairs": 1, "kmeans_acc_diff_mean": 0.1, "kmeans_acc_diff_std": 0.0}]
    page = Page(_paired_table(paired))
    assert page.tables["paired-table"]["body"][0][2]["text"] == "+0.100"
