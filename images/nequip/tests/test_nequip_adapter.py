"""NequIP adapter on real mlearn data (Zuo et al. 2020, /work/shared/data/mlearn), in NequIP's own
environment: training streams losses, predictions have the contract's shapes, forces are the
negative energy gradient, the validation set given is the one evaluated, and the energy network
counts parameters and FLOPs.

Small settings (4 features, 2 layers, the smallest Surface cells, 2 epochs) keep this well under a
minute and a half on 2 CPU cores; the numbers are checks, not benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nequip_adapter.adapter import HYPERPARAMETERS, NequipAdapter
from runner.contract import EpochRecord, Sample, TaskSpec
from runner.profiling import count_flops, count_parameters
from tests.mlearn_samples import MLEARN, blind, smallest

MODEL_DIR = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (MLEARN / "Si" / "training.json").is_file(),
                                reason=f"mlearn data not found under {MLEARN}")
SI = TaskSpec(name="mlearn_si", task_type="potential", target="energy_forces", unit="eV", elements=("Si",))


def _hyperparameters(**overrides) -> dict:
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    hp = dict(manifest["hyperparameters"])
    hp.update(manifest["bench_hyperparameters"])
    hp.update(num_features=4, num_layers=2, radial_mlp_width=16, batch_size=2, valid_batch_size=4, epochs=2)
    hp.update(overrides)
    return hp


@pytest.fixture(scope="module")
def trained():
    data = smallest("Si", 10)
    train, val = data[:8], data[8:]
    records: list[EpochRecord] = []
    adapter = NequipAdapter(SI, _hyperparameters(), "cpu", seed=0)
    adapter.fit(train, val, records.append)
    return adapter, train, val, records


def test_manifest_declares_every_hyperparameter():
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    assert set(manifest["hyperparameters"]) == set(HYPERPARAMETERS)
    assert set(manifest["hyperparameter_types"]) == set(HYPERPARAMETERS)


def test_losses_streamed_per_epoch_on_the_given_validation_set(trained):
    adapter, train, val, records = trained
    assert [r.epoch for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record.train_loss) and np.isfinite(record.val_loss)
        assert record.extra["val_rmse_f_meV_per_A"] > 0
    # the reported validation errors of the best epoch are those of the kept model on `val`
    best = min(records, key=lambda r: r.val_loss)
    predicted = adapter.predict(blind(val))
    rmse_f = np.sqrt(np.mean(np.concatenate([(p["forces"] - s.target["forces"]).ravel()
                                             for p, s in zip(predicted, val)]) ** 2))
    assert rmse_f * 1000 == pytest.approx(best.extra["val_rmse_f_meV_per_A"], rel=1e-3)


def test_predict_shapes_and_errors(trained):
    adapter, train, val, _ = trained
    test = smallest("Si", 12)[10:]
    predicted = adapter.predict(blind(test))
    assert len(predicted) == len(test)
    for p, s in zip(predicted, test):
        assert isinstance(p["energy"], float) and np.isfinite(p["energy"])
        assert p["forces"].shape == (len(s.structure), 3) and p["forces"].dtype == np.float64
    # repeatable up to float32 summation order (the edge sums are multi-threaded scatters)
    a, b = adapter.predict(blind(test)), adapter.predict(blind(test))
    for x, y in zip(a, b):
        assert x["energy"] == pytest.approx(y["energy"], rel=1e-6)
        np.testing.assert_allclose(x["forces"], y["forces"], rtol=1e-5, atol=1e-6)
    # one batch of several cells gives what each cell gives alone
    alone = [adapter.predict(blind([s]))[0] for s in test]
    for x, y in zip(predicted, alone):
        assert x["energy"] == pytest.approx(y["energy"], rel=1e-5)
        np.testing.assert_allclose(x["forces"], y["forces"], rtol=1e-4, atol=1e-5)


def test_forces_are_minus_the_energy_gradient(trained):
    adapter, train, _, _ = trained
    sample = train[0]
    forces = adapter.predict(blind([sample]))[0]["forces"]
    step = 1e-3  # Å; float32 model: central differences of total energies in eV
    rng = np.random.default_rng(0)
    for atom, axis in zip(rng.choice(len(sample.structure), 3, replace=False), (0, 1, 2)):
        energies = []
        for sign in (+1, -1):
            moved = sample.structure.copy()
            displacement = np.zeros(3)
            displacement[axis] = sign * step
            moved.translate_sites([int(atom)], displacement, frac_coords=False, to_unit_cell=False)
            energies.append(adapter.predict(blind([Sample("moved", moved, None)]))[0]["energy"])
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert numeric == pytest.approx(forces[atom, axis], abs=2e-2 + 2e-2 * abs(forces[atom, axis]))


def test_network_parameters_and_flops(trained):
    adapter, train, _, _ = trained
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == sum(p.numel() for p in adapter.model.parameters()) > 0
    inputs = adapter.forward_inputs(train[:2])
    assert all(isinstance(t, torch.Tensor) for t in inputs)
    energies = adapter.network(*inputs)
    expected = [p["energy"] for p in adapter.predict(blind(train[:2]))]
    np.testing.assert_allclose(energies.detach().double().numpy(), expected, rtol=1e-5)
    flops = count_flops(adapter.network, inputs, 2, len(train))
    assert flops["forward_per_sample"] > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not supported"):
        NequipAdapter(TaskSpec("x", "regression", "y", "eV"), _hyperparameters(), "cpu", 0)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        NequipAdapter(SI, _hyperparameters(bogus=1), "cpu", 0)
    adapter = NequipAdapter(SI, _hyperparameters(), "cpu", 0)
    bad = smallest("Si", 1)[0]
    with pytest.raises(ValueError, match=bad.id):
        adapter.fit([Sample(bad.id, bad.structure, {"energy": 1.0, "forces": np.zeros((2, 3))})], [], lambda r: None)
