"""Report sections by task type (orchestrator/report/sections): the four built-in ones, the fallback
for a task type without one, and a plugin's section registered with ``sections.register`` used by
the renderer for its task type (figures, details template, comparison group, catalogue labels)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from metrics import catalogue  # noqa: E402
from orchestrator.reader import read_run  # noqa: E402
from orchestrator.report import render_report, sections  # noqa: E402
from orchestrator.report.views import Figure  # noqa: E402
from tests.fakes import make_fake_run  # noqa: E402
from tests.unit.test_report import parse_grid, parse_table  # noqa: E402

TOY_SVG = '<svg class="toy-figure" xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def test_a_section_for_each_built_in_task_type() -> None:
    for task_type in ("regression", "classification", "generation", "spectra"):
        section = sections.SECTIONS[task_type]
        assert isinstance(section, sections.Section) and section.task_type == task_type
        assert sections.section_for(task_type) is section
    fallback = sections.section_for("no_such_type")
    assert isinstance(fallback, sections.FallbackSection) and fallback.task_type == "no_such_type"
    assert "no_such_type" not in sections.SECTIONS
    with pytest.raises(ValueError, match="already has a report section"):
        sections.register("regression", sections.Section())
    with pytest.raises(TypeError):
        sections.register("toy", object())


class ToySection(sections.Section):
    """A plugin's section: one figure, a fact table from its own template, its own metric group."""

    metric_group = "Toy metrics (test set)"
    metric_group_order = 5
    show_all_metrics = True
    phases = ("setup", "train", "toy")

    def figures(self, run):
        return [Figure("toy", "Toy figure", svg=TOY_SVG, caption="drawn by the toy section")]

    def details(self, run):
        run.section_data["toy"] = {"score": run.result["metrics"].get("toy_score")}
        run.parts_before.append("toy.html.j2")


@pytest.fixture
def toy_type(tmp_path: Path):
    templates = tmp_path / "toy_templates"
    templates.mkdir()
    (templates / "toy.html.j2").write_text(
        '<div class="toy-details">Toy score: {{ run.section_data.toy.score }}</div>\n', encoding="utf-8")
    saved_catalogue = list(catalogue.entries())
    section = ToySection()
    section.templates = templates
    sections.register("toy", section)
    catalogue.register([
        {"name": "toy_score", "task_type": "toy", "label": "Toy score", "unit": "target", "format": "percent",
         "direction": "higher", "main": True, "definition": "Share of toys at threshold {threshold}.",
         "source": "tests/unit/test_report_sections.py"},
        {"name": "toy_error", "task_type": "toy", "label": "Toy error", "unit": None, "format": "number",
         "direction": "lower", "main": False, "definition": "Toy error.", "source": "tests"},
    ])
    yield section
    sections.SECTIONS.pop("toy", None)
    catalogue._entries = saved_catalogue


def _toy_run(run_dir: Path) -> Path:
    result = make_fake_run(run_dir, task_type="regression", display_name="Toy Model")
    result["task_type"] = "toy"
    result["task"]["name"] = "toy_task"
    result["task"]["unit"] = None
    result["metrics"] = {"toy_score": 0.25}
    result["metric_details"] = {"threshold": 0.5}
    (run_dir / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return run_dir


def test_registered_section_is_used_by_the_renderer(toy_type, tmp_path: Path) -> None:
    toy = _toy_run(tmp_path / "toy")
    reg = tmp_path / "reg"
    make_fake_run(reg, task_type="regression", display_name="Reg Model")
    assert read_run(toy).ok, read_run(toy).error  # a plugin task type passes the result schema
    html = render_report([reg, toy], tmp_path / "r.html").read_text(encoding="utf-8")
    section = html[html.index('id="run-2"'):]
    # the section's figure and its details template, after the common figures
    assert TOY_SVG in section and 'class="fig-toy' in section
    assert '<div class="toy-details">Toy score: 0.25</div>' in section
    assert section.index('class="fig-timeseries') < section.index('class="fig-loss') < section.index('class="fig-toy')
    assert 'class="fig-parity' not in section  # not the regression section's figure
    # its metrics in its own comparison group, labelled and formatted from the catalogue
    table = parse_table(html)
    assert "Toy score" in table.rows and "Toy error" in table.rows
    assert table.rows["Toy score"][1][0] == "25.00 %" and table.rows["Toy score"][0][0] == "—"
    assert table.rows["Toy error"][1][0] == "n/a"  # catalogue metric of its type, not recorded
    assert re.search(r'title="Share of toys at threshold 0.5\.">Toy score</th>', html)
    assert html.index("Metrics (test set)") < html.index("Toy metrics (test set)")
    # the runs table shows its main metric from the catalogue
    _, rows = parse_grid(html, "runs-table")
    assert rows[1]["Main metric"]["text"] == "Toy score" and rows[1]["Value"]["text"] == "25.00 %"


def test_unknown_task_type_gets_the_fallback(tmp_path: Path) -> None:
    run = _toy_run(tmp_path / "mystery")
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    result["task_type"] = "mystery"
    (run / "result.json").write_text(json.dumps(result), encoding="utf-8")
    html = render_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    table = parse_table(html)
    assert table.rows["toy_score"][0][0] == "0.2500"  # no catalogue entry: the key, plain number
    assert 'class="fig-parity' in html  # predictions.csv has target and prediction columns
    assert 'class="unreadable"' not in html
