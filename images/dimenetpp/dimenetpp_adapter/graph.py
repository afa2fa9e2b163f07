"""Pure-PyTorch stand-ins for the two compiled pieces torch_geometric's DimeNet++ needs.

torch_geometric 2.8's ``DimeNet``/``DimeNetPlusPlus.forward`` calls
``torch_geometric.nn.radius_graph`` (which needs ``torch-cluster`` or ``pyg-lib``) and
``torch_geometric.nn.models.dimenet.triplets`` (which needs ``torch-sparse``'s ``SparseTensor``).
No wheel of either extension exists for torch 2.13, so these functions compute the same graphs
with dense torch operations; the adapter installs them in place of the originals. Molecules of
QM9 have at most 29 atoms, so the dense ``O(n²)`` distance matrix per molecule is small.

Conventions are torch_geometric's (``flow="source_to_target"``): ``edge_index = [row, col]`` with
``row = j`` the source (neighbour) and ``col = i`` the target, one edge per ordered pair of
distinct atoms of the same molecule closer than the cutoff.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def radius_graph(pos: Tensor, r: float, batch: Optional[Tensor] = None, loop: bool = False,
                 max_num_neighbors: int = 32, flow: str = "source_to_target",
                 num_workers: int = 1, batch_size: Optional[int] = None) -> Tensor:
    """Edges between atoms of the same molecule closer than ``r`` (Å), as
    ``torch_geometric.nn.radius_graph`` (``torch_cluster.radius_graph``) returns them.

    Args:
        pos: ``(n_atoms, 3)`` Cartesian positions (Å).
        r: cutoff radius (Å); pairs at distance ``< r`` are connected (torch_cluster's test).
        batch: ``(n_atoms,)`` molecule index of each atom, sorted; ``None``: one molecule.
        loop: keep self-loops ``i -> i``.
        max_num_neighbors: at most this many sources per target; when more are within ``r``, the
            nearest are kept (torch_cluster keeps the first it finds; for QM9 with a 5 Å cutoff
            no molecule has more than 28 neighbours per atom, so both keep all).
        flow: ``"source_to_target"`` (``[j, i]``, the default) or ``"target_to_source"`` (``[i, j]``).
        num_workers, batch_size: accepted for signature compatibility; unused.

    Returns:
        ``edge_index`` of shape ``(2, n_edges)``, int64, sorted by target then source.

    Raises:
        ValueError: ``pos`` is not ``(n, 3)``, ``batch`` has another length, ``flow`` is unknown.
    """
    if pos.dim() != 2 or pos.size(1) != 3:
        raise ValueError(f"pos must have shape (n_atoms, 3), got {tuple(pos.shape)}")
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    n = pos.size(0)
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    if batch.shape != (n,):
        raise ValueError(f"batch must have shape ({n},), got {tuple(batch.shape)}")
    dist = torch.cdist(pos.detach(), pos.detach())
    same = batch.view(-1, 1) == batch.view(1, -1)
    close = same & (dist < r)
    if not loop:
        close.fill_diagonal_(False)
    # at most max_num_neighbors sources per target (row i of `close` = sources of target i)
    if n and int(close.sum(dim=1).max()) > max_num_neighbors:
        masked = torch.where(close, dist, torch.full_like(dist, float("inf")))
        keep = masked.topk(max_num_neighbors, dim=1, largest=False).indices
        limited = torch.zeros_like(close)
        limited.scatter_(1, keep, True)
        close &= limited
    target, source = close.nonzero(as_tuple=True)  # row-major: sorted by target, then source
    if flow == "source_to_target":
        return torch.stack([source, target], dim=0)
    return torch.stack([target, source], dim=0)


def triplets(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """DimeNet's triplets ``k -> j -> i`` of a graph, as
    ``torch_geometric.nn.models.dimenet.triplets`` computes them with ``SparseTensor``.

    For every edge ``j -> i`` (index ``ji``) and every edge ``k -> j`` (index ``kj``) with
    ``k != i``, one triplet.

    Args:
        edge_index: ``(2, n_edges)`` int64, ``[row, col] = [j, i]`` (source, target).
        num_nodes: number of atoms.

    Returns:
        ``(col, row, idx_i, idx_j, idx_k, idx_kj, idx_ji)``: ``col``/``row`` are the targets and
        sources of the edges (torch_geometric's ``i``, ``j``); the rest have one entry per
        triplet, grouped by ``ji`` in edge order and, within one ``ji``, ordered by ``k``.

    Raises:
        ValueError: ``edge_index`` is not ``(2, n)`` or names an atom ``>= num_nodes``.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, n_edges), got {tuple(edge_index.shape)}")
    row, col = edge_index  # j -> i
    if row.numel() and int(torch.maximum(row, col).max()) >= num_nodes:
        raise ValueError(f"edge_index names atom {int(torch.maximum(row, col).max())} of {num_nodes}")
    n_edges = row.numel()
    edge_ids = torch.arange(n_edges, device=row.device)
    # incoming edges of each node j, ordered by their source k (SparseTensor's CSR order)
    order = torch.argsort(col * max(num_nodes, 1) + row, stable=True)
    sorted_target = col[order]
    counts = torch.bincount(sorted_target, minlength=num_nodes)
    starts = torch.cumsum(counts, dim=0) - counts
    # for edge ji (j -> i), the edges k -> j: the incoming edges of node j = row[ji]
    num_triplets = counts[row]
    idx_ji = edge_ids.repeat_interleave(num_triplets)
    first = starts[row].repeat_interleave(num_triplets)
    offset = torch.arange(idx_ji.numel(), device=row.device) - (torch.cumsum(num_triplets, 0) - num_triplets).repeat_interleave(num_triplets)
    idx_kj = order[first + offset]
    idx_i = col[idx_ji]
    idx_j = row[idx_ji]
    idx_k = row[idx_kj]
    mask = idx_i != idx_k  # remove i == k triplets
    return col, row, idx_i[mask], idx_j[mask], idx_k[mask], idx_kj[mask], idx_ji[mask]


#: Positions (Å) of the three filler atoms that carry a padded batch's filler edges and triplets:
#: far from every molecule, 1 Å apart at a right angle, so that filler distances and angles are
#: finite and have finite gradients.
FILLER_POSITIONS = ((1.0e4, 0.0, 0.0), (1.0e4 + 1.0, 0.0, 0.0), (1.0e4 + 1.0, 1.0, 0.0))


def pad_graph(z: Tensor, pos: Tensor, batch: Tensor, num_graphs: int, cutoff: float, max_num_neighbors: int,
              atoms: int, edges: int, num_triplets: int) -> dict[str, Tensor]:
    """One batch of molecules with fixed shapes: ``atoms`` atoms, ``edges`` edges and
    ``num_triplets`` triplets whatever the molecules, so that every batch has the same tensor
    shapes (what the DimeNet++ ports to static-shape accelerators do).

    The real atoms come first; the rest are filler atoms (``z = 1``, the first three at
    :data:`FILLER_POSITIONS`, the others on top of the first) in an extra molecule
    ``num_graphs``, whose output the caller drops. Filler edges are ``f1 -> f0`` (and one
    ``f2 -> f1``), filler triplets ``f2 -> f1 -> f0``: they only touch filler atoms, so the real
    molecules' outputs are exactly the unpadded ones.

    Args:
        z: ``(n,)`` atomic numbers of the real atoms; pos: ``(n, 3)`` Å; batch: ``(n,)`` sorted
            molecule index in ``[0, num_graphs)``.
        cutoff, max_num_neighbors: as :func:`radius_graph`.
        atoms, edges, num_triplets: the fixed sizes; ``atoms >= n + 3``, ``edges >= n_edges + 2``,
            ``num_triplets >= n_triplets + 1``.

    Returns:
        ``{"z", "pos", "batch", "edge_index", "triplets"}``: ``(atoms,)``, ``(atoms, 3)``,
        ``(atoms,)``, ``(2, edges)`` and the 7-tuple of :func:`triplets` with ``edges``-long
        ``i``/``j`` and ``num_triplets``-long triplet indices.

    Raises:
        ValueError: a fixed size is too small for the batch (which size, needed and given).
    """
    n = z.numel()
    edge_index = radius_graph(pos, cutoff, batch, max_num_neighbors=max_num_neighbors)
    trip = triplets(edge_index, num_nodes=n)
    needed = {"atoms": (n + 3, atoms), "edges": (edge_index.size(1) + 2, edges),
              "triplets": (trip[2].numel() + 1, num_triplets)}
    for what, (need, given) in needed.items():
        if need > given:
            raise ValueError(f"padded batch: {need} {what} needed (with the filler), only {given} fixed")
    f0, f1, f2 = n, n + 1, n + 2
    device = pos.device
    filler_pos = torch.tensor(FILLER_POSITIONS, dtype=pos.dtype, device=device)
    pad_pos = torch.cat([pos, filler_pos, filler_pos[:1].expand(atoms - n - 3, 3)])
    pad_z = torch.cat([z, torch.ones(atoms - n, dtype=z.dtype, device=device)])
    pad_batch = torch.cat([batch, torch.full((atoms - n,), num_graphs, dtype=batch.dtype, device=device)])
    e = edge_index.size(1)
    filler_edges = torch.tensor([[f2] + [f1] * (edges - e - 1), [f1] + [f0] * (edges - e - 1)],
                                dtype=edge_index.dtype, device=device)
    pad_edges = torch.cat([edge_index, filler_edges], dim=1)
    t = trip[2].numel()

    def fill(x: Tensor, value: int, size: int) -> Tensor:
        return torch.cat([x, torch.full((size - x.numel(),), value, dtype=x.dtype, device=device)])

    # edge e + 1 is f1 -> f0 (ji), edge e is f2 -> f1 (kj)
    pad_trip = (pad_edges[1], pad_edges[0], fill(trip[2], f0, num_triplets), fill(trip[3], f1, num_triplets),
                fill(trip[4], f2, num_triplets), fill(trip[5], e, num_triplets), fill(trip[6], e + 1, num_triplets))
    return {"z": pad_z, "pos": pad_pos, "batch": pad_batch, "edge_index": pad_edges, "triplets": pad_trip}
