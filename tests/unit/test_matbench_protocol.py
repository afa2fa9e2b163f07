"""Matbench's folds (runner.protocols.matbench): sklearn's KFold with Matbench's seed, test parts
partitioning the rows, and a seeded validation split inside a fold's training part."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from runner.protocols.matbench import MATBENCH_KFOLD, folds, validation_split


def test_folds_are_matbench_kfold():
    n = 636  # matbench_jdft2d's size
    got = folds(n)
    expected = list(KFold(n_splits=5, shuffle=True, random_state=18012019).split(np.arange(n)))
    assert MATBENCH_KFOLD == {"n_splits": 5, "shuffle": True, "random_state": 18012019}
    assert len(got) == 5
    for (train, test), (e_train, e_test) in zip(got, expected):
        assert np.array_equal(test, np.sort(e_test)) and np.array_equal(train, np.sort(e_train))
        assert not set(train) & set(test)
    assert np.array_equal(np.sort(np.concatenate([t for _, t in got])), np.arange(n))
    with pytest.raises(ValueError, match="at least 5"):
        folds(4)


def test_validation_split_is_seeded_and_disjoint():
    train, _ = folds(100)[0]
    a, va = validation_split(train, 0.1, seed=3)
    b, vb = validation_split(train, 0.1, seed=3)
    assert np.array_equal(a, b) and np.array_equal(va, vb) and len(va) == 8
    assert not set(a) & set(va) and set(a) | set(va) == set(train)
    assert not np.array_equal(va, validation_split(train, 0.1, seed=4)[1])
    assert len(validation_split(train, 0.0, 0)[1]) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        validation_split(train, 1.0, 0)


# --- the protocol on real data (mp_20_biternary subset), the official-file path, planning --------

import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from runner.datasets import DatasetError  # noqa: E402
from runner.prepare import load_task_data  # noqa: E402
from runner.protocols import matbench  # noqa: E402
from runner.tasks import get_task  # noqa: E402
from runner.wire import RunSpec  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

DATA = REPO_ROOT / "data"


def matbench_package():
    """``matbench`` (0.6, installed --no-deps beside .venv by orchestrator.envs.ensure_matbench_tools);
    skips with the reason when it cannot be installed (no package index)."""
    try:
        import matbench.bench  # noqa: F401
    except ImportError:
        from orchestrator.envs import ModelEnvError, ensure_matbench_tools

        try:
            sys.path.append(str(ensure_matbench_tools(lambda line: None)))
            import matbench.bench  # noqa: F401
        except (ModelEnvError, ImportError) as exc:
            pytest.skip(f"matbench is not importable and could not be installed: {str(exc)[:300]}")
    import matbench

    return matbench


@pytest.fixture(scope="module")
def mp20():
    """The whole mp_20_biternary subset of mp20_formation_energy (train, val and test)."""
    return get_task("mp20_formation_energy").load("subset", [DATA])


def spec(task="mp20_formation_energy", fold=0, seed=0, roots=(DATA,), **kw):
    return RunSpec(run_id="t", model="m", model_dir="/nowhere", task=task, seed=seed, data_roots=[str(r) for r in roots],
                   protocol="matbench", fold=fold, **kw)


def test_folds_match_matbench_published_splits():
    """Our folds are Matbench v0.1's published test parts (matbench_v0.1_validation.json)."""
    matbench_package()
    from matbench.metadata import mbv01_metadata, mbv01_validation

    for name in ("matbench_jdft2d", "matbench_perovskites"):
        n = mbv01_metadata[name]["n_samples"]
        published = mbv01_validation["splits"][name]
        for k, (_, test) in enumerate(folds(n)):
            assert [matbench.mbid(name, int(i), n) for i in test] == list(published[f"fold_{k}"]["test"])


def test_stratified_folds_for_classification():
    labels = np.array([1] * 70 + [0] * 30)
    got = folds(100, labels)
    from sklearn.model_selection import StratifiedKFold

    expected = StratifiedKFold(n_splits=5, shuffle=True, random_state=18012019).split(np.zeros((100, 1)), labels)
    for (train, test), (_, e_test) in zip(got, expected):
        assert np.array_equal(test, np.sort(e_test)) and labels[test].sum() == 14
    with pytest.raises(ValueError, match="each class"):
        folds(10, np.array([1] * 7 + [0] * 3))


