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
from orchestrator.report.render import format_count, format_flops, format_metric  # noqa: E402
from tests.fakes import NO_GPU_REASON, make_fake_run, validate_result  # noqa: E402

MALICIOUS = "<script>alert(1)</script>"
GPU_ROWS = ("GPU utilization (%)", "GPU memory utilization (%)", "GPU memory used (%)", "GPU power (W)",
            "GPU energy (J)")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


class _TableParser(HTMLParser):
    """Collects the comparison table: column headers and rows of (label, [(text, title, class)])."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
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
        if tag == "table" and a.get("id") == "comparison-table":
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
                if "colhead" in c["class"]:
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


def parse_table(html: str) -> _TableParser:
    p = _TableParser()
    p.feed(html)
    return p


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
    assert "<script" not in html.lower()  # the report has no script at all
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
    # reg ok: timeseries, loss, parity; cls ok: timeseries, loss, roc; failed: timeseries, loss
    assert html.count("<svg") == 8
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
    no_csvs_section = html[html.index('id="run-2"'):html.index('id="run-3"')]
    assert "timeseries.csv not found" in no_csvs_section
    assert 'class="fig-roc' in no_csvs_section and no_csvs_section.count("<svg") == 2
    garbage_section = html[html.index('id="run-3"'):]
    assert "lacks column(s) target, prediction" in garbage_section
    assert "timeseries.csv" in garbage_section and garbage_section.count("<svg") == 1  # loss curves only
    assert html.count("<svg") == 3 + 2 + 1


def test_schema_violation_is_a_warning(tmp_path: Path) -> None:
    run = tmp_path / "odd"
    result = make_fake_run(run, task_type="regression", status="oom", display_name="Odd")
    result["status"] = "exploded"  # not in the enum
    del result["environment"]
    (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
    html = render_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "does not match the result schema" in html
    assert "EXPLODED" in parse_table(html).headers[0]


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
