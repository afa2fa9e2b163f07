"""Wrenformer adapter (aviary-models 1.2.1) on real MP-20 crystals (the embedded
``data/mp_20_biternary_subset``), in its own environment: protostructure labels from pymatgen,
training streams one record per epoch, predictions have the contract's shape and are invariant
to what the Wyckoff representation discards (cell choice, rotation, small displacements), bad
samples are errors naming them, parameters and FLOPs are counted on the aviary module.

Small settings (16 training crystals, one attention layer of width 32, 2 epochs) keep this to
seconds; the numbers are checks, not benchmarks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from aviary.wren.data import parse_protostructure_label
from aviary.wrenformer.model import Wrenformer
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from runner.contract import EpochRecord, Sample
from runner.datasets import cdvae
from runner.manifest import load_manifest
from runner.profiling import count_flops, count_parameters
from runner.tasks import TASKS
from wrenformer_adapter.adapter import N_FEATURES, WrenformerAdapter, lr_lambda

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = MODEL_DIR.parents[1]
EPOCHS = 2
SMALL = {"d_model": 32, "n_attn_layers": 1, "n_attn_heads": 2, "batch_size": 8, "epochs": EPOCHS}


def _hyperparameters(**overrides) -> dict:
    hp, _ = load_manifest(MODEL_DIR).hyperparameters("bench", {**SMALL, **overrides})
    return hp


def _mp20(task: str, n_train: int = 16, n_val: int = 4, n_test: int = 6) -> dict[str, list[Sample]]:
    definition = TASKS[task]
    return cdvae.load("mp_20_biternary", "subset", [REPO_ROOT / "data"], definition.label,
                      max_samples={"train": n_train, "val": n_val, "test": n_test}).splits


def _blind(samples):
    return [Sample(s.id, s.structure, None, s.info) for s in samples]


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    splits = _mp20("mp20_formation_energy")
    records: list[EpochRecord] = []
    adapter = WrenformerAdapter(TASKS["mp20_formation_energy"].spec, _hyperparameters(), "cpu", seed=0)
    adapter.fit(splits["train"], splits["val"], records.append)
    return adapter, splits, records


def test_protostructure_label_matches_the_structure(trained):
    """The label's space group is spglib's and its Wyckoff sites hold the cell's composition."""
    adapter, splits, _ = trained
    for sample in splits["train"][:5]:
        label = adapter.protostructure_label(sample, "train")
        spg, _multiplicities, elements, _ = parse_protostructure_label(label)
        assert int(spg) == sample.structure.get_space_group_info(symprec=0.1)[1]
        assert set(elements) == {e.symbol for e in sample.structure.composition.elements}


def test_fit_reports_every_epoch_with_the_warmup_schedule(trained):
    _, _, records = trained
    assert [r.epoch for r in records] == list(range(1, EPOCHS + 1))
    assert all(math.isfinite(r.train_loss) and math.isfinite(r.val_loss) for r in records)
    lr = _hyperparameters()["learning_rate"]
    assert [r.lr for r in records] == pytest.approx([lr * lr_lambda(e) for e in range(EPOCHS)])
    assert lr_lambda(0) < lr_lambda(9) and lr_lambda(20) < lr_lambda(9)  # warm-up, then decay


def test_predictions_have_the_contract_shape_and_keep_the_order(trained):
    adapter, splits, _ = trained
    test = _blind(splits["test"])
    out = adapter.predict(test)
    assert out.shape == (len(test),) and out.dtype == np.float64 and np.isfinite(out).all()
    np.testing.assert_allclose(adapter.predict(test[::-1]), out[::-1], rtol=1e-5, atol=1e-6)


def test_prediction_invariant_to_cell_choice_rotation_and_small_displacements(trained):
    adapter, splits, _ = trained
    crystal = splits["test"][0].structure
    rotation = Rotation.random(random_state=0).as_matrix()
    rotated = Structure(Lattice(crystal.lattice.matrix @ rotation.T), crystal.species,
                        crystal.cart_coords @ rotation.T, coords_are_cartesian=True)
    jittered = crystal.copy()
    jittered.perturb(0.01)
    variants = [crystal, crystal * (1, 2, 1), rotated, jittered]
    out = adapter.predict([Sample(str(i), s, None) for i, s in enumerate(variants)])
    np.testing.assert_allclose(out, out[0], rtol=1e-5)


def test_parameters_and_flops_are_counted_on_the_aviary_wrenformer(trained):
    adapter, splits, _ = trained
    (inner,) = adapter.network.children()
    assert isinstance(inner, Wrenformer)
    total, trainable = count_parameters(adapter.network)
    assert total == trainable == inner.num_params > 0  # aviary's own count
    inputs = adapter.forward_inputs(splits["train"][:4])
    assert inputs[0].shape[-1] == N_FEATURES and inputs[2].shape == (4,)
    flops = count_flops(adapter.network, inputs, n_probe=4, n_train=16)
    assert flops["forward_per_sample"] > 0


def test_bad_input_is_an_error_naming_it():
    splits = _mp20("mp20_formation_energy", n_train=4, n_val=0, n_test=0)
    train = list(splits["train"])
    spec = TASKS["mp20_formation_energy"].spec
    adapter = WrenformerAdapter(spec, _hyperparameters(epochs=1), "cpu", seed=0)
    with pytest.raises(ValueError, match=f"train sample '{train[1].id}': target nan is not finite"):
        adapter.fit([train[0], Sample(train[1].id, train[1].structure, float("nan"))], [], lambda r: None)
    with pytest.raises(ValueError, match="d_model \\(30\\) must be divisible by n_attn_heads \\(4\\)"):
        WrenformerAdapter(spec, _hyperparameters(d_model=30, n_attn_heads=4), "cpu", seed=0)
    with pytest.raises(ValueError, match="embedding_aggregations 'mean,median'"):
        WrenformerAdapter(spec, _hyperparameters(embedding_aggregations="mean,median"), "cpu", seed=0)


def test_classification_gives_probabilities():
    splits = _mp20("mp20_is_metal", n_train=16, n_val=4, n_test=6)
    adapter = WrenformerAdapter(TASKS["mp20_is_metal"].spec, _hyperparameters(epochs=1), "cpu", seed=0)
    adapter.fit(splits["train"], splits["val"], lambda r: None)
    out = adapter.predict(_blind(splits["test"]))
    assert out.shape == (6,) and ((out >= 0) & (out <= 1)).all()