def test_pool_is_train_val_test_in_order_and_ids_unique(mp20):
    pooled = matbench.pool(mp20.splits)
    assert [s.id for s in pooled] == [s.id for split in ("train", "val", "test") for s in mp20.splits[split]]
    twice = dict(mp20.splits, val=mp20.splits["val"] + mp20.splits["train"][:1])
    with pytest.raises(DatasetError, match="occurs twice"):
        matbench.pool(twice)


def test_each_fold_tests_matbench_part_and_splits_its_training_part(mp20):
    pooled = matbench.pool(mp20.splits)
    index = {s.id: i for i, s in enumerate(pooled)}
    tested = []
    for k, (train, test) in enumerate(folds(len(pooled))):
        dataset = matbench.apply("mp20_formation_energy", "regression", mp20, k, 3, 0.1, [DATA])
        splits = dataset.splits
        assert [index[s.id] for s in splits["test"]] == list(test)
        assert sorted(index[s.id] for s in splits["train"] + splits["val"]) == list(train)
        assert len(splits["val"]) == round(0.1 * len(train))
        assert dataset.protocol["fold"] == k and dataset.protocol["pool_size"] == len(pooled)
        tested += [s.id for s in splits["test"]]
    assert sorted(tested) == sorted(index)
    # the prepare and scoring stages' loader applies the same protocol hook
    data = load_task_data(spec(fold=4, seed=3))
    assert {k: [s.id for s in v] for k, v in data.dataset.splits.items()} == {k: [s.id for s in v] for k, v in splits.items()}
    record = data.record()
    assert record["protocol"]["name"] == "matbench" and "fold 4 of 5" in record["split"]
    # the run seed draws the validation part only; the test part is the fold's whatever the seed
    other = matbench.apply("mp20_formation_energy", "regression", mp20, 4, 5, 0.1, [DATA]).splits
    assert [s.id for s in other["test"]] == [s.id for s in splits["test"]]
    assert {s.id for s in other["val"]} != {s.id for s in splits["val"]}


def test_max_samples_truncate_the_folds_splits(mp20):
    whole = matbench.apply("mp20_formation_energy", "regression", mp20, 2, 0, 0.1, [DATA]).splits
    small = load_task_data(spec(fold=2, max_samples={"train": 20, "test": 7}))
    assert [s.id for s in small.dataset.splits["test"]] == [s.id for s in whole["test"][:7]]
    assert [s.id for s in small.dataset.splits["train"]] == [s.id for s in whole["train"][:20]]
    assert small.record()["max_samples"] == {"train": 20, "test": 7}


@pytest.mark.parametrize("task,task_type", [("phonon_dos", "spectra"), ("perov5_generation", "generation"),
                                            ("mlearn_si", "potential")])
def test_other_task_types_are_refused_by_name(task, task_type):
    with pytest.raises(matbench.ProtocolError, match=f"{task} is a {task_type} task"):
        load_task_data(spec(task=task))
    from orchestrator import plan, registry

    manifest = registry.get_model("matformer")
    with pytest.raises(matbench.ProtocolError, match=task_type):
        plan.build([manifest], [task], [0], plan.Settings(protocol="matbench"), {})


def test_plan_makes_five_fold_runs_per_seed_sharing_one_configuration():
    from orchestrator import plan, registry

    manifest = registry.get_model("matformer")
    planned = plan.build([manifest], ["mp20_formation_energy"], [0, 1], plan.Settings(protocol="matbench"), {})
    assert [(p.seed, p.fold) for p in planned] == [(s, k) for s in (0, 1) for k in range(5)]
    assert len({p.config_sha256 for p in planned}) == 1
    default = plan.build([manifest], ["mp20_formation_energy"], [0], plan.Settings(), {})
    assert [p.fold for p in default] == [None] and default[0].config_sha256 != planned[0].config_sha256
    specs = plan.run_specs(planned[:2], plan.Settings(protocol="matbench"),
                           plan.RunSettings(backend="local", time_limit=lambda s: s, data_roots=(DATA,)))
    assert [(s.protocol, s.fold) for s in specs] == [("matbench", 0), ("matbench", 1)]
    assert "-s0-f1-" in specs[1].run_id


