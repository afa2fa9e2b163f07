"""The trivial baseline and the degenerate-result flags on real runs (issue 14, items 2 and 3): the
mean_baseline fixture on the local backend, on real perov_5 data. On the classification task its
score is the training positive rate (2 of the first 40 training crystals have a gap), so it
predicts no positive: that must be flagged in the terminal, in summary.md and in the report, and
``check-result`` must recompute the baseline and the flags."""

import json

import numpy as np
import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS), "COLUMNS": "250"}  # a terminal table wide enough not to wrap


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = run_mateval(["bench", "--backend", "local", "--results-dir", str(results), "--model", "mean_baseline",
                       "--task", "perov5_has_gap", "--task", "perov5_heat_ref",
                       "--max-samples", "train=40,val=8,test=30", "--interval", "0.2", "--quiet"],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = {read_result(p / "result.json")["task"]["name"]: p for p in results.iterdir()
            if p.is_dir() and not p.name.startswith(".")}
    return results, runs, out.stdout


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_classifier_without_positive_is_flagged_everywhere(benched):
    results, runs, stdout = benched
    run_dir = runs["perov5_has_gap"]
    result = read_result(run_dir / "result.json")
    train = [row["target"] for row in _jsonl(run_dir / "inputs" / "train.jsonl")]
    assert 0 < sum(train) < len(train) / 2  # the precondition: a minority positive class
    codes = [f["code"] for f in result["flags"]]
    assert codes == ["no_positive_predicted", "constant_score"]
    # terminal
    assert f"⚠ flagged {run_dir.name}: no_positive_predicted" in stdout
    assert "ok ⚠ flagged" in stdout
    # summary.md
    summary = (results / "summary.md").read_text()
    assert "perov5_has_gap · flags | ⚠ no_positive_predicted (1/1), constant_score (1/1)" in summary
    assert f"(`{run_dir.name}`): `no_positive_predicted`" in summary
    # the HTML report
    report = max(results.glob("report*.html"))
    html = report.read_text()
    assert 'id="flagged-runs"' in html and "<code>no_positive_predicted</code>" in html
    assert '<span class="badge flag">⚠ flagged</span>' in html


def test_baselines_are_the_trivial_predictors_of_the_split(benched):
    _, runs, stdout = benched
    cls = read_result(runs["perov5_has_gap"] / "result.json")
    train = np.array([row["target"] for row in _jsonl(runs["perov5_has_gap"] / "inputs" / "train.jsonl")])
    assert cls["baseline"]["details"]["prior"] == pytest.approx(train.mean())
    assert cls["baseline"]["details"]["majority_class"] == 0
    assert set(cls["baseline"]["metrics"]) == set(cls["metrics"])
    reg_dir = runs["perov5_heat_ref"]
    reg = read_result(reg_dir / "result.json")
    y_train = np.array([row["target"] for row in _jsonl(reg_dir / "inputs" / "train.jsonl")])
    predictions = [line.split(",") for line in (reg_dir / "predictions.csv").read_text().splitlines()[1:]]
    y_test = np.array([float(row[1]) for row in predictions])
    assert reg["baseline"]["details"]["value"] == pytest.approx(y_train.mean())
    assert reg["baseline"]["metrics"]["MAE"] == pytest.approx(np.mean(np.abs(y_test - y_train.mean())))
    assert set(reg["baseline"]["metrics"]) == set(reg["metrics"])
    # the model predicts the training mean too (in float32): the ratio is 1 and it is flagged constant
    assert [f["code"] for f in reg["flags"]][0] == "constant_prediction"
    assert "↳ baseline" in stdout and "(ratio 1)" in stdout


def test_check_result_recomputes_baseline_and_flags(benched):
    _, runs, _ = benched
    out = run_mateval(["check-result", str(runs["perov5_has_gap"])], cwd=REPO_ROOT, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout
    assert "5 metrics recomputed and identical; so are the baseline's 5 metrics and 2 flags" in out.stdout
