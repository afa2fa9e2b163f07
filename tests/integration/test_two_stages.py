"""The two stages of a run on the local backend: the model stage gets inputs without test targets
and cannot set its own score; the scoring stage, in mateval's environment, computes the metrics
from the model's predictions and the held-out targets. (The Docker form, where the data are not
even in the container, is in test_docker_backend.py.)"""

import csv
import json

import pytest

import metrics
from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}


def _only_run(results_dir):
    (run_dir,) = [p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def test_model_stage_gets_no_test_target_and_metrics_come_from_scoring(tmp_path):
    out = run_mateval(["bench", "--backend", "local", "--model", "peeking", "--task", "perov5_heat_ref",
                       "--max-samples", "train=40,val=8,test=30", "--results-dir", str(tmp_path), "--no-report"],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    run_dir = _only_run(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["scoring"]["status"] == "done"

    peek = json.loads((run_dir / "peek.json").read_text())
    assert peek["targets_in_samples"] == 0
    assert peek["test_jsonl_rows"] == 30 and peek["test_jsonl_rows_with_target"] == 0
    assert peek["spec_data_roots"] == [] and peek["spec_cache_dir"] is None
    train_rows = (run_dir / "inputs" / "train.jsonl").read_text().splitlines()
    assert len(train_rows) == 40 and all('"target"' in line for line in train_rows)

    # the model replaced metrics.regression_metrics in its process with a perfect score; the scoring
    # stage computed the real one from predictions.csv (written by the scoring stage, targets included)
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert len(rows) == 30
    y_true = [float(r["target"]) for r in rows]
    y_pred = [float(r["prediction"]) for r in rows]
    assert len(set(y_pred)) == 1  # the training mean
    assert result["metrics"] == pytest.approx(metrics.regression_metrics(y_true, y_pred))
    assert result["metrics"]["MAE"] > 0.05 and result["metrics"]["R2"] < 0.5
    model_rows = list(csv.DictReader((run_dir / "model_predictions.csv").open()))
    assert list(model_rows[0]) == ["id", "prediction"]  # the model's own file holds no target
    log = (run_dir / "run.log").read_text()
    assert "scoring stage" in log and "scoring perov5_heat_ref (regression)" in log


def test_scoring_rejects_a_malformed_model_output(tmp_path):
    """A model output that names ids outside the test split fails the run in the scoring stage."""
    from orchestrator import results
    from orchestrator.backends.base import RunOutcome
    from orchestrator.registry import data_roots
    from runner.result import base_result, write_result
    from runner.wire import RunSpec

    spec = RunSpec(run_id="r1", model="mean_baseline", model_dir=str(FIXTURE_MODELS / "mean_baseline"),
                   task="perov5_heat_ref", data_roots=[str(p) for p in data_roots()],
                   max_samples={"train": 8, "val": 4, "test": 5})
    staging = results.prepare(tmp_path, spec)
    assert results.stage_inputs(spec, staging) is None
    written = base_result(spec) | {"status": "ok", "scoring": {"status": "pending"}}
    write_result(staging, written)
    (staging / "model_predictions.csv").write_text("id,prediction\nnot-a-test-id,1.0\n")
    result = results.finalize(staging, spec, RunOutcome(exit_code=0, timed_out=False, wall_s=1))
    assert result["status"] == "failed" and result["error"]["phase"] == "scoring"
    assert "not in the test split" in result["error"]["message"]
    assert result["metrics"] == {}
