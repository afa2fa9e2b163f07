"""Like compared with like (issue 14, item 5): a mean ± std only over seeds of one model, task,
settings and data; resources per task; a column whose settings differ from the paper's, or a task
whose models were not run alike, says so (orchestrator/report/grouping.py, summary.py).

Fake results (tests/unit/test_summary.make_run: schema-valid result.json files published like real
runs) for our own aggregation logic; the recording of ``dataset.max_samples`` runs on the real
embedded MP-20 subset."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from orchestrator import cli, reader
from orchestrator.report import summary
from orchestrator.report.render import render_report
from runner.inputs import read_inputs
from runner.prepare import prepare
from runner.result import base_result
from runner.wire import RunSpec
from tests.conftest import REPO_ROOT
from tests.fakes import validate_result
from tests.unit.test_report import parse_table
from tests.unit.test_summary import TASK, UNIT, make_run

OTHER = "perov5_gap_positive"
MAE_ROW = f"{TASK} · MAE ({UNIT})"


def _rows(table: summary.SuiteTable) -> dict[str, list[summary.SummaryCell]]:
    return {r.label: r.cells for r in table.rows}


def test_two_tasks_durations_are_not_averaged_together(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "m", s, metrics={"MAE": 0.4}, overall={"duration (s)": d, "gpu:0/energy (J)": e})
            for s, (d, e) in enumerate([(10.0, 1000.0), (12.0, 1400.0)])]
    dirs += [make_run(root, "m", s, task=OTHER, unit=None, task_type="classification", metrics={"ROC-AUC": 0.9},
                      overall={"duration (s)": d}) for s, d in enumerate([100.0, 120.0])]
    table = summary.aggregate(reader.read_runs(dirs))
    rows = _rows(table)
    assert len(table.columns) == 1
    here, there = rows[f"{TASK} · Duration (s)"][0], rows[f"{OTHER} · Duration (s)"][0]
    assert here.values == [10.0, 12.0] and here.mean == pytest.approx(11.0)
    assert here.std == pytest.approx(np.std([10.0, 12.0], ddof=1))
    assert there.values == [100.0, 120.0] and there.mean == pytest.approx(110.0)
    assert rows[f"{TASK} · GPU energy (J)"][0].values == [1000.0, 1400.0]
    assert "Duration (s)" not in rows  # no row over both tasks
    for cells in rows.values():  # no cell anywhere mixes the two tasks' runs
        assert not {10.0, 100.0} <= set(cells[0].values)
    text = summary.markdown(table)
    assert f"| {TASK} · Duration (s) | 11.0 ± 1.4 |" in text and f"| {OTHER} · Duration (s) | 110.0 ± 14.1 |" in text


def test_two_settings_of_one_model_on_one_task_are_kept_apart_and_labelled(tmp_path) -> None:
    root = tmp_path / "results"
    paper = {"epochs": 500}
    dirs = [make_run(root, "m", s, display="Model", hyperparameters={"epochs": 3, "lr": 0.01}, paper=paper,
                     config="a" * 64, metrics={"MAE": mae}) for s, mae in enumerate([0.50, 0.54])]
    dirs += [make_run(root, "m", s, display="Model", hyperparameters={"epochs": 10, "lr": 0.01}, paper=paper,
                      config="b" * 64, metrics={"MAE": mae}) for s, mae in enumerate([0.30, 0.32])]
    # a run of the epochs=3 configuration that died before the model stage recorded its settings
    dirs.append(make_run(root, "m", 2, display="Model", status="failed", hyperparameters={}, config="a" * 64))
    dirs.append(make_run(root, "other", 0, display="Other", metrics={"MAE": 0.7}))
    table = summary.aggregate(reader.read_runs(dirs))
    assert [c.name for c in table.columns] == ["m", "m", "other"]
    assert [c.setting for c in table.columns] == ["epochs=3", "epochs=10", ""]
    assert table.columns[0].label == "Model · epochs=3 †1" and table.columns[1].label == "Model · epochs=10 †2"
    assert table.columns[2].label == "Other"
    assert len({c.key for c in table.columns}) == 3
    few, many, _ = _rows(table)[MAE_ROW]
    assert few.values == [0.50, 0.54] and (few.n_ok, few.n_total) == (2, 3)  # the failed run joined its setting
    assert many.values == [0.30, 0.32] and (many.n_ok, many.n_total) == (2, 2)
    assert many.mean == pytest.approx(0.31) and many.std == pytest.approx(np.std([0.30, 0.32], ddof=1))
    assert table.header.startswith("6 runs of 2 models on 1 task (3 columns")
    header = next(line for line in summary.markdown(table).splitlines() if line.startswith("| Metric"))
    assert "Model · epochs=3 †1 (3 runs)" in header and "Model · epochs=10 †2 (2 runs)" in header
    # the report's per-model pages stay one per model, under the model's name
    html = render_report(dirs, tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = parse_table(html, "suite-table", "suitehead")
    assert [h.split(" ")[0:3] for h in parsed.headers][:2] == [["Model", "·", "epochs=3"], ["Model", "·", "epochs=10"]]
    assert html.count('id="model-m"') == 1
    compared = parse_table(html).rows  # the per-run comparison names each run's settings
    assert [c[0] for c in compared["Differs from the paper"]] == \
        ["epochs 3 (paper 500)", "epochs 3 (paper 500)", "epochs 10 (paper 500)", "epochs 10 (paper 500)", "—", "none"]
    assert [c[0] for c in compared["Hyperparameter profile"]] == ["bench"] * 6


def test_same_settings_other_model_files_are_split_by_config(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "m", 0, config="c" * 64, metrics={"MAE": 0.1}),
            make_run(root, "m", 1, config="d" * 64, metrics={"MAE": 0.9})]
    table = summary.aggregate(reader.read_runs(dirs))
    assert [c.setting for c in table.columns] == ["config cccccccc", "config dddddddd"]
    assert [cell.values for cell in _rows(table)[MAE_ROW]] == [[0.1], [0.9]]


def test_bench_versus_paper_note_names_the_differing_hyperparameters(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "bench_m", s, display="Bench", hyperparameters={"epochs": 10, "lr": 0.001, "layers": 4},
                     paper={"epochs": 500, "lr": 0.001}, metrics={"MAE": 0.4 + s / 100}) for s in range(2)]
    dirs.append(make_run(root, "paper_m", 0, display="Paper", profile="paper",
                         hyperparameters={"epochs": 300}, paper={"epochs": 300}, metrics={"MAE": 0.3}))
    table = summary.aggregate(reader.read_runs(dirs))
    bench, paper = table.columns
    assert bench.notes == ["bench settings (epochs 10 vs paper 500)"] and bench.marker == "†1"
    assert bench.label == "Bench †1" and paper.label == "Paper" and paper.notes == []
    assert "Settings that differ from the paper's: †1: bench settings (epochs 10 vs paper 500)" in table.notes
    cell = _rows(table)[MAE_ROW][0]
    assert "settings †1: bench settings (epochs 10 vs paper 500)" in cell.title
    assert "lr" not in " ".join(bench.notes)  # the same as the paper's: not named
    # both models ran the task with other profiles: the task says so
    mismatch = [n for n in table.notes if n.startswith(f"{TASK}: the models were not run alike")]
    assert mismatch == [f"{TASK}: the models were not run alike (profile differ): Bench †1: profile bench; "
                        "Paper: profile paper."]
    text = summary.markdown(table)
    assert "bench settings (epochs 10 vs paper 500)" in text and "| Bench †1 (2 runs) |" in text
    csv_rows = summary.csv_rows(reader.read_runs(dirs))
    assert {r["settings"] for r in csv_rows if r["model"] == "Bench"} == \
        {"profile=bench; data=full; epochs=10 (paper 500)"}


def test_data_variant_and_sample_limit_mismatch_is_noted(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "a", 0, display="A", variant="subset", max_samples={"train": 96}, metrics={"MAE": 0.2}),
            make_run(root, "b", 0, display="B", variant="full", metrics={"MAE": 0.3}),
            make_run(root, "b", 0, display="B", variant="full", task=OTHER, unit=None, task_type="classification",
                     metrics={"ROC-AUC": 0.8})]
    table = summary.aggregate(reader.read_runs(dirs))
    a, b = table.columns
    assert a.notes == ["data: subset", "max-samples train=96"] and a.label == "A †1" and b.label == "B"
    note = next(n for n in table.notes if n.startswith(f"{TASK}:"))
    assert note == (f"{TASK}: the models were not run alike (data, max-samples differ): A †1: data subset, "
                    "max-samples train=96; B: data full, max-samples none.")
    heading = next(g.name for g in table.groups if g.name.startswith(TASK))
    assert "not run alike" in heading
    assert not any(n.startswith(f"{OTHER}:") for n in table.notes)  # only B ran it
    assert "data: subset; max-samples train=96" in summary.markdown(table)


def test_one_model_on_two_data_variants_gets_two_columns(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "m", 0, variant="subset", metrics={"MAE": 0.2}),
            make_run(root, "m", 1, variant="subset", metrics={"MAE": 0.4}),
            make_run(root, "m", 0, variant="full", metrics={"MAE": 0.1})]
    table = summary.aggregate(reader.read_runs(dirs))
    assert [c.setting for c in table.columns] == ["data=subset", "data=full"]
    assert [cell.values for cell in _rows(table)[MAE_ROW]] == [[0.2, 0.4], [0.1]]


def test_terminal_table_notes_runs_not_run_alike(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "m", 0, hyperparameters={"epochs": 3}, paper={"epochs": 500}, metrics={"MAE": 0.5}),
            make_run(root, "m", 1, hyperparameters={"epochs": 10}, paper={"epochs": 500}, metrics={"MAE": 0.3})]
    out = io.StringIO()
    with redirect_stdout(out):
        cli.print_summary(cli.summary_rows(reader.read_runs(dirs)))
    text = out.getvalue()
    assert "settings" in text and "epochs=3 (paper 500)" in text and "epochs=10 (paper 500)" in text


def test_max_samples_recorded_in_the_dataset_block(tmp_path) -> None:
    """The real embedded MP-20 subset, truncated: the limits reach task.json and the result."""
    data = REPO_ROOT / "data"
    spec = RunSpec(run_id="r1", model="matformer", model_dir=str(REPO_ROOT / "images" / "matformer"),
                   task="mp20_is_metal", data_roots=[str(data)], max_samples={"train": 20, "val": 5, "test": 30})
    prepare(spec, tmp_path / "cut")
    assert read_inputs(tmp_path / "cut").dataset["max_samples"] == {"train": 20, "val": 5, "test": 30}
    full = RunSpec(run_id="r2", model="matformer", model_dir=spec.model_dir, task="mp20_is_metal",
                   data_roots=[str(data)])
    prepare(full, tmp_path / "whole")
    assert "max_samples" not in read_inputs(tmp_path / "whole").dataset
    result = base_result(spec)  # a run that died early records the limits too
    assert result["dataset"]["max_samples"] == {"train": 20, "val": 5, "test": 30}
    result["dataset"] = json.loads(json.dumps(read_inputs(tmp_path / "cut").dataset))
    validate_result(result)
