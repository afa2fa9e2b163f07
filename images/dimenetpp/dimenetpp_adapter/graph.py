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
