"""MACE adapter on real mlearn data (Zuo et al. 2020, /work/shared/data/mlearn), in MACE's own
environment: training streams losses, predictions have the contract's shapes, forces are the
negative energy gradient, the validation set given is the one evaluated, and LoRA fine-tuning from a
model mateval trained itself runs with fewer trainable than total parameters.

Small settings (8 channels, correlation 2, the smallest Surface cells, 1-2 epochs) keep this to a
few minutes on 2 shared CPU cores; the numbers are checks, not benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import mace  # noqa: F401  (before e3nn, see the README)
import torch

from mace_adapter.adapter import HYPERPARAMETERS, MaceAdapter
from tests.mlearn_samples import MLEARN, smallest
from runner.contract import EpochRecord, Sample, TaskSpec
from runner.profiling import count_parameters, count_flops

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
    hp.update(num_channels=8, correlation=2, radial_MLP="[16, 16]", batch_size=2, valid_batch_size=4, epochs=2)
    hp.update(overrides)
    return hp


def _blind(samples):
    return [Sample(s.id, s.structure, None, s.info) for s in samples]


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = _samples("Si", 10)
    train, val = data[:8], data[8:]
    records: list[EpochRecord] = []
    adapter = MaceAdapter(SI, _hyperparameters(), "cpu", seed=0)
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
    # the last reported validation errors are those of the kept (best-validation) model on `val`
    best = min(records, key=lambda r: r.val_loss)
    predicted = adapter.predict(_blind(val))
    rmse_f = np.sqrt(np.mean(np.concatenate([(p["forces"] - s.target["forces"]).ravel()
                                             for p, s in zip(predicted, val)]) ** 2))
    assert rmse_f * 1000 == pytest.approx(best.extra["val_rmse_f_meV_per_A"], rel=1e-3)


def test_predict_shapes_and_errors(trained):
    adapter, train, val, _ = trained
    test = _samples("Si", 12)[10:]
    predicted = adapter.predict(_blind(test))
    assert len(predicted) == len(test)
    for p, s in zip(predicted, test):
        assert isinstance(p["energy"], float) and np.isfinite(p["energy"])
        assert p["forces"].shape == (len(s.structure), 3) and p["forces"].dtype == np.float64
    e_rmse = np.sqrt(np.mean([((p["energy"] - s.target["energy"]) / len(s.structure)) ** 2
                              for p, s in zip(predicted, test)]))
    f_rmse = np.sqrt(np.mean(np.concatenate([(p["forces"] - s.target["forces"]).ravel()
                                             for p, s in zip(predicted, test)]) ** 2))
    print(f"ad hoc (2 epochs, 8 training cells): energy RMSE {1000 * e_rmse:.1f} meV/atom, "
          f"force RMSE {1000 * f_rmse:.1f} meV/Å")
    assert predict_is_deterministic(adapter, test)


def predict_is_deterministic(adapter, samples) -> bool:
    a, b = adapter.predict(_blind(samples)), adapter.predict(_blind(samples))
    return all(x["energy"] == y["energy"] and np.array_equal(x["forces"], y["forces"]) for x, y in zip(a, b))


def test_forces_are_minus_the_energy_gradient(trained):
    adapter, train, _, _ = trained
    sample = train[0]
    forces = adapter.predict(_blind([sample]))[0]["forces"]
    step = 1e-3  # Å; float32 model: central differences of total energies in eV
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


def test_network_parameters_and_flops(trained):
    adapter, train, _, _ = trained
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == sum(p.numel() for p in adapter.model.parameters()) > 0
    flops = count_flops(adapter.network, adapter.forward_inputs(train[:2]), 2, len(train))
    assert flops["forward_per_sample"] > 0


def test_lora_finetune_from_a_locally_trained_model(tmp_path):
    # "Foundation": mostly Ge, plus two Si cells so its element table holds Si (as MACE-MP's holds
    # every element; load_foundations_elements copies the weights of the target's elements).
    base_task = TaskSpec(name="mlearn_ge_si", task_type="potential", target="energy_forces", unit="eV",
                         elements=("Si", "Ge"))
    base_data = _samples("Ge", 6) + _samples("Si", 14)[12:]
    base = MaceAdapter(base_task, _hyperparameters(epochs=1), "cpu", seed=0)
    base.fit(base_data, [], lambda record: None)
    path = base.save_model(tmp_path / "ge_base.model")
    base_total, _ = count_parameters(base.network)

    data = _samples("Si", 8)
    records: list[EpochRecord] = []
    tuned = MaceAdapter(SI, _hyperparameters(foundation_model=str(path), finetune_mode="lora", lora_rank=2,
                                             epochs=1), "cpu", seed=0)
    tuned.fit(data[:6], data[6:], records.append)
    total, trainable = count_parameters(tuned.network)
    assert 0 < trainable < total
    assert all(("lora_A" in name or "lora_B" in name) == p.requires_grad for name, p in tuned.model.named_parameters())
    assert len(records) == 1 and np.isfinite(records[0].train_loss)
    predicted = tuned.predict(_blind(data[6:]))
    assert [p["forces"].shape for p in predicted] == [(len(s.structure), 3) for s in data[6:]]
    print(f"LoRA fine-tune: {trainable} trainable of {total} parameters (base model {base_total})")

    full = MaceAdapter(SI, _hyperparameters(foundation_model=str(path), finetune_mode="full", epochs=1), "cpu", seed=0)
    full.fit(data[:6], data[6:], lambda record: None)
    total_full, trainable_full = count_parameters(full.network)
    assert trainable_full == total_full


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not supported"):
        MaceAdapter(TaskSpec("x", "regression", "y", "eV"), _hyperparameters(), "cpu", 0)
    with pytest.raises(ValueError, match="foundation_model"):
        MaceAdapter(SI, _hyperparameters(finetune_mode="lora"), "cpu", 0)
    adapter = MaceAdapter(SI, _hyperparameters(), "cpu", 0)
    bad = _samples("Si", 1)[0]
    with pytest.raises(ValueError, match=bad.id):
        adapter.fit([Sample(bad.id, bad.structure, {"energy": 1.0, "forces": np.zeros((2, 3))})], [], lambda r: None)
