"""SchNet (schnetpack 2.0.4) on molecules: QM9's U0 (eV) of the embedded real QM9 molecules
(data/qm9_subset), non-periodic inputs, one Atomwise output and no forces; crystal regression and
intensive properties are refused. Small settings; the numbers are checks, not benchmarks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from schnet_adapter.adapter import SchNetAdapter  # noqa: I001  (applies the T_co shim first)
from runner.datasets import qm9
from runner.profiling import count_parameters
from runner.tasks import get_task

MODEL_DIR = Path(__file__).resolve().parents[1]
XYZ = MODEL_DIR.parents[1] / "data" / "qm9_subset" / "qm9_reduced_100.xyz"
TASK = get_task("qm9_u0").spec


def _hyperparameters() -> dict:
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    return {**manifest["hyperparameters"], **manifest["bench_hyperparameters"],
            "n_atom_basis": 16, "n_interactions": 2, "n_rbf": 10, "batch_size": 8, "epochs": 2}


@pytest.fixture(scope="module")
def trained():
    molecules = qm9.read_molecules(XYZ)
    adapter = SchNetAdapter(TASK, _hyperparameters(), "cpu", seed=0)
    records = []
    adapter.fit(molecules[:32], molecules[32:36], records.append)
    return adapter, molecules, records


def test_u0_of_molecules_is_learnt_from_atom_references(trained):
    adapter, molecules, records = trained
    assert [r.epoch for r in records] == [1, 2] and all(np.isfinite(r.val_loss) for r in records)
    assert records[0].loss_name == "MSE of U0 (eV^2)"
    test = molecules[60:70]
    predicted = adapter.predict([dataclasses.replace(s, target=None) for s in test])
    assert isinstance(predicted, np.ndarray) and predicted.shape == (10,) and predicted.dtype == np.float64
    truth = np.array([s.target for s in test])
    assert np.abs(predicted - truth).max() < 20.0  # U0 is -1,100 to -7,700 eV; the atom references carry it
    assert "forces" not in adapter.model(next(adapter._batches(test[:2], "probe")))
    assert count_parameters(adapter.network)[0] > 1000


def test_unsupported_tasks_are_refused():
    for task in (get_task("mp20_formation_energy").spec, dataclasses.replace(TASK, extensive=False)):
        with pytest.raises(ValueError, match="not supported by SchNet here"):
            SchNetAdapter(task, _hyperparameters(), "cpu", seed=0)


def test_a_non_numeric_target_is_named(trained):
    adapter, molecules, _ = trained
    with pytest.raises(ValueError, match="qm9-1.*must be a number"):
        SchNetAdapter(TASK, _hyperparameters(), "cpu", seed=0).fit(
            [dataclasses.replace(molecules[0], target="U0")], [], lambda record: None)
