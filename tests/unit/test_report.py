"""Unit tests of the HTML report (orchestrator/report) on fake run directories."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator.report import render_report  # noqa: E402
from orchestrator.report.plots import MAX_LINE_POINTS, downsample_indices  # noqa: E402
from orchestrator.report.formatting import format_count, format_flops, format_metric  # noqa: E402
from orchestrator.report.render import TABLE_SCRIPT, build_context  # noqa: E402
from tests.fakes import NO_GPU_REASON, make_fake_run, validate_result  # noqa: E402

MALICIOUS = "<script>alert(1)</script>"
GPU_ROWS = ("GPU utilization (%)", "GPU memory utilization (%)", "GPU memory used (%)", "GPU power (W)",
            "GPU energy (J)")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


class _TableParser(HTMLParser):
    """Collects one table (by id): column headers (cells of ``head_class``) and rows of
    (label, [(text, title, class)])."""

    def __init__(self, table_id: str = "comparison-table", head_class: str = "colhead") -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.head_class = table_id, head_class
        self.in_table = False
        self.depth = 0
        self.section = None
        self.headers: list[str] = []
        self.rows: dict[str, list[tuple[str, str | None, str]]] = {}
        self._cell: dict | None = None
        self._row: list | None = None
        self._label: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.in_table = True
        if not self.in_table:
            return
        if tag in ("thead", "tbody"):
            self.section = tag
        elif tag == "tr":
            self._row, self._label = [], None
        elif tag in ("th", "td"):
            self._cell = {"tag": tag, "text": "", "title": a.get("title"), "class": a.get("class") or ""}

    def handle_endtag(self, tag):
        if not self.in_table:
            return
        if tag == "table":
            self.in_table = False
        elif tag in ("th", "td") and self._cell is not None:
            c, self._cell = self._cell, None
            text = " ".join(c["text"].split())
            if self.section == "thead":
                if self.head_class in c["class"]:
                    self.headers.append(text)
            elif c["tag"] == "th" and "rowlabel" in c["class"]:
                self._label = text
            elif c["tag"] == "td" and self._row is not None:
                self._row.append((text, c["title"], c["class"]))
        elif tag == "tr" and self.section == "tbody" and self._label is not None:
            self.rows[self._label] = self._row or []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def parse_table(html: str, table_id: str = "comparison-table", head_class: str = "colhead") -> _TableParser:
    p = _TableParser(table_id, head_class)
    p.feed(html)
    return p


class _GridParser(HTMLParser):
    """Rows of the table with id ``table_id``: ``headers`` and ``rows`` of cells ``{text, title, class,
    data-sort, href}``."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.inside, self.section = table_id, False, None
        self.headers: list[str] = []
        self.rows: list[list[dict]] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.inside = True
            self.table_attrs = a
        if not self.inside:
            return
        if tag in ("thead", "tbody"):
            self.section = tag
        elif tag == "tr" and self.section == "tbody":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = {"text": "", "title": a.get("title"), "class": a.get("class") or "",
                          "data-sort": a.get("data-sort"), "href": None}
        elif tag == "a" and self._cell is not None:
            self._cell["href"] = a.get("href")

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "table":
            self.inside = False
        elif tag in ("th", "td") and self._cell is not None:
            c, self._cell = self._cell, None
            c["text"] = " ".join(c["text"].split())
            if self.section == "thead":
                self.headers.append(c["text"])
            else:
                self.rows[-1].append(c)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def parse_grid(html: str, table_id: str) -> tuple[list[str], list[dict[str, dict]]]:
    """``(headers, rows)`` of a table with one header row; each row maps header -> cell."""
    p = _GridParser(table_id)
    p.feed(html)
    assert p.headers, f"no table with id {table_id!r}"
    return p.headers, [dict(zip(p.headers, row)) for row in p.rows]


