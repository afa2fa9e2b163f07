"""Roost adapter (aviary-models 1.2.1) on real MP-20 crystals (the embedded
``data/mp_20_biternary_subset``), in Roost's own environment: training streams one record per
epoch, predictions have the contract's shape and depend on the composition alone (the paper's
premise), bad samples are errors naming them, parameters and FLOPs are counted on the aviary
module, and the saved model reloads with aviary's own ``initialize_model``.

Small settings (16 training crystals, 3 epochs) keep this to seconds; the numbers are checks, not
benchmarks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from aviary.roost.model import Roost
from aviary.utils import initialize_model

from roost_adapter.adapter import RoostAdapter
from runner.contract import EpochRecord, Sample
from runner.datasets import cdvae
from runner.manifest import load_manifest
from runner.profiling import count_flops, count_parameters
from runner.tasks import TASKS

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = MODEL_DIR.parents[1]
EPOCHS = 3


def _hyperparameters(**overrides) -> dict:
    hp, _ = load_manifest(MODEL_DIR).hyperparameters("bench", {"epochs": EPOCHS, "batch_size": 8, **overrides})
    return hp


def _mp20(task: str, n_train: int = 16, n_val: int = 4, n_test: int = 6) -> dict[str, list[Sample]]:
    definition = TASKS[task]
    loaded = cdvae.load("mp_20_biternary", "subset", [REPO_ROOT / "data"], definition.label,
                        max_samples={"train": n_train, "val": n_val, "test": n_test})
    return loaded.splits


def _blind(samples):
    return [Sample(s.id, s.structure, None, s.info) for s in samples]


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    splits = _mp20("mp20_formation_energy")
    records: list[EpochRecord] = []
    adapter = RoostAdapter(TASKS["mp20_formation_energy"].spec, _hyperparameters(), "cpu", seed=0)
    adapter.fit(splits["train"], splits["val"], records.append)
    return adapter, splits, records


def test_fit_reports_every_epoch(trained):
    _, _, records = trained
    assert [r.epoch for r in records] == list(range(1, EPOCHS + 1))
    assert all(math.isfinite(r.train_loss) and r.val_loss is not None and math.isfinite(r.val_loss) for r in records)
    assert records[0].loss_name == "robust l1 (normalized targets)"
    assert all(r.extra["val_mae"] > 0 for r in records)  # aviary's own MAE in eV/atom, denormalized


def test_predictions_have_the_contract_shape_and_keep_the_order(trained):
    adapter, splits, _ = trained
    test = _blind(splits["test"])
    out = adapter.predict(test)
    assert out.shape == (len(test),) and out.dtype == np.float64 and np.isfinite(out).all()
    np.testing.assert_allclose(adapter.predict(test[::-1]), out[::-1], rtol=1e-5, atol=1e-6)


def test_prediction_depends_on_the_composition_only(trained):
    """Roost reads the fractional composition: a supercell, a perturbed copy and the crystal
    itself get one prediction; another formula gets another."""
    adapter, splits, _ = trained
    crystal, other = splits["test"][0].structure, splits["test"][1].structure
    perturbed = crystal.copy()
    perturbed.perturb(0.2, min_distance=0.1)
    out = adapter.predict([Sample(str(i), s, None) for i, s in enumerate([crystal, crystal * (2, 1, 1), perturbed, other])])
    np.testing.assert_allclose(out[:3], out[0], rtol=1e-5)
    assert crystal.composition.reduced_formula != other.composition.reduced_formula and out[3] != out[0]


def test_parameters_and_flops_are_counted_on_the_aviary_roost(trained):
    adapter, splits, _ = trained
    assert isinstance(adapter.network, Roost)
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == adapter.network.num_params > 0  # aviary's own count
    flops = count_flops(adapter.network, adapter.forward_inputs(splits["train"][:4]), n_probe=4, n_train=16)
    assert flops["forward_per_sample"] > 0 and flops["train_per_epoch"] > flops["forward_per_epoch"]


def test_saved_model_reloads_with_aviary(trained, tmp_path):
    adapter, splits, _ = trained
    path = adapter.save_model(tmp_path / "roost.model")
    checkpoint = torch.load(path, weights_only=False)
    model = initialize_model(Roost, checkpoint["model_params"], "cpu", fine_tune=str(path))
    inputs = adapter.forward_inputs(splits["test"])
    model.eval()
    adapter.network.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs)[0], adapter.network(*inputs)[0])


def test_bad_samples_are_errors_naming_them():
    splits = _mp20("mp20_formation_energy", n_train=4, n_val=0, n_test=0)
    train = list(splits["train"])
    adapter = RoostAdapter(TASKS["mp20_formation_energy"].spec, _hyperparameters(epochs=1), "cpu", seed=0)
    bad = [*train[:3], Sample(train[3].id, train[3].structure, None)]
    with pytest.raises(ValueError, match=f"train sample '{train[3].id}': target None is not a number"):
        adapter.fit(bad, [], lambda r: None)
    bad = [*train[:3], Sample("no-structure", None, 0.1)]
    with pytest.raises(ValueError, match="train sample 'no-structure': structure is NoneType"):
        adapter.fit(bad, [], lambda r: None)
    with pytest.raises(ValueError, match="task type 'generation'"):
        RoostAdapter(TASKS["mp20_formation_energy"].spec.__class__("x", "generation", "structure", None),
                     _hyperparameters(), "cpu", seed=0)


def test_classification_gives_probabilities():
    splits = _mp20("mp20_is_metal", n_train=16, n_val=4, n_test=6)
    assert {s.target for s in splits["train"]} == {0, 1}
    adapter = RoostAdapter(TASKS["mp20_is_metal"].spec, _hyperparameters(epochs=2), "cpu", seed=0)
    records: list[EpochRecord] = []
    adapter.fit(splits["train"], splits["val"], records.append)
    out = adapter.predict(_blind(splits["test"]))
    assert len(records) == 2 and records[0].loss_name == "nll of sampled softmax (robust)"
    assert out.shape == (6,) and ((out >= 0) & (out <= 1)).all()
