"""PDos network and adapter on real Petretto crystals: invariances, normalisation, a short fit,
the manifest (whole file: well under a minute)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
pd = pytest.importorskip("pandas")
torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")
pytest.importorskip("e3nn")
from pymatgen.core import Lattice, Structure  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from pdos.adapter import HYPERPARAMETERS, PDosAdapter  # noqa: E402
from pdos.network import PDosNetwork  # noqa: E402
from runner.contract import EpochRecord, Sample, TaskSpec  # noqa: E402

GRID = tuple(float(f) for f in range(0, 1001, 20))
TASK = TaskSpec("phonon_dos", "spectra", "phdos", "max-normalized", grid=GRID, grid_unit="cm^-1")


@pytest.fixture(scope="module")
def manifest() -> dict:
    with (MODEL_DIR / "model.yaml").open() as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def samples(petretto_frame, petretto_structures) -> list[Sample]:
    return [Sample(id=str(row.mp_id), structure=structure,
                   target=np.asarray(ast.literal_eval(row.phdos), dtype=np.float64))
            for row, structure in zip(petretto_frame.itertuples(), petretto_structures)]


def adapter(manifest, **overrides) -> PDosAdapter:
    torch.manual_seed(0)
    return PDosAdapter(TASK, {**manifest["hyperparameters"], **overrides}, torch.device("cpu"), seed=0)


def predict_structures(model: PDosAdapter, structures) -> np.ndarray:
    return model.predict([Sample(id=f"s{i}", structure=s, target=None) for i, s in enumerate(structures)])


def transformed(structure: Structure, matrix: np.ndarray) -> Structure:
    """The same crystal in a rotated (or reflected) Cartesian frame: lattice rows and positions."""
    return Structure(lattice=structure.lattice.matrix @ matrix.T, species=structure.species,
                     coords=structure.cart_coords @ matrix.T, coords_are_cartesian=True)


def test_outputs_non_negative_with_max_one(manifest, samples):
    model = adapter(manifest)
    out = model.predict(samples[:10])
    assert out.shape == (10, len(GRID)) and out.dtype == np.float64
    assert np.all(np.isfinite(out)) and out.min() >= 0.0
    np.testing.assert_allclose(out.max(axis=1), 1.0, rtol=1e-6)
    # one batch == crystal by crystal (no batch-dependent layers)
    one_by_one = np.concatenate([model.predict([s]) for s in samples[:4]])
    np.testing.assert_allclose(one_by_one, out[:4], atol=1e-5)


@pytest.mark.parametrize("reflect", [False, True])
def test_invariant_to_rotation_and_reflection(manifest, samples, reflect):
    model = adapter(manifest)
    structures = [s.structure for s in samples[:8]]
    matrix = Rotation.random(random_state=7).as_matrix()
    if reflect:
        matrix = matrix @ np.diag([1.0, 1.0, -1.0])
    before = predict_structures(model, structures)
    after = predict_structures(model, [transformed(s, matrix) for s in structures])
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_invariant_to_atom_permutation_and_unit_cell(manifest, samples):
    model = adapter(manifest)
    structures = [s.structure for s in samples[:6] if len(s.structure) > 1][:4]
    rng = np.random.default_rng(3)
    permuted = []
    for s in structures:
        order = rng.permutation(len(s))
        permuted.append(Structure(s.lattice, [s.species[i] for i in order], s.frac_coords[order]))
    supercells = [s.copy() for s in structures]
    for s in supercells:
        s.make_supercell([2, 1, 1])
    before = predict_structures(model, structures)
    np.testing.assert_allclose(predict_structures(model, permuted), before, atol=1e-5)
    np.testing.assert_allclose(predict_structures(model, supercells), before, atol=1e-5)


def test_network_forward_plain_tensors_and_flop_counter(manifest, samples):
    from torch.utils.flop_counter import FlopCounterMode

    model = adapter(manifest)
    args = model.forward_inputs(samples[:3])
    x, node_attr, edge_index, edge_vec, batch = args
    assert x.shape == node_attr.shape == (batch.numel(), 118) and edge_index.shape[0] == 2
    assert edge_vec.shape == (edge_index.shape[1], 3) and int(batch.max()) == 2
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model.network(*args)
    assert out.shape == (3, len(GRID)) and counter.get_total_flops() > 0
    assert isinstance(model.network, PDosNetwork)


def test_short_fit_reports_each_epoch(manifest, samples):
    model = adapter(manifest, epochs=2)
    records: list[EpochRecord] = []
    model.fit(samples[:32], samples[32:40], records.append)
    assert [r.epoch for r in records] == [1, 2]
    assert all(r.loss_name == "mse" and math.isfinite(r.train_loss) and math.isfinite(r.val_loss) for r in records)
    assert records[1].train_loss < records[0].train_loss
    lr, gamma = manifest["hyperparameters"]["learning_rate"], manifest["hyperparameters"]["lr_gamma"]
    assert records[0].lr == pytest.approx(lr * gamma) and records[1].lr == pytest.approx(lr * gamma ** 2)
    n_edges = sum(model._graph(s).edge_index.shape[1] for s in samples[:32])
    n_atoms = sum(len(s.structure) for s in samples[:32])
    assert float(model.network.num_neighbors) == pytest.approx(n_edges / n_atoms)
    out = model.predict([Sample(s.id, s.structure, None) for s in samples[40:]])
    assert out.shape == (len(samples) - 40, len(GRID)) and np.all(np.isfinite(out))
    assert torch.get_num_threads() >= 1


def test_no_neighbour_names_the_sample(manifest):
    model = adapter(manifest)
    lonely = Sample(id="mp-lonely", structure=Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]]), target=None)
    with pytest.raises(ValueError, match="mp-lonely.*no atom has a neighbour within the cutoff"):
        model.predict([lonely])


def test_bad_target_names_the_sample(manifest, samples):
    model = adapter(manifest, epochs=1)
    bad = Sample(id="mp-bad", structure=samples[0].structure, target=np.zeros(7))
    with pytest.raises(ValueError, match="mp-bad"):
        model.fit([bad], [], lambda record: None)


@pytest.mark.parametrize("name, value", [("cutoff", 0.0), ("epochs", 0), ("batch_size", 1.5), ("lmax", -1),
                                         ("lr_gamma", 1.5), ("self_interaction", "yes"), ("cpu_threads", 0),
                                         ("learning_rate", float("nan"))])
def test_invalid_hyperparameters_are_named(name, value):
    """model.yaml's hyperparameter_types, checked by the runner through ``hyperparameters()``
    before the adapter starts."""
    from runner.manifest import ManifestError, load_manifest

    with pytest.raises(ManifestError, match=rf"model\.yaml: field 'hyperparameters\.{name}': expected"):
        load_manifest(MODEL_DIR).hyperparameters("bench", {name: value})


def test_unknown_or_missing_hyperparameters_and_task_type(manifest):
    with pytest.raises(ValueError, match="unknown hyperparameter.*typo"):
        adapter(manifest, typo=1)
    partial = dict(manifest["hyperparameters"])
    partial.pop("mul")
    with pytest.raises(ValueError, match="missing hyperparameter.*mul"):
        PDosAdapter(TASK, partial, torch.device("cpu"), seed=0)
    with pytest.raises(ValueError, match="not supported by pdos"):
        PDosAdapter(TaskSpec("t", "regression", "y", "eV"), manifest["hyperparameters"], torch.device("cpu"), 0)


def test_manifest_validates(manifest):
    from runner.manifest import load_manifest

    loaded = load_manifest(MODEL_DIR)
    assert loaded.name == "pdos" and loaded.data["entry_point"] == "pdos.adapter:PDosAdapter"
    assert tuple(manifest["hyperparameters"]) == HYPERPARAMETERS
    assert set(manifest["bench_hyperparameters"]) <= set(manifest["hyperparameters"])
    assert manifest["task_types"] == ["spectra"] and manifest["default_tasks"] == ["phonon_dos"]
