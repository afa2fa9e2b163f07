"""SyMat end to end on real perov_5 crystals: encoder invariances, the adapter (hyperparameters,
errors naming the sample, a short fit, generation, FLOP-counting inputs) and model.yaml."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import yaml

from runner.contract import EpochRecord, Sample, TaskSpec
from tests.conftest import REPO_ROOT, require, shared_data_dir

MODEL_DIR = REPO_ROOT / "images" / "symat"

pd = pytest.importorskip("pandas")
from pymatgen.core import Element, Lattice, Structure  # noqa: E402

from symat.adapter import HYPERPARAMETERS, SyMatAdapter  # noqa: E402

MANIFEST = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
#: small sizes for the fast tests (the architecture is the paper's; only widths shrink)
SMALL = {"hidden_channels": 32, "encoder_out_channels": 64, "int_emb_size": 16, "out_emb_channels": 64,
         "latent_dim": 32, "fc_hidden_dim": 64}


def samples_from(dataset: str, n: int) -> list[Sample]:
    data = shared_data_dir()
    require(data is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    frame = pd.read_csv(data / dataset / "test.csv", nrows=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Sample(str(row.material_id) if "material_id" in frame else str(i),
                       Structure.from_str(row.cif, fmt="cif"), None) for i, row in enumerate(frame.itertuples())]


@pytest.fixture(scope="module")
def perov() -> list[Sample]:
    return samples_from("perov_5", 40)


def task_for(samples: list[Sample], max_atoms: int = 5) -> TaskSpec:
    elements = sorted({el for s in samples for el in s.structure.composition.elements}, key=lambda e: e.Z)
    return TaskSpec("perov5_generation", "generation", "structure", None, max_atoms=max_atoms,
                    elements=tuple(e.symbol for e in elements))


def hyperparameters(**overrides) -> dict:
    return {**MANIFEST["hyperparameters"], **overrides}


def test_manifest_validates_and_declares_exactly_the_adapters_hyperparameters():
    from runner.manifest import load_manifest

    manifest = load_manifest(MODEL_DIR)
    assert manifest.name == "symat" and manifest.data["task_types"] == ["generation"]
    assert set(manifest.data["hyperparameters"]) == set(HYPERPARAMETERS)
    bench, _ = manifest.hyperparameters("bench")
    assert bench["epochs"] < manifest.data["hyperparameters"]["epochs"]
    assert manifest.load_entry_point() is SyMatAdapter


def test_hyperparameter_validation_names_the_hyperparameter(perov):
    from runner.manifest import ManifestError, load_manifest

    manifest = load_manifest(MODEL_DIR)
    for name, bad in (("num_layers", 0), ("learning_rate", -1.0), ("epochs", 1.5), ("score_cutoff", float("nan")),
                      ("num_radial", 65), ("num_noise_levels", 1), ("num_before_skip", -1)):
        # model.yaml's hyperparameter_types, checked by the runner before the adapter starts
        with pytest.raises(ManifestError, match=rf"model\.yaml: field 'hyperparameters\.{name}': expected"):
            manifest.hyperparameters("bench", {name: bad})
    task = task_for(perov)
    for name, bad in (("sigma_min", 20.0), ("latent_dim", 64)):  # relations between hyperparameters
        manifest.hyperparameters("bench", {name: bad})
        with pytest.raises(ValueError, match=name):
            SyMatAdapter(task, hyperparameters(**{name: bad}), "cpu", 0)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        SyMatAdapter(task, hyperparameters(typo=1), "cpu", 0)
    with pytest.raises(ValueError, match="missing hyperparameter"):
        SyMatAdapter(task, {k: v for k, v in hyperparameters().items() if k != "epochs"}, "cpu", 0)
    with pytest.raises(ValueError, match="not supported"):
        SyMatAdapter(TaskSpec("t", "regression", "y", "eV"), hyperparameters(), "cpu", 0)


def test_errors_name_the_sample(perov):
    adapter = SyMatAdapter(task_for(perov), hyperparameters(**SMALL), "cpu", 0)
    overlapping = Structure(Lattice.cubic(4.0), ["Ba", "Ti"], [[0, 0, 0], [0, 0, 1e-5]])
    lone = Structure(Lattice.cubic(20.0), ["Ba"], [[0, 0, 0]])
    for structure, message in ((overlapping, "overlapping"), (lone, "empty graph")):
        with pytest.raises(ValueError, match=f"sample 'bad-1'.*{message}"):
            adapter.forward_inputs([perov[0], Sample("bad-1", structure, None)])
    foreign = Sample("alien-7", Structure(Lattice.cubic(3.0), ["U", "U"], [[0, 0, 0], [0.5, 0.5, 0.5]]), None)
    with pytest.raises(ValueError, match="alien-7.*vocabulary"):
        adapter.fit(perov[:4] + [foreign], [], lambda record: None)


def encoder_latents(adapter: SyMatAdapter, samples: list[Sample]) -> torch.Tensor:
    args = adapter.forward_inputs(samples)
    network = adapter.network.eval()
    atomic_numbers, _, _, num_atoms, edge_index, distance, angle, torsion, idx_kj, idx_ji = args
    batch = torch.repeat_interleave(torch.arange(len(samples)), num_atoms)
    with torch.no_grad():
        u = network.encoder(atomic_numbers - 1, edge_index, distance, angle, torsion, idx_kj, idx_ji, batch,
                            len(samples))
        return torch.cat([network.fc_mu(u), network.fc_var(u)], dim=1)


def test_encoder_latents_are_invariant(perov):
    torch.manual_seed(0)
    carbon = samples_from("carbon_24", 2)
    samples = perov[:3] + carbon
    adapter = SyMatAdapter(task_for(perov + carbon, max_atoms=24), hyperparameters(**SMALL), "cpu", 0)
    torch.nn.init.normal_(adapter.network.fc_var.weight, std=0.1)  # make the log-variance head non-trivial
    reference = encoder_latents(adapter, samples)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rng = np.random.default_rng(1)
    variants = []
    for sample in samples:
        s = sample.structure
        rotated = Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords)
        perm = rng.permutation(len(s))
        permuted = Structure(s.lattice, [s.species[p] for p in perm], s.frac_coords[perm])
        shifted = Structure(s.lattice, s.species, (s.frac_coords + [0.31, 0.77, 0.05]) % 1.0)
        variants.append((rotated, permuted, shifted))
    for which in range(3):
        others = [Sample(f"{sample.id}-v{which}", v[which], None) for sample, v in zip(samples, variants)]
        torch.testing.assert_close(encoder_latents(adapter, others), reference, atol=1e-4, rtol=1e-4)


def test_short_fit_generate_and_flop_inputs(perov):
    torch.manual_seed(0)
    train, val = perov[:32], perov[32:40]
    task = task_for(perov)
    adapter = SyMatAdapter(task, hyperparameters(epochs=2, batch_size=16, langevin_steps=1), "cpu", 0)
    records: list[EpochRecord] = []
    adapter.fit(train, val, records.append)
    assert [r.epoch for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record.train_loss) and np.isfinite(record.val_loss) and record.loss_name == "elbo+dsm"
        assert all(np.isfinite(v) for v in record.extra.values())
    assert records[1].train_loss < records[0].train_loss
    norms, sigmas = adapter.network.score_norms, adapter.network.sigmas
    assert torch.all(norms > 0) and 1.2 < float(norms[-1] / sigmas[-1]) < 1.8

    generated = adapter.generate(5)
    assert len(generated) == 5
    allowed = set(task.elements)
    for structure in generated:
        if structure is None:
            continue
        assert isinstance(structure, Structure) and len(structure) >= 1
        assert {el.symbol for el in structure.composition.elements} <= allowed
        assert structure.lattice.volume > 0
        assert np.all((structure.frac_coords >= 0) & (structure.frac_coords <= 1))
    assert adapter.generate(0) == []

    from torch.utils.flop_counter import FlopCounterMode

    args = adapter.forward_inputs(train[:8])
    assert all(isinstance(a, torch.Tensor) for a in args)
    with FlopCounterMode(display=False) as counter:
        out = adapter.network(*args)
    assert list(out)[0] == "loss" and torch.isfinite(out["loss"]) and counter.get_total_flops() > 0


def test_generated_composition_uses_the_vocabulary(perov):
    torch.manual_seed(1)
    task = task_for(perov)
    adapter = SyMatAdapter(task, hyperparameters(**SMALL, langevin_steps=1, temperature_lattice=1.0), "cpu", 0)
    vocab = {Element(symbol).Z for symbol in task.elements}
    out = adapter.network.sample(16, temperatures=(1.0, 1.0, 1.0), langevin_steps=1)
    assert len(out) == 16
    for item in out:
        if item is not None:
            assert set(item["atomic_numbers"].tolist()) <= vocab
            assert np.all(item["frac_coords"] >= 0) and np.all(item["frac_coords"] < 1)
