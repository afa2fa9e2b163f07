"""Unit tests of the potential task: the mlearn and DeePMD water loaders on the real data, the
model inputs (no test target, config types kept), the model output written and read back
defensively, the scoring files (extxyz read by ASE, per-structure CSV) and the baseline."""

import csv
import json
import shutil

import numpy as np
import pytest

from metrics import potential as pm
from runner.datasets import DatasetError, deepmd_water, mlearn
from runner.inputs import read_inputs, write_inputs
from runner.tasks import get_task, get_task_type
from runner.tasks.base import OutputError, ScoringContext
from tests.conftest import REPO_ROOT

ROOTS = [REPO_ROOT / "data"]
TASK_TYPE = get_task_type("potential")


@pytest.fixture(scope="module")
def si():
    """mlearn Si from the embedded copy, seed 0."""
    return get_task("mlearn_si").load("subset", ROOTS, None, seed=0)


def _published(path):
    return json.loads(path.read_text())


def test_mlearn_si_is_the_published_split_with_a_seeded_validation(si):
    training = _published(REPO_ROOT / "data/mlearn/Si/training.json")
    test = _published(REPO_ROOT / "data/mlearn/Si/test.json")
    assert len(si.splits["train"]) + len(si.splits["val"]) == len(training)
    assert len(si.splits["val"]) == round(0.1 * len(training))
    assert len(si.splits["test"]) == len(test)
    # ids in JARVIS's numbering; train/val disjoint and together the training file
    ids = [s.id for s in si.splits["train"] + si.splits["val"]]
    assert sorted(ids, key=lambda i: int(i.split("-")[1])) == [f"Si-{k}" for k in range(1, len(training) + 1)]
    assert si.splits["test"][0].id == f"Si-{len(training) + 1}"
    # targets and config types as in the file
    first = si.splits["test"][0]
    assert first.target["energy"] == test[0]["outputs"]["energy"]
    assert np.array_equal(first.target["forces"], np.asarray(test[0]["outputs"]["forces"]))
    assert first.target["forces"].shape == (len(first.structure), 3)
    assert first.info == {"config_type": test[0]["group"]}
    assert si.sha256 == {"Si/training.json": mlearn.PUBLISHED_SHA256["Si/training.json"],
                         "Si/test.json": mlearn.PUBLISHED_SHA256["Si/test.json"]}
    TASK_TYPE.check_targets(get_task("mlearn_si").spec, si.splits)
    assert get_task("mlearn_si").data_sha256("subset", ROOTS) == si.sha256  # what --resume compares


def test_validation_split_follows_the_run_seed(si):
    again = get_task("mlearn_si").load("subset", ROOTS, None, seed=0)
    other = get_task("mlearn_si").load("subset", ROOTS, None, seed=1)
    assert [s.id for s in again.splits["val"]] == [s.id for s in si.splits["val"]]
    assert [s.id for s in other.splits["val"]] != [s.id for s in si.splits["val"]]
    assert [s.id for s in other.splits["test"]] == [s.id for s in si.splits["test"]]


def test_mlearn_checksums_refuse_a_modified_file(tmp_path):
    shutil.copytree(REPO_ROOT / "data/mlearn", tmp_path / "mlearn")
    (tmp_path / "mlearn/Si/SHA256SUMS").unlink()  # only the published sha256 is left to catch it
    (tmp_path / "mlearn/Si/test.json").write_text("[]")
    with pytest.raises(DatasetError, match="test.json: sha256 .* differs from the published"):
        mlearn.load("Si", "full", [tmp_path])
    with pytest.raises(DatasetError, match="unknown element"):
        mlearn.load("Cu", "full", [tmp_path])


def test_other_mlearn_elements_and_water_from_the_shared_data(shared_data):
    for element in ("Ge", "Li", "Mo"):
        data = mlearn.load(element, "full", [shared_data], {"train": 3, "val": 2, "test": 2}, seed=0)
        assert data.sizes() == {"train": 3, "val": 2, "test": 2}
        assert {el.symbol for s in data.splits["test"] for el in s.structure.composition} == {element}
    water = deepmd_water.load("full", [shared_data], None, seed=3)
    sizes = water.sizes()
    assert sizes["train"] + sizes["val"] == 320 and sizes["val"] == 32 and sizes["test"] == 80
    assert all(s.id.startswith("data_3/") for s in water.splits["test"])
    frame = water.splits["test"][0]
    coord = np.load(shared_data / "deepmd_water/data_3/set.000/coord.npy")[0].reshape(-1, 3)
    force = np.load(shared_data / "deepmd_water/data_3/set.000/force.npy")[0].reshape(-1, 3)
    assert frame.structure.composition.reduced_formula == "H2O" and len(frame.structure) == 192
    assert np.allclose(frame.structure.cart_coords, coord)
    assert np.array_equal(frame.target["forces"], force.astype(np.float64))
    assert frame.target["energy"] == float(np.load(shared_data / "deepmd_water/data_3/set.000/energy.npy")[0])
    assert get_task("water_deepmd").data_sha256("full", [shared_data]) == water.sha256


