"""SyMat's coordinate score model: noise schedule, E(3)- and permutation-equivariance of the
per-atom score, periodicity, denoising score matching and annealed Langevin dynamics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, require, shared_data_dir

MODEL_DIR = REPO_ROOT / "images" / "symat"

pd = pytest.importorskip("pandas")
from pymatgen.core import Structure  # noqa: E402

from symat.score import (  # noqa: E402
    DistanceScoreNetwork,
    annealed_langevin,
    estimate_score_norms,
    noise_levels,
)


@pytest.fixture(scope="module")
def crystals():
    data = shared_data_dir()
    require(data is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    structures = []
    for dataset, n in (("perov_5", 6), ("carbon_24", 2)):
        frame = pd.read_csv(data / dataset / "test.csv", nrows=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures += [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]), dtype=torch.float64)
    frac = torch.tensor(np.concatenate([s.frac_coords for s in structures]), dtype=torch.float64)
    num_atoms = torch.tensor([len(s) for s in structures])
    z = torch.tensor([site.specie.Z - 1 for s in structures for site in s])
    return structures, lattice, frac, num_atoms, z


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return DistanceScoreNetwork(latent_dim=16, hidden=32, num_layers=2, int_emb_size=16, fc_hidden=32).double().eval()


def test_noise_schedule():
    sigmas = noise_levels()
    assert sigmas.shape == (50,)
    assert float(sigmas[0]) == pytest.approx(10.0, rel=1e-6) and float(sigmas[-1]) == pytest.approx(0.01, rel=1e-6)
    ratios = (sigmas[1:] / sigmas[:-1]).double()
    assert torch.all(ratios < 1)  # sigma_1 = 10 > ... > sigma_L = 0.01
    torch.testing.assert_close(ratios, torch.full_like(ratios, (0.01 / 10.0) ** (1 / 49)), rtol=1e-5, atol=0)
    with pytest.raises(ValueError):
        noise_levels(50, 1.0, 0.1)


def noisy_positions(lattice, frac, num_atoms, sigma=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(num_atoms)), num_atoms)
    cart = torch.einsum("ni,nij->nj", frac, lattice[batch])
    return cart + sigma * torch.randn(cart.shape, dtype=cart.dtype, generator=generator)


def random_orthogonal(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return q  # a rotation or a reflection (E(3))


def test_score_is_rotation_equivariant(crystals, network):
    _, lattice, frac, num_atoms, z = crystals
    latent = torch.randn(len(num_atoms), 16, dtype=torch.float64)
    cart = noisy_positions(lattice, frac, num_atoms)
    with torch.no_grad():
        score, edges, _ = network.atom_scores(z, cart, lattice, num_atoms, latent)
        assert score.shape == cart.shape and torch.isfinite(score).all() and score.abs().max() > 0
        for seed in (1, 2):
            q = random_orthogonal(seed)
            rotated, edges_r, _ = network.atom_scores(z, cart @ q, lattice @ q, num_atoms, latent)
            assert edges_r.num_edges == edges.num_edges
            torch.testing.assert_close(rotated, score @ q, atol=1e-9, rtol=1e-7)
        # translating everything, or moving one atom by a lattice vector, changes nothing
        shifted, _, _ = network.atom_scores(z, cart + torch.tensor([1.3, -0.7, 2.9], dtype=torch.float64),
                                            lattice, num_atoms, latent)
        torch.testing.assert_close(shifted, score, atol=1e-9, rtol=1e-7)
        moved = cart.clone()
        moved[3] += 2 * lattice[0, 1] - lattice[0, 2]
        periodic, _, _ = network.atom_scores(z, moved, lattice, num_atoms, latent)
        torch.testing.assert_close(periodic, score, atol=1e-9, rtol=1e-7)


def test_score_is_permutation_equivariant(crystals, network):
    _, lattice, frac, num_atoms, z = crystals
    latent = torch.randn(len(num_atoms), 16, dtype=torch.float64)
    cart = noisy_positions(lattice, frac, num_atoms, seed=3)
    # permute atoms within each crystal (the batch layout keeps crystals contiguous)
    generator = torch.Generator().manual_seed(4)
    starts = torch.cumsum(num_atoms, 0) - num_atoms
    perm = torch.cat([s + torch.randperm(int(n), generator=generator) for s, n in zip(starts, num_atoms)])
    with torch.no_grad():
        score, _, _ = network.atom_scores(z, cart, lattice, num_atoms, latent)
        permuted, _, _ = network.atom_scores(z[perm], cart[perm], lattice, num_atoms, latent)
    torch.testing.assert_close(permuted, score[perm], atol=1e-9, rtol=1e-7)


def test_self_image_edges_carry_no_score(crystals, network):
    _, lattice, frac, num_atoms, z = crystals
    latent = torch.zeros(len(num_atoms), 16, dtype=torch.float64)
    cart = noisy_positions(lattice, frac, num_atoms, seed=5)
    with torch.no_grad():
        score, edges, edge_scores = network.atom_scores(z, cart, lattice, num_atoms, latent)
    src, dst = edges.edge_index
    unit = -edges.vectors / edges.distances.unsqueeze(-1)
    expected = torch.zeros_like(score).index_add_(0, dst, ((src != dst) * edge_scores).unsqueeze(-1) * unit)
    torch.testing.assert_close(score, expected)


def test_dsm_loss_and_score_norms(crystals):
    _, lattice, frac, num_atoms, z = crystals
    torch.manual_seed(0)
    network = DistanceScoreNetwork(latent_dim=16, hidden=32, num_layers=2, int_emb_size=16, fc_hidden=32)
    sigmas = noise_levels()
    norms = estimate_score_norms(frac.float(), lattice.float(), num_atoms, sigmas, 4.0, 5,
                                 generator=torch.Generator().manual_seed(0))
    assert norms.shape == (50,) and torch.all(norms > 0)
    # small noise: d - d~ is about the projection of two independent N(0, sigma^2) displacements
    assert 1.3 < float(norms[-1] / sigmas[-1]) < 1.7
    assert 1.0 < float(norms[0]) < 3.0  # saturates at large noise (Å)
    loss = network.dsm_loss(z, frac.float(), lattice.float(), num_atoms, torch.randn(len(num_atoms), 16), sigmas, norms)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_annealed_langevin_wraps_and_converges_with_an_exact_score():
    # a toy "score" pulling every atom to the centre of its cell; wrapping keeps f in [0, 1)
    lattice = torch.diag(torch.tensor([4.0, 5.0, 6.0])).unsqueeze(0).repeat(2, 1, 1)
    num_atoms = torch.tensor([3, 2])
    batch = torch.repeat_interleave(torch.arange(2), num_atoms)
    centre = 0.5 * lattice.sum(dim=1)[batch]
    sigmas = noise_levels(10, 0.01, 1.0)

    def score(cart: torch.Tensor) -> torch.Tensor:
        return (centre - cart) / 2.0

    norms = torch.ones(10)
    frac = annealed_langevin(score, torch.rand(5, 3, generator=torch.Generator().manual_seed(0)), lattice, num_atoms,
                             sigmas, norms, steps=30, step_size=1e-2, noise_temperature=0.0)
    assert frac.shape == (5, 3) and torch.all((frac >= 0) & (frac < 1))
    torch.testing.assert_close(frac, torch.full_like(frac, 0.5), atol=1e-3, rtol=0)
