"""Allegro adapter on real mlearn data (Zuo et al. 2020, /work/shared/data/mlearn), in Allegro's own
environment: the model section is Allegro's, training streams losses on the given validation set,
predictions have the contract's shapes, forces are the negative energy gradient, and the energy
network counts parameters and FLOPs. The shared framework driver is tested in depth by NequIP's
tests (images/nequip/tests); these check that it drives Allegro's builder.

Small settings (8 scalar / 4 tensor features, 1 layer, the smallest Surface cells, 2 epochs); the
numbers are checks, not benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from allegro_adapter.adapter import HYPERPARAMETERS, AllegroAdapter
from runner.contract import EpochRecord, Sample, TaskSpec
from runner.profiling import count_flops, count_parameters
from tests.mlearn_samples import MLEARN, blind, smallest

MODEL_DIR = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (MLEARN / "Si" / "training.json").is_file(),
                                reason=f"mlearn data not found under {MLEARN}")
SI = TaskSpec(name="mlearn_si", task_type="potential", target="energy_forces", unit="eV", elements=("Si",))


@pytest.fixture(scope="module")
def trained():
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    hp = {**manifest["hyperparameters"], **manifest["bench_hyperparameters"]}
    hp.update(num_scalar_features=8, num_tensor_features=4, num_layers=1, batch_size=2, valid_batch_size=4, epochs=2)
    data = smallest("Si", 12)
    records: list[EpochRecord] = []
    adapter = AllegroAdapter(SI, hp, "cpu", seed=0)
    adapter.fit(data[:8], data[8:10], records.append)
    return adapter, data[:8], data[8:10], data[10:], records


def test_manifest_declares_every_hyperparameter():
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    assert set(manifest["hyperparameters"]) == set(HYPERPARAMETERS)
    assert set(manifest["hyperparameter_types"]) == set(HYPERPARAMETERS)


def test_allegro_model_is_built_from_its_tutorial_section(trained):
    adapter = trained[0]
    section = adapter.model_section()
    assert section["_target_"] == "allegro.model.AllegroModel"
    assert section["radial_chemical_embed"] == {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8,
                                                "bessel_trainable": False, "polynomial_cutoff_p": 6}
    assert section["allegro_mlp_hidden_layers_width"] == section["radial_chemical_embed_dim"] == 8
    assert any("allegro" in type(m).__module__ for m in adapter.model.modules())


def test_losses_streamed_on_the_given_validation_set(trained):
    adapter, train, val, _, records = trained
    assert [r.epoch for r in records] == [1, 2]
    assert all(np.isfinite(r.train_loss) and np.isfinite(r.val_loss) for r in records)
    best = min(records, key=lambda r: r.val_loss)
    predicted = adapter.predict(blind(val))
    rmse_f = np.sqrt(np.mean(np.concatenate([(p["forces"] - s.target["forces"]).ravel()
                                             for p, s in zip(predicted, val)]) ** 2))
    assert rmse_f * 1000 == pytest.approx(best.extra["val_rmse_f_meV_per_A"], rel=1e-3)


def test_predictions_and_forces(trained):
    adapter, train, _, test, _ = trained
    predicted = adapter.predict(blind(test))
    assert [p["forces"].shape for p in predicted] == [(len(s.structure), 3) for s in test]
    assert all(isinstance(p["energy"], float) and p["forces"].dtype == np.float64 for p in predicted)
    sample, step, atom = test[0], 1e-3, 0
    energies = []
    for sign in (+1, -1):
        moved = sample.structure.copy()
        moved.translate_sites([atom], [sign * step, 0, 0], frac_coords=False, to_unit_cell=False)
        energies.append(adapter.predict(blind([Sample("moved", moved, None)]))[0]["energy"])
    numeric = -(energies[0] - energies[1]) / (2 * step)
    assert numeric == pytest.approx(predicted[0]["forces"][atom, 0], abs=2e-2 + 2e-2 * abs(numeric))


def test_network_parameters_and_flops(trained):
    adapter, train, _, _, _ = trained
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == sum(p.numel() for p in adapter.model.parameters()) > 0
    inputs = adapter.forward_inputs(train[:2])
    expected = [p["energy"] for p in adapter.predict(blind(train[:2]))]
    np.testing.assert_allclose(adapter.network(*inputs).detach().double().numpy(), expected, rtol=1e-5)
    assert all(isinstance(t, torch.Tensor) for t in inputs)
    assert count_flops(adapter.network, inputs, 2, len(train))["forward_per_sample"] > 0
