"""Matformer graph construction and atom features, on real perov_5 structures."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
from pymatgen.core import Lattice, Structure  # noqa: E402

from matformer.atom_features import atom_features  # noqa: E402
from matformer.graph import LATTICE_OFFSETS, build_edges, knn_neighbors, periodic_graph  # noqa: E402

PEROV_TEST = Path("/work/shared/data/perov_5/test.csv")
N_STRUCTURES = 6


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    if not PEROV_TEST.exists():
        pytest.skip(f"{PEROV_TEST} not available")
    frame = pd.read_csv(PEROV_TEST, nrows=N_STRUCTURES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]


def knn_distance_lists(structure: Structure) -> list[np.ndarray]:
    """Sorted lengths of the incoming kNN (non-lattice) edges of every atom."""
    graph = periodic_graph(structure)
    lengths = np.linalg.norm(graph.edge_vec, axis=1)
    dst = graph.edge_index[1]
    keep = ~graph.is_lattice
    return [np.sort(lengths[keep & (dst == i)]) for i in range(len(structure))]


def site_map(primitive: Structure, other: Structure) -> np.ndarray:
    """Index of the primitive-cell atom that each atom of ``other`` is an image of."""
    frac = primitive.lattice.get_fractional_coords(other.cart_coords)  # (m, 3) in primitive basis
    diff = frac[:, None, :] - primitive.frac_coords[None, :, :]
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ primitive.lattice.matrix, axis=-1)  # (m, n)
    mapping = dist.argmin(axis=1)
    assert np.all(dist[np.arange(len(other)), mapping] < 1e-6)
    return mapping


def assert_same_knn(primitive: Structure, other: Structure, mapping: np.ndarray | None = None) -> None:
    """Atom ``a`` of ``other`` (an image of primitive atom ``mapping[a]``) has the same sorted kNN
    distance list as its primitive atom."""
    reference = knn_distance_lists(primitive)
    candidate = knn_distance_lists(other)
    mapping = site_map(primitive, other) if mapping is None else mapping
    for atom, source in enumerate(mapping):
        assert len(candidate[atom]) == len(reference[source]), (atom, source)
        np.testing.assert_allclose(candidate[atom], reference[source], atol=1e-6)


@pytest.mark.parametrize("scaling", [(2, 1, 1), (2, 2, 2)])
def test_knn_graph_invariant_to_supercell(structures, scaling):
    for structure in structures:
        supercell = structure.copy()
        supercell.make_supercell(scaling)
        assert len(supercell) == len(structure) * int(np.prod(scaling))
        assert_same_knn(structure, supercell)


def test_knn_graph_invariant_to_origin_shift(structures):
    shift = np.array([0.37, 0.11, 0.73])
    for structure in structures:
        for wrap in (True, False):
            frac = structure.frac_coords + shift
            shifted = Structure(structure.lattice, structure.species, frac % 1.0 if wrap else frac)
            assert_same_knn(structure, shifted, mapping=np.arange(len(structure)))


def test_ties_kept_and_at_least_twelve_neighbours(structures):
    saw_tie = False
    for structure in structures:
        centers, _, _, distances, radius = knn_neighbors(structure, cutoff=8.0, max_neighbors=12)
        counts = np.bincount(centers, minlength=len(structure))
        assert counts.min() >= 12
        saw_tie |= bool(counts.max() > 12)
        # brute force: every neighbour within 1e-6 Å of the 12th distance is kept, nothing beyond
        all_c, _, _, all_d = structure.get_neighbor_list(radius)
        for atom in range(len(structure)):
            sorted_d = np.sort(all_d[all_c == atom])
            expected = int(np.sum(sorted_d <= sorted_d[11] + 1e-6))
            assert counts[atom] == expected
            assert distances[centers == atom].max() <= sorted_d[11] + 1e-6
    assert saw_tie, "perov_5 structures have symmetry-equivalent neighbours: ties expected"


def test_ties_in_ideal_cubic_perovskite():
    # SrTiO3, ideal cubic: the 12 O of Sr are all at a/sqrt(2); Ti has 6 O then 8 Sr then ...
    structure = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                          [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    centers, _, _, _, _ = knn_neighbors(structure)
    counts = np.bincount(centers, minlength=5)
    assert counts[0] == 12  # 12 O at a/sqrt(2)
    assert counts[1] == 6 + 8  # 6 O at a/2, then 8 Sr tied at a*sqrt(3)/2 (12th neighbour among them)


def test_edge_set_symmetric_and_deduplicated(structures):
    for structure in structures:
        graph = periodic_graph(structure)
        src, dst = graph.edge_index
        rows = np.column_stack([src, dst, graph.images])
        reverse = np.column_stack([dst, src, -graph.images])
        as_set = {tuple(r) for r in rows}
        assert len(as_set) == len(rows), "duplicate edges"
        assert as_set == {tuple(r) for r in reverse}
        # the reverse edge of every kNN edge is a kNN edge too
        knn = {tuple(r) for r in rows[~graph.is_lattice]}
        assert knn == {tuple(r) for r in reverse[~graph.is_lattice]}
        # displacement vectors: source image minus target, consistent with the images
        expected = (structure.frac_coords[src] + graph.images - structure.frac_coords[dst]) @ structure.lattice.matrix
        np.testing.assert_allclose(graph.edge_vec, expected, atol=1e-9)
        assert graph.edge_index.dtype == np.int64 and graph.edge_index.shape == (2, graph.num_edges)
        assert graph.edge_vec.shape == (graph.num_edges, 3) and graph.is_lattice.dtype == bool
        assert np.linalg.norm(graph.edge_vec, axis=1).min() > 0.5  # no zero-length self edge


def test_lattice_edges(structures):
    structure = structures[0]
    graph = periodic_graph(structure, use_lattice=True)
    offsets = {tuple(o) for o in np.concatenate([LATTICE_OFFSETS, -LATTICE_OFFSETS])}
    src, dst = graph.edge_index
    for atom in range(len(structure)):
        self_edges = {tuple(o) for o in graph.images[(src == atom) & (dst == atom)]}
        assert offsets <= self_edges  # all 12 lattice offsets present (lattice- or kNN-flagged)
    lat = graph.is_lattice
    assert np.all(src[lat] == dst[lat])
    assert {tuple(o) for o in graph.images[lat]} <= offsets
    without = periodic_graph(structure, use_lattice=False)
    assert not without.is_lattice.any()
    assert without.num_edges == int((~graph.is_lattice).sum())
    edge_index, edge_vec, is_lattice = build_edges(structure)
    np.testing.assert_array_equal(edge_index, graph.edge_index)
    np.testing.assert_array_equal(is_lattice, graph.is_lattice)


def test_radius_enlarged_for_sparse_structure():
    # one atom in a 10 Å cubic cell: nothing within 8 Å
    sparse = Structure(Lattice.cubic(10.0), ["Cu"], [[0.0, 0.0, 0.0]])
    assert len(sparse.get_neighbor_list(8.0)[0]) == 0
    graph = periodic_graph(sparse, cutoff=8.0, max_neighbors=12)
    # rule: 8 -> max(a, b, c) = 10 (6 neighbours) -> 2 * 10 = 20
    assert graph.radius == pytest.approx(20.0)
    knn_lengths = np.sort(np.linalg.norm(graph.edge_vec[~graph.is_lattice], axis=1))
    # 6 at 10 Å, then the 12 face diagonals at 14.14 Å all tied with the 12th
    assert len(knn_lengths) == 18
    np.testing.assert_allclose(knn_lengths[:6], 10.0)
    np.testing.assert_allclose(knn_lengths[6:], 10.0 * np.sqrt(2.0))
    # the lattice edges coincide with kNN edges here, so none is lattice-only
    assert not graph.is_lattice.any()


def test_empty_structure_raises():
    with pytest.raises(ValueError, match="no sites"):
        periodic_graph(Structure(Lattice.cubic(4.0), [], []))


def test_atom_features(structures):
    features = atom_features(structures[0])
    assert features.shape == (len(structures[0]), 92) and features.dtype == np.float32
    assert set(np.unique(features)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="Md"):
        atom_features(Structure(Lattice.cubic(4.0), ["Md"], [[0, 0, 0]]))
