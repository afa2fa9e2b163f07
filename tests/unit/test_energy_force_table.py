"""The energy/force table of interatomic potentials (``orchestrator.report.sections.potential.
energy_force_table``): rows dataset × E/F and parameter counts, columns models and settings, means
over seeds, the best value of a row in bold, a failed model's status in its cells. The results are
hand-made ``result.json`` contents (our own logic only)."""

from __future__ import annotations

import pytest

from orchestrator.report import render
from orchestrator.report.sections.potential import energy_force_table
from orchestrator.reader import RunRecord
from tests.unit.test_report import parse_grid


def _result(model: str, task: str, seed: int, status: str = "ok", energy: float | None = None,
            force: float | None = None, mode: str = "full", trainable: int = 100, params: int = 100) -> dict:
    metrics = {} if status != "ok" else {"energy_RMSE": energy, "force_RMSE": force, "energy_MAE": 1.0}
    return {
        "run_id": f"{model}-{task}-{seed}-{mode}", "task_type": "potential", "status": status, "seed": seed,
        "task": {"name": task}, "model": {"name": model, "display_name": model.upper()},
        "hyperparameters": {"profile": "bench", "effective": {"epochs": 3, "finetune_mode": mode},
                            "overridden": {}},
        "metrics": metrics,
        "baseline": {"metrics": {"energy_RMSE": 255.6, "force_RMSE": 1016.8}},
        "model_stats": {"params": params, "trainable_params": trainable},
        "error": None if status == "ok" else {"type": "OutOfMemoryError", "message": "CUDA out of memory"},
    }


def test_rows_are_dataset_by_energy_and_forces_with_means_bold_best_and_status_cells() -> None:
    results = [
        _result("mace", "mlearn_si", 0, energy=10.0, force=100.0),
        _result("mace", "mlearn_si", 1, energy=12.0, force=110.0),
        _result("mace", "mlearn_si", 0, energy=8.0, force=120.0, mode="lora", trainable=7, params=107),
        _result("nequip", "mlearn_si", 0, status="oom"),
        _result("nequip", "mlearn_ge", 0, energy=5.0, force=50.0),
        {"task_type": "regression", "status": "ok", "task": {"name": "perov5_heat_ref"}},  # ignored
    ]
    table = energy_force_table(results)
    assert table is not None
    assert table.columns == ["MACE (finetune_mode=full)", "MACE (finetune_mode=lora)", "NEQUIP", "baseline"]
    labels = [row.label for row in table.rows]
    assert labels == ["mlearn_si · E [meV/atom]", "mlearn_si · F [meV/Å]", "mlearn_ge · E [meV/atom]",
                      "mlearn_ge · F [meV/Å]", "trainable parameters", "parameters"]
    si_e, si_f, ge_e, ge_f, trainable, params = table.rows
    # mean ± sample std over the two seeds; the lowest mean among the models is bold
    assert si_e.cells[0].text.startswith("11") and "±" in si_e.cells[0].text
    assert si_e.cells[0].css == "" and si_e.cells[1].css == "best" and si_e.cells[1].text.startswith("8")
    assert si_f.cells[0].css == "best" and si_f.cells[1].css == ""
    # the OOM run shows its status, with the error as tooltip, and is never bold
    assert si_e.cells[2].text == "OOM" and "CUDA out of memory" in si_e.cells[2].title
    assert "st-oom" in si_e.cells[2].css
    # no run of a column on a dataset: an em dash; the baseline column is never bold
    assert ge_e.cells[0].text == "—" and ge_e.cells[2].css == "best"
    assert si_e.cells[3].text.startswith("255") and si_e.cells[3].css == "dim"
    assert [c.text for c in trainable.cells[:3]] == ["100", "7", "100"]
    assert [c.text for c in params.cells[:3]] == ["100", "107", "100"]


def test_no_potential_runs_no_table() -> None:
    assert energy_force_table([{"task_type": "regression", "status": "ok"}]) is None
    assert energy_force_table([]) is None


@pytest.mark.parametrize("bad", [{"task_type": "potential"}, {"task_type": "potential", "metrics": "x",
                                                               "model_stats": [], "baseline": 3}])
def test_odd_content_never_raises(bad) -> None:
    table = energy_force_table([bad])
    assert table is not None and table.rows[0].cells[0].text in ("—", "UNKNOWN")


def test_overviews_of_records_skip_unreadable_runs(tmp_path) -> None:
    records = [RunRecord(tmp_path / "a", _result("mace", "mlearn_si", 0, energy=10.0, force=100.0), None),
               RunRecord(tmp_path / "b", None, "result.json: not valid JSON")]
    tables, errors = render.overviews(records)
    assert errors == [] and [t.key for t in tables] == ["energy-forces"]
    assert tables[0].rows[0].cells[0].text.startswith("10")


def test_table_in_the_rendered_page(tmp_path) -> None:
    from tests.fakes import make_fake_run

    make_fake_run(tmp_path / "reg")  # a regression run beside: its page renders, with no overview
    context = render.build_context([tmp_path / "reg"])
    assert context["overviews"] == []
    context["overviews"], _ = render.overviews([RunRecord(tmp_path / "a", _result(
        "mace", "mlearn_si", 0, energy=10.0, force=100.0), None), RunRecord(tmp_path / "b", _result(
            "nequip", "mlearn_si", 0, status="timeout"), None)])
    page = render.render_html(context)
    headers, rows = parse_grid(page, "overview-energy-forces-table")
    assert headers[1:] == ["MACE", "NEQUIP", "baseline"]
    first = rows[0]
    assert first["MACE"]["class"] == "best" and first["NEQUIP"]["text"] == "TIMEOUT"
    assert 'href="#overview-energy-forces"' in page
