"""``mateval bench --protocol matbench`` end to end on the local backend with the mean_baseline
fixture (issue 16, items 4-6): 5 fold runs of mp20_formation_energy, their summary as one column,
the report's Matbench table, and ``mateval export --format matbench`` loaded by matbench 0.6.

Matbench's own dataset files cannot be downloaded here: the test writes a small file in their
format (``matbench_mp_e_form.json.gz``, pandas split JSON) from 40 real mp_20 rows under a data
directory of its own, so the runs take the official-file path; matbench's published split of its
132,752-row file is replaced, for the load, by the same KFold over the 40 rows."""

from __future__ import annotations

import gzip
import json

import pytest

from orchestrator.reader import read_runs
from runner.protocols import matbench
from runner.tasks import get_task
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval
from tests.unit.test_matbench_protocol import matbench_package, write_official

pytestmark = pytest.mark.slow
ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
N_ROWS = 40


def test_matbench_protocol_bench_summary_report_and_export(tmp_path, monkeypatch):
    dataset = get_task("mp20_formation_energy").load("subset", [REPO_ROOT / "data"])
    rows = matbench.pool(dataset.splits)[:N_ROWS]
    write_official(tmp_path / "data" / "matbench" / "matbench_mp_e_form.json.gz", rows, "e_form", "regression")
    results = tmp_path / "results"
    out = run_mateval(["bench", "--backend", "local", "--results-dir", str(results), "--data-dir", str(tmp_path / "data"),
                       "--model", "mean_baseline", "--task", "mp20_formation_energy", "--protocol", "matbench",
                       "--max-samples", "train=24,val=4", "--interval", "0.2", "--quiet"],
                      cwd=REPO_ROOT, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = read_runs(sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")))
    assert sorted(r.fold for r in records) == [0, 1, 2, 3, 4] and all(r.status == "ok" for r in records)
    assert {r.result["dataset"]["protocol"]["matbench_task"] for r in records} == {"matbench_mp_e_form"}
    assert all(r.result["dataset"]["sizes"]["test"] == 8 for r in records)  # 40 rows, 5 folds
    summary = (results / "summary.md").read_text()
    assert "5 runs of 1 model on 1 task" in summary and "protocol: matbench" in summary
    report = next(results.glob("report-*.html")).read_text()
    assert 'id="overview-matbench"' in report

    output = tmp_path / "results.json.gz"
    out = run_mateval(["export", "--format", "matbench", "--results-dir", str(results), "-o", str(output)],
                      cwd=REPO_ROOT, env=ENV, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "official Matbench submission format" in out.stdout
    assert output.read_bytes()[:2] == b"\x1f\x8b"

    matbench_package()
    from sklearn.model_selection import KFold

    from matbench.bench import MatbenchBenchmark
    from matbench.metadata import mbv01_validation

    ids = [matbench.mbid("matbench_mp_e_form", i, N_ROWS) for i in range(N_ROWS)]
    splits = {f"fold_{k}": {"train": [ids[i] for i in train], "test": [ids[i] for i in test]}
              for k, (train, test) in enumerate(KFold(n_splits=5, shuffle=True, random_state=18012019).split(ids))}
    monkeypatch.setitem(mbv01_validation["splits"], "matbench_mp_e_form", splits)
    plain = tmp_path / "results.json"  # matbench 0.6's from_file reads plain text
    plain.write_text(gzip.open(output, "rt").read())
    benchmark = MatbenchBenchmark.from_file(str(plain))
    task = benchmark.tasks_map["matbench_mp_e_form"]
    assert task.all_folds_recorded
    maes = sorted(task.results[f"fold_{r.fold}"]["scores"]["mae"] for r in records)
    assert maes == pytest.approx(sorted(r.metrics["MAE"] for r in records), rel=1e-9)
    assert json.loads(plain.read_text())["user_metadata"]["mateval"]["model"] == "mean_baseline"

