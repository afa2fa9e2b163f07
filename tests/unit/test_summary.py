"""The per-model summary (orchestrator/report/summary.py): statistics over seeds, failure markers, the
Markdown and CSV files and the first table of the HTML report, on real (schema-valid) result files."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator import reader, results  # noqa: E402
from orchestrator.report import summary  # noqa: E402
from orchestrator.report.formatting import format_metric  # noqa: E402
from orchestrator.report.render import build_context, render_report  # noqa: E402
from runner.result import write_result  # noqa: E402
from runner.run import RunSpec, base_result  # noqa: E402
from tests.unit.test_report import parse_table  # noqa: E402

TASK = "perov5_heat_ref"
UNIT = "eV/atom"
RESOURCE_LABELS = ("Duration (s)", "GPU utilization (%)", "GPU memory utilization (%)", "GPU power (W)",
                   "GPU energy (J)", "Host CPU (%)", "Host memory (%)")
ERRORS = {"oom": ("OutOfMemoryError", "CUDA out of memory"), "failed": ("RuntimeError", "boom"),
          "timeout": ("Timeout", "run exceeded its time limit"), "cancelled": ("Cancelled", "scancel")}


def make_run(root: Path, model: str, seed: int, *, status: str = "ok", display: str | None = None,
             task: str = TASK, unit: str | None = UNIT, task_type: str = "regression",
             metrics: dict | None = None, overall: dict | None = None, params: int | None = 1_000,
             flops: float | None = 2.0e6, variant: str = "full", hyperparameters: dict | None = None,
             profile: str = "bench", paper: dict | None = None, max_samples: dict | None = None,
             config: str | None = None) -> Path:
    """Stage, write and publish one run directory with a real, schema-valid result.json.

    ``hyperparameters``: the effective ones; ``paper``: the paper defaults of those that differ
    (recorded as ``hyperparameters.overridden``); ``config``: ``config_sha256``.
    """
    spec = RunSpec(run_id=results.new_run_id(model, task, seed), model=model, model_dir="/nowhere", task=task,
                   seed=seed)
    staging = results.prepare(root, spec)
    result = base_result(spec)
    result["model"]["display_name"] = display or model.upper()
    result["task"]["unit"] = unit
    result["task_type"] = task_type
    result["status"] = status
    if status != "ok":
        etype, message = ERRORS[status]
        result["error"] = {"type": etype, "message": message, "phase": "train", "traceback": None, "log_tail": None}
    result["metrics"] = dict(metrics or {})
    result["resources"]["overall"] = dict(overall or {})
    result["dataset"]["variant"] = variant
    if max_samples:
        result["dataset"]["max_samples"] = dict(max_samples)
    effective = dict(hyperparameters) if hyperparameters is not None else {"epochs": 10}
    result["hyperparameters"] = {"effective": effective, "profile": profile, "overridden": {
        k: {"paper": v, "used": effective[k]} for k, v in (paper or {}).items() if effective.get(k) != v}}
    result["config_sha256"] = config
    result["model_stats"]["params"] = params
    result["model_stats"]["flops"] = None if flops is None else {"forward_per_sample": flops}
    write_result(staging, result)
    return results.publish(staging, root)


def _overall(duration: float, gpu: float, power0: float, power1: float | None = None) -> dict:
    out = {"duration (s)": duration, "gpu:0/gpu_utilization (%)/mean": gpu,
           "gpu:0/memory_utilization (%)/mean": gpu / 2, "gpu:0/power_usage (W)/mean": power0,
           "host/cpu_percent (%)/mean": 50.0, "host/memory_percent (%)/mean": 20.0}
    if power1 is not None:
        out["gpu:1/gpu_utilization (%)/mean"] = gpu + 10
        out["gpu:1/power_usage (W)/mean"] = power1
    return out


MAES = [0.431, 0.452, 0.418]
DURATIONS = [100.0, 130.0, 90.0]


@pytest.fixture()
def suite_dirs(tmp_path: Path) -> list[Path]:
    """alpha: 3 ok seeds (2 GPUs); beta: all OOM; gamma: 2 ok + 1 failed; delta: a single seed."""
    root = tmp_path / "results"
    dirs = []
    for seed, (mae, dur) in enumerate(zip(MAES, DURATIONS)):
        dirs.append(make_run(root, "alpha", seed, display="Alpha Net",
                             metrics={"MAE": mae, "RMSE": mae * 1.3, "R2": 0.9 - seed / 100, "MSE": mae ** 2},
                             overall=_overall(dur, 80.0 + seed, 100.0 + seed, 50.0)))
    for seed in range(2):
        dirs.append(make_run(root, "beta", seed, status="oom", display="Beta", params=None, flops=None,
                             overall={"duration (s)": 12.0}))
    for seed, mae in enumerate([0.50, 0.52, None]):
        status = "ok" if mae is not None else "failed"
        dirs.append(make_run(root, "gamma", seed, status=status, display="Gamma",
                             metrics={"MAE": mae, "RMSE": 0.7, "R2": None} if mae is not None else {},
                             overall=_overall(60.0, 70.0, 90.0)))
    dirs.append(make_run(root, "delta", 0, display="Delta", params=5_000_000,
                         metrics={"MAE": 0.61, "RMSE": 0.8, "R2": 0.5}, overall=_overall(33.0, 55.0, 75.0)))
    # alpha also ran a classification task: params differ there (another head)
    dirs.append(make_run(root, "alpha", 0, display="Alpha Net", task="perov5_gap_positive", unit=None,
                         task_type="classification", params=1_200,
                         metrics={"ROC-AUC": 0.91, "Accuracy": 0.85}, overall=_overall(40.0, 60.0, 80.0)))
    return dirs


@pytest.fixture()
def table(suite_dirs) -> summary.SuiteTable:
    return summary.aggregate(reader.read_runs(suite_dirs))


def _row(table: summary.SuiteTable, label: str) -> list[summary.SummaryCell]:
    rows = {r.label: r.cells for r in table.rows}
    assert label in rows, (label, list(rows))
    return rows[label]


def _col(table: summary.SuiteTable, model: str) -> int:
    return [c.name for c in table.columns].index(model)


# ----------------------------------------------------------------------------------------------
# aggregate
# ----------------------------------------------------------------------------------------------


def test_columns_are_models_in_order_of_appearance(table) -> None:
    assert [c.name for c in table.columns] == ["alpha", "beta", "gamma", "delta"]
    assert [c.label for c in table.columns] == ["Alpha Net", "Beta", "Gamma", "Delta"]
    alpha = table.columns[0]
    assert alpha.n_runs == 4 and alpha.n_ok == 4 and alpha.tasks == [TASK, "perov5_gap_positive"]
    assert table.n_runs == 10 and table.status_counts == {"ok": 7, "oom": 2, "failed": 1}
    assert table.header == "10 runs of 4 models on 2 tasks: 7 ok, 2 oom, 1 failed"


def test_mean_and_sample_std_over_three_seeds(table) -> None:
    cell = _row(table, f"{TASK} · MAE ({UNIT})")[_col(table, "alpha")]
    assert cell.kind == "value" and (cell.n_ok, cell.n_total) == (3, 3)
    assert cell.mean == pytest.approx(np.mean(MAES))
    assert cell.std == pytest.approx(np.std(MAES, ddof=1))
    assert cell.values == pytest.approx(MAES)
    assert cell.text == f"{format_metric(np.mean(MAES))} ± {format_metric(np.std(MAES, ddof=1))}"
    assert "(" not in cell.text  # every seed ok: no marker
    mse = _row(table, f"{TASK} · MSE ({UNIT})²")[_col(table, "alpha")]
    assert mse.std == pytest.approx(np.std(np.square(MAES), ddof=1))


def test_resource_rows_are_per_task_never_a_spread_over_tasks(table) -> None:
    a = _col(table, "alpha")
    duration = _row(table, f"{TASK} · Duration (s)")[a]
    assert duration.values == pytest.approx(DURATIONS)  # the 3 seeds of this task only
    assert duration.std == pytest.approx(np.std(DURATIONS, ddof=1))
    other = _row(table, "perov5_gap_positive · Duration (s)")[a]
    assert other.values == pytest.approx([40.0]) and other.std is None and "±" not in other.text
    # power: summed over the GPUs (100 + seed + 50 on the 3 seeds with 2 GPUs)
    assert _row(table, f"{TASK} · GPU power (W)")[a].values == pytest.approx([150.0, 151.0, 152.0])
    assert _row(table, "perov5_gap_positive · GPU power (W)")[a].values == pytest.approx([80.0])
    # utilization: averaged over the GPUs
    assert _row(table, f"{TASK} · GPU utilization (%)")[a].values == pytest.approx([85.0, 86.0, 87.0])
    task_group = next(g for g in table.groups if g.name.startswith(TASK))
    assert [r.label for r in task_group.rows][-len(RESOURCE_LABELS):] == [f"{TASK} · {x}" for x in RESOURCE_LABELS]
    assert not any(r.label in RESOURCE_LABELS for r in table.rows)  # no resource row over all tasks


def test_all_oom_model_shows_oom_never_zero(table) -> None:
    b = _col(table, "beta")
    for row in table.rows:
        if row.task not in (None, TASK):
            continue  # beta never ran the classification task
        cell = row.cells[b]
        assert cell.text == "OOM", (row.label, cell.text)
        assert cell.kind == "status" and cell.status == "oom" and cell.mean is None
        assert "st-oom" in cell.css and (cell.n_ok, cell.n_total) == (0, 2)
        assert "CUDA out of memory" in cell.title
    # a duration was recorded for the OOM runs, but they are not ok: not averaged into a value
    assert _row(table, f"{TASK} · Duration (s)")[b].text == "OOM"


def test_mixed_failure_statuses_show_the_most_frequent_with_count(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "m", 0, status="oom"), make_run(root, "m", 1, status="timeout"),
            make_run(root, "m", 2, status="oom")]
    cell = _row(summary.aggregate(reader.read_runs(dirs)), f"{TASK} · MAE ({UNIT})")[0]
    assert cell.text == "OOM (2/3)" and cell.status_counts == {"oom": 2, "timeout": 1}
    assert "st-oom" in cell.css


def test_some_seeds_failed_marks_k_of_n_ok(table) -> None:
    g = _col(table, "gamma")
    cell = _row(table, f"{TASK} · MAE ({UNIT})")[g]
    assert (cell.n_ok, cell.n_total) == (2, 3)
    assert cell.mean == pytest.approx(0.51) and cell.std == pytest.approx(np.std([0.50, 0.52], ddof=1))
    assert cell.text == f"{format_metric(0.51)} ± {format_metric(cell.std)} (2/3 ok)"
    assert "seed 2: failed" in cell.title


def test_null_metric_in_ok_runs_is_na_with_reason(table) -> None:
    cell = _row(table, f"{TASK} · R2")[_col(table, "gamma")]
    assert cell.kind == "na" and cell.text.startswith("n/a") and cell.mean is None
    assert "null" in cell.title


def test_single_seed_has_no_plus_minus(table) -> None:
    d = _col(table, "delta")
    cell = _row(table, f"{TASK} · MAE ({UNIT})")[d]
    assert cell.text == format_metric(0.61) and "±" not in cell.text and cell.std is None
    assert _row(table, "Params")[d].text == "5 M"


def test_params_range_and_absent_task(table) -> None:
    a = _col(table, "alpha")
    params = _row(table, "Params")[a]
    assert params.kind == "range" and params.text == "1 k–1.2 k" and (params.low, params.high) == (1000, 1200)
    assert _row(table, "Params")[_col(table, "gamma")].text == "1 k (2/3 ok)"
    assert _row(table, "Forward FLOPs / sample")[a].text == "2 MFLOP"
    # models that never ran the classification task: a dash, not n/a or a status
    for model in ("beta", "gamma", "delta"):
        cell = _row(table, "perov5_gap_positive · ROC-AUC")[_col(table, model)]
        assert cell.text == "—" and cell.kind == "absent"


def test_empty_and_unreadable_inputs(tmp_path) -> None:
    empty = summary.aggregate([])
    assert empty.columns == [] and empty.n_runs == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text("{")
    table = summary.aggregate(reader.read_runs([tmp_path / "bad"]))
    assert table.columns == [] and len(table.unreadable) == 1
    summary.write_markdown(table, tmp_path / "summary.md")
    assert "No readable runs" in (tmp_path / "summary.md").read_text()


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


def test_markdown_one_column_per_model_and_row_order(table, tmp_path) -> None:
    path = summary.write_markdown(table, tmp_path / "out" / "summary.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# mateval summary\n\n10 runs of 4 models on 2 tasks: 7 ok, 2 oom, 1 failed.")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["Metric", "Alpha Net (4 runs)", "Beta (2 runs)", "Gamma (3 runs)", "Delta (1 run)"]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]
    assert all(len(cells) == 5 for cells in body)
    labels = [cells[0] for cells in body]
    assert labels == ["Params", "Forward FLOPs / sample",
                      f"{TASK} · MAE ({UNIT})", f"{TASK} · MSE ({UNIT})²", f"{TASK} · RMSE ({UNIT})", f"{TASK} · R2",
                      *(f"{TASK} · {x}" for x in RESOURCE_LABELS),
                      "perov5_gap_positive · ROC-AUC", "perov5_gap_positive · Accuracy",
                      *(f"perov5_gap_positive · {x}" for x in RESOURCE_LABELS)]
    rows = {cells[0]: cells[1:] for cells in body}
    assert rows[f"{TASK} · MAE ({UNIT})"][1] == "OOM"
    assert rows[f"{TASK} · MAE ({UNIT})"][2].endswith("(2/3 ok)")
    r2 = rows[f"{TASK} · R2"][2]
    assert r2.startswith("n/a (2/3 ok) [^")
    note = r2[r2.index("[^"):]
    reason = next(line for line in text.splitlines() if line.startswith(note + ": "))
    assert "stored as null" in reason
    assert rows[f"{TASK} · MSE ({UNIT})²"][3].startswith("n/a [^")  # delta never reported an MSE
    assert "Resource rows are per task" in text  # the note on the resource rows
    assert not list(path.parent.glob(".*tmp"))  # atomic write left no temporary file


def test_markdown_escapes_pipes_and_html(tmp_path) -> None:
    root = tmp_path / "results"
    d = make_run(root, "x", 0, display="A|B <b>", metrics={"MAE": 1.0})
    text = summary.markdown(summary.aggregate(reader.read_runs([d])))
    header = next(line for line in text.splitlines() if line.startswith("| Metric"))
    assert "A\\|B &lt;b&gt; (1 run)" in header and "<b>" not in text


def test_csv_one_row_per_run_and_metric(suite_dirs, tmp_path) -> None:
    loaded = reader.read_runs(suite_dirs)
    path = summary.write_csv(loaded, tmp_path / "summary.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["run_id", "model", "task", "seed", "status", "metric", "value", "unit", "settings"]
    per_task = {TASK: 4, "perov5_gap_positive": 2}  # metrics reported by any run of the task
    expected = sum(len(RESOURCE_LABELS) + 2 + per_task[r.task] for r in loaded)
    assert len(rows) == expected
    seen = {(r["run_id"], r["metric"]) for r in rows}
    assert len(seen) == len(rows)  # one row per run and metric
    assert {r["run_id"] for r in rows} == {d.name for d in suite_dirs}
    assert {r["status"] for r in rows} == {"ok", "oom", "failed"}
    by_key = {(r["run_id"], r["metric"]): r for r in rows}
    alpha0 = suite_dirs[0].name
    assert float(by_key[(alpha0, "MAE")]["value"]) == MAES[0] and by_key[(alpha0, "MAE")]["unit"] == UNIT
    assert by_key[(alpha0, "MSE")]["unit"] == f"({UNIT})²"
    power = by_key[(alpha0, "GPU power (W)")]
    assert float(power["value"]) == 150.0 and power["unit"] == "W"
    assert by_key[(alpha0, "Params")]["value"] == "1000" and by_key[(alpha0, "Duration (s)")]["seed"] == "0"
    beta = suite_dirs[3].name
    assert by_key[(beta, "MAE")] == {"run_id": beta, "model": "Beta", "task": TASK, "seed": "0",
                                          "status": "oom", "metric": "MAE", "value": "", "unit": UNIT,
                                          "settings": "profile=bench; data=full"}
    assert by_key[(beta, "Duration (s)")]["value"] == "12.0"  # raw data: kept, the status says it was OOM
    gamma_null = by_key[(suite_dirs[5].name, "R2")]
    assert gamma_null["status"] == "ok" and gamma_null["value"] == ""


def test_write_summaries_writes_both_files(suite_dirs, tmp_path) -> None:
    md, csv_path = summary.write_summaries(reader.read_runs(suite_dirs), tmp_path / "res")
    assert md == tmp_path / "res" / "summary.md" and csv_path == tmp_path / "res" / "summary.csv"
    assert md.is_file() and csv_path.is_file()


# ----------------------------------------------------------------------------------------------
# HTML report
# ----------------------------------------------------------------------------------------------


def test_report_has_the_summary_first_and_escaped(tmp_path) -> None:
    root = tmp_path / "results"
    dirs = [make_run(root, "evil", s, display="<script>alert(1)</script>", metrics={"MAE": 0.1 + s / 10})
            for s in range(2)]
    dirs += [make_run(root, "oomy", s, status="oom", display="OOMy") for s in range(2)]
    out = render_report(dirs, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;" in html and "<script>alert" not in html and html.lower().count("<script") == 1  # only the report's own table script
    # the summary is the first table of the page, before the per-run comparison
    assert html.index("<table") == html.index('<table class="cmp suite" id="suite-table"')
    assert html.index('id="suite-table"') < html.index('id="comparison-table"')
    assert "Models compared (mean ± std over seeds)" in html
    parsed = parse_table(html, "suite-table", "suitehead")
    assert [h.split(" 2 runs")[0] for h in parsed.headers] == ["<script>alert(1)</script>", "OOMy"]
    mae = parsed.rows[f"{TASK} · MAE ({UNIT})"]
    assert mae[0][0] == f"{format_metric(0.15)} ± {format_metric(np.std([0.1, 0.2], ddof=1))}"
    assert (mae[1][0], mae[1][2]) == ("OOM", "status-cell st-oom")
    assert list(parsed.rows)[:2] == ["Params", "Forward FLOPs / sample"]
    assert f"{TASK} · Duration (s)" in parsed.rows


def test_report_context_names_results_that_fail_the_schema(tmp_path) -> None:
    """A result that parses but fails the schema is unreadable in the report as in the summary:
    named, with the reason, and left out of the per-model comparison."""
    run = tmp_path / "odd"
    run.mkdir()
    (run / "result.json").write_text('{"status": "ok", "model": "not an object", "metrics": {"MAE": 1}}')
    context = build_context([run])
    assert context["runs"] == [] and context["suite"] is None
    (entry,) = context["unreadable"]
    assert entry.path == str(run / "result.json")
    assert "fails result schema" in entry.error and "is a required property" in entry.error
    table = summary.aggregate(reader.read_runs([run]))
    assert table.columns == [] and table.unreadable == [(str(run), entry.error)]
