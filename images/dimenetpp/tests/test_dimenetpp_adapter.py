"""DimeNet++ adapter (torch_geometric's DimeNetPlusPlus with mateval's pure-PyTorch graph) on real
QM9 molecules (the embedded data/qm9_subset), in the model's own environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from dimenetpp_adapter.adapter import DimeNetPPAdapter
from runner.contract import Sample, TaskSpec
from runner.datasets import qm9
from runner.tasks import get_task

REPO_ROOT = Path(__file__).resolve().parents[3]
TASK = get_task("qm9_u0").spec
SMALL = {"hidden_channels": 16, "num_blocks": 1, "int_emb_size": 8, "basis_emb_size": 4, "out_emb_channels": 16,
         "num_spherical": 7, "num_radial": 6, "cutoff": 5.0, "max_num_neighbors": 32, "envelope_exponent": 5,
         "num_before_skip": 1, "num_after_skip": 2, "num_output_layers": 2, "epochs": 2, "batch_size": 8,
         "learning_rate": 0.001, "warmup_steps": 2, "decay_rate": 0.01, "decay_steps": 4000000, "loss": "l1",
         "batching": "dynamic"}


@pytest.fixture(scope="module")
def molecules() -> list[Sample]:
    return qm9.read_molecules(REPO_ROOT / "data" / "qm9_subset" / "qm9_reduced_100.xyz")


@pytest.fixture(scope="module")
def trained(molecules):
    adapter = DimeNetPPAdapter(TASK, SMALL, "cpu", seed=0)
    records = []
    adapter.fit(molecules[:24], molecules[24:28], records.append)
    return adapter, records


def test_fit_reports_every_epoch_and_predicts_in_ev(trained, molecules):
    adapter, records = trained
    assert [r.epoch for r in records] == [1, 2]
    assert all(np.isfinite(r.train_loss) and np.isfinite(r.val_loss) for r in records)
    blind = [dataclasses.replace(s, target=None) for s in molecules[40:50]]
    predicted = adapter.predict(blind)
    truth = np.array([s.target for s in molecules[40:50]])
    assert predicted.shape == (10,) and predicted.dtype == np.float64
    # U0 of these molecules is -1,100 to -7,700 eV; the per-element references carry most of it
    assert np.all(np.abs(predicted - truth) < 50.0), np.abs(predicted - truth)
    assert sum(p.numel() for p in adapter.network.parameters()) > 1000


def test_padded_batches_give_the_dynamic_predictions(trained, molecules):
    adapter, _ = trained
    blind = [dataclasses.replace(s, target=None) for s in molecules[50:71]]  # 21: the last batch is short
    dynamic = adapter.predict(blind)
    adapter.hp["batching"] = "padded"
    try:
        padded = adapter.predict(blind)
    finally:
        adapter.hp["batching"] = "dynamic"
    np.testing.assert_allclose(padded, dynamic, rtol=1e-6, atol=1e-4)


def test_padding_is_masked_out_of_the_gradient(molecules):
    """One training step's gradient is the same whether the batch is padded or not."""
    grads = {}
    for batching in ("dynamic", "padded"):
        adapter = DimeNetPPAdapter(TASK, {**SMALL, "batching": batching}, "cpu", seed=3)
        batch = molecules[60:65]
        adapter._sizes = adapter._molecule_sizes(batch)
        z, pos, index, n, padded, _ = next(adapter._batches(batch, False))
        adapter.network.zero_grad()
        adapter._forward(z, pos, index, n, padded).sum().backward()
        grads[batching] = torch.cat([p.grad.flatten() for p in adapter.network.parameters() if p.grad is not None])
    torch.testing.assert_close(grads["padded"], grads["dynamic"], rtol=1e-4, atol=1e-5)


def test_periodic_tasks_and_unseen_elements_are_refused(trained, molecules):
    with pytest.raises(ValueError, match="regression on molecules only"):
        DimeNetPPAdapter(get_task("mp20_formation_energy").spec, SMALL, "cpu", seed=0)
    with pytest.raises(ValueError, match="batching"):
        DimeNetPPAdapter(TASK, {k: v for k, v in SMALL.items() if k != "batching"}, "cpu", seed=0)
    from pymatgen.core import Molecule

    adapter, _ = trained
    fluorine = Sample(id="qm9-F", structure=Molecule(["C", "F"], [[0, 0, 0], [0, 0, 1.35]]), target=None)
    with pytest.raises(ValueError, match="qm9-F.*element F"):
        adapter.predict([fluorine])


def test_forward_inputs_run_the_network(trained, molecules):
    adapter, _ = trained
    z, pos, batch = adapter.forward_inputs(molecules[:3])
    assert z.dtype == torch.long and pos.shape == (z.numel(), 3) and int(batch.max()) == 2
    assert adapter.network(z, pos, batch).shape == (3, 1)


def test_task_spec_is_a_molecular_extensive_regression():
    assert isinstance(TASK, TaskSpec) and TASK.periodic is False and TASK.extensive and TASK.unit == "eV"
