"""Unit tests of the HTML report for spectrum-prediction runs (task_type "spectra", phonon DOS).

The runs are fakes (tests/fakes.py): 12 Gaussian-peak spectra on a 51-point grid (0..1000 cm⁻¹),
predictions are shifted/noisy copies; every metric and per-crystal list is computed from the
numbers written to predictions.csv.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator.report import plots, render_report  # noqa: E402
from metrics import catalogue  # noqa: E402
from orchestrator.report.formatting import format_metric, metric_presentation  # noqa: E402
from tests.fakes import (RESULT_SCHEMA, SPECTRA_DEFINITIONS, SPECTRA_GRID, make_fake_run,  # noqa: E402
                         spectra_cv, spectra_wasserstein)
from tests.unit.test_report import parse_table  # noqa: E402

SPECTRA_METRICS = catalogue.names("spectra")
SPECTRA_LABELS = {name: metric_presentation("spectra", name, None)[0] for name in SPECTRA_METRICS}
ROW_LABELS = ("MAE", "MSE", "RMSE", "R²", "Wasserstein (cm⁻¹)", "C_V(300 K) MAE (J/(K·mol))")


def _validate(result: dict) -> None:
    """Validation against the result schema as it is (the report reads only schema-valid results)."""
    import jsonschema

    schema = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(result, schema, cls=jsonschema.validators.validator_for(schema))


def _section(html: str, index: int) -> str:
    start = html.index(f'id="run-{index}"')
    nxt = html.find(f'id="run-{index + 1}"', start)
    return html[start:nxt if nxt != -1 else len(html)]


def _svgs(fragment: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", fragment, re.S)


def _figure(section: str, key: str) -> str | None:
    m = re.search(rf'<figure class="fig-{re.escape(key)}(?: [a-z ]+)?">(.*?)</figure>', section, re.S)
    return m.group(1) if m else None


def _per_crystal_from_csv(run_dir: Path) -> tuple[list[str], list[float]]:
    """Crystal ids (file order) and their MSE, computed here from predictions.csv."""
    import pandas as pd

    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"id": str})
    ids = list(dict.fromkeys(frame["id"]))
    mse = [float(((g["prediction"] - g["target"]) ** 2).mean()) for _, g in frame.groupby("id", sort=False)]
    return ids, mse


def _write(run_dir: Path, result: dict) -> None:
    (run_dir / "result.json").write_text(json.dumps(result), encoding="utf-8")


@pytest.fixture()
def spec_run(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / "results" / "spec_ok"
    return d, make_fake_run(d, task_type="spectra", status="ok", display_name="e3nn <b>phDOS</b>", gpu=True,
                            seed=4)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[str, list[dict]]:
    """Regression, classification, generation and spectra ok, and a failed spectra run."""
    base = tmp_path_factory.mktemp("mixed_spectra") / "results"
    specs = [("reg_ok", "regression", "ok"), ("cls_ok", "classification", "ok"),
             ("gen_ok", "generation", "ok"), ("spec_ok", "spectra", "ok"), ("spec_failed", "spectra", "failed")]
    results = [make_fake_run(base / name, task_type=tt, status=st, display_name=name, seed=i)
               for i, (name, tt, st) in enumerate(specs)]
    out = render_report([base / name for name, _, _ in specs], base.parent / "mixed.html")
    return out.read_text(encoding="utf-8"), results


# ----------------------------------------------------------------------------------------------
# the fake
# ----------------------------------------------------------------------------------------------


def test_spectra_fake_is_consistent(spec_run) -> None:
    import pandas as pd

    d, result = spec_run
    _validate(result)
    _validate(json.loads((d / "result.json").read_text(encoding="utf-8")))
    assert result["task_type"] == "spectra"
    assert result["task"]["target"] == "phdos" and result["task"]["unit"] == "max-normalized"
    assert list(result["metrics"]) == list(SPECTRA_METRICS)
    assert result["resources"]["phases"].keys() == {"train", "predict"}
    details = result["metric_details"]
    assert details["grid"] == [float(v) for v in np.linspace(0, 1000, 51)] and details["grid_unit"] == "cm^-1"
    assert details["temperature_K"] == 300.0

    frame = pd.read_csv(d / "predictions.csv", dtype={"id": str})
    assert list(frame.columns) == ["id", "frequency", "target", "prediction"]
    assert len(frame) == 12 * 51 and frame["id"].nunique() == 12
    true = frame["target"].to_numpy().reshape(12, 51)
    pred = frame["prediction"].to_numpy().reshape(12, 51)
    assert np.allclose(true.max(axis=1), 1.0) and np.allclose(pred.max(axis=1), 1.0)  # max-normalized
    assert np.allclose(frame["frequency"].to_numpy().reshape(12, 51), SPECTRA_GRID)

    m, pc = result["metrics"], details["per_crystal"]
    err = pred - true
    assert m["MAE"] == pytest.approx(np.abs(err).mean())
    assert m["MSE"] == pytest.approx((err ** 2).mean()) == pytest.approx(np.mean(pc["MSE"]))
    assert m["RMSE"] == pytest.approx(math.sqrt(m["MSE"]))
    assert m["R2"] == pytest.approx(1 - (err ** 2).sum() / ((true - true.mean()) ** 2).sum())
    assert pc["MSE"] == pytest.approx(list((err ** 2).mean(axis=1)))
    assert pc["Wasserstein"] == pytest.approx([spectra_wasserstein(SPECTRA_GRID, t, p) for t, p in zip(true, pred)])
    assert m["Wasserstein"] == pytest.approx(np.mean(pc["Wasserstein"]))
    assert pc["Cv_300K_true"] == pytest.approx([spectra_cv(SPECTRA_GRID, t) for t in true])
    assert pc["Cv_300K_pred"] == pytest.approx([spectra_cv(SPECTRA_GRID, p) for p in pred])
    assert m["Cv_300K_MAE"] == pytest.approx(np.mean(np.abs(np.subtract(pc["Cv_300K_pred"], pc["Cv_300K_true"]))))
    assert all(0 < v < 3 * 8.3145 for v in pc["Cv_300K_true"])  # below the Dulong-Petit limit
    # the per-crystal errors spread (best, median and worst differ clearly)
    assert max(pc["MSE"]) > 10 * min(pc["MSE"])


# ----------------------------------------------------------------------------------------------
# comparison table
# ----------------------------------------------------------------------------------------------


def test_table_spectrum_rows_formatted_with_units_and_definitions(spec_run, tmp_path: Path) -> None:
    d, result = spec_run
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    table = parse_table(html)
    assert "Spectrum metrics (test set)" in html
    assert "Metrics (test set)</th>" not in html.replace("Spectrum metrics (test set)</th>", "")
    assert [SPECTRA_LABELS[k] for k in SPECTRA_METRICS] == list(ROW_LABELS)
    for key, label in zip(SPECTRA_METRICS, ROW_LABELS):
        text, title, css = table.rows[label][0]
        assert text == format_metric(result["metrics"][key]) and css == "num", label
        assert title == repr(result["metrics"][key])
    assert re.fullmatch(r"\d+\.\d{4}", table.rows["Wasserstein (cm⁻¹)"][0][0])
    assert "MAE (max-normalized)" not in html  # the DOS has no physical unit
    tooltips = {html_lib.unescape(m.group(2)): html_lib.unescape(m.group(1)) for m in re.finditer(
        r'<th class="rowlabel defined" scope="row" title="([^"]*)">([^<]*)</th>', html)}
    assert tooltips["MAE"] == SPECTRA_DEFINITIONS["MAE"]
    assert tooltips["Wasserstein (cm⁻¹)"] == SPECTRA_DEFINITIONS["Wasserstein"]
    assert tooltips["C_V(300 K) MAE (J/(K·mol))"] == SPECTRA_DEFINITIONS["Cv_300K_MAE"]
    for key in ("MSE", "RMSE", "R2"):  # no definition in the result: ours
        assert tooltips[SPECTRA_LABELS[key]] == catalogue.entry("spectra", key).definition


def test_null_and_missing_spectrum_metric(spec_run, tmp_path: Path) -> None:
    d, result = spec_run
    result["metrics"]["Wasserstein"] = None
    del result["metrics"]["R2"]
    result["metrics"]["peak_shift_MAE"] = 3.25  # a metric of its own: an extra row in the group
    _write(d, result)
    rows = parse_table(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")).rows
    assert rows["Wasserstein (cm⁻¹)"][0][0] == "n/a" and "null" in rows["Wasserstein (cm⁻¹)"][0][1]
    assert rows["R²"][0][0] == "n/a" and "not recorded" in rows["R²"][0][1]
    assert rows["peak_shift_MAE"][0][0] == "3.2500"


# ----------------------------------------------------------------------------------------------
# the run section
# ----------------------------------------------------------------------------------------------


def test_section_best_median_worst_histogram_and_cv_parity(spec_run, tmp_path: Path) -> None:
    d, result = spec_run
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    ids, mse = _per_crystal_from_csv(d)
    order = sorted(range(len(mse)), key=lambda i: mse[i])
    expected = {"best": order[0], "median": order[(len(order) - 1) // 2], "worst": order[-1]}
    assert len(set(expected.values())) == 3
    positions = []
    for which, i in expected.items():
        fig = _figure(section, f"spectrum-{which}")
        assert fig is not None, which
        positions.append(section.index(f"fig-spectrum-{which}"))
        assert len(_svgs(fig)) == 1
        cap = re.search(r'<figcaption class="crystal">(.*?)</figcaption>', fig, re.S).group(1)
        assert f'<span class="crystal-id mono">{ids[i]}</span>' in cap
        stored = result["metric_details"]["per_crystal"]["MSE"][i]
        assert f"MSE = {format_metric(stored)}" in cap and stored == pytest.approx(mse[i], abs=1e-12)
        assert "Wasserstein = " in cap and "cm⁻¹" in cap
        svg = _svgs(fig)[0]
        assert ids[i] not in svg  # the id is only in the HTML caption
        assert "frequency (cm⁻¹)" in svg and ">true<" in svg and ">predicted<" in svg
    assert positions == sorted(positions)  # best, median, worst
    assert 'class="fig-spectrum-best small"' in section
    assert "rank 1 of 12" in section and "rank 12 of 12" in section and "rank 6 of 12" in section

    hist = _figure(section, "hist-mse")
    assert hist is not None and len(_svgs(hist)) == 1
    assert "test crystals (n = 12)" in hist and "as reported in metric_details.per_crystal.MSE" in hist
    for which in ("best", "median", "worst"):
        assert f">{which} (" in _svgs(hist)[0]

    cv = _figure(section, "parity-cv")
    assert cv is not None and len(_svgs(cv)) == 1 and "C_V(300 K): predicted vs true" in cv
    assert f"MAE = {plots._fmt(result['metrics']['Cv_300K_MAE'])}" in cv and "test crystals (n = 12)" in cv
    assert "C_V true (J/(K·mol))" in _svgs(cv)[0]

    # timeseries, loss, three spectra, histogram, C_V parity; no regression parity plot
    assert len(_svgs(section)) == 7
    assert "fig-parity\"" not in section and 'class="fig-parity ' not in section
    assert "Loss per epoch (MSELoss (DOS))" in section
    facts = re.search(r'<table class="kv gen spectra-facts">(.*?)</table>', section, re.S).group(1)
    assert "<th>Test crystals</th><td>12 (in predictions.csv)</td>" in facts
    assert "51 points, 0–1,000 cm⁻¹" in facts and "max-normalized" in facts and "300 K" in facts
    assert "e3nn &lt;b&gt;phDOS&lt;/b&gt;" in html and "<b>phDOS</b>" not in html
    ids_attr = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids_attr) == len(set(ids_attr))


@pytest.mark.parametrize("change", ["drop", "misaligned", "nulls"])
def test_per_crystal_mse_recomputed_when_absent_misaligned_or_null(spec_run, tmp_path: Path, change) -> None:
    d, result = spec_run
    pc = result["metric_details"]["per_crystal"]
    ids, mse = _per_crystal_from_csv(d)
    worst = max(range(len(mse)), key=lambda i: mse[i])
    if change == "drop":
        del pc["MSE"]
    elif change == "misaligned":
        pc["MSE"] = pc["MSE"][:5]
    else:
        pc["MSE"][worst] = None
    _write(d, result)
    section = _section(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), 1)
    cap = re.search(r'<figcaption class="crystal">(.*?)</figcaption>', _figure(section, "spectrum-worst"), re.S)
    assert f">{ids[worst]}</span>" in cap.group(1) and f"MSE = {format_metric(mse[worst])}" in cap.group(1)
    hist = _figure(section, "hist-mse")
    if change == "nulls":
        assert "1 null value(s) recomputed from predictions.csv" in hist
    else:
        assert "recomputed from predictions.csv" in hist
    if change == "misaligned":
        assert "has 5 entries for 12 crystals" in hist
    assert len(_svgs(section)) == 7


def test_null_cv_entries_are_left_out(spec_run, tmp_path: Path) -> None:
    d, result = spec_run
    pc = result["metric_details"]["per_crystal"]
    pc["Cv_300K_pred"][3] = None
    pc["Cv_300K_true"][7] = None
    pc["Wasserstein"][0] = None
    _write(d, result)
    section = _section(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), 1)
    cv = _figure(section, "parity-cv")
    assert len(_svgs(cv)) == 1 and "test crystals (n = 10)" in cv
    assert "2 crystal(s) without a C_V value left out" in cv
    assert len(_svgs(section)) == 7


@pytest.mark.parametrize("content, note", [
    (None, "predictions.csv not found"),
    (b"\x00\x01\x02 not a csv\n\"unterminated", "predictions.csv"),
    (b"id,target,prediction\nmp-1,0.1,0.2\n", "lacks column(s) frequency"),
    (b"id,frequency,target,prediction\nmp-1,abc,0.1,0.2\nmp-2,,0.3,0.1\n", "no row with a crystal id and a numeric"),
    (b"id,frequency,target,prediction\n", "has no rows"),
])
def test_corrupt_predictions_give_a_note(spec_run, tmp_path: Path, content, note) -> None:
    d, _ = spec_run
    if content is None:
        (d / "predictions.csv").unlink()
    else:
        (d / "predictions.csv").write_bytes(content)
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    fig = _figure(section, "spectra")
    assert fig is not None and not _svgs(fig)
    assert re.search(r'<p class="note">[^<]*' + re.escape(note), fig), fig
    assert "fig-spectrum-" not in section
    # the histogram and the C_V parity come from metric_details alone
    assert len(_svgs(_figure(section, "hist-mse"))) == 1 and "unusable" in _figure(section, "hist-mse")
    assert len(_svgs(_figure(section, "parity-cv"))) == 1
    assert len(_svgs(section)) == 4
    assert html.lower().count("<script") == 1  # only the report's own table script


def test_corrupt_predictions_and_no_per_crystal_lists(spec_run, tmp_path: Path) -> None:
    d, result = spec_run
    (d / "predictions.csv").write_text("garbage\n", encoding="utf-8")
    del result["metric_details"]["per_crystal"]
    _write(d, result)
    section = _section(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), 1)
    for key in ("spectra", "hist-mse", "parity-cv"):
        assert '<p class="note">' in _figure(section, key) and not _svgs(_figure(section, key)), key
    assert "No per-crystal MSE" in section and "no Cv_300K_true" in section
    assert len(_svgs(section)) == 2  # timeseries and loss curves


@pytest.mark.parametrize("n, keys", [(1, ["only"]), (2, ["best", "worst"]), (3, ["best", "median", "worst"])])
def test_few_crystals(tmp_path: Path, n, keys) -> None:
    d = tmp_path / f"spec_{n}"
    make_fake_run(d, task_type="spectra", n_crystals=n, seed=n)
    section = _section(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), 1)
    assert re.findall(r'class="fig-spectrum-([a-z]+) small"', section) == keys
    assert len(_svgs(section)) == 2 + n + 2


def test_crystal_ids_are_escaped(tmp_path: Path) -> None:
    d = tmp_path / "spec_evil"
    ids = [f'<img src=x onerror=alert({i})>&"{i}"' for i in range(12)]
    make_fake_run(d, task_type="spectra", crystal_ids=ids, seed=7)
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    captions = re.findall(r'<span class="crystal-id mono">(.*?)</span>', section)
    assert len(captions) == 3
    for cap in captions:
        assert re.fullmatch(r"&lt;img src=x onerror=alert\(\d+\)&gt;&amp;&#34;\d+&#34;", cap), cap
        assert html_lib.unescape(cap) in ids
    assert "<img" not in html
    for svg in _svgs(html):
        assert "onerror" not in svg and "alert(" not in svg


def test_mixed_report_renders_all_four_task_types(mixed) -> None:
    html, results = mixed
    table = parse_table(html)
    assert [h.split()[0] for h in table.headers] == ["reg_ok", "cls_ok", "gen_ok", "spec_ok", "spec_failed"]
    for group in ("Metrics (test set)", "Generation metrics", "Spectrum metrics (test set)"):
        assert group in html, group
    rows = table.rows
    for label, cells in rows.items():
        assert len(cells) == 5 and all(t.strip() for t, _, _ in cells), label
    reg, spec = results[0]["metrics"], results[3]["metrics"]
    # the regression MAE and the spectrum MAE are different rows
    assert rows["MAE (eV/atom)"][0][0] == format_metric(reg["MAE"])
    assert [c[0] for c in rows["MAE (eV/atom)"][3:]] == ["—", "—"]
    assert "spectrum metrics" in rows["MAE (eV/atom)"][3][1]
    assert rows["MAE"][3][0] == format_metric(spec["MAE"]) and rows["R²"][3][0] == format_metric(spec["R2"])
    assert [c[0] for c in rows["MAE"][:3]] == ["—", "—", "—"]
    for label in ROW_LABELS:
        assert rows[label][4][0] == "FAILED" and "RuntimeError" in rows[label][4][1], label
    # a failed spectra run is not FAILED in other task types' rows
    assert rows["ROC-AUC"][4][0] == "—" and rows["Validity"][4][0] == "—" and rows["R2"][4][0] == "—"
    assert rows["Params"][4][0] == "FAILED"
    assert 'class="fig-parity' in _section(html, 1) and 'class="fig-roc' in _section(html, 2)
    assert len(re.findall(r'<figure class="structure">', _section(html, 3))) == 4
    assert len(re.findall(r'class="fig-spectrum-', _section(html, 4))) == 3
    failed = _section(html, 5)
    assert "predictions.csv not found" in failed and "fig-spectrum-" not in failed
    # reg: 3, cls: 3, gen: 4 + 4 structures, spectra: 7, failed spectra: 2
    assert html.count("<svg") == 3 + 3 + 8 + 7 + 2 + 4  # + one accuracy-against-cost figure per task
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------


def test_spectrum_and_histogram_svg_edge_cases() -> None:
    assert plots.spectrum_svg([], [], []) is None
    assert plots.spectrum_svg([1.0], [0.5], [0.4]) is None
    assert plots.spectrum_svg([0, 1, 2], [None, None, None], [None, None, None]) is None
    svg = plots.spectrum_svg([2, 0, 1, float("nan")], [0.2, 0.0, 1.0, 0.5], [0.1, 0.0, float("nan"), 0.3])
    assert svg and svg.startswith("<svg") and "frequency (cm⁻¹)" in svg
    assert plots.per_crystal_histogram_svg([]) is None
    assert plots.per_crystal_histogram_svg([None, float("nan")]) is None
    assert plots.per_crystal_histogram_svg([0.01, 0.01, 0.01]) is not None  # no spread
    wide = plots.per_crystal_histogram_svg([1e-5, 1e-3, 1e-1], marks={"best": 1e-5, "evil<": 1.0})
    assert wide and "evil" not in wide and ">best (" in wide
    assert plots.parity_svg([1, 2], [1, 2]).count(">target<") == 1  # defaults unchanged
