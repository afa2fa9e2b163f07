"""A task type added through the plugin mechanism alone: one runner module
(tests/fixtures/plugins/mateval_ranking.py: task type, catalogue entries, task) and one report
section (tests/fixtures/plugins/mateval_ranking_report.py), run end to end on the local backend with
a fixture model, scored by the scoring stage and shown in the report."""

import csv
import os

import pytest
from scipy import stats

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
PLUGINS = REPO_ROOT / "tests" / "fixtures" / "plugins"


def test_plugin_task_type_runs_end_to_end(tmp_path):
    env = {"MATEVAL_IMAGES": str(FIXTURE_MODELS), "MATEVAL_PLUGINS": "mateval_ranking",
           "MATEVAL_REPORT_PLUGINS": "mateval_ranking_report",
           "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    out = run_mateval(["bench", "--backend", "local", "--model", "volume_ranker", "--max-samples",
                       "train=60,val=10,test=40", "--results-dir", str(tmp_path)], cwd=REPO_ROOT, env=env,
                      timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "ranking"
    assert result["task"]["name"] == "perov5_heat_ref_rank" and result["scoring"]["status"] == "done"
    assert set(result["metrics"]) == {"Spearman", "Kendall"}
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    y_true = [float(r["target"]) for r in rows]
    y_pred = [float(r["prediction"]) for r in rows]
    assert len(rows) == 40
    assert result["metrics"]["Spearman"] == pytest.approx(stats.spearmanr(y_true, y_pred).statistic)
    assert result["metrics"]["Kendall"] == pytest.approx(stats.kendalltau(y_true, y_pred).statistic)
    (report,) = tmp_path.glob("report-*.html")
    html = report.read_text()
    assert "Rank against rank (test set)" in html  # the plugin's section drew its figure
    assert "Ranking metrics (test set)" in html and "Spearman rho" in html  # its catalogue entries
