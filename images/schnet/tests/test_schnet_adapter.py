"""SchNet adapter (schnetpack 2.0.4) on real mlearn data (Zuo et al. 2020, /work/shared/data/mlearn), in
SchNet's own environment: training streams losses on the validation set given, predictions have the
contract's shapes, forces are the negative energy gradient, the FLOP-counting module computes the same
energy as predict, per-element atom references work for two elements, bad input is named.

Small settings (16 features, 2 interactions, the smallest Surface cells, 1-2 epochs) keep this to
well under a minute on 2 CPU cores; the numbers are checks, not benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from schnet_adapter.adapter import HYPERPARAMETERS, SchNetAdapter  # noqa: I001  (applies the T_co shim first)
from tests.mlearn_samples import MLEARN, smallest
from runner.contract import EpochRecord, Sample, TaskSpec
from runner.profiling import count_flops, count_parameters

MODEL_DIR = Path(__file__).resolve().parents[1]
DATA = MLEARN
pytestmark = pytest.mark.skipif(not (DATA / "Si" / "training.json").is_file(),
                                reason=f"mlearn data not found under {DATA}")
SI = TaskSpec(name="mlearn_si", task_type="potential", target="energy_forces", unit="eV", elements=("Si",))


def _samples(element: str, n: int) -> list[Sample]:
    """The ``n`` smallest training configurations of ``element`` (:func:`tests.mlearn_samples.smallest`)."""
    return smallest(element, n)


def _hyperparameters(**overrides) -> dict:
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    hp = dict(manifest["hyperparameters"])
    hp.update(manifest["bench_hyperparameters"])
    hp.update(n_atom_basis=16, n_interactions=2, n_rbf=10, batch_size=4, epochs=2)
    hp.update(energy_offsets="mean")  # the paper default: the energy checks below subtract the mean only
    hp.update(overrides)
    return hp


def _blind(samples):
    return [Sample(s.id, s.structure, None, s.info) for s in samples]


def _rmse(values) -> float:
    return float(np.sqrt(np.mean(np.concatenate([np.ravel(v) for v in values]) ** 2)))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = _samples("Si", 10)
    train, val = data[:8], data[8:]
    records: list[EpochRecord] = []
    adapter = SchNetAdapter(SI, _hyperparameters(), "cpu", seed=0)
    adapter.fit(train, val, records.append)
    return adapter, train, val, records


def test_manifest_declares_every_hyperparameter():
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    assert set(manifest["hyperparameters"]) == set(HYPERPARAMETERS)
    assert set(manifest["hyperparameter_types"]) == set(HYPERPARAMETERS)
    assert set(manifest["bench_hyperparameters"]) <= set(HYPERPARAMETERS)


def test_losses_streamed_per_epoch_on_the_given_validation_set(trained):
    adapter, _, val, records = trained
    assert [r.epoch for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record.train_loss) and np.isfinite(record.val_loss) and record.lr > 0
    # the kept model is the best validated one (EMA weights), evaluated on exactly `val`
    best = min(records, key=lambda r: r.val_loss)
    predicted = adapter.predict(_blind(val))
    rmse_f = _rmse([p["forces"] - s.target["forces"] for p, s in zip(predicted, val)])
    rmse_e = _rmse([p["energy"] - s.target["energy"] for p, s in zip(predicted, val)])
    assert 1000 * rmse_f == pytest.approx(best.extra["val_rmse_f_meV_per_A"], rel=1e-3)
    assert rmse_e == pytest.approx(best.extra["val_rmse_energy_eV_per_structure"], rel=1e-2, abs=1e-3)


def test_predict_shapes_and_determinism(trained):
    adapter, _, _, _ = trained
    test = _samples("Si", 12)[10:]
    predicted = adapter.predict(_blind(test))
    assert len(predicted) == len(test)
    for p, s in zip(predicted, test):
        assert isinstance(p["energy"], float) and np.isfinite(p["energy"])
        assert p["forces"].shape == (len(s.structure), 3) and p["forces"].dtype == np.float64
    again = adapter.predict(_blind(test))
    # forces agree to float32 rounding only: the backward's index_add over neighbour pairs runs
    # multi-threaded on the CPU, so its summation order (the last bit) may change between calls
    for a, b in zip(predicted, again):
        assert a["energy"] == pytest.approx(b["energy"], rel=1e-9, abs=1e-5)
        np.testing.assert_allclose(a["forces"], b["forces"], rtol=0, atol=1e-5)
    e_rmse = np.sqrt(np.mean([((p["energy"] - s.target["energy"]) / len(s.structure)) ** 2
                              for p, s in zip(predicted, test)]))
    print(f"ad hoc (2 epochs, 8 cells): energy RMSE {1000 * e_rmse:.1f} meV/atom, force RMSE "
          f"{1000 * _rmse([p['forces'] - s.target['forces'] for p, s in zip(predicted, test)]):.1f} meV/Å")


def test_forces_are_minus_the_energy_gradient(trained):
    adapter, train, _, _ = trained
    sample = train[0]
    forces = adapter.predict(_blind([sample]))[0]["forces"]
    step = 1e-2  # Å; float32 network: central differences of total energies in eV
    rng = np.random.default_rng(0)
    for atom, axis in zip(rng.choice(len(sample.structure), 3, replace=False), (0, 1, 2)):
        energies = []
        for sign in (+1, -1):
            moved = sample.structure.copy()
            displacement = np.zeros(3)
            displacement[axis] = sign * step
            moved.translate_sites([int(atom)], displacement, frac_coords=False, to_unit_cell=False)
            energies.append(adapter.predict(_blind([Sample("moved", moved, None)]))[0]["energy"])
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert numeric == pytest.approx(forces[atom, axis], abs=2e-2 + 2e-2 * abs(forces[atom, axis]))


def test_network_parameters_flops_and_its_energy(trained):
    adapter, train, _, _ = trained
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == sum(p.numel() for p in adapter.model.parameters()) > 0
    inputs = adapter.forward_inputs(train[:2])
    flops = count_flops(adapter.network, inputs, 2, len(train))
    assert flops["forward_per_sample"] > 0
    # the counted forward is the energy predict returns, less the AddOffsets mean per atom
    with torch.no_grad():
        raw = adapter.network(*inputs).double().numpy()
    mean = float(adapter.model.postprocessors[1].mean)
    predicted = [p["energy"] for p in adapter.predict(_blind(train[:2]))]
    expected = [e - mean * len(s.structure) for e, s in zip(predicted, train[:2])]
    assert raw == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_atomrefs_for_two_elements_without_validation():
    task = TaskSpec(name="mlearn_si_ge", task_type="potential", target="energy_forces", unit="eV", elements=("Si", "Ge"))
    data = _samples("Si", 4) + _samples("Ge", 4)
    records: list[EpochRecord] = []
    adapter = SchNetAdapter(task, _hyperparameters(energy_offsets="atomrefs", epochs=1), "cpu", seed=0)
    adapter.fit(data, [], records.append)
    assert len(records) == 1 and records[0].val_loss is None and np.isfinite(records[0].train_loss)
    atomref = adapter.model.postprocessors[1].atomref.numpy()
    counts = np.array([[sum(site.specie.Z == z for site in s.structure) for z in (14, 32)] for s in data], dtype=float)
    reference, *_ = np.linalg.lstsq(counts, np.array([s.target["energy"] for s in data]), rcond=None)
    assert atomref[[14, 32]] == pytest.approx(reference, rel=1e-6)
    assert np.count_nonzero(atomref) == 2
    predicted = adapter.predict(_blind(data[:2]))
    assert [p["forces"].shape for p in predicted] == [(len(s.structure), 3) for s in data[:2]]


def test_bad_input_is_named(trained):
    with pytest.raises(ValueError, match="not supported"):
        SchNetAdapter(TaskSpec("x", "regression", "y", "eV"), _hyperparameters(), "cpu", 0)
    with pytest.raises(ValueError, match="missing hyperparameter"):
        SchNetAdapter(SI, {k: v for k, v in _hyperparameters().items() if k != "cutoff"}, "cpu", 0)
    adapter = SchNetAdapter(SI, _hyperparameters(), "cpu", 0)
    bad = _samples("Si", 1)[0]
    with pytest.raises(ValueError, match=bad.id):
        adapter.fit([Sample(bad.id, bad.structure, {"energy": 1.0, "forces": np.zeros((2, 3))})], [], lambda r: None)
    fitted = trained[0]
    germanium = _samples("Ge", 1)[0]
    with pytest.raises(ValueError, match=germanium.id):
        fitted.predict(_blind([germanium]))