def write_official(path: Path, samples, target: str, task_type: str) -> Path:
    """A small file in Matbench's own dataset format (pandas split JSON, gzip) from real samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [[s.structure.as_dict(), bool(s.target) if task_type == "classification" else float(s.target)]
            for s in samples]
    with gzip.open(path, "wt") as handle:
        json.dump({"index": list(range(len(rows))), "columns": ["structure", target], "data": rows}, handle)
    return path


def test_official_file_rows_and_ids_replace_the_pool(mp20, tmp_path):
    """Matbench's own files are not available here: a small file in their format is written from
    real mp_20 rows (the first 40 of the pool)."""
    rows = matbench.pool(mp20.splits)[:40]
    official = write_official(tmp_path / "matbench" / "matbench_mp_e_form.json.gz", rows, "e_form", "regression")
    data = load_task_data(spec(fold=1, roots=(tmp_path,)))  # the mp_20 files are not needed then
    test = folds(40)[1][1]
    assert [s.id for s in data.dataset.splits["test"]] == [f"mb-mp-e-form-{i + 1:02d}" for i in test]
    assert [s.target for s in data.dataset.splits["test"]] == [rows[i].target for i in test]
    assert data.dataset.name == "matbench_mp_e_form" and data.dataset.sha256 == {official.name: file_sha256_of(official)}
    assert data.dataset.protocol["official_rows"] and data.dataset.protocol["matbench_task"] == "matbench_mp_e_form"
    official.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="matbench_mp_e_form.json.gz"):
        load_task_data(spec(fold=1, roots=(tmp_path, DATA)))


def file_sha256_of(path):
    from runner.datasets import file_sha256

    return file_sha256(path)


def test_grid_file_protocol_field(tmp_path):
    from orchestrator.grid import GridError, load_grid

    path = tmp_path / "grid.yaml"
    path.write_text("models: [matformer]\ntasks: [mp20_is_metal]\nprotocol: matbench\n")
    assert load_grid(path).protocol == "matbench"
    path.write_text("models: [matformer]\nprotocol: kfold\n")
    with pytest.raises(GridError, match="protocol"):
        load_grid(path)


def test_classification_export_scores_agree_with_matbench():
    """Our per-fold classification scores against matbench.data_ops.score_array on the
    probabilities of a real task's labels (the mp_20 subset's is_metal)."""
    matbench_package()
    from matbench.data_ops import score_array

    from orchestrator.export_matbench import classification_scores

    samples = get_task("mp20_is_metal").load("subset", [DATA]).splits["test"]
    y = np.array([s.target for s in samples])
    p = np.random.default_rng(0).uniform(size=len(y)) * 0.5 + 0.5 * y  # an informative score in [0, 1]
    assert classification_scores(y, p) == pytest.approx(score_array(y.astype(bool), p.tolist(), "classification"))


def test_bench_refuses_other_task_types_before_any_run(tmp_path, capsys):
    import signal

    from orchestrator.cli import main

    handler = signal.getsignal(signal.SIGTERM)  # main() installs its own
    try:
        code = main(["bench", "--model", "matformer", "--task", "phonon_dos", "--protocol", "matbench",
                     "--backend", "local", "--results-dir", str(tmp_path / "r"), "--no-report", "--quiet"])
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert code == 2 and "phonon_dos is a spectra task" in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


def test_resume_tells_the_folds_apart(tmp_path):
    """An ok fold 2 is skipped by --resume; the other folds, and the run on the task's own split, are not."""
    from orchestrator import plan, results
    from runner.manifest import load_manifest
    from runner.result import base_result, write_result
    from tests.conftest import FIXTURE_MODELS

    manifest = load_manifest(FIXTURE_MODELS / "mean_baseline")
    settings = plan.Settings(protocol="matbench")
    runs = plan.build([manifest], ["perov5_heat_ref"], [0], settings, {})
    item = runs[2]
    run = RunSpec(run_id=results.new_run_id("mean_baseline", item.task, 0, item.fold), model="mean_baseline",
                  model_dir=str(manifest.folder), task=item.task, config_sha256=item.config_sha256,
                  protocol="matbench", fold=item.fold)
    staging = results.prepare(tmp_path, run)
    result = base_result(run) | {"status": "ok", "metrics": {"MAE": 0.1}}
    result["task"]["name"] = item.task
    result["dataset"]["sha256"] = get_task(item.task).data_sha256("subset", [DATA])
    write_result(staging, result)
    done = results.publish(staging, tmp_path)
    todo, skipped = plan.drop_completed(runs, settings, [DATA], results.run_dirs(tmp_path))
    assert skipped == [(item, done)] and [p.fold for p in todo] == [0, 1, 3, 4]
    own = plan.build([manifest], ["perov5_heat_ref"], [0], plan.Settings(), {})
    assert plan.drop_completed(own, plan.Settings(), [DATA], results.run_dirs(tmp_path))[0] == own