def run_section(html: str, index: int) -> str:
    """The ``<section class="run">`` of run ``index`` (run sections do not nest)."""
    start = html.index(f'<section class="run" id="run-{index}">')
    return html[start:html.index("</section>", start)]


def model_pages(html: str) -> dict[str, str]:
    """``{id: html}`` of every ``<section class="model-page">``."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<section class="model-page" id="([^"]+)">', html)]
    ends = [s for s, _ in starts[1:]] + [html.index('<section id="environment"')]
    return {anchor: html[start:end] for (start, anchor), end in zip(starts, ends)}


@pytest.fixture()
def three_runs(tmp_path: Path) -> tuple[list[Path], list[dict]]:
    """Regression ok (malicious display name), classification ok (with a GPU), regression failed."""
    dirs = [tmp_path / "results" / "reg_ok", tmp_path / "results" / "cls_ok", tmp_path / "results" / "reg_failed"]
    results = [
        make_fake_run(dirs[0], task_type="regression", status="ok", display_name=MALICIOUS),
        make_fake_run(dirs[1], task_type="classification", status="ok", display_name="CGCNN classifier",
                      gpu=True, seed=1),
        make_fake_run(dirs[2], task_type="regression", status="failed", display_name="Broken Net", seed=2),
    ]
    return dirs, results


@pytest.fixture()
def rendered(tmp_path: Path, three_runs) -> tuple[str, list[dict]]:
    dirs, results = three_runs
    out = render_report(dirs, tmp_path / "out" / "report.html", title="Test <report>")
    assert out == tmp_path / "out" / "report.html"
    return out.read_text(encoding="utf-8"), results


# ----------------------------------------------------------------------------------------------
# the fakes themselves
# ----------------------------------------------------------------------------------------------


def test_fake_results_are_schema_valid(three_runs) -> None:
    dirs, results = three_runs
    for d, r in zip(dirs, results):
        validate_result(r)
        validate_result(json.loads((d / "result.json").read_text(encoding="utf-8")))
    assert (dirs[0] / "predictions.csv").is_file() and (dirs[1] / "predictions.csv").is_file()
    assert not (dirs[2] / "predictions.csv").exists()
    assert results[2]["error"] is not None and results[2]["status"] == "failed"


# ----------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (1_234_567, "1.23 M"), (999, "999"), (12_345, "12.3 k"), (2_500_000_000, "2.5 G"), (None, "n/a"),
])
def test_format_count(value, expected) -> None:
    assert format_count(value) == expected


@pytest.mark.parametrize("value, expected", [
    (4_560_000_000, "4.56 GFLOP"), (207_142_560_000_000, "207 TFLOP"), (512, "512 FLOP"), (float("nan"), "n/a"),
])
def test_format_flops(value, expected) -> None:
    assert format_flops(value) == expected


@pytest.mark.parametrize("value, expected", [
    (0.123456, "0.1235"), (0.0, "0"), (1.5e-5, "1.500e-05"), (12345.67, "12,345.7"), (None, "n/a"),
])
def test_format_metric(value, expected) -> None:
    assert format_metric(value) == expected


def test_downsample_indices_keeps_ends_and_limit() -> None:
    idx = downsample_indices(10_000)
    assert len(idx) <= MAX_LINE_POINTS and idx[0] == 0 and idx[-1] == 9_999
    assert list(downsample_indices(7)) == list(range(7))


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------


def test_table_has_one_column_per_run(rendered) -> None:
    html, _ = rendered
    table = parse_table(html)
    assert len(table.headers) == 3
    assert "CGCNN classifier" in table.headers[1] and "perov5_gap_positive" in table.headers[1]
    for label in ("Duration (s)", *GPU_ROWS, "Host CPU (%)", "Host memory (%)", "Params",
                  "Forward FLOPs / sample", "Training FLOPs / epoch"):
        assert label in table.rows, label
    for label, cells in table.rows.items():
        assert len(cells) == 3, (label, cells)
        assert all(text.strip() for text, _, _ in cells), f"blank cell in row {label!r}"


def test_metric_values_formatted_with_units(rendered) -> None:
    html, results = rendered
    rows = parse_table(html).rows
    reg, cls = results[0]["metrics"], results[1]["metrics"]
    assert rows["MAE (eV/atom)"][0][0] == format_metric(reg["MAE"])
    assert rows["RMSE (eV/atom)"][0][0] == format_metric(reg["RMSE"])
    assert rows["MaxError (eV/atom)"][0][0] == format_metric(reg["MaxError"])
    assert rows["MSE (eV/atom)²"][0][0] == format_metric(reg["MSE"])
    assert rows["R2"][0][0] == format_metric(reg["R2"])
    assert re.fullmatch(r"-?\d+\.\d{4}", rows["MAE (eV/atom)"][0][0])
    for name in ("ROC-AUC", "Accuracy", "Precision", "Recall", "F1"):
        assert rows[name][1][0] == format_metric(cls[name])
    # a regression run has no classification metrics and vice versa: a dash, not n/a or 0
    assert rows["ROC-AUC"][0][0] == "—" and rows["MAE (eV/atom)"][1][0] == "—"
    assert rows["Params"][0][0] == "1.23 M"
    assert rows["Forward FLOPs / sample"][0][0] == "4.56 GFLOP"
    assert rows["Training FLOPs / epoch"][1][0] == "207 TFLOP"


def test_failed_run_shows_status_not_blank_or_zero(rendered) -> None:
    html, results = rendered
    table = parse_table(html)
    assert "FAILED" in table.headers[2]
    for label in ("MAE (eV/atom)", "R2", "Params", "Forward FLOPs / sample"):
        text, title, css = table.rows[label][2]
        assert text == "FAILED", (label, text)
        assert "RuntimeError" in (title or "")
    # the error block: type, escaped message, log tail in a <pre>
    section = html[html.index('id="run-3"'):]
    assert "RuntimeError" in section
    assert "simulated failure: &lt;img src=x onerror=alert(3)&gt; &amp; &#34;quoted&#34;" in section
    assert re.search(r'<pre class="log-tail">[^<]*epoch 1 train_loss=', section)
    assert "&lt;b&gt;not bold&lt;/b&gt;" in section
    assert "<img src=x" not in html


def test_gpu_rows_na_with_reason_on_cpu_host(rendered) -> None:
    html, _ = rendered
    rows = parse_table(html).rows
    for label in GPU_ROWS:
        text, title, css = rows[label][0]
        assert text == "n/a" and title == NO_GPU_REASON, (label, text, title)
        # the failed run is on a CPU host too: the reason wins over the status
        assert rows[label][2][0] == "n/a"
        # the GPU run has numbers
        assert re.fullmatch(r"[\d,]+(\.\d)?", rows[label][1][0]), (label, rows[label][1])


def test_untrusted_strings_are_escaped(rendered) -> None:
    html, _ = rendered
    assert MALICIOUS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the only script is the report's own constant (no data in it)
    assert html.lower().count("<script") == 1
    assert f"<script>{TABLE_SCRIPT}</script>" in html
    assert "Test &lt;report&gt;" in html and "<report>" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # hyperparameter value
    assert "onerror=" not in re.sub(r"&lt;img src=x onerror=alert\(\d\)&gt;", "", html)


def test_report_is_self_contained(rendered) -> None:
    html, _ = rendered
    assert not re.search(r"""\b(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    assert "<style>" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids (inline SVGs must not clash)"


def test_figures_present_and_small(rendered) -> None:
    html, _ = rendered
    # reg ok: timeseries, loss, parity; cls ok: timeseries, loss, roc; failed: timeseries, loss;
    # one accuracy-against-cost figure per task (regression, classification)
    assert html.count("<svg") == 8 + 2
    assert len(re.findall(r'<figure class="tradeoff"', html)) == 2
    assert 'class="fig-parity' in html and 'class="fig-roc' in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        assert len(svg) < 150_000
        assert "<?xml" not in svg and "DOCTYPE" not in svg
    assert "MAE = " in html and "AUC = " in html
    # the failed run has no predictions: a note instead of the parity plot
    failed = html[html.index('id="run-3"'):]
    assert "predictions.csv not found" in failed


def test_footnotes_and_header(rendered) -> None:
    html, _ = rendered
    assert "gather/scatter" in html and "functional matmuls" in html
    assert "3 runs" in html and "Generated " in html
    for i in (1, 2, 3):
        assert f'id="run-{i}"' in html


def test_missing_and_broken_files_do_not_break_the_report(tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    make_fake_run(ok, task_type="regression", status="ok", display_name="Fine")
    no_csvs = tmp_path / "no_csvs"
    make_fake_run(no_csvs, task_type="classification", status="ok", display_name="No files",
                  write_timeseries=False, write_predictions=False)
    garbage = tmp_path / "garbage"
    make_fake_run(garbage, task_type="regression", status="ok", display_name="Garbage CSVs")
    (garbage / "timeseries.csv").write_bytes(b"\x00\x01\x02 not a csv\n\"unterminated")
    (garbage / "predictions.csv").write_text("id,foo\n1,2\n", encoding="utf-8")
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "result.json").write_text("{ this is <not> json", encoding="utf-8")
    missing = tmp_path / "missing"
    missing.mkdir()
    not_object = tmp_path / "not_object"
    not_object.mkdir()
    (not_object / "result.json").write_text("[1, 2]", encoding="utf-8")

    out = render_report([ok, no_csvs, garbage, bad_json, missing, not_object], tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    table = parse_table(html)
    assert len(table.headers) == 3
    assert html.count('class="unreadable"') == 3
    assert str(bad_json / "result.json") in html and "not valid JSON" in html
    assert str(missing / "result.json") in html and "result.json not found" in html
    assert "expected an object" in html
    assert "<not>" not in html
    # the classification run without predictions still has its ROC (from metric_details)
    no_csvs_section = run_section(html, 2)
    assert "timeseries.csv not found" in no_csvs_section
    assert 'class="fig-roc' in no_csvs_section and no_csvs_section.count("<svg") == 2
    garbage_section = run_section(html, 3)
    assert "lacks column(s) target, prediction" in garbage_section
    assert "timeseries.csv" in garbage_section and garbage_section.count("<svg") == 1  # loss curves only
    assert html.count("<svg") == 3 + 2 + 1 + 2  # + one accuracy-against-cost figure per task


def test_schema_violation_is_unreadable_with_the_reason(tmp_path: Path) -> None:
    """A result that parses but fails the result schema is listed as unreadable, naming the file,
    the fields and what was expected (read through orchestrator.reader, like the summary)."""
    good = tmp_path / "good"
    make_fake_run(good, task_type="regression", status="ok", display_name="Good")
    run = tmp_path / "odd"
    result = make_fake_run(run, task_type="regression", status="oom", display_name="Odd")
    result["status"] = "exploded"  # not in the enum
    del result["environment"]
    (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
    html = render_report([good, run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count('class="unreadable"') == 1 and "1 unreadable result" in html
    row = re.search(r'<tr class="unreadable">(.*?)</tr>', html, re.S).group(1)
    assert str(run / "result.json") in row and "fails result schema" in row
    assert "exploded" in row and "status" in row and "environment" in row
    assert "EXPLODED" not in html
    table = parse_table(html)
    assert len(table.headers) == 1 and "Good" in table.headers[0]


def test_status_label_for_oom_and_timeout(tmp_path: Path) -> None:
    dirs = []
    for status in ("oom", "timeout"):
        d = tmp_path / status
        make_fake_run(d, task_type="classification", status=status, display_name=status)
        dirs.append(d)
    table = parse_table(render_report(dirs, tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "OOM" in table.headers[0] and "TIMEOUT" in table.headers[1]
    assert [c[0] for c in table.rows["Params"]] == ["OOM", "TIMEOUT"]
    assert [c[0] for c in table.rows["Training FLOPs / epoch"]] == ["OOM", "TIMEOUT"]


def test_no_runs_renders(tmp_path: Path) -> None:
    html = render_report([], tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No readable runs" in html and "0 runs" in html


# ----------------------------------------------------------------------------------------------
# navigation, model pages, runs table, environment page, table script
# ----------------------------------------------------------------------------------------------


def _rewrite(run_dir: Path, result: dict, **changes) -> dict:
    """Update top-level fields of a fake result (``model`` merged) and write it back."""
    for key, value in changes.items():
        if key == "model":
            result["model"] = {**result["model"], **value}
        else:
            result[key] = value
    validate_result(result)
    (run_dir / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return result


IMAGE_ID = "sha256:" + "ab12" * 16


@pytest.fixture()
def two_models(tmp_path: Path) -> tuple[str, list[Path], list[dict]]:
    """Model ``cgcnn`` (three runs: docker/slurm/local, two tasks, seeds out of order) and a model
    whose name, display name and paper carry markup (one run)."""
    base = tmp_path / "results"
    specs = [("cg_heat_s2", "regression", "ok", 2, "cgcnn", "CGCNN"),
             ("evil_heat", "regression", "ok", 0, MALICIOUS, MALICIOUS),
             ("cg_gap_s0", "classification", "failed", 0, "cgcnn", "CGCNN"),
             ("cg_heat_s0", "regression", "ok", 0, "cgcnn", "CGCNN")]
    dirs, results = [], []
    for i, (name, tt, st, seed, model, display) in enumerate(specs):
        d = base / name
        r = make_fake_run(d, task_type=tt, status=st, display_name=display, seed=seed, n_samples=300 + 200 * i)
        paper = ({"title": "<b>Evil</b> paper", "url": "https://example.org/<x>"} if model == MALICIOUS
                 else {"title": "Crystal graph convolutional neural networks", "year": 2018})
        r = _rewrite(d, r, model={"name": model, "paper": paper})
        dirs.append(d)
        results.append(r)
    results[0] = _rewrite(dirs[0], results[0], backend="docker",
                          container={"image": "mateval/cgcnn:1.0", "image_id": IMAGE_ID, "docker_version": "26.1"})
    results[2] = _rewrite(dirs[2], results[2], backend="slurm",
                          slurm={"job_id": "4242", "node": "gpu-node-07", "partition": "gpu", "state": "FAILED"})
    html = render_report(dirs, tmp_path / "report.html").read_text(encoding="utf-8")
    return html, dirs, results


def test_every_model_has_a_page_with_its_runs(two_models) -> None:
    html, _, results = two_models
    pages = model_pages(html)
    assert list(pages) == ["model-cgcnn", "model-script-alert-1-script"]
    cg, evil = pages["model-cgcnn"], pages["model-script-alert-1-script"]
    assert re.search(r'<h2 class="model-title">CGCNN<span class="model-name mono muted">cgcnn</span></h2>', cg)
    assert "Crystal graph convolutional neural networks · year: 2018" in cg
    # the model's run sections, and only those, ordered by task (first appearance) then seed
    order = [int(i) for i in re.findall(r'<section class="run" id="run-(\d+)">', cg)]
    assert order == [4, 1, 3]  # perov5_heat_ref seed 0, seed 2, then perov5_gap_positive
    assert re.findall(r'<section class="run" id="run-(\d+)">', evil) == ["2"]
    assert "3 runs" in cg and "2 ok, 1 failed" in cg
    assert re.findall(r'<li><a href="#run-(\d+)">', cg) == ["4", "1", "3"]
    # every run section is on exactly one model page
    assert sum(len(re.findall(r'<section class="run"', p)) for p in pages.values()) == len(results)


def test_navigation_links_every_page(two_models) -> None:
    html, _, _ = two_models
    nav = re.search(r'<nav class="toc" id="report-nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    hrefs = re.findall(r'href="#([^"]+)"', nav)
    assert hrefs == ["tradeoff", "models-compared", "runs", "comparison", "model-cgcnn", "model-script-alert-1-script",
                     "environment"]
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert set(hrefs) <= ids
    # every in-page link of the report points at an element that exists
    assert set(re.findall(r'href="#([^"]+)"', html)) <= ids


def test_environment_table_has_one_row_per_run(two_models) -> None:
    html, _, results = two_models
    assert '<section id="environment" class="environment-page">' in html
    headers, rows = parse_grid(html, "environment-table")
    for col in ("Run id", "Model", "Task", "Seed", "Status", "Backend", "Image", "Image id", "Slurm job",
                "mateval commit", "Python", "torch", "Device", "GPUs", "GPU driver", "CPU", "CPU cores", "Host"):
        assert col in headers, col
    assert [r["Run id"]["text"] for r in rows] == [r["run_id"] for r in results]
    assert [r["Run id"]["href"] for r in rows] == ["#run-1", "#run-2", "#run-3", "#run-4"]
    assert [r["Backend"]["text"] for r in rows] == ["docker", "local", "slurm", "local"]
    docker, local, slurm = rows[0], rows[1], rows[2]
    assert docker["Image"]["text"] == "mateval/cgcnn:1.0" and "Docker: 26.1" in docker["Image"]["title"]
    assert docker["Image id"]["text"] == IMAGE_ID[:19] + "…" and docker["Image id"]["title"] == IMAGE_ID
    assert slurm["Slurm job"]["text"] == "4242 on gpu-node-07" and "partition: gpu" in slurm["Slurm job"]["title"]
    assert slurm["Status"]["text"] == "FAILED" and "st-failed" in slurm["Status"]["class"]
    for row in rows:
        assert row["Python"]["text"] == "3.11.7" and row["torch"]["text"] == "2.3.1"
        assert row["mateval commit"]["text"] == "abc1234" and row["CPU"]["text"] == "Fake CPU @ 3 GHz"
        assert row["Host"]["text"] == "fakehost" and row["Device"]["text"] == "cpu"
    # values a result does not hold: an em dash that says so
    for cell in (local["Image"], local["Image id"], local["Slurm job"], docker["Slurm job"], local["GPU driver"]):
        assert cell["text"] == "—" and cell["title"].startswith("not recorded"), cell
        assert "missing" in cell["class"] and cell["data-sort"] is None


def test_environment_of_a_result_without_environment(tmp_path: Path) -> None:
    d = tmp_path / "bare"
    result = make_fake_run(d, task_type="regression", display_name="Bare")
    # only what the schema requires, all empty (a result without environment is unreadable)
    result["environment"] = {"mateval_git_sha": None, "python": "", "packages": {}, "platform": ""}
    (d / "result.json").write_text(json.dumps(result), encoding="utf-8")
    _, rows = parse_grid(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), "environment-table")
    assert len(rows) == 1
    for col in ("mateval commit", "Python", "torch", "Device", "GPUs", "GPU driver", "CPU", "CPU cores", "Host"):
        assert rows[0][col]["text"] == "—" and rows[0][col]["title"] == "not recorded", col


def test_runs_table_and_data_sort_on_numeric_cells(two_models) -> None:
    html, _, results = two_models
    headers, rows = parse_grid(html, "runs-table")
    assert headers == ["#", "Run id", "Model", "Task", "Seed", "Status", "Duration (s)", "Main metric", "Value"]
    assert [r["Run id"]["text"] for r in rows] == [r["run_id"] for r in results]
    for row, result in zip(rows, results):
        seed = row["Seed"]
        assert seed["data-sort"] == repr(result["seed"]) and seed["text"] == str(result["seed"])
        duration = result["resources"]["overall"]["duration (s)"]
        assert row["Duration (s)"]["data-sort"] == repr(duration)
        assert row["Duration (s)"]["text"] == f"{duration:,.1f}"
        # text cells carry no sort value
        for col in ("Run id", "Model", "Task", "Status", "Main metric"):
            assert row[col]["data-sort"] is None, col
    mae = results[0]["metrics"]["MAE"]
    assert rows[0]["Main metric"]["text"] == "MAE (eV/atom)"
    assert rows[0]["Value"]["text"] == format_metric(mae) and rows[0]["Value"]["data-sort"] == repr(mae)
    # the failed run: its status instead of a value, and no sort value (sorted last)
    assert rows[2]["Main metric"]["text"] == "ROC-AUC"
    assert rows[2]["Value"]["text"] == "FAILED" and rows[2]["Value"]["data-sort"] is None
    _, env_rows = parse_grid(html, "environment-table")
    assert all(r["CPU cores"]["data-sort"] == "16" and r["Seed"]["data-sort"] is not None for r in env_rows)


def test_sortable_and_filterable_tables_are_marked(two_models) -> None:
    html, _, _ = two_models
    assert re.search(r'<table class="grid sortable filterable" id="runs-table">', html)
    assert re.search(r'<table class="grid env sortable filterable" id="environment-table">', html)
    assert '<table class="cmp suite" id="suite-table" data-filter="label">' in html
    # the per-run comparison has runs as columns: filterable by row, not sortable
    assert '<table class="cmp" id="comparison-table" data-filter="label">' in html
    # the rows are in the file: without JavaScript the tables are complete, just static
    assert len(parse_grid(html, "runs-table")[1]) == 4


def test_markup_in_model_fields_is_escaped_everywhere(two_models) -> None:
    html, _, _ = two_models
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert MALICIOUS not in html and "<b>Evil</b>" not in html and "<x>" not in html
    nav = re.search(r'<nav class="toc" id="report-nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert f'<a class="model-link" href="#model-script-alert-1-script">{escaped}</a>' in nav
    page = model_pages(html)["model-script-alert-1-script"]
    assert f'<h2 class="model-title">{escaped}</h2>' in page  # name == display name: shown once
    assert "&lt;b&gt;Evil&lt;/b&gt; paper · url: https://example.org/&lt;x&gt;" in page
    assert not re.search(r'href="(?!#)', html)  # the paper's url is text: every link is in-page
    _, env_rows = parse_grid(html, "environment-table")
    assert env_rows[1]["Model"]["text"] == MALICIOUS  # parsed text: the markup is character data
    assert f"<td>{escaped}</td>" in html[html.index('id="environment-table"'):]
    _, run_rows = parse_grid(html, "runs-table")
    assert run_rows[1]["Model"]["text"] == MALICIOUS
    # one script, the constant one; the Content-Security-Policy allows exactly that script
    assert html.lower().count("<script") == 1 and f"<script>{TABLE_SCRIPT}</script>" in html
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(TABLE_SCRIPT.encode("utf-8")).digest()).decode()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    csp = csp.replace("&#39;", "'")
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1]


def test_table_script_uses_no_html_sinks() -> None:
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "Function(", "document.write",
                 "setTimeout(", "http:", "https:", "import("):
        assert sink not in TABLE_SCRIPT, sink
    assert len(TABLE_SCRIPT.encode("utf-8")) < 6000


def test_model_pages_in_context_follow_the_summary(two_models) -> None:
    _, dirs, _ = two_models
    context = build_context(dirs)
    assert [m.name for m in context["models"]] == [c.name for c in context["suite"].columns]
    # the page is the model's: its name without the column's settings marker (bench settings †1)
    assert [m.display_name for m in context["models"]] == [c.model_label for c in context["suite"].columns]
    assert all(c.label.startswith(c.model_label) for c in context["suite"].columns)
    assert [m.tasks for m in context["models"]] == [["perov5_heat_ref", "perov5_gap_positive"], ["perov5_heat_ref"]]