def test_water_subset_is_committed_and_redrawn_identically(tmp_path, shared_data):
    committed = deepmd_water.load("subset", ROOTS, None, seed=0)
    assert committed.sizes() == {"train": 72, "val": 8, "test": 20} and committed.name == "deepmd_water_subset"
    full = deepmd_water.load("full", [shared_data], None, seed=0)
    by_id = {s.id: s for s in full.splits["test"]}
    for k, frame in enumerate(committed.splits["test"]):  # subset frame k is the source's frame 4 k
        source = by_id[f"data_3/set.000/{4 * k}"]
        assert frame.target["energy"] == source.target["energy"]
        assert np.array_equal(frame.target["forces"], source.target["forces"])
    sums = deepmd_water.draw_subset(shared_data / "deepmd_water", tmp_path / "deepmd_water_subset")
    listed = dict(reversed(line.split("  ")) for line in
                  (REPO_ROOT / "data/deepmd_water_subset/SHA256SUMS").read_text().splitlines())
    assert sums == listed == committed.sha256
    (tmp_path / "deepmd_water_subset/data_3/set.000/energy.npy").write_bytes(b"x")
    with pytest.raises(DatasetError, match="energy.npy: sha256 mismatch"):
        deepmd_water.load("subset", [tmp_path])


def _inputs(tmp_path, data):
    definition = get_task("mlearn_si")
    small = {k: v[:4] for k, v in data.splits.items()}
    model_task = TASK_TYPE.model_task(definition.spec, small["train"])
    write_inputs(tmp_path, model_task, definition.description, {}, {}, [], small, TASK_TYPE.encode_target)
    return small, read_inputs(tmp_path)


def test_inputs_hold_no_test_target_and_round_trip(tmp_path, si):
    small, inputs = _inputs(tmp_path, si)
    assert inputs.task.elements == ("Si",) and inputs.task.task_type == "potential"
    test_lines = (tmp_path / "inputs/test.jsonl").read_text().splitlines()
    assert len(test_lines) == 4
    assert all('"target"' not in line and '"energy"' not in line and '"forces"' not in line for line in test_lines)
    assert all(s.target is None for s in inputs.splits["test"])
    assert [s.info for s in inputs.splits["test"]] == [s.info for s in small["test"]]
    for original, read in zip(small["train"], inputs.splits["train"]):
        assert read.target["energy"] == original.target["energy"]
        assert np.array_equal(read.target["forces"], original.target["forces"])  # bit for bit


def _predictions(test, shift=0.0):
    return [{"energy": s.target["energy"] + shift, "forces": s.target["forces"] * 0.5} for s in test]


def test_output_round_trip_and_scoring_files(tmp_path, si):
    test = si.splits["test"][:5]
    spec = get_task("mlearn_si").spec
    blind = [type(s)(id=s.id, structure=s.structure, target=None, info=s.info) for s in test]
    TASK_TYPE.write_output(tmp_path, _predictions(test, 0.01), blind, spec, {})
    output = TASK_TYPE.read_output(tmp_path, test, spec)
    scored = TASK_TYPE.score(output, test, spec, ScoringContext(run_dir=tmp_path, dataset="mlearn_Si"))

    e_true = np.array([s.target["energy"] for s in test])
    f_true = np.concatenate([s.target["forces"] for s in test])
    n = [len(s.structure) for s in test]
    assert scored.metrics == pytest.approx(pm.potential_metrics(e_true, e_true + 0.01, f_true, 0.5 * f_true, n))
    assert scored.metrics["energy_MAE"] == pytest.approx(np.mean(10.0 / np.array(n)))  # 0.01 eV per cell, in meV/atom
    assert scored.metrics["force_cos"] == pytest.approx(1.0)  # halved forces point the same way
    config_types = {s.info["config_type"] for s in test}
    assert set(scored.details["per_config_type"]) == config_types

    import ase.io

    frames = ase.io.read(tmp_path / scored.files["predictions_extxyz"], index=":")
    assert [f.info["id"] for f in frames] == [s.id for s in test]
    assert [f.info["config_type"] for f in frames] == [s.info["config_type"] for s in test]
    for frame, sample in zip(frames, test):
        assert frame.info["ref_energy"] == pytest.approx(sample.target["energy"], abs=1e-8)
        assert frame.info["pred_energy"] == pytest.approx(sample.target["energy"] + 0.01, abs=1e-8)
        assert np.allclose(frame.arrays["ref_forces"], sample.target["forces"])
        assert np.allclose(frame.arrays["pred_forces"], 0.5 * sample.target["forces"])
        assert np.allclose(frame.positions, sample.structure.cart_coords)

    rows = list(csv.DictReader((tmp_path / scored.files["predictions"]).open()))
    assert [r["id"] for r in rows] == [s.id for s in test]
    sample, row = test[0], rows[0]
    assert int(row["n_atoms"]) == len(sample.structure)
    assert float(row["pred_energy_per_atom"]) - float(row["ref_energy_per_atom"]) == pytest.approx(0.01 / n[0])
    assert float(row["force_rmse"]) == pytest.approx(pm.force_rmse(sample.target["forces"], 0.5 * sample.target["forces"]))


