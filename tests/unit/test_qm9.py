"""QM9 molecules (runner/datasets/qm9.py) on the embedded real subset: the split, the unit, what
reaches the model (species and positions only), the Molecule round trip through the run's inputs,
clear errors for bad files, and the per-element linear baseline of an extensive target."""

import json
import shutil

import numpy as np
import pytest
from ase import units

from runner.datasets import DatasetError, qm9
from runner.inputs import read_inputs, write_inputs
from runner.tasks import get_task
from runner.tasks.regression import TASK_TYPE, composition_baseline
from tests.conftest import REPO_ROOT

ROOTS = [REPO_ROOT / "data"]
XYZ = REPO_ROOT / "data" / "qm9_subset" / "qm9_reduced_100.xyz"


def test_u0_in_ev_on_a_fixed_test_split_with_a_seeded_validation_split():
    first = qm9.read_molecules(XYZ)[0]
    assert first.id == "qm9-1" and first.structure.formula == "H4 C1"
    assert first.target == pytest.approx(-40.47893 * units.Hartree)  # QM9 gdb_1, CH4: U0 = -40.47893 Ha
    assert first.structure.properties == {} and not hasattr(first.structure, "lattice")
    a, b = (get_task("qm9_u0").load("subset", ROOTS, None, seed) for seed in (0, 1))
    assert a.sizes() == {"train": 72, "val": 8, "test": 20}
    assert [s.id for s in a.splits["test"]] == [s.id for s in b.splits["test"]]
    assert {s.id for s in a.splits["val"]} != {s.id for s in b.splits["val"]}
    ids = [s.id for split in a.splits.values() for s in split]
    assert len(ids) == len(set(ids)) == 100
    assert a.sha256 == {"qm9_reduced_100.xyz": "d6f0e6d80a9152093d438fe980103079301be76da522c9316a0052e5153e59c7"}
    assert qm9.split_sizes(133_885) == (13_885, 10_000)  # DimeNet's 110,000 / 10,000 / rest


def test_molecules_reach_the_model_without_targets_and_read_back_as_molecules(tmp_path):
    from pymatgen.core import Molecule

    task = get_task("qm9_u0")
    data = task.load("subset", ROOTS, {"train": 5, "val": 2, "test": 3}, 0)
    write_inputs(tmp_path, task.spec, "qm9", {"name": data.name}, {}, [], data.splits, TASK_TYPE.encode_target)
    text = (tmp_path / "inputs" / "test.jsonl").read_text()
    assert "U0" not in text and "target" not in text and "-40.4" not in text
    inputs = read_inputs(tmp_path, TASK_TYPE.decode_target)
    assert inputs.task.periodic is False and inputs.task.extensive is True
    train, test = inputs.splits["train"], inputs.splits["test"]
    assert all(isinstance(s.structure, Molecule) for s in train + test) and all(s.target is None for s in test)
    assert train[0].structure == data.splits["train"][0].structure
    assert train[0].target == data.splits["train"][0].target


def test_bad_files_are_named(tmp_path):
    folder = tmp_path / "qm9_subset"
    folder.mkdir()
    shutil.copy(XYZ, folder / XYZ.name)
    shutil.copy(XYZ.parent / "SHA256SUMS", folder / "SHA256SUMS")
    with open(folder / XYZ.name, "a") as handle:
        handle.write("3\nnot a property line\nC 0 0\n")
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        qm9.load("subset", [tmp_path])
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(DatasetError, match="qm9_reduced_100.xyz: cannot be read as extended XYZ"):
        qm9.load("subset", [tmp_path])
    lines = XYZ.read_text().splitlines(keepends=True)
    (folder / XYZ.name).write_text("".join(lines[:2]).replace(" U0=-40.47893", "") + "".join(lines[2:7]))
    with pytest.raises(DatasetError, match=r"molecule 1 \(qm9-1\): no 'U0'"):
        qm9.load("subset", [tmp_path])
    with pytest.raises(DatasetError, match="not found.*MATEVAL_DATA"):
        qm9.load("full", [tmp_path])


def test_the_baseline_of_an_extensive_target_is_the_per_element_fit():
    data = get_task("qm9_u0").load("subset", ROOTS, None, 0)
    references, predicted = composition_baseline(data.splits["train"], data.splits["test"])
    assert list(references) == ["H", "C", "N", "O"]
    truth = np.array([s.target for s in data.splits["test"]])
    mean_error = np.abs(truth - np.mean([s.target for s in data.splits["train"]])).mean()
    fit_error = np.abs(truth - predicted).mean()
    assert fit_error < 0.01 * mean_error  # U0 is almost additive in the atoms; the training mean is not
    baseline = TASK_TYPE.baseline(None, data.splits["train"], data.splits["test"], get_task("qm9_u0").spec, None)
    assert baseline.metrics["MAE"] == pytest.approx(fit_error)
    assert "per-element linear fit of U0" in baseline.predictor and json.dumps(baseline.details)
