"""The pure-PyTorch radius graph and DimeNet triplets against brute-force enumeration, on random
molecules and on real QM9 geometries when the shared data is there."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dimenetpp_adapter.graph import radius_graph, triplets  # noqa: E402


def brute_edges(pos, batch, r, loop=False):
    n = pos.shape[0]
    return {(j, i) for i in range(n) for j in range(n)
            if batch[i] == batch[j] and (loop or i != j) and float((pos[i] - pos[j]).norm()) < r}


def brute_triplets(edges):
    """{(i, j, k, kj, ji)} for every edge ji = j -> i and kj = k -> j with k != i."""
    out = set()
    for ji, (j, i) in enumerate(edges):
        for kj, (k, j2) in enumerate(edges):
            if j2 == j and k != i:
                out.add((i, j, k, kj, ji))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_radius_graph_and_triplets_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 12, (4,), generator=g).tolist()
    pos = torch.rand(sum(sizes), 3, generator=g, dtype=torch.float64) * 6.0
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    edge_index = radius_graph(pos, r=3.0, batch=batch)
    pairs = list(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_edges(pos, batch.tolist(), 3.0)
    # sorted by target then source, as torch_cluster returns them
    assert pairs == sorted(pairs, key=lambda e: (e[1], e[0]))
    col, row, i, j, k, kj, ji = triplets(edge_index, num_nodes=pos.shape[0])
    assert torch.equal(col, edge_index[1]) and torch.equal(row, edge_index[0])
    got = list(zip(i.tolist(), j.tolist(), k.tolist(), kj.tolist(), ji.tolist()))
    assert len(got) == len(set(got))
    assert set(got) == brute_triplets(pairs)
    # every triplet's edges are what their indices say
    assert torch.equal(row[kj], k) and torch.equal(col[kj], j) and torch.equal(row[ji], j) and torch.equal(col[ji], i)


def test_self_loops_flow_and_neighbour_limit():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [0.5, 0, 0]])
    with_loops = radius_graph(pos, r=1.6, loop=True)
    assert {(a, a) for a in range(4)} <= set(zip(*with_loops.tolist()))
    flipped = radius_graph(pos, r=1.6, flow="target_to_source")
    assert set(zip(*flipped.flip(0).tolist())) == set(zip(*radius_graph(pos, r=1.6).tolist()))
    limited = radius_graph(pos, r=2.5, max_num_neighbors=1)
    sources_of = {i: [j for j, t in zip(*limited.tolist()) if t == i] for i in range(4)}
    # the nearest neighbour only: atom 0's nearest is atom 3 (0.5 Å)
    assert all(len(v) == 1 for v in sources_of.values()) and sources_of[0] == [3]
    with pytest.raises(ValueError, match="shape"):
        radius_graph(torch.zeros(3, 2), r=1.0)
    with pytest.raises(ValueError, match="names atom"):
        triplets(torch.tensor([[0, 5], [1, 0]]), num_nodes=3)


def test_empty_and_single_atom_graphs():
    edge_index = radius_graph(torch.zeros(1, 3), r=5.0)
    assert edge_index.shape == (2, 0)
    out = triplets(edge_index, num_nodes=1)
    assert all(t.numel() == 0 for t in out)
    assert triplets(torch.zeros(2, 0, dtype=torch.long), num_nodes=0)[2].numel() == 0


def test_two_atoms_have_edges_but_no_triplet():
    edge_index = radius_graph(torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]), r=5.0)
    assert set(zip(*edge_index.tolist())) == {(0, 1), (1, 0)}
    _, _, i, *_ = triplets(edge_index, num_nodes=2)
    assert i.numel() == 0  # k -> j -> i needs k != i


def test_a_water_molecule_by_hand():
    # O at the origin, two H: 4 directed edges and, per O-H edge into H, one triplet H -> O -> H
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.757, 0.586, 0.0], [-0.757, 0.586, 0.0]])
    edge_index = radius_graph(pos, r=1.2)  # H-H is 1.514 Å: not an edge
    assert set(zip(*edge_index.tolist())) == {(1, 0), (2, 0), (0, 1), (0, 2)}
    _, _, i, j, k, _, _ = triplets(edge_index, num_nodes=3)
    assert set(zip(i.tolist(), j.tolist(), k.tolist())) == {(1, 0, 2), (2, 0, 1)}


def test_all_permutations_of_a_small_molecule_give_the_same_triplet_count():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    counts = set()
    for perm in itertools.permutations(range(4)):
        e = radius_graph(pos[list(perm)], r=1.5)
        counts.add(triplets(e, num_nodes=4)[2].numel())
    assert len(counts) == 1


QM9 = Path(os.environ.get("MATEVAL_SHARED_DATA", "/work/shared/data")) / "qm9_reduced_100" / "qm9_reduced_100.xyz"


@pytest.mark.skipif(not QM9.is_file(), reason=f"{QM9} not found")
def test_real_qm9_molecules_in_one_batch_match_brute_force():
    import ase.io

    molecules = ase.io.read(QM9, index=":20")
    pos = torch.tensor([p for m in molecules for p in m.positions], dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(len(molecules)), torch.tensor([len(m) for m in molecules]))
    edge_index = radius_graph(pos, r=5.0, batch=batch)  # DimeNet++'s default cutoff
    pairs = list(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    assert set(pairs) == brute_edges(pos, batch.tolist(), 5.0)
    _, _, i, j, k, kj, ji = triplets(edge_index, num_nodes=pos.shape[0])
    assert set(zip(i.tolist(), j.tolist(), k.tolist(), kj.tolist(), ji.tolist())) == brute_triplets(pairs)
