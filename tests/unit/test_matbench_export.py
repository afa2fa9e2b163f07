"""``mateval export --format matbench`` (orchestrator.export_matbench), the report's Matbench table
(orchestrator.report.matbench) and the grouping of fold runs in the summary, on runs of the real
mp_20 subset's folds whose predictions are the training mean (a real trivial model): the result
records around them are hand-made (our own logic only). The exported file is loaded by matbench 0.6
itself (skipped, with the reason, when matbench cannot be installed)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from orchestrator.export_matbench import ExportError, export, hash_dictionary, regression_scores
from orchestrator.reader import RunRecord
from orchestrator.report.matbench import matbench_table
from orchestrator.report.summary import aggregate
from runner.protocols import matbench
from runner.tasks import get_task
from tests.conftest import REPO_ROOT
from tests.unit.test_matbench_protocol import matbench_package, write_official

DATA = REPO_ROOT / "data"


@pytest.fixture(scope="module")
def mp20():
    return get_task("mp20_formation_energy").load("subset", [DATA])


def fold_run(root: Path, dataset, fold: int, model: str = "mean", seed: int = 0, shift: float = 0.0,
             status: str = "ok", protocol: bool = True) -> RunRecord:
    """A run directory of one fold: predictions.csv of the training mean (+ ``shift``) and a result."""
    splits = dataset.splits
    mean = float(np.mean([s.target for s in splits["train"]])) + shift
    test = splits["test"]
    directory = root / f"{model}-s{seed}-f{fold}"
    directory.mkdir(parents=True)
    with open(directory / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "target", "prediction"])
        writer.writerows([s.id, s.target, mean] for s in test)
    mae = float(np.mean([abs(s.target - mean) for s in test]))
    (directory / "result.json").write_text("{}")
    result = {"run_id": directory.name, "task_type": "regression", "status": status, "seed": seed,
              "task": {"name": "mp20_formation_energy", "unit": "eV/atom"},
              "model": {"name": model, "display_name": model.title()}, "config_sha256": f"{model:0<64}",
              "hyperparameters": {"profile": "bench", "effective": {"epochs": 1}, "overridden": {}},
              "dataset": {"name": dataset.name, "variant": "subset", "sha256": dict(dataset.sha256),
                          **({"protocol": dict(dataset.protocol)} if protocol else {})},
              "metrics": {"MAE": mae} if status == "ok" else {}, "environment": {"git_sha": "abc"},
              "files": {"predictions": "predictions.csv"}}
    return RunRecord(directory, result)


def folds_of(root, mp20, model="mean", seed=0, shift=0.0, roots=(DATA,)):
    return [fold_run(root, matbench.apply("mp20_formation_energy", "regression", mp20, k, seed, 0.1, list(roots)),
                     k, model, seed, shift) for k in range(5)]


def test_export_is_gzip_with_matbench_structure_hash_and_scores(mp20, tmp_path):
    records = folds_of(tmp_path / "runs", mp20)
    path, lines = export(records, tmp_path / "out" / "results.json.gz", git_sha="deadbeef")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzip
    document = json.load(gzip.open(path, "rt"))
    stored = document.pop("hash")
    assert stored == hash_dictionary(document)
    assert document["benchmark_name"] == "matbench_v0.1" and document["@class"] == "MatbenchBenchmark"
    task = document["tasks"]["mateval_mp20_formation_energy"]
    assert sorted(task["results"]) == [f"fold_{k}" for k in range(5)]
    fold0 = task["results"]["fold_0"]
    test0 = matbench.apply("mp20_formation_energy", "regression", mp20, 0, 0, 0.1, [DATA]).splits["test"]
    assert sorted(fold0["data"]) == sorted(s.id for s in test0)  # keys sorted, as matbench writes them
    assert fold0["scores"]["mae"] == pytest.approx(records[0].result["metrics"]["MAE"], rel=1e-12)
    meta = document["user_metadata"]["mateval"]
    assert meta["official_submission"] is False and meta["exported_by_git_sha"] == "deadbeef"
    assert meta["runs"]["mateval_mp20_formation_energy"]["folds"]["fold_3"]["run_id"] == records[3].run_id
    assert any("NOT an official Matbench submission" in line for line in lines)


def test_only_complete_matbench_folds_of_one_model_and_seed_are_exported(mp20, tmp_path):
    records = folds_of(tmp_path / "a", mp20)
    with pytest.raises(ExportError, match=r"fold\(s\) 4 of 5 have no run"):
        export(records[:4], tmp_path / "x.json.gz")
    plain = fold_run(tmp_path / "b", mp20, 0, protocol=False)
    with pytest.raises(ExportError, match="only folds of --protocol matbench runs"):
        export([plain], tmp_path / "x.json.gz", explicit=True)
    with pytest.raises(ExportError, match="no --protocol matbench run"):
        export([plain], tmp_path / "x.json.gz")
    other = folds_of(tmp_path / "c", mp20, model="shifted", shift=0.5)
    with pytest.raises(ExportError, match="choose with --model"):
        export(records + other, tmp_path / "x.json.gz")
    path, _ = export(records + other + [plain], tmp_path / "x.json.gz", model="shifted")
    data = json.load(gzip.open(path, "rt"))
    assert data["user_metadata"]["mateval"]["model"] == "shifted"


def test_matbench_loads_the_official_format_export(mp20, tmp_path, monkeypatch):
    """With a task's rows from a file in Matbench's own dataset format (written here from 40 real
    mp_20 rows: the official files are not available), the export is what matbench 0.6 accepts:
    its MatbenchBenchmark.from_dict (what from_file calls after reading) validates ids, folds,
    types, score keys and the hash. Matbench's split of its 132,752-row file is replaced by the
    same KFold over the 40 rows (computed here with sklearn, independently of our code)."""
    matbench_package()
    from sklearn.model_selection import KFold

    from matbench.bench import MatbenchBenchmark
    from matbench.data_ops import score_array
    from matbench.metadata import mbv01_validation
    from matbench.util import hash_dictionary as mb_hash

    rows = matbench.pool(mp20.splits)[:40]
    write_official(tmp_path / "data" / "matbench" / "matbench_mp_e_form.json.gz", rows, "e_form", "regression")
    records = folds_of(tmp_path / "runs", mp20, roots=(tmp_path / "data", DATA))
    path, lines = export(records, tmp_path / "results.json.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    document = json.load(gzip.open(path, "rt"))
    assert document["user_metadata"]["mateval"]["official_submission"] is True
    ids = [f"mb-mp-e-form-{i + 1:02d}" for i in range(40)]
    splits = {f"fold_{k}": {"train": [ids[i] for i in train], "test": [ids[i] for i in test]}
              for k, (train, test) in enumerate(KFold(n_splits=5, shuffle=True, random_state=18012019).split(ids))}
    monkeypatch.setitem(mbv01_validation["splits"], "matbench_mp_e_form", splits)
    assert mb_hash({k: v for k, v in document.items() if k != "hash"}) == document["hash"]
    benchmark = MatbenchBenchmark.from_dict(json.load(gzip.open(path, "rt")))
    task = benchmark.tasks_map["matbench_mp_e_form"]
    assert task.all_folds_recorded
    for k, record in enumerate(records):
        truth = [s.target for s in record_test(record)]
        ours = task.results[f"fold_{k}"]["scores"]
        theirs = score_array(np.array(truth), np.array(list(task.results[f"fold_{k}"]["data"].values())), "regression")
        assert ours == pytest.approx(theirs, rel=1e-9)
    # the decompressed copy loads with from_file (matbench 0.6 reads files as plain text)
    plain = tmp_path / "results.json"
    plain.write_text(gzip.open(path, "rt").read())
    assert MatbenchBenchmark.from_file(str(plain)).tasks_map["matbench_mp_e_form"].all_folds_recorded
    # a file over mateval's pooled rows is refused by matbench: it is not a submission
    pooled = folds_of(tmp_path / "pooled", mp20)
    other, _ = export(pooled, tmp_path / "pooled.json.gz")
    with pytest.raises(KeyError, match="mateval_mp20_formation_energy"):
        MatbenchBenchmark.from_dict(json.load(gzip.open(other, "rt")))


def record_test(record):
    with open(record.directory / "predictions.csv", newline="") as handle:
        return [type("S", (), {"target": float(row["target"])}) for row in csv.DictReader(handle)]


def test_regression_scores_follow_matbench_definitions():
    y, p = np.array([1.0, -2.0, 0.0, 4.0]), np.array([1.5, -1.0, 0.5, 2.0])
    scores = regression_scores(y, p)
    assert scores["mae"] == pytest.approx(np.mean(np.abs(y - p)))
    assert scores["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert scores["max_error"] == pytest.approx(2.0)
    assert scores["mape"] == pytest.approx(np.mean([0.5, 0.5, 0.5]))  # |y| < 1e-5 masked, as Matbench


def test_matbench_table_and_summary_keep_the_folds_together(mp20, tmp_path):
    good = folds_of(tmp_path / "g", mp20, model="mean")
    worse = folds_of(tmp_path / "w", mp20, model="shifted", shift=0.5)
    plain = fold_run(tmp_path / "p", mp20, 0, model="mean", protocol=False)
    results = [r.result for r in good + worse + [plain]]
    table = matbench_table(results)
    assert table is not None and table.columns == ["Mean", "Shifted"]
    (row,) = table.rows
    assert row.label == "mp20_formation_energy · MAE [eV/atom]"
    maes = [r.result["metrics"]["MAE"] for r in good]
    assert row.cells[0].text.startswith(f"{np.mean(maes):.4f}"[:5]) and "±" in row.cells[0].text
    assert float(row.cells[0].sort) == pytest.approx(np.mean(maes))
    other = np.mean([r.result["metrics"]["MAE"] for r in worse])
    assert other != np.mean(maes)
    best = 0 if np.mean(maes) < other else 1  # the lower MAE is bold
    assert row.cells[best].css == "best" and row.cells[1 - best].css == ""
    assert matbench_table([plain.result]) is None
    # the summary: the 5 folds share one column, apart from the run on the task's own split
    suite = aggregate(good + [plain])
    assert len(suite.columns) == 2 and any("protocol=matbench" in c.label for c in suite.columns)
    cells = next(r for g in suite.groups for r in g.rows if r.label.endswith("MAE (eV/atom)") or "MAE" in r.label).cells
    counted = sorted(len(c.values) for c in cells)
    assert counted == [1, 5]
