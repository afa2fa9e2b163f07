"""Unit tests of the HTML report for crystal-generation runs (task_type "generation").

The runs are fakes (tests/fakes.py): generated.cif holds real small crystals built with pymatgen,
generated.csv and the metrics are computed from them.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator.report import render_report  # noqa: E402
from orchestrator.report import plots  # noqa: E402
from metrics import catalogue  # noqa: E402
from orchestrator.report.formatting import format_metric, format_percent, metric_presentation  # noqa: E402
from tests.fakes import GENERATION_DEFINITIONS, RESULT_SCHEMA, make_fake_run  # noqa: E402
from tests.unit.test_report import parse_table  # noqa: E402

PERCENT_ROWS = ("validity_structure", "validity_composition", "validity", "success_rate", "COV-R", "COV-P")
GENERATION_LABELS = {name: metric_presentation("generation", name, None)[0] for name in catalogue.names("generation")}
ROW_LABELS = ("Validity (structure)", "Validity (composition)", "Validity", "Success rate", "COV-R", "COV-P",
              "EMD density (g/cm³)", "EMD # elements")
VALID_FORMULAS = ("SrTiO3", "BaTaNO2", "KMgF3", "NaCl")  # the first four valid crystals of the fake


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


@pytest.fixture()
def gen_run(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / "results" / "gen_ok"
    return d, make_fake_run(d, task_type="generation", status="ok", display_name="CDVAE <b>gen</b>", gpu=True)


@pytest.fixture()
def mixed(tmp_path: Path) -> tuple[str, list[dict]]:
    """Regression ok, classification ok, generation ok, generation failed."""
    base = tmp_path / "results"
    specs = [("reg_ok", "regression", "ok"), ("cls_ok", "classification", "ok"),
             ("gen_ok", "generation", "ok"), ("gen_failed", "generation", "failed")]
    results = [make_fake_run(base / name, task_type=tt, status=st, display_name=name, seed=i)
               for i, (name, tt, st) in enumerate(specs)]
    html = render_report([base / name for name, _, _ in specs], tmp_path / "mixed.html").read_text(encoding="utf-8")
    return html, results


# ----------------------------------------------------------------------------------------------
# the fake
# ----------------------------------------------------------------------------------------------


def test_generation_fake_is_consistent(gen_run) -> None:
    import pandas as pd
    from pymatgen.core import Structure

    d, result = gen_run
    _validate(result)
    _validate(json.loads((d / "result.json").read_text(encoding="utf-8")))
    assert set(result["metrics"]) == {"validity_structure", "validity_composition", "validity", "COV-R", "COV-P",
                                      "EMD_density", "EMD_num_elements", "success_rate"}
    details = result["metric_details"]
    frame = pd.read_csv(d / "generated.csv")
    assert list(frame.columns) == ["index", "returned", "formula", "num_sites", "num_elements", "density",
                                   "volume", "min_distance", "valid_structure", "valid_composition", "valid"]
    assert len(frame) == details["n_requested"]
    assert int(frame["returned"].sum()) == details["n_returned"]
    assert int(frame["valid"].sum()) == details["n_valid"]
    assert result["metrics"]["validity"] == pytest.approx(details["n_valid"] / details["n_requested"])
    text = (d / "generated.cif").read_text(encoding="utf-8")
    names = re.findall(r"(?m)^data_generated_(\d+)$", text)
    assert [int(i) for i in names] == frame.loc[frame["returned"], "index"].tolist()
    first = text.split("data_generated_")[1]
    assert Structure.from_str("data_generated_" + first, fmt="cif").composition.reduced_formula == "SrTiO3"
    assert result["resources"]["phases"].keys() == {"train", "generate"}


# ----------------------------------------------------------------------------------------------
# comparison table
# ----------------------------------------------------------------------------------------------


def test_table_generation_rows_are_percentages_with_definitions(mixed) -> None:
    html, results = mixed
    table = parse_table(html)
    assert len(table.headers) == 4
    gen = results[2]["metrics"]
    for key in PERCENT_ROWS:
        text, title, css = table.rows[GENERATION_LABELS[key]][2]
        assert text == format_percent(gen[key]), (key, text)
        assert re.fullmatch(r"\d{1,3}\.\d\d %", text)
        assert title == repr(gen[key])
    assert table.rows["EMD density (g/cm³)"][2][0] == format_metric(gen["EMD_density"])
    assert table.rows["EMD # elements"][2][0] == format_metric(gen["EMD_num_elements"])
    for label in ROW_LABELS:
        cells = table.rows[label]
        assert [c[0] for c in cells[:2]] == ["—", "—"], label  # regression/classification runs
        assert cells[3][0] == "FAILED" and "RuntimeError" in (cells[3][1] or ""), label
    # a failed generation run is not "FAILED" in the regression rows: those are not its metrics
    assert table.rows["MAE (eV/atom)"][3][0] == "—" and table.rows["MAE (eV/atom)"][2][0] == "—"
    # row tooltips: the definitions from metric_details (escaped in the attribute)
    for label, key in (("Validity", "validity"), ("COV-R", "coverage"), ("Success rate", "success_rate")):
        m = re.search(r'<th class="rowlabel defined" scope="row" title="([^"]*)">' + re.escape(label) + "</th>",
                      html)
        assert m, label
        assert html_lib.unescape(m.group(1)) == GENERATION_DEFINITIONS[key]
    assert re.search(r'title="Earth mover[^"]*">EMD density', html)


def test_null_metric_is_na_and_order_of_groups(gen_run, tmp_path: Path) -> None:
    d, result = gen_run
    result["metrics"]["COV-P"] = None
    del result["metrics"]["EMD_num_elements"]
    (d / "result.json").write_text(json.dumps(result), encoding="utf-8")
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    rows = parse_table(html).rows
    assert rows["COV-P"][0][0] == "n/a" and "null" in rows["COV-P"][0][1]
    assert rows["EMD # elements"][0][0] == "n/a"
    assert "MAE (eV/atom)" not in rows and "ROC-AUC" not in rows  # no regression/classification rows
    assert "Generation metrics" in html and "Metrics (test set)" not in html


# ----------------------------------------------------------------------------------------------
# the run section
# ----------------------------------------------------------------------------------------------


def test_generation_section_counts_histograms_and_structures(gen_run, tmp_path: Path) -> None:
    d, result = gen_run
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    details = result["metric_details"]
    counts = re.search(r'<table class="kv gen gen-counts">(.*?)</table>', section, re.S).group(1)
    assert "<th>Requested</th><td>24</td>" in counts
    assert f"<th>Returned</th><td>{details['n_returned']} (87.5 % of requested)</td>" in counts
    assert f"<th>Valid</th><td>{details['n_valid']} (" in counts
    assert "<th>Reference crystals</th><td>150 (test split)</td>" in counts
    assert "structure: 0.5" in counts and "composition: smact charge neutrality" in counts
    assert "miss (reference fingerprints computed" in counts
    # figures: timeseries, loss, two histograms, four structures
    svgs = _svgs(section)
    assert len(svgs) == 8
    for key in ("hist-density", "hist-elements"):
        fig = re.search(rf'<figure class="fig-{key}">(.*?)</figure>', section, re.S).group(1)
        assert len(_svgs(fig)) == 1 and "EMD = " in fig and "reference (n = 150)" in fig
        assert "generated, valid (n = 13)" in fig
    structures = re.findall(r'<figure class="structure">(.*?)</figure>', section, re.S)
    assert len(structures) == 4
    for fig, formula in zip(structures, VALID_FORMULAS):
        assert len(_svgs(fig)) == 1
        assert f'<span class="formula">{formula}</span>' in fig  # caption in HTML
        assert "<text" not in _svgs(fig)[0]  # nothing taken from the CIF inside the SVG
        assert 'class="swatch"' in fig
    assert "The first 4 of 13 valid generated crystals" in section
    # the resource plot marks the generate phase
    ts = re.search(r'<figure class="fig-timeseries wide">(.*?)</figure>', section, re.S).group(1)
    assert "(setup, train, generate)" in ts and ">generate<" in _svgs(ts)[0]
    # no parity/ROC figure for a generation run, and no predictions.csv note
    assert "fig-parity" not in section and "fig-roc" not in section and "predictions.csv" not in section
    assert "CDVAE &lt;b&gt;gen&lt;/b&gt;" in html and "<b>gen</b>" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("content, note", [
    (b"\x00\x01 garbage, not a CIF at all", "has no data_ block"),
    (b"data_generated_0\n_cell_length_a oops\nloop_\n _atom_site_label\n Xx\n"
     b"data_generated_1\n<script>alert(1)</script>\n", "could not be parsed"),
    (None, "generated.cif not found"),
])
def test_corrupt_or_missing_cif_gives_a_note(gen_run, tmp_path: Path, content, note) -> None:
    d, _ = gen_run
    if content is None:
        (d / "generated.cif").unlink()
    else:
        (d / "generated.cif").write_bytes(content)
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    assert re.search(r'<p class="note structures-note">[^<]*' + re.escape(note), section), note
    assert 'class="structure"' not in section
    assert len(_svgs(section)) == 4  # timeseries, loss and both histograms still drawn
    assert html.lower().count("<script") == 1  # only the report's own table script


def test_partly_corrupt_cif_draws_the_rest(gen_run, tmp_path: Path) -> None:
    d, _ = gen_run
    text = (d / "generated.cif").read_text(encoding="utf-8")
    first, rest = text.split("data_generated_1\n", 1)
    (d / "generated.cif").write_text(first + "data_generated_1\n_cell_length_a broken\n" + "data_generated_1_x\n"
                                     + rest, encoding="utf-8")
    section = _section(render_report([d], tmp_path / "r.html").read_text(encoding="utf-8"), 1)
    structures = re.findall(r'<figure class="structure">(.*?)</figure>', section, re.S)
    formulas = [re.search(r'<span class="formula">([^<]*)</span>', f).group(1) for f in structures]
    assert formulas == ["SrTiO3", "KMgF3", "NaCl", "BaTaNO2"]  # #1 is broken: the next valid one (#7) is drawn
    assert "#7" in structures[3]
    assert re.search(r'<p class="note">1 block\(s\) of generated.cif could not be parsed', section)


@pytest.mark.parametrize("csv", [None, b"\x00\x01\x02 not a csv\n\"unterminated", b"index,foo\n0,1\n"])
def test_missing_or_corrupt_csv_gives_notes_not_a_crash(gen_run, tmp_path: Path, csv) -> None:
    d, _ = gen_run
    if csv is None:
        (d / "generated.csv").unlink()
    else:
        (d / "generated.csv").write_bytes(csv)
    html = render_report([d], tmp_path / "r.html").read_text(encoding="utf-8")
    section = _section(html, 1)
    for key in ("hist-density", "hist-elements"):
        fig = re.search(rf'<figure class="fig-{key}">(.*?)</figure>', section, re.S).group(1)
        assert '<p class="note">' in fig and "generated.csv" in fig and not _svgs(fig)
    # the counts still come from metric_details; structures are drawn from the CIF alone
    assert "<th>Requested</th><td>24</td>" in section
    assert len(re.findall(r'<figure class="structure">', section)) == 4


def test_failed_generation_run(mixed) -> None:
    html, _ = mixed
    section = _section(html, 4)
    assert "No generation counts recorded" in section
    assert "generated.cif not found" in section and "generated.csv not found" in section
    assert len(_svgs(section)) == 2  # timeseries and loss curves


def test_mixed_report_renders_all_three_task_types(mixed) -> None:
    html, results = mixed
    table = parse_table(html)
    assert [h.split()[0] for h in table.headers] == ["reg_ok", "cls_ok", "gen_ok", "gen_failed"]
    assert "Metrics (test set)" in html and "Generation metrics" in html
    rows = table.rows
    assert rows["MAE (eV/atom)"][0][0] == format_metric(results[0]["metrics"]["MAE"])
    assert rows["ROC-AUC"][1][0] == format_metric(results[1]["metrics"]["ROC-AUC"])
    assert rows["Validity"][2][0] == format_percent(results[2]["metrics"]["validity"])
    for label, cells in rows.items():
        assert len(cells) == 4 and all(t.strip() for t, _, _ in cells), label
    assert 'class="fig-parity' in _section(html, 1) and 'class="fig-roc' in _section(html, 2)
    assert len(re.findall(r'<figure class="structure">', _section(html, 3))) == 4
    # reg: 3, cls: 3, gen: 4 + 4 structures, failed gen: 2
    assert html.count("<svg") == 3 + 3 + 8 + 2 + 3  # + one accuracy-against-cost figure per task


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------


def test_structure_svg_edge_cases() -> None:
    cubic = [[4, 0, 0], [0, 4, 0], [0, 0, 4]]
    svg = plots.structure_svg(cubic, [[0, 0, 0], [0.5, 0.5, 0.5]], [(1, 0, 0), (0, 0, 1)], [1.5, 0.7])
    assert svg and svg.startswith("<svg") and "<text" not in svg
    # the corner atom is drawn at all 8 corners (+1 body centre): boundary images
    coords, source = plots._with_boundary_images(__import__("numpy").array([[0.0, 0, 0], [0.5, 0.5, 0.5]]))
    assert len(coords) == 9 and list(source).count(0) == 8
    assert plots.structure_svg([[1, 0, 0], [2, 0, 0], [0, 0, 1]], [[0, 0, 0]], [(1, 0, 0)], [1.0]) is None
    assert plots.structure_svg(cubic, [], [], []) is None
    assert plots.density_histogram_svg([], []) is None
    assert plots.num_elements_histogram_svg([3, 3, 4], []) is not None
    assert plots.element_rgb("O", 8) != plots.element_rgb("Ti", 22)
    assert len(plots.element_rgb("Xx", 300)) == 3
