"""PDos periodic radius graph and atom encodings, on real Petretto crystals (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
from pymatgen.core import DummySpecies, Lattice, Structure  # noqa: E402

from pdos.features import (ATOMIC_MASSES, N_ELEMENTS, atomic_numbers, element_one_hot,  # noqa: E402
                           mass_weighted_one_hot, node_inputs)
from pdos.graph import radius_graph  # noqa: E402


@pytest.fixture(scope="module")
def structures(petretto_structures) -> list[Structure]:
    return petretto_structures[:12]


def sorted_lengths(graph) -> np.ndarray:
    return np.sort(np.linalg.norm(graph.edge_vec, axis=1))


@pytest.mark.parametrize("self_interaction", [True, False])
def test_distance_multiset_invariant_to_supercell_and_origin(structures, self_interaction):
    for structure in structures[:4]:
        graph = radius_graph(structure, cutoff=5.0, self_interaction=self_interaction)
        # non-diagonal supercell (4 cells) with the origin shifted and all atoms wrapped into it
        supercell = structure.copy()
        supercell.make_supercell([[2, 1, 0], [0, 1, 0], [0, 0, 2]])
        shifted = Structure(supercell.lattice, supercell.species, supercell.frac_coords + [0.13, 0.71, 0.37],
                            to_unit_cell=True)
        big = radius_graph(shifted, cutoff=5.0, self_interaction=self_interaction)
        assert big.num_nodes == 4 * graph.num_nodes
        assert big.num_edges == 4 * graph.num_edges
        np.testing.assert_allclose(sorted_lengths(big), np.sort(np.tile(sorted_lengths(graph), 4)), atol=1e-6)


def test_graph_is_symmetric_and_within_cutoff(structures):
    for structure in structures:
        graph = radius_graph(structure, cutoff=5.0)
        lengths = np.linalg.norm(graph.edge_vec, axis=1)
        assert graph.edge_index.dtype == np.int64 and graph.edge_vec.shape == (graph.num_edges, 3)
        assert lengths.max() <= 5.0 + 1e-6
        assert graph.num_self_loops == len(structure) == int(np.sum(lengths < 1e-9))
        triples = {(int(i), int(j), *map(int, o)) for (i, j), o in zip(graph.edge_index.T, graph.images)}
        assert {(j, i, -a, -b, -c) for i, j, a, b, c in triples} == triples
        # edge_vec = r_j + o L - r_i
        cart, lattice = structure.cart_coords, structure.lattice.matrix
        i, j = graph.edge_index
        np.testing.assert_allclose(graph.edge_vec, cart[j] + graph.images @ lattice - cart[i], atol=1e-9)


def test_graph_errors():
    with pytest.raises(ValueError, match="cutoff"):
        radius_graph(Structure(Lattice.cubic(3.0), ["Na"], [[0, 0, 0]]), cutoff=0.0)
    lonely = radius_graph(Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]]), cutoff=5.0)
    assert lonely.num_neighbor_edges == 0 and lonely.num_edges == 1


def test_mass_weighted_one_hot(structures):
    structure = structures[0]  # mp-1000, BaTe
    x, attr = node_inputs(structure)
    numbers = atomic_numbers(structure)
    assert sorted(numbers.tolist()) == [52, 56]
    assert x.shape == attr.shape == (2, N_ELEMENTS) and x.dtype == np.float32
    for row, z in enumerate(numbers):
        assert attr[row, z - 1] == 1.0 and attr[row].sum() == 1.0
        assert x[row, z - 1] == pytest.approx(ATOMIC_MASSES[z - 1], rel=1e-6) and np.count_nonzero(x[row]) == 1
    assert ATOMIC_MASSES[55] == pytest.approx(137.327, abs=1e-3)  # Ba
    np.testing.assert_array_equal(element_one_hot([1, 118]).argmax(1), [0, 117])
    assert mass_weighted_one_hot([1])[0, 0] == pytest.approx(1.008, abs=1e-3)


def test_unencodable_sites_raise():
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="site 0 is disordered"):
        atomic_numbers(disordered)
    dummy = Structure(Lattice.cubic(3.0), ["Na", DummySpecies("X")], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="site 1: species .* is not a chemical element"):
        atomic_numbers(dummy)
