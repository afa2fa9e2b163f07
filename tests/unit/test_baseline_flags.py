"""The trivial baseline and the degenerate-result flags of every task type (runner/tasks/*.py,
runner/score.py), checked against hand computation and scikit-learn; and how the summary
(orchestrator/report/summary.py), the terminal table (orchestrator/cli.py) and the report show them."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from sklearn import metrics as skm

from orchestrator import cli, reader
from orchestrator.report import summary
from orchestrator.report.render import render_html, build_context
from runner.contract import Sample, TaskSpec
from runner.score import loss_flags
from runner.tasks import classification, generation, regression, spectra
from runner.tasks.base import Scored, ScoringContext
from tests.conftest import require, shared_data_dir
from tests.unit.test_summary import make_run


def codes(found) -> list[str]:
    return [f.code for f in found]


def samples(targets, prefix="s") -> list[Sample]:
    return [Sample(id=f"{prefix}{i}", structure=None, target=t) for i, t in enumerate(targets)]


# ----------------------------------------------------------------------------------------------
# regression
# ----------------------------------------------------------------------------------------------


def test_regression_baseline_is_the_training_mean_by_hand_and_sklearn():
    y_train, y_true = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0])
    mean, values = regression.baseline(y_train, y_true)
    assert mean == 2.0
    assert values["MAE"] == pytest.approx(5 / 3)  # |1-2| + |3-2| + |5-2| = 5, over 3
    assert values["MSE"] == pytest.approx(11 / 3)
    assert values["RMSE"] == pytest.approx(math.sqrt(11 / 3))
    assert values["R2"] == pytest.approx(1 - 11 / 8)  # SS_tot about the test mean 3: 4 + 0 + 4
    assert values["MaxError"] == 3.0
    pred = np.full(3, 2.0)
    assert values["R2"] == pytest.approx(skm.r2_score(y_true, pred))
    assert values["MAE"] == pytest.approx(skm.mean_absolute_error(y_true, pred))


def test_regression_task_type_baseline_uses_the_train_split_only():
    task = TaskSpec(name="t", task_type="regression", target="heat_ref", unit="eV")
    train, test = samples([0.0, 4.0]), samples([1.0, 2.0, 6.0], "t")
    found = regression.TASK_TYPE.baseline(np.zeros(3), train, test, task, ScoringContext(Path("."), "perov_5"))
    assert found.details == {"value": 2.0, "n_train": 2}
    assert "training mean of heat_ref (2 eV)" in found.predictor
    assert found.metrics["MAE"] == pytest.approx((1 + 0 + 4) / 3)
    with pytest.raises(ValueError, match="training split is empty"):
        regression.baseline(np.array([]), np.array([1.0]))


def test_regression_flags():
    y_true = np.array([1.0, 3.0, 5.0])
    constant = np.full(3, 2.0)
    assert codes(regression.flags(constant, regression.score(y_true, constant)[0])) == \
        ["constant_prediction", "r2_negative"]
    # float32 round-off of one constant is still constant
    assert "constant_prediction" in codes(regression.flags(np.array([2.0, 2.0 + 1e-12, 2.0]), {"R2": 0.1}))
    good = np.array([1.1, 2.9, 5.2])
    assert regression.flags(good, regression.score(y_true, good)[0]) == []
    worse = np.array([5.0, 3.0, 1.0])  # R2 = 1 - 32/8 = -3, not constant
    assert codes(regression.flags(worse, regression.score(y_true, worse)[0])) == ["r2_negative"]
    assert regression.flags(good, {"R2": float("nan")}) == []  # undefined R2 raises nothing


# ----------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------


def test_classification_baseline_minority_positive():
    y_train, y_true = np.array([0, 0, 0, 1]), np.array([0, 1, 0, 1, 0])
    prior, values = classification.baseline(y_train, y_true)
    assert prior == 0.25
    labels = np.zeros(5)  # majority class 0: every label negative
    assert values["ROC-AUC"] == 0.5 == skm.roc_auc_score(y_true, np.full(5, 0.25))
    assert values["Accuracy"] == pytest.approx(3 / 5) == pytest.approx(skm.accuracy_score(y_true, labels))
    assert math.isnan(values["Precision"])  # no predicted positive: 0/0
    assert values["Recall"] == 0.0 == skm.recall_score(y_true, labels)


def test_classification_baseline_majority_positive():
    y_train, y_true = np.array([1, 1, 0]), np.array([0, 1, 1, 1])
    prior, values = classification.baseline(y_train, y_true)
    assert prior == pytest.approx(2 / 3)
    labels = np.ones(4)
    assert values["Accuracy"] == 0.75 == skm.accuracy_score(y_true, labels)
    assert values["Precision"] == 0.75 == skm.precision_score(y_true, labels)
    assert values["Recall"] == 1.0
    assert values["F1"] == pytest.approx(skm.f1_score(y_true, labels)) == pytest.approx(2 * 0.75 / 1.75)
    assert values["ROC-AUC"] == 0.5
    task = TaskSpec(name="t", task_type="classification", target="gap", unit=None, positive_class="gap > 0")
    found = classification.TASK_TYPE.baseline(np.zeros(4), samples([1, 1, 0]), samples([0, 1, 1, 1], "t"), task,
                                              ScoringContext(Path("."), "perov_5"))
    assert found.details == {"prior": pytest.approx(2 / 3), "majority_class": 1, "n_train": 3}
    assert "majority class (positive)" in found.predictor and "P(gap > 0) = 0.6667" in found.predictor


def test_classification_flags():
    assert codes(classification.flags(np.array([0.1, 0.3, 0.49]))) == ["no_positive_predicted"]
    assert codes(classification.flags(np.full(4, 0.05))) == ["no_positive_predicted", "constant_score"]
    assert codes(classification.flags(np.array([0.5, 0.9]))) == ["no_negative_predicted"]
    assert codes(classification.flags(np.full(3, 0.7))) == ["no_negative_predicted", "constant_score"]
    assert classification.flags(np.array([0.2, 0.8])) == []
    message = classification.flags(np.array([0.1, 0.3]))[0].message
    assert "the largest is 0.3" in message


# ----------------------------------------------------------------------------------------------
# spectra
# ----------------------------------------------------------------------------------------------


def test_spectra_baseline_is_the_mean_training_spectrum():
    grid = np.array([100.0, 200.0, 300.0])
    train = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])  # mean [1, 1, 1]
    y_true = np.array([[1.0, 2.0, 1.0], [0.0, 1.0, 3.0]])
    mean, values = spectra.baseline(train, y_true, grid)
    assert mean.tolist() == [1.0, 1.0, 1.0]
    assert values["MAE"] == pytest.approx((0 + 1 + 0 + 1 + 0 + 2) / 6)
    assert values["MSE"] == pytest.approx((0 + 1 + 0 + 1 + 0 + 4) / 6)
    with pytest.raises(ValueError, match="training spectra"):
        spectra.baseline(np.empty((0, 3)), y_true, grid)


def test_spectra_flags():
    same = np.tile([1.0, 2.0, 3.0], (4, 1))
    assert codes(spectra.flags(same, {"R2": 0.2})) == ["constant_prediction"]
    varied = same + np.arange(4)[:, None]
    assert spectra.flags(varied, {"R2": 0.2}) == []
    assert codes(spectra.flags(varied, {"R2": -0.5})) == ["r2_negative"]


# ----------------------------------------------------------------------------------------------
# generation (real perov_5 crystals)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def perov_samples() -> list[Sample]:
    root = shared_data_dir()
    require(root is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    frame = pd.read_csv(root / "perov_5" / "test.csv", nrows=24)
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Sample(id=f"c{i}", structure=Structure.from_str(c, fmt="cif"), target=None)
                for i, c in enumerate(frame["cif"])]


def test_generation_baseline_samples_training_crystals_with_the_seed(perov_samples, tmp_path):
    train, test = perov_samples[:16], perov_samples[16:]
    task = TaskSpec(name="g", task_type="generation", target="structure", unit=None)
    output = [None] * 6  # the model was asked for 6 crystals
    context = ScoringContext(tmp_path, "perov_5", cache_dir=tmp_path, n_jobs=1, seed=3)
    found = generation.TASK_TYPE.baseline(output, train, test, task, context)
    assert found.details["n_sampled"] == 6 and len(set(found.details["train_ids"])) == 6
    picks = sorted(np.random.default_rng(3).choice(16, size=6, replace=False).tolist())
    assert found.details["train_ids"] == [f"c{i}" for i in picks]
    # the same scoring entry point as the model's crystals
    direct, _ = generation.score([train[i].structure for i in picks], [s.structure for s in test],
                                 dataset="perov_5", cache_dir=tmp_path, n_jobs=1)
    assert found.metrics.keys() == direct.keys()
    assert all(found.metrics[k] == direct[k] or (math.isnan(found.metrics[k]) and math.isnan(direct[k]))
               for k in direct)
    assert found.metrics["success_rate"] == 1.0
    other = generation.TASK_TYPE.baseline(output, train, test, task,
                                          ScoringContext(tmp_path, "perov_5", cache_dir=tmp_path, n_jobs=1, seed=4))
    assert other.details["train_ids"] != found.details["train_ids"]


def test_generation_baseline_is_capped(perov_samples, tmp_path, monkeypatch):
    monkeypatch.setattr(generation, "BASELINE_MAX_CRYSTALS", 4)
    train, test = perov_samples[:16], perov_samples[16:]
    task = TaskSpec(name="g", task_type="generation", target="structure", unit=None)
    found = generation.TASK_TYPE.baseline([None] * 50, train, test, task,
                                          ScoringContext(tmp_path, "perov_5", cache_dir=tmp_path, n_jobs=1))
    assert found.details["n_sampled"] == 4 and found.details["n_requested"] == 50
    assert "capped at 4" in found.predictor


def test_generation_flags_all_invalid():
    task = TaskSpec(name="g", task_type="generation", target="structure", unit=None)

    def flagged(n_valid):
        scored = Scored({}, {"n_valid": n_valid, "n_requested": 10, "n_returned": 7}, {})
        return codes(generation.TASK_TYPE.flags([None] * 10, [], task, scored))

    assert flagged(0) == ["all_invalid"] and flagged(1) == []


# ----------------------------------------------------------------------------------------------
# training loss
# ----------------------------------------------------------------------------------------------


def test_loss_flags():
    fine = [{"epoch": 1, "train_loss": 0.5, "val_loss": None}, {"epoch": 2, "train_loss": 0.4, "val_loss": 0.3}]
    assert loss_flags(fine) == [] and loss_flags(None) == []
    nan_train = fine + [{"epoch": 3, "train_loss": None, "non_finite": ["train_loss"]}]
    found = loss_flags(nan_train)
    assert [f["code"] for f in found] == ["loss_not_finite"] and "epoch 3 (train_loss)" in found[0]["message"]
    # a NaN validation loss is stored as null like "no validation": only the non_finite list tells
    nan_val = [{"epoch": 1, "train_loss": 0.5, "val_loss": None, "non_finite": ["val_loss"]}]
    assert "epoch 1 (val_loss)" in loss_flags(nan_val)[0]["message"]


def test_epoch_logger_names_non_finite_losses():
    from runner.contract import EpochRecord
    from runner.run import _epoch_logger

    history: list = []
    log = _epoch_logger(history, 2)
    log(EpochRecord(epoch=1, train_loss=0.5, val_loss=0.4))
    log(EpochRecord(epoch=2, train_loss=float("nan"), val_loss=float("inf")))
    assert "non_finite" not in history[0] and history[1]["non_finite"] == ["train_loss", "val_loss"]
    assert [f["code"] for f in loss_flags(history)] == ["loss_not_finite"]


# ----------------------------------------------------------------------------------------------
# shown: summary, terminal, report
# ----------------------------------------------------------------------------------------------

FLAG = {"code": "no_positive_predicted", "message": "no test crystal is predicted positive"}


@pytest.fixture()
def flagged_dirs(tmp_path):
    """Two regression seeds with a baseline (MAE 1.0 and 2.0 against 4.0), one classification run flagged."""
    root = tmp_path / "results"
    dirs = []
    for seed, mae in enumerate([1.0, 2.0]):
        d = make_run(root, "alpha", seed, metrics={"MAE": mae, "R2": 0.5})
        _amend(d, baseline={"predictor": "the training mean", "metrics": {"MAE": 4.0, "R2": -0.01}, "details": {}},
               flags=[])
        dirs.append(d)
    d = make_run(root, "alpha", 0, task="perov5_has_gap", task_type="classification", unit=None,
                 metrics={"ROC-AUC": 0.5, "Accuracy": 0.9})
    _amend(d, baseline={"predictor": "the majority class", "metrics": {"ROC-AUC": 0.5, "Accuracy": 0.9}}, flags=[FLAG])
    dirs.append(d)
    return dirs


def _amend(run_dir: Path, **fields) -> None:
    """Add fields to a published run and seal it again (as the scoring stage would have written them)."""
    from orchestrator.integrity import seal
    from runner.result import read_result, write_result

    result = read_result(run_dir / "result.json")
    result.update(fields)
    result.pop("integrity", None)
    write_result(run_dir, result)
    seal(run_dir)


def test_summary_shows_baseline_ratio_and_flags(flagged_dirs, tmp_path):
    loaded = reader.read_runs(flagged_dirs)
    assert all(r.ok for r in loaded), [r.error for r in loaded]
    table = summary.aggregate(loaded)
    rows = {r.label: r for r in table.rows}
    mae = rows["perov5_heat_ref · MAE (eV/atom) · baseline (ratio = model ÷ baseline, below 1 is better)"]
    assert mae.kind == "baseline" and mae.cells[0].mean == 4.0
    assert mae.cells[0].ratio == pytest.approx(1.5 / 4.0) and "(ratio 0.375)" in mae.cells[0].text
    r2 = rows["perov5_heat_ref · R2 · baseline (ratio = model ÷ baseline, above 1 is better)"]
    assert r2.cells[0].ratio is None and "no ratio" in r2.cells[0].text
    acc = rows["perov5_has_gap · Accuracy · baseline (ratio = model ÷ baseline, above 1 is better)"]
    assert acc.cells[0].ratio == pytest.approx(1.0)
    flags_row = rows["perov5_has_gap · flags"]
    assert flags_row.cells[0].text == "⚠ no_positive_predicted (1/1)" and flags_row.cells[0].css == "flagged"
    assert "perov5_heat_ref · flags" not in rows  # no run of the task raised one
    assert [f.flags for f in table.flagged] == [[FLAG]]
    text = summary.markdown(table)
    assert "Flagged results" in text and "`no_positive_predicted`: no test crystal is predicted positive" in text
    assert summary.BASELINE_NOTE.split(":")[0] in text
    path = summary.write_csv(loaded, tmp_path / "summary.csv")
    rows_csv = pd.read_csv(path)
    first = rows_csv[rows_csv.run_id == flagged_dirs[0].name].set_index("metric")["value"]
    assert first["MAE baseline"] == 4.0 and first["MAE ÷ baseline"] == 0.25
    assert math.isnan(first["R2 ÷ baseline"])  # a baseline R² below 0: no ratio
    gap = rows_csv[rows_csv.run_id == flagged_dirs[2].name].set_index("metric")["value"]
    assert gap["flag no_positive_predicted"] == 1


def test_summary_without_baselines_is_unchanged(tmp_path):
    d = make_run(tmp_path / "results", "alpha", 0, metrics={"MAE": 1.0})
    table = summary.aggregate(reader.read_runs([d]))
    assert not any(r.kind for r in table.rows) and table.flagged == []
    assert summary.BASELINE_NOTE not in table.notes and summary.FLAGS_NOTE not in table.notes


def test_terminal_table_shows_baseline_ratio_and_flags(flagged_dirs, monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=250, highlight=False))
    cli.print_summary(cli.summary_rows(reader.read_runs(flagged_dirs)))
    out = buffer.getvalue()
    assert out.count("↳ baseline") == 3
    assert "4 (ratio 0.25)" in out and "4 (ratio 0.5)" in out
    assert "ok ⚠ flagged" in out
    assert f"⚠ flagged {flagged_dirs[2].name}: no_positive_predicted: no test crystal is predicted positive" in out
    assert "below 1 is better for MAE" in out and "above 1 is better for R2, ROC-AUC, Accuracy)" in out


def test_report_shows_baseline_and_flags(flagged_dirs):
    html = render_html(build_context(flagged_dirs))
    assert 'id="flagged-runs"' in html and "<code>no_positive_predicted</code>" in html
    assert html.count('<span class="badge flag">⚠ flagged</span>') == 2  # model page list and run heading
    assert html.count("<h3>Trivial baseline</h3>") == 3
    assert 'class="row-baseline"' in html and 'class="row-flags"' in html
    assert "0.375 (below 1 is better)" not in html  # per run: 1.0 / 4.0 and 2.0 / 4.0
    assert "0.25 (below 1 is better)" in html and "0.5 (below 1 is better)" in html