def test_model_stage_refuses_bad_predictions_naming_the_sample(tmp_path, si):
    test, spec = si.splits["test"][:3], get_task("mlearn_si").spec
    good = _predictions(test)
    with pytest.raises(ValueError, match="2 predictions for 3"):
        TASK_TYPE.write_output(tmp_path, good[:2], test, spec, {})
    wrong_shape = good[:1] + [{"energy": 1.0, "forces": np.zeros((3, 3))}] + good[2:]
    with pytest.raises(ValueError, match=f"sample {test[1].id}.*forces of shape"):
        TASK_TYPE.write_output(tmp_path, wrong_shape, test, spec, {})
    nan_energy = good[:2] + [{"energy": float("nan"), "forces": good[2]["forces"]}]
    with pytest.raises(ValueError, match=f"sample {test[2].id}.*energy"):
        TASK_TYPE.write_output(tmp_path, nan_energy, test, spec, {})
    with pytest.raises(ValueError, match="missing key"):
        TASK_TYPE.write_output(tmp_path, [{"energy": 1.0}] * 3, test, spec, {})


def test_scoring_refuses_a_malformed_output_file(tmp_path, si):
    test, spec = si.splits["test"][:2], get_task("mlearn_si").spec
    path = tmp_path / "model_predictions.jsonl"

    def line(sample_id, energy=0.0, forces=None, n=None):
        n = n if n is not None else len(test[0].structure)
        return json.dumps({"id": sample_id, "energy": energy, "forces": forces or [[0.0] * 3] * n})

    a, b = test[0].id, test[1].id
    nb = len(test[1].structure)
    cases = {
        "missing": None,
        "not in the test split": "\n".join([line(a), line("Si-999", n=nb), line(b, n=nb)]),
        "appears twice": "\n".join([line(a), line(a), line(b, n=nb)]),
        "without a prediction": line(a),
        "forces of shape": "\n".join([line(a), line(b, n=nb + 1)]),
        "not JSON": "{oops\n",
        "nested deeper": json.dumps({"id": a, "energy": 0.0, "forces": [[[0.0]]]}),
    }
    for message, text in cases.items():
        if path.exists() or path.is_symlink():
            path.unlink()
        if text is not None:
            path.write_text(text + "\n")
        with pytest.raises(OutputError, match=message):
            TASK_TYPE.read_output(tmp_path, test, spec)
    path.unlink()
    path.write_text("\n".join([line(a, energy=1e400), line(b, n=nb)]))  # json reads 1e400 as inf
    with pytest.raises(OutputError, match="finite"):
        TASK_TYPE.read_output(tmp_path, test, spec)
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(OutputError, match="model_predictions.jsonl"):
        TASK_TYPE.read_output(tmp_path, test, spec)


def test_baseline_is_the_per_element_fit_with_zero_forces(si):
    train, test = si.splits["train"], si.splits["test"]
    spec = TASK_TYPE.model_task(get_task("mlearn_si").spec, train)
    baseline = TASK_TYPE.baseline(None, train, test, spec, None)
    # one element: the least-squares energy per atom is sum(E n) / sum(n^2)
    n_train = np.array([len(s.structure) for s in train])
    e_train = np.array([s.target["energy"] for s in train])
    mu = float(np.sum(e_train * n_train) / np.sum(n_train**2))
    assert baseline.details["reference_energies"]["Si"] == pytest.approx(mu)
    n = np.array([len(s.structure) for s in test])
    e_true = np.array([s.target["energy"] for s in test])
    f_true = np.concatenate([s.target["forces"] for s in test])
    assert baseline.metrics == pytest.approx(pm.potential_metrics(e_true, mu * n, f_true, np.zeros_like(f_true), n))
    assert baseline.metrics["force_cos"] == 0.0 and baseline.metrics["EFwT"] == 0.0
    assert "Si" in baseline.predictor and "zero forces" in baseline.predictor
    assert set(baseline.details["per_config_type"]) == {s.info["config_type"] for s in test}


def test_flags_name_zero_forces_and_constant_energies(si):
    test = si.splits["test"][:3]
    spec = TASK_TYPE.model_task(get_task("mlearn_si").spec, si.splits["train"])
    flat = [(-5.0 * len(s.structure), np.zeros((len(s.structure), 3))) for s in test]
    codes = [flag.code for flag in TASK_TYPE.flags(flat, test, spec, None)]
    assert codes == ["zero_forces", "constant_prediction"]
    varied = [(-5.0 * len(s.structure) + i, np.full((len(s.structure), 3), 0.1)) for i, s in enumerate(test)]
    assert TASK_TYPE.flags(varied, test, spec, None) == []
