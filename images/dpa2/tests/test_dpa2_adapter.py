"""DPA-2 adapter on real mlearn data (Zuo et al. 2020, /work/shared/data/mlearn), in DPA-2's own
environment: deepmd-kit trains in a subprocess without its compiled op library, the losses of
``lcurve.out`` reach ``on_epoch_end`` once per epoch, the validation systems are exactly the given
validation samples, predictions have the contract's shapes, forces are the negative energy
gradient, and the network and FLOP counts come from the trained deepmd module.

Tiny settings (one repformer layer, narrow nets, the smallest Surface cells, 2 epochs) keep this
to well under a minute of CPU time; the numbers are checks, not benchmarks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import dpa2_adapter.pure  # noqa: F401  (before deepmd.pt, see the README)
import torch

from dpa2_adapter.adapter import HYPERPARAMETERS, Dpa2Adapter, epoch_records, read_lcurve, write_systems
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
    hp.update(repformer_nlayers=1, g1_dim=16, g2_dim=8, attn1_hidden=16, attn2_hidden=8, repinit_neuron="[4, 8, 16]",
              repinit_axis_neuron=4, fitting_neuron="[16, 16]", repinit_nsel=40, repformer_nsel=16,
              three_body_sel=16, precision="float64", epochs=2)
    hp.update(overrides)
    return hp


def _blind(samples):
    return [Sample(s.id, s.structure, None, s.info) for s in samples]


@pytest.fixture(scope="module")
def trained():
    data = _samples("Si", 10)
    train, val = data[:6], data[6:8]
    records: list[EpochRecord] = []
    adapter = Dpa2Adapter(SI, _hyperparameters(), "cpu", seed=0)
    adapter.fit(train, val, records.append)
    return adapter, train, val, records, data[8:]


def test_manifest_declares_every_hyperparameter():
    manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
    assert set(manifest["hyperparameters"]) == set(HYPERPARAMETERS)
    assert set(manifest["hyperparameter_types"]) == set(HYPERPARAMETERS)


def test_compiled_op_library_is_not_loaded(trained):
    import deepmd.pt

    assert deepmd.pt.ENABLE_CUSTOMIZED_OP is False
    assert not any("deepmd_op_pt" in str(path) for path in torch.ops.loaded_libraries)
    assert "deepmd.pt" in sys.modules  # the adapter's inference did import deepmd's PyTorch backend


def test_systems_group_frames_by_type_sequence(tmp_path):
    data = _samples("Si", 6)
    folders = write_systems(data, tmp_path, ["Si"])
    sizes = sorted({len(s.structure) for s in data})
    assert [int(f.name.split("-")[-1].removesuffix("atoms")) for f in folders] == sizes
    energies = sorted(float(e) for f in folders for e in np.load(f / "set.000" / "energy.npy"))
    assert energies == sorted(s.target["energy"] for s in data)
    for folder in folders:
        n = len((folder / "type.raw").read_text().split())
        frames = np.load(folder / "set.000" / "energy.npy").shape[0]
        assert np.load(folder / "set.000" / "coord.npy").shape == (frames, 3 * n)
        assert np.load(folder / "set.000" / "force.npy").shape == (frames, 3 * n)
        assert np.load(folder / "set.000" / "box.npy").shape == (frames, 9)
        assert (folder / "type_map.raw").read_text().split() == ["Si"]


def test_losses_streamed_per_epoch_on_the_given_validation_set(trained):
    adapter, train, val, records, _ = trained
    assert [r.epoch for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record.train_loss) and np.isfinite(record.val_loss)
        assert record.extra["val_rmse_f_meV_per_A"] > 0 and record.extra["train_rmse_e_per_atom_meV"] > 0
    # the records are exactly the epoch-ending lines of deepmd's own learning curve
    names, rows = read_lcurve(adapter.workdir / "lcurve.out")
    assert epoch_records(names, rows, 6) == records and rows[-1][0] == 12
    # deepmd validated on systems holding exactly the validation samples handed to fit()
    config = json.loads((adapter.workdir / "input.json").read_text())
    systems = [Path(p) for p in config["training"]["validation_data"]["systems"]]
    energies = sorted(float(e) for p in systems for e in np.load(p / "set.000" / "energy.npy"))
    assert energies == sorted(s.target["energy"] for s in val)
    trained_on = [Path(p) for p in config["training"]["training_data"]["systems"]]
    assert sum(np.load(p / "set.000" / "energy.npy").shape[0] for p in trained_on) == len(train)


def test_predict_shapes_and_errors(trained):
    adapter, _, _, _, test = trained
    predicted = adapter.predict(_blind(test))
    assert len(predicted) == len(test)
    for p, s in zip(predicted, test):
        assert isinstance(p["energy"], float) and np.isfinite(p["energy"])
        assert p["forces"].shape == (len(s.structure), 3) and p["forces"].dtype == np.float64
    e_rmse = np.sqrt(np.mean([((p["energy"] - s.target["energy"]) / len(s.structure)) ** 2
                              for p, s in zip(predicted, test)]))
    f_rmse = np.sqrt(np.mean(np.concatenate([(p["forces"] - s.target["forces"]).ravel()
                                             for p, s in zip(predicted, test)]) ** 2))
    # bench settings: deepmd's change-bias was applied after training, on the training systems
    assert adapter.checkpoint.name == "model.ckpt.bias.pt"
    print(f"ad hoc (2 epochs, 6 training cells): energy RMSE {1000 * e_rmse:.1f} meV/atom, "
          f"force RMSE {1000 * f_rmse:.1f} meV/Å")
    again = adapter.predict(_blind(test))  # the same up to the order of floating-point sums
    for x, y in zip(predicted, again):
        assert x["energy"] == pytest.approx(y["energy"], rel=1e-12)
        np.testing.assert_allclose(x["forces"], y["forces"], rtol=1e-9, atol=1e-12)


def test_forces_are_minus_the_energy_gradient(trained):
    adapter, train, _, _, _ = trained
    sample = train[0]
    forces = adapter.predict(_blind([sample]))[0]["forces"]
    step = 1e-4  # Å; float64 model
    rng = np.random.default_rng(0)
    for atom, axis in zip(rng.choice(len(sample.structure), 3, replace=False), (0, 1, 2)):
        energies = []
        for sign in (+1, -1):
            moved = sample.structure.copy()
            displacement = np.zeros(3)
            displacement[axis] = sign * step
            moved.translate_sites([int(atom)], displacement, frac_coords=False, to_unit_cell=False)
            energies.append(adapter.predict([Sample("moved", moved, None)])[0]["energy"])
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert numeric == pytest.approx(forces[atom, axis], abs=1e-4 + 1e-3 * abs(forces[atom, axis]))


def test_network_parameters_and_flops(trained):
    adapter, train, _, _, _ = trained
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == sum(p.numel() for p in adapter.energy_model.parameters()) > 0
    inputs = adapter.forward_inputs(train[:2])
    assert len(inputs) == 8 and all(isinstance(t, torch.Tensor) for t in inputs)
    # the network's energies are those deepmd predicts
    with torch.no_grad():
        energies = adapter.network(*inputs).numpy()
    predicted = [p["energy"] for p in adapter.predict(_blind(train[:2]))]
    np.testing.assert_allclose(energies, predicted, rtol=1e-10)
    flops = count_flops(adapter.network, inputs, 2, len(train))
    assert flops["forward_per_sample"] > 0


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="not supported"):
        Dpa2Adapter(TaskSpec("x", "regression", "y", "eV"), _hyperparameters(), "cpu", 0)
    with pytest.raises(ValueError, match="fitting_neuron"):
        Dpa2Adapter(SI, _hyperparameters(fitting_neuron="240 240"), "cpu", 0)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        Dpa2Adapter(SI, _hyperparameters(numb_steps=5), "cpu", 0)
    bad = _samples("Si", 1)[0]
    with pytest.raises(ValueError, match=bad.id):
        write_systems([Sample(bad.id, bad.structure, {"energy": 1.0, "forces": np.zeros((2, 3))})], tmp_path, ["Si"])
    with pytest.raises(ValueError, match=bad.id):
        write_systems([bad], tmp_path / "ge", ["Ge"])
