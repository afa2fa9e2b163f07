"""SyMat graph construction on real perov_5 and carbon_24 structures: periodic radius graphs,
k-nearest capping with ties, triplets, angles/torsions and lattice conversions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, require, shared_data_dir

MODEL_DIR = REPO_ROOT / "images" / "symat"

pd = pytest.importorskip("pandas")
from pymatgen.core import Lattice, Structure  # noqa: E402

from symat.graph import (  # noqa: E402
    encoder_geometry,
    encoder_geometry_batch,
    lattice_from_parameters,
    lattice_parameters,
    periodic_radius_graph,
    triplets,
)


def load(dataset: str, n: int) -> list[Structure]:
    data = shared_data_dir()
    require(data is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    frame = pd.read_csv(data / dataset / "test.csv", nrows=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]


@pytest.fixture(scope="module")
def perov() -> list[Structure]:
    return load("perov_5", 4)


@pytest.fixture(scope="module")
def carbon() -> list[Structure]:
    return load("carbon_24", 3)


def graph_of(structure: Structure, cutoff: float, k: int | None):
    cart = torch.tensor(structure.cart_coords)
    lattice = torch.tensor(structure.lattice.matrix).unsqueeze(0)
    return periodic_radius_graph(cart, lattice, torch.tensor([len(structure)]), cutoff, max_neighbors=k)


def distance_lists(structure: Structure, cutoff: float = 5.0, k: int | None = 12) -> list[np.ndarray]:
    graph = graph_of(structure, cutoff, k)
    dst = graph.edge_index[1].numpy()
    d = graph.distances.numpy()
    return [np.sort(d[dst == i]) for i in range(len(structure))]


def site_map(primitive: Structure, other: Structure) -> np.ndarray:
    """Index of the primitive atom each atom of ``other`` is an image of."""
    frac = primitive.lattice.get_fractional_coords(other.cart_coords)
    diff = frac[:, None, :] - primitive.frac_coords[None]
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ primitive.lattice.matrix, axis=-1)
    mapping = dist.argmin(axis=1)
    assert np.all(dist[np.arange(len(other)), mapping] < 1e-6)
    return mapping


def test_radius_graph_matches_pymatgen(perov, carbon):
    for structure in perov + carbon:
        graph = graph_of(structure, 4.0, None)
        centers, neighbors, images, distances = structure.get_neighbor_list(4.0)
        keep = distances > 1e-8
        expected = sorted(zip(centers[keep], neighbors[keep], map(tuple, np.rint(images[keep]).astype(int))))
        got = sorted(zip(graph.edge_index[1].tolist(), graph.edge_index[0].tolist(), map(tuple, graph.images.tolist())))
        assert got == expected
        np.testing.assert_allclose(np.sort(graph.distances.numpy()), np.sort(distances[keep]), atol=1e-9)


def test_edge_vectors_use_images_in_the_callers_frame(perov):
    structure = perov[0]
    frac = structure.frac_coords + np.array([[3.0, -2.0, 0.0], [0.0, 1.0, -5.0], [0, 0, 0], [2, 2, 2], [-1, 0, 1]])
    cart = torch.tensor(frac @ structure.lattice.matrix)
    lattice = torch.tensor(structure.lattice.matrix).unsqueeze(0)
    graph = periodic_radius_graph(cart, lattice, torch.tensor([5]), 5.0, max_neighbors=12)
    src, dst = graph.edge_index
    expected = cart[src] + graph.images.double() @ lattice[0] - cart[dst]
    torch.testing.assert_close(graph.vectors, expected)
    # sorted by target atom, all within the cutoff, no zero-length self edge
    assert torch.all(dst[1:] >= dst[:-1])
    assert float(graph.distances.max()) <= 5.0 and float(graph.distances.min()) > 0.5


@pytest.mark.parametrize("scaling", [(2, 1, 1), (1, 2, 2)])
def test_distance_multiset_invariant_to_supercell(perov, carbon, scaling):
    for structure in perov[:2] + carbon[:2]:
        supercell = structure.copy()
        supercell.make_supercell(scaling)
        reference = distance_lists(structure)
        mapping = site_map(structure, supercell)
        for atom, lists in enumerate(distance_lists(supercell)):
            np.testing.assert_allclose(lists, reference[mapping[atom]], atol=1e-6)


def test_distance_multiset_invariant_to_origin_shift_and_permutation(perov, carbon):
    rng = np.random.default_rng(0)
    for structure in perov + carbon:
        reference = distance_lists(structure)
        shifted = Structure(structure.lattice, structure.species, (structure.frac_coords + [0.37, 0.11, 0.73]) % 1.0)
        for atom, lists in enumerate(distance_lists(shifted)):
            np.testing.assert_allclose(lists, reference[atom], atol=1e-6)
        perm = rng.permutation(len(structure))
        permuted = Structure(structure.lattice, [structure.species[p] for p in perm], structure.frac_coords[perm])
        for atom, lists in enumerate(distance_lists(permuted)):
            np.testing.assert_allclose(lists, reference[perm[atom]], atol=1e-6)


def test_knn_keeps_ties(perov):
    # ideal cubic SrTiO3: Sr has 12 O at a/sqrt(2), all tied with the 12th
    cubic = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    lists = distance_lists(cubic, 5.0, 5)
    assert len(lists[0]) == 12  # 5 requested, 12 tied
    np.testing.assert_allclose(lists[0], 3.905 / np.sqrt(2), atol=1e-9)
    assert len(lists[1]) == 6  # Ti: 6 O at a/2
    for structure in perov:
        assert min(len(d) for d in distance_lists(structure, 5.0, 12)) >= 12


def sorted_geometry(structure: Structure) -> np.ndarray:
    geometry = encoder_geometry(structure.lattice.matrix, structure.frac_coords, 5.0, 12)
    rows = np.column_stack([geometry.distances[geometry.idx_kj].numpy(), geometry.distances[geometry.idx_ji].numpy(),
                            geometry.angles.numpy(), np.mod(geometry.torsions.numpy(), 2 * np.pi)])
    return rows[np.lexsort(np.round(rows, 6).T[::-1])]


def test_triplets_angles_torsions(perov, carbon):
    for structure in perov[:2] + carbon[:2]:
        geometry = encoder_geometry(structure.lattice.matrix, structure.frac_coords, 5.0, 12)
        src, dst = geometry.edge_index
        kj, ji = geometry.idx_kj, geometry.idx_ji
        assert torch.all(dst[kj] == src[ji])  # k -> j -> i
        assert not torch.any((src[kj] == dst[ji]) & ((geometry.images[kj] + geometry.images[ji]) == 0).all(1))
        assert torch.all((geometry.angles >= 0) & (geometry.angles <= np.pi + 1e-12))
        tor = geometry.torsions
        assert torch.all(((tor > 0) & (tor <= np.pi + 1e-12)) | (tor == 2 * np.pi))
        # the triplet count: every incoming edge of j except the reverse edge of ji (when present:
        # the k-nearest cap is per target atom, so the graph need not be symmetric)
        deg = torch.bincount(dst, minlength=len(structure))
        edges = {(int(a), int(b), *map(int, o)) for a, b, o in zip(src, dst, geometry.images)}
        has_reverse = sum((int(b), int(a), *(-int(x) for x in o)) in edges for a, b, o in zip(src, dst, geometry.images))
        assert len(kj) == int(deg[src].sum()) - has_reverse


def test_geometry_invariant_to_rotation_and_origin(perov, carbon):
    rotation = Lattice.from_parameters(1, 1, 1, 70, 80, 100).matrix  # any invertible -> orthonormalise
    q, _ = np.linalg.qr(rotation)
    for structure in perov[:2] + carbon[:1]:
        reference = sorted_geometry(structure)
        rotated = Structure(Lattice(structure.lattice.matrix @ q.T), structure.species, structure.frac_coords)
        shifted = Structure(structure.lattice, structure.species, (structure.frac_coords + [0.5, 0.25, 0.9]) % 1.0)
        for other in (rotated, shifted):
            got = sorted_geometry(other)
            assert got.shape == reference.shape
            np.testing.assert_allclose(got, reference, atol=1e-6)


def test_batch_geometry_reports_problems():
    good = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 1e-6]])
    lone = Structure(Lattice.cubic(12.0), ["Na"], [[0, 0, 0]])
    structures = [good, overlapping, lone]
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]))
    frac = torch.tensor(np.concatenate([s.frac_coords for s in structures]))
    _, problems = encoder_geometry_batch(lattice, frac, torch.tensor([2, 2, 1]), 5.0, 12)
    assert problems[0] is None
    assert "overlapping" in problems[1]
    assert "empty graph" in problems[2]
    with pytest.raises(ValueError, match="overlapping"):
        encoder_geometry(overlapping.lattice.matrix, overlapping.frac_coords, 5.0, 12)


def test_lattice_conversions_match_pymatgen(perov, carbon):
    params = [s.lattice.parameters for s in perov + carbon] + [(3.0, 4.0, 5.0, 70.0, 80.0, 100.0)]
    lengths = torch.tensor([p[:3] for p in params], dtype=torch.float64)
    angles = torch.tensor([p[3:] for p in params], dtype=torch.float64)
    matrices, valid = lattice_from_parameters(lengths, angles)
    assert bool(valid.all())
    for matrix, p in zip(matrices, params):
        np.testing.assert_allclose(matrix.numpy(), Lattice.from_parameters(*p).matrix, atol=1e-9)
    got_lengths, got_angles = lattice_parameters(matrices)
    torch.testing.assert_close(got_lengths, lengths)
    torch.testing.assert_close(got_angles, angles)
    _, valid = lattice_from_parameters(torch.tensor([[3.0, 3, 3], [3, 3, -1.0]]),
                                       torch.tensor([[10.0, 10, 170], [90.0, 90, 90]]))
    assert not valid.any()  # impossible angle triple; negative length


def test_triplets_of_empty_graph():
    kj, ji = triplets(torch.zeros((2, 0), dtype=torch.long), torch.zeros((0, 3), dtype=torch.long), 3)
    assert kj.numel() == 0 and ji.numel() == 0
