"""Matformer network and adapter, on real perov_5 structures (whole file: well under a minute)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

MODEL_DIR = Path(__file__).resolve().parents[1]
pd = pytest.importorskip("pandas")
torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")
from pymatgen.core import Lattice, Structure  # noqa: E402

from matformer.adapter import HYPERPARAMETERS, MatformerAdapter  # noqa: E402
from matformer.atom_features import atom_features  # noqa: E402
from matformer.graph import periodic_graph  # noqa: E402
from matformer.network import Matformer  # noqa: E402
from runner.contract import EpochRecord, Sample, TaskSpec  # noqa: E402

PEROV_TEST = Path("/work/shared/data/perov_5/test.csv")
REGRESSION = TaskSpec("perov5_heat_ref", "regression", "heat_ref", "eV")
CLASSIFICATION = TaskSpec("perov5_has_gap", "classification", "ind_gap", None, "ind_gap > 0 eV")


@pytest.fixture(scope="module")
def frame():
    if not PEROV_TEST.exists():
        pytest.skip(f"{PEROV_TEST} not available")
    frame = pd.read_csv(PEROV_TEST, nrows=48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame["structure"] = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    return frame


@pytest.fixture(scope="module")
def manifest() -> dict:
    with (MODEL_DIR / "model.yaml").open() as handle:
        return yaml.safe_load(handle)


def batch_inputs(structures):
    """(x, edge_index, edge_vec, batch) for a list of structures, built by hand."""
    xs, edges, vecs, batch, offset = [], [], [], [], 0
    for index, structure in enumerate(structures):
        graph = periodic_graph(structure)
        xs.append(torch.from_numpy(atom_features(structure)))
        edges.append(torch.from_numpy(graph.edge_index) + offset)
        vecs.append(torch.from_numpy(graph.edge_vec).float())
        batch.append(torch.full((len(structure),), index, dtype=torch.long))
        offset += len(structure)
    return torch.cat(xs), torch.cat(edges, dim=1), torch.cat(vecs), torch.cat(batch)


def small_network(**kwargs) -> Matformer:
    torch.manual_seed(0)
    return Matformer(node_features=32, rbf_bins=32, heads=2, conv_layers=2, fc_features=32, **kwargs)


def test_output_shapes(frame):
    structures = list(frame["structure"][:8])
    inputs = batch_inputs(structures)
    torch.manual_seed(0)
    regression = Matformer().eval()
    with torch.no_grad():
        out = regression(*inputs)
    assert out.shape == (8,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    classification = Matformer(classification=True).eval()
    with torch.no_grad():
        logp = classification(*inputs)
    assert logp.shape == (8, 2)
    torch.testing.assert_close(logp.exp().sum(dim=1), torch.ones(8))
    assert sum(p.numel() for p in regression.parameters()) > 1_000_000


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_rotation_and_permutation_invariance(frame):
    structures = list(frame["structure"][:6])
    rotation = random_rotation(7)
    rotated = [Structure(Lattice(s.lattice.matrix @ rotation.T), s.species, s.frac_coords) for s in structures]
    order = np.random.default_rng(3).permutation
    permuted = []
    for s in structures:
        perm = order(len(s))
        permuted.append(Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm]))
    torch.manual_seed(0)
    network = Matformer().eval()
    with torch.no_grad():
        reference = network(*batch_inputs(structures))
        after_rotation = network(*batch_inputs(rotated))
        after_permutation = network(*batch_inputs(permuted))
    torch.testing.assert_close(after_rotation, reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(after_permutation, reference, atol=1e-4, rtol=0)


def test_optimisation_reduces_training_loss(frame):
    structures = list(frame["structure"][:32])
    target = torch.tensor(frame["heat_ref"][:32].to_numpy(), dtype=torch.float32)
    target = (target - target.mean()) / target.std()
    inputs = batch_inputs(structures)
    network = small_network()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(network(*inputs), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_reset_parameters_changes_weights():
    network = small_network()
    before = [p.detach().clone() for p in network.parameters()]
    network.reset_parameters()
    changed = [not torch.equal(a, b) for a, b in zip(before, network.parameters()) if a.dim() == 2]
    assert all(changed)


def samples_for(frame, task: TaskSpec, rows: slice, with_targets: bool = True) -> list[Sample]:
    out = []
    for _, row in frame.iloc[rows].iterrows():
        if task.task_type == "classification":
            target = int(row["ind_gap"] > 0)
        else:
            target = float(row["heat_ref"])
        out.append(Sample(str(row["material_id"]), row["structure"], target if with_targets else None))
    return out


def hyperparameters(manifest, **overrides) -> dict:
    hp = dict(manifest["hyperparameters"])
    hp.update(epochs=2, batch_size=16)
    hp.update(overrides)
    return hp


@pytest.mark.parametrize("task", [REGRESSION, CLASSIFICATION], ids=lambda t: t.task_type)
def test_adapter_fit_predict(frame, manifest, task):
    torch.manual_seed(0)
    adapter = MatformerAdapter(task, hyperparameters(manifest), torch.device("cpu"), seed=0)
    train = samples_for(frame, task, slice(0, 32))
    val = samples_for(frame, task, slice(32, 40))
    test = samples_for(frame, task, slice(40, 48), with_targets=False)
    records: list[EpochRecord] = []
    adapter.fit(train, val, records.append)
    assert [r.epoch for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record.train_loss) and np.isfinite(record.val_loss)
        assert record.lr is not None and record.lr >= 0
        assert record.loss_name == ("nll" if task.task_type == "classification" else "mse (standardized)")
    predictions = adapter.predict(test)
    assert predictions.shape == (8,) and predictions.dtype == np.float64
    assert np.all(np.isfinite(predictions))
    if task.task_type == "classification":
        assert np.all((predictions >= 0) & (predictions <= 1))
    else:  # de-standardized: in the range of the task's unit (eV), not of standardized values
        mean = np.mean([s.target for s in train])
        assert abs(predictions.mean() - mean) < 5 * np.std([s.target for s in train])
    args = adapter.forward_inputs(test[:4])
    assert len(args) == 4 and args[0].shape[1] == 92 and args[2].dtype == torch.float32
    adapter.network.eval()
    with torch.no_grad():
        out = adapter.network(*args)
    assert out.shape[0] == 4
    assert isinstance(adapter.network, torch.nn.Module)


def test_adapter_is_deterministic_for_a_seed(frame, manifest):
    def run() -> np.ndarray:
        torch.manual_seed(0)
        adapter = MatformerAdapter(REGRESSION, hyperparameters(manifest, epochs=1), "cpu", seed=5)
        adapter.fit(samples_for(frame, REGRESSION, slice(0, 24)), [], lambda r: None)
        return adapter.predict(samples_for(frame, REGRESSION, slice(40, 44), with_targets=False))

    np.testing.assert_allclose(run(), run(), rtol=1e-5)


@pytest.mark.parametrize("name, value", [("learning_rate", -1.0), ("conv_layers", 0), ("scheduler", "cosine"),
                                         ("use_lattice", "yes"), ("rbf_bins", 1), ("atom_features", 93),
                                         ("cutoff", float("nan"))])
def test_bad_hyperparameters_are_named_before_the_adapter_starts(name, value):
    """model.yaml's hyperparameter_types, checked by the runner through ``hyperparameters()``."""
    from runner.manifest import ManifestError, load_manifest

    with pytest.raises(ManifestError, match=rf"model\.yaml: field 'hyperparameters\.{name}': expected"):
        load_manifest(MODEL_DIR).hyperparameters("bench", {name: value})


