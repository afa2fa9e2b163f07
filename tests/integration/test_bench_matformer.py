"""End to end: ``mateval bench --model matformer`` trains the real Matformer on small real
subsets for both default tasks (perov_5 regression, MP-20 metal classification), writes schema-valid results, and renders a report that a real
headless Chromium opens."""

import csv
import math
import os

import pytest

from runner.result import read_result
from tests.browser import dump_dom, find_chromium, screenshot
from tests.conftest import REPO_ROOT, require, run_mateval

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    results_dir = tmp_path_factory.mktemp("results")
    out = run_mateval(["bench", "--model", "matformer", "--results-dir", str(results_dir),
                       "--max-samples", "train=96,val=16,test=128", "--set", "epochs=2", "--interval", "0.5"],
                      cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    runs = sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    reports = sorted(results_dir.glob("report-*.html"))
    return out, runs, reports


def test_both_tasks_ok_with_full_results(bench):
    out, runs, _ = bench
    assert len(runs) == 2
    results = {r["task"]["name"]: r for r in (read_result(d / "result.json") for d in runs)}
    assert set(results) == {"perov5_heat_ref", "mp20_is_metal"}
    datasets = {"perov5_heat_ref": "perov_5_subset", "mp20_is_metal": "mp_20_biternary_subset"}
    for task, result in results.items():
        assert result["status"] == "ok" and result["backend"] == "local"
        assert result["model"]["name"] == "matformer"
        assert result["dataset"]["name"] == datasets[task]
        assert result["dataset"]["sizes"] == {"train": 96, "val": 16, "test": 128}
        assert result["hyperparameters"]["overridden"]["epochs"] == {"paper": 500, "used": 2}
        assert [h["epoch"] for h in result["history"]] == [1, 2]
        overall = result["resources"]["overall"]
        assert overall["duration (s)"] > 0
        assert overall["host/cpu_percent (%)/mean"] > 0 and overall["host/memory_percent (%)/mean"] > 0
        assert set(result["resources"]["phases"]) == {"train", "predict"}
        if not os.path.exists("/dev/nvidiactl"):
            assert any(u["metric"].startswith("gpu:") for u in result["resources"]["unavailable"])
        stats = result["model_stats"]
        assert stats["params"] > 1_000_000  # five 128-channel, 4-head MatformerConv layers
        assert stats["flops"]["forward_per_sample"] > 0
        assert stats["flops"]["train_per_epoch"] > stats["flops"]["forward_per_epoch"]
        assert result["environment"]["packages"]["torch"]
    regression = results["perov5_heat_ref"]["metrics"]
    for name in ("MAE", "MSE", "RMSE"):
        assert math.isfinite(regression[name]) and regression[name] > 0
    assert regression["RMSE"] == pytest.approx(math.sqrt(regression["MSE"]))
    classification = results["mp20_is_metal"]["metrics"]
    assert 0 <= classification["ROC-AUC"] <= 1
    assert 0 <= classification["Accuracy"] <= 1
    assert "mateval results" in out.stdout and "report:" in out.stdout


def test_predictions_cover_the_test_split(bench):
    _, runs, _ = bench
    for run_dir in runs:
        rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
        assert len(rows) == 128
        if "score" in rows[0]:
            assert all(0 <= float(r["score"]) <= 1 for r in rows)
            assert {r["target"] for r in rows} == {"0", "1"}


def test_report_opens_in_a_real_browser(bench, tmp_path):
    _, runs, reports = bench
    assert len(reports) == 1
    require(find_chromium() is not None, "Chromium not installed (apt-get install chromium)")
    dom = dump_dom(reports[0])
    for run_dir in runs:
        assert run_dir.name in dom
    assert "Matformer" in dom and "mp20_is_metal" in dom and "ROC-AUC" in dom and "MAE" in dom
    png = screenshot(reports[0], tmp_path / "report.png")
    assert png.stat().st_size > 20_000