def test_adapter_errors(frame, manifest):
    with pytest.raises(ValueError, match="rbf_vmax"):
        MatformerAdapter(REGRESSION, hyperparameters(manifest, rbf_vmin=9.0), "cpu", 0)
    with pytest.raises(ValueError, match="bogus"):
        MatformerAdapter(REGRESSION, hyperparameters(manifest, bogus=1), "cpu", 0)
    with pytest.raises(ValueError, match="multilabel"):
        MatformerAdapter(TaskSpec("t", "multilabel", "x", None), hyperparameters(manifest), "cpu", 0)  # type: ignore[arg-type]
    adapter = MatformerAdapter(REGRESSION, hyperparameters(manifest), "cpu", 0)
    empty = Sample("empty-crystal-42", Structure(Lattice.cubic(4.0), [], []), 1.0)
    with pytest.raises(ValueError, match="empty-crystal-42"):
        adapter.fit([empty], [], lambda r: None)


def test_manifest_valid(manifest):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO_ROOT / "runner" / "schemas" / "model.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    assert manifest["name"] == MODEL_DIR.name
    assert set(manifest["hyperparameters"]) == set(HYPERPARAMETERS)
    assert set(manifest["bench_hyperparameters"]) <= set(manifest["hyperparameters"])
    module, cls = manifest["entry_point"].split(":")
    assert module == "matformer.adapter" and cls == MatformerAdapter.__name__
