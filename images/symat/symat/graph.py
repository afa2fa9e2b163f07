"""Periodic graphs for SyMat: radius graphs with periodic images, triplets and torsion quadruplets.

Everything here is plain, vectorised PyTorch with no learnable parts, used by both networks:

- the SphereNet **encoder** (:mod:`.encoder`) works on the radius graph of the clean crystal and needs
  distances, angles and torsions (:func:`encoder_geometry`, computed once per crystal in float64);
- the distance **score network** (:mod:`.score`) rebuilds a radius graph over the noisy Cartesian
  coordinates at every training step and every Langevin step (:func:`periodic_radius_graph` on a
  batch) and uses triplets only for message passing (:func:`triplets`).

Conventions (the whole package uses them):

- Lattice matrices ``L`` have the lattice vectors as **rows** (pymatgen's ``lattice.matrix``), in Å;
  Cartesian positions are ``x = f L`` for fractional row vectors ``f``.
- An edge is a triple ``(j, i, o)``: source atom ``j`` at periodic image ``o`` (an integer 3-vector),
  target atom ``i``. ``edge_index[0] = j`` (source), ``edge_index[1] = i`` (target), as in PyG, and

  .. math:: v_{ij} = x_j + o L - x_i,\\qquad d_{ij} = \\lVert v_{ij} \\rVert \\ (\\text{Å}),

  i.e. the edge vector points from the target atom to the source atom's image.
- Edges are returned sorted by target atom, so the incoming edges of atom ``i`` form one contiguous
  block (used to enumerate triplets without a sparse-matrix library).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Edges shorter than this (Å) between distinct atoms/images are treated as overlapping atoms.
OVERLAP_DISTANCE = 1e-3


@dataclass(frozen=True)
class PeriodicEdges:
    """A periodic radius graph over a batch of crystals (output of :func:`periodic_radius_graph`).

    Shapes (``E`` edges):
        ``edge_index (2, E)`` int64 (row 0 source ``j``, row 1 target ``i``, sorted by target),
        ``images (E, 3)`` int64 image ``o`` of the source atom in the caller's coordinate frame,
        ``vectors (E, 3)`` float Å, ``v = x_j + o L - x_i``, ``distances (E,)`` float Å.
    """

    edge_index: Tensor
    images: Tensor
    vectors: Tensor
    distances: Tensor

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


def min_plane_spacing(lattice: Tensor) -> Tensor:
    """Smallest distance between lattice planes ``min_k h_k`` (Å) per crystal: ``(B, 3, 3) -> (B,)``."""
    inverse = torch.linalg.inv(lattice.double())
    return 1.0 / inverse.norm(dim=1).max(dim=1).values


def _segment_arange(counts: Tensor) -> Tensor:
    """``[0..c0-1, 0..c1-1, ...]`` for ``counts = [c0, c1, ...]`` (int64)."""
    total = int(counts.sum())
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(total, device=counts.device) - torch.repeat_interleave(starts, counts)


def periodic_radius_graph(
    cart: Tensor,
    lattice: Tensor,
    num_atoms: Tensor,
    cutoff: float,
    max_neighbors: int | None = None,
    tie_tol: float = 1e-6,
    max_image_range: int = 16,
) -> PeriodicEdges:
    r"""Radius graph with periodic images over a batch of crystals (vectorised, no Python loop over
    crystals).

    Every ordered pair ``(j, i)`` of atoms of the same crystal and every image ``o`` with
    :math:`0 < \lVert x_j + oL - x_i \rVert \le r_c` gives an edge; the atom itself at ``o = 0`` is
    excluded, images of the atom itself (``j = i``, ``o != 0``) are kept. With ``max_neighbors = k``
    only the ``k`` nearest incoming edges of every target atom are kept, together with all edges
    tied with the ``k``-th distance within ``tie_tol`` Å (so the graph does not depend on atom
    order or on the choice of unit cell in symmetric crystals).

    Positions need not be wrapped; images are in the caller's frame, so
    ``vectors == cart[j] + images @ L - cart[i]``. For every pair only the images around the one
    nearest in fractional coordinates are tried (as many as
    the cutoff and the spacing of the lattice planes require). Computed in the dtype of ``cart``
    (use float64 where ties matter).

    Args:
        cart: ``(N, 3)`` Cartesian positions, Å (atoms of crystal 0 first, then crystal 1, ...).
        lattice: ``(B, 3, 3)`` lattice matrices (rows = lattice vectors), Å.
        num_atoms: ``(B,)`` int64 atoms per crystal (sum ``N``).
        cutoff: radius ``r_c``, Å (> 0).
        max_neighbors: ``k`` or ``None`` (no cap).
        tie_tol: Å.
        max_image_range: refuse lattices needing more than this many images per direction
            (a cell flatter than ``cutoff / max_image_range``).

    Returns:
        :class:`PeriodicEdges` (float dtype of ``cart``), sorted by target atom.

    Raises:
        ValueError: shapes disagree, ``cutoff <= 0``, or a lattice is singular or too flat.
    """
    if cart.dim() != 2 or cart.shape[1] != 3:
        raise ValueError(f"cart must have shape (N, 3), got {tuple(cart.shape)}")
    if lattice.dim() != 3 or lattice.shape[1:] != (3, 3) or lattice.shape[0] != num_atoms.shape[0]:
        raise ValueError(f"lattice must have shape (B, 3, 3) with B = len(num_atoms), got {tuple(lattice.shape)}")
    if int(num_atoms.sum()) != cart.shape[0]:
        raise ValueError(f"num_atoms sums to {int(num_atoms.sum())} but cart has {cart.shape[0]} rows")
    if not cutoff > 0:
        raise ValueError(f"cutoff must be > 0 Å, got {cutoff}")
    device, dtype = cart.device, cart.dtype
    num_atoms = num_atoms.long().to(device)
    n_crystals = num_atoms.shape[0]
    if n_crystals == 0 or cart.shape[0] == 0:
        empty = torch.zeros((2, 0), dtype=torch.long, device=device)
        return PeriodicEdges(empty, torch.zeros((0, 3), dtype=torch.long, device=device),
                             torch.zeros((0, 3), dtype=dtype, device=device), torch.zeros(0, dtype=dtype, device=device))
    lattice_c = lattice.to(device=device, dtype=dtype)
    det = torch.linalg.det(lattice_c.double())
    if not bool(torch.all(det.abs() > 1e-8)):
        raise ValueError("singular lattice (zero volume)")
    # images needed around the nearest image of each pair (fractional difference in [-1/2, 1/2]):
    # |r_k + delta_k| h_k <= cutoff with |r_k| <= 1/2  =>  |delta_k| <= floor(cutoff / h_k + 1/2)
    inverse = torch.linalg.inv(lattice_c.double())
    ranges = torch.floor(cutoff * inverse.norm(dim=1) + 0.5).long()  # (B, 3)
    if int(ranges.max()) > max_image_range:
        raise ValueError(
            f"lattice too flat for cutoff {cutoff} Å: needs {int(ranges.max())} > {max_image_range} images per direction"
        )
    inverse = inverse.to(dtype)
    batch = torch.repeat_interleave(torch.arange(n_crystals, device=device), num_atoms)
    frac = torch.einsum("ni,nij->nj", cart, inverse[batch])

    # all ordered pairs (target i, source j) of each crystal, and the nearest image of j to i
    node_start = torch.cumsum(num_atoms, 0) - num_atoms
    pairs_per_crystal = num_atoms * num_atoms
    pair_crystal = torch.repeat_interleave(torch.arange(n_crystals, device=device), pairs_per_crystal)
    local = _segment_arange(pairs_per_crystal)
    n_b = num_atoms[pair_crystal]
    pair_tgt = node_start[pair_crystal] + local // n_b
    pair_src = node_start[pair_crystal] + local % n_b
    delta_frac = frac[pair_src] - frac[pair_tgt]
    base = -torch.round(delta_frac)  # delta_frac + base in [-1/2, 1/2]

    # offsets around the nearest image: the grid [-R, R]^3 (R = batch maximum), masked per crystal
    r_max = ranges.max(dim=0).values.tolist()
    grid = torch.tensor(list(itertools.product(*[range(-r, r + 1) for r in r_max])), dtype=torch.long, device=device)
    valid = (grid.abs().unsqueeze(0) <= ranges.unsqueeze(1)).all(dim=-1)  # (B, O)
    n_offsets = valid.sum(dim=1)  # (B,)
    offset_rows = valid.nonzero()  # (sum O_b, 2) sorted by crystal
    offset_start = torch.cumsum(n_offsets, 0) - n_offsets
    per_pair = n_offsets[pair_crystal]
    cand_pair = torch.repeat_interleave(torch.arange(pair_tgt.shape[0], device=device), per_pair)
    slot = _segment_arange(per_pair)
    cand_crystal = pair_crystal[cand_pair]
    delta = grid[offset_rows[offset_start[cand_crystal] + slot, 1]]  # (C, 3)
    image = base[cand_pair] + delta.to(dtype)
    src, tgt = pair_src[cand_pair], pair_tgt[cand_pair]
    vec = torch.einsum("ci,cij->cj", delta_frac[cand_pair] + image, lattice_c[cand_crystal])
    dist = vec.norm(dim=1)
    is_self = (src == tgt) & (image == 0).all(dim=1)
    keep = (dist <= cutoff) & ~is_self
    src, tgt, image, vec, dist = src[keep], tgt[keep], image[keep].long(), vec[keep], dist[keep]

    # sort by (target, distance)
    order = torch.argsort(dist, stable=True)
    order = order[torch.argsort(tgt[order], stable=True)]
    src, tgt, image, vec, dist = src[order], tgt[order], image[order], vec[order], dist[order]
    if max_neighbors is not None and dist.numel():
        k = int(max_neighbors)
        counts = torch.bincount(tgt, minlength=cart.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        kth = torch.full((cart.shape[0],), math.inf, dtype=dist.dtype, device=device)
        has_k = counts >= k
        kth[has_k] = dist[starts[has_k] + k - 1]
        keep = dist <= kth[tgt] + tie_tol
        src, tgt, image, vec, dist = src[keep], tgt[keep], image[keep], vec[keep], dist[keep]
    return PeriodicEdges(edge_index=torch.stack([src, tgt]), images=image, vectors=vec, distances=dist)


def triplets(edge_index: Tensor, images: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    r"""All triplets ``k -> j -> i`` of a graph whose edges are sorted by target atom.

    For every edge ``ji`` (source ``j``, target ``i``, image ``o``) every incoming edge ``kj`` of
    ``j`` (source ``k``, image ``o'``) forms a triplet, except the reverse edge of ``ji``
    (``k = i`` and ``o + o' = 0``, i.e. atom ``k`` would be atom ``i`` itself).

    Returns:
        ``(idx_kj, idx_ji)``: ``(T,)`` int64 edge indices of the two edges of each triplet.
    """
    src, dst = edge_index
    device = src.device
    if src.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    deg = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(deg, 0) - deg
    n_trip = deg[src]  # incoming edges of j for each edge ji
    idx_ji = torch.repeat_interleave(torch.arange(src.numel(), device=device), n_trip)
    idx_kj = start[src[idx_ji]] + _segment_arange(n_trip)
    reverse = (src[idx_kj] == dst[idx_ji]) & ((images[idx_kj] + images[idx_ji]) == 0).all(dim=1)
    return idx_kj[~reverse], idx_ji[~reverse]


def angles_and_torsions(
    edge_index: Tensor, images: Tensor, vectors: Tensor, idx_kj: Tensor, idx_ji: Tensor, num_nodes: int,
    coplanar_tol: float = 1e-7,
) -> tuple[Tensor, Tensor]:
    r"""SphereNet's angle and torsion of every triplet ``k -> j -> i`` (Liu et al., ICLR 2022, Sec. 3).

    With :math:`a = x_i - x_j` (from ``j`` to ``i``) and :math:`b = x_k - x_j` (from ``j`` to ``k``),
    the angle is :math:`\theta_{kji} = \operatorname{atan2}(\lVert a \times b\rVert, a \cdot b) \in [0, \pi]`.
    The torsion uses every other neighbour ``r`` of ``j`` (incoming edge ``rj``, not the reverse of
    ``ji`` and not ``kj`` itself) as reference: the dihedral between the planes
    :math:`(a, b)` and :math:`(a, c)`, :math:`c = x_r - x_j`,

    .. math:: \varphi_{kji} = \min_r \operatorname{atan2}\bigl(\lVert (a\times b)\times(a\times c)\rVert,
              (a\times b)\cdot(a\times c)\bigr),

    where dihedrals that vanish (coplanar, or a collinear reference) count as :math:`2\pi`, as in the
    reference SphereNet code (``torsion[torsion <= 0] += 2 pi`` then ``min``); a triplet without a
    usable reference gets :math:`2\pi`. Values lie in :math:`(0, \pi] \cup \{2\pi\}`; the torsion
    basis is periodic in :math:`\varphi`, so :math:`2\pi` reads as :math:`0` there.

    Differences from the reference code: a dihedral is treated as vanishing when its sine is below
    ``coplanar_tol`` (relative) rather than exactly ``<= 0``, so that floating-point noise in
    symmetric crystals (many coplanar neighbours) cannot flip the minimum between two equivalent
    frames; the reference edge ``kj`` itself is skipped explicitly.

    Shapes: ``vectors (E, 3)`` (:math:`v = x_j + oL - x_i` per edge), ``idx_kj, idx_ji (T,)`` ->
    ``(angle (T,), torsion (T,))`` in radians, dtype of ``vectors`` (use float64 for stability).
    """
    src, dst = edge_index
    device = vectors.device
    a = -vectors[idx_ji]  # j -> i
    b = vectors[idx_kj]  # j -> k
    angle = torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(dim=-1))
    n_t = idx_ji.numel()
    torsion = torch.full((n_t,), 2 * math.pi, dtype=vectors.dtype, device=device)
    if n_t == 0:
        return angle, torsion
    deg = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(deg, 0) - deg
    j_of_t = src[idx_ji]
    n_ref = deg[j_of_t]
    t_rep = torch.repeat_interleave(torch.arange(n_t, device=device), n_ref)
    ref = start[j_of_t[t_rep]] + _segment_arange(n_ref)
    ji_rep, kj_rep = idx_ji[t_rep], idx_kj[t_rep]
    reverse = (src[ref] == dst[ji_rep]) & ((images[ref] + images[ji_rep]) == 0).all(dim=1)
    ok = ~reverse & (ref != kj_rep)
    t_rep, ref, ji_rep, kj_rep = t_rep[ok], ref[ok], ji_rep[ok], kj_rep[ok]
    a_r, b_r, c_r = -vectors[ji_rep], vectors[kj_rep], vectors[ref]
    plane1 = torch.linalg.cross(a_r, b_r)
    plane2 = torch.linalg.cross(a_r, c_r)
    n1, n2 = plane1.norm(dim=-1), plane2.norm(dim=-1)
    sin_abs = torch.linalg.cross(plane1, plane2).norm(dim=-1)
    cos = (plane1 * plane2).sum(dim=-1)
    dihedral = torch.atan2(sin_abs, cos)
    # a plane is undefined when b (or c) is collinear with a (relative sine below the tolerance)
    a_norm = a_r.norm(dim=-1)
    degenerate = (n1 <= coplanar_tol * a_norm * b_r.norm(dim=-1)) | (n2 <= coplanar_tol * a_norm * c_r.norm(dim=-1))
    vanishing = degenerate | ((sin_abs <= coplanar_tol * n1 * n2) & (cos > 0))
    dihedral = torch.where(vanishing, torch.full_like(dihedral, 2 * math.pi), dihedral)
    torsion = torsion.scatter_reduce(0, t_rep, dihedral, reduce="amin", include_self=True)
    return angle, torsion


@dataclass(frozen=True)
class EncoderGeometry:
    """Distances, angles and torsions of the encoder graphs of a batch of crystals
    (:func:`encoder_geometry_batch`; one crystal: :func:`encoder_geometry`).

    Shapes (``N`` atoms, ``E`` edges, ``T`` triplets, ``B`` crystals): ``edge_index (2, E)`` int64
    (global atom indices, sorted by target atom, so crystal by crystal), ``images (E, 3)`` int64,
    ``distances (E,)`` Å, ``angles (T,)`` rad, ``torsions (T,)`` rad, ``idx_kj, idx_ji (T,)`` int64
    (global edge indices, sorted by ``idx_ji``, so crystal by crystal), ``edges_per_crystal (B,)``,
    ``triplets_per_crystal (B,)`` int64. Float tensors are float64.
    """

    edge_index: Tensor
    images: Tensor
    distances: Tensor
    angles: Tensor
    torsions: Tensor
    idx_kj: Tensor
    idx_ji: Tensor
    edges_per_crystal: Tensor
    triplets_per_crystal: Tensor


def encoder_geometry_batch(lattice: Tensor, frac_coords: Tensor, num_atoms: Tensor, cutoff: float,
                           max_neighbors: int | None) -> tuple[EncoderGeometry, list[str | None]]:
    """Encoder graphs of a batch of clean crystals and their SphereNet geometry, in float64.

    The radius graph (:func:`periodic_radius_graph`, ``cutoff`` Å, the ``max_neighbors`` nearest
    incoming edges of every atom kept with ties) is built on the clean structures; triplets by
    :func:`triplets`; angles and torsions by :func:`angles_and_torsions`. All of it depends only on
    interatomic distances and directions in the infinite crystal, so it is invariant to rotations,
    translations, atom permutations and the choice of origin of the unit cell.

    Args:
        lattice: ``(B, 3, 3)`` lattice matrices (rows = lattice vectors), Å.
        frac_coords: ``(N, 3)`` fractional coordinates, crystal by crystal.
        num_atoms: ``(B,)`` atoms per crystal.
        cutoff: Å. max_neighbors: ``k`` or ``None``.

    Returns:
        ``(geometry, problems)``: ``problems[b]`` is ``None`` or a message saying why crystal ``b``
        cannot be encoded (overlapping atoms closer than ``OVERLAP_DISTANCE``, or no edge at all);
        the geometry of the other crystals is valid.

    Raises:
        ValueError: non-finite input, an empty crystal, or a singular or too flat lattice.
    """
    lattice = torch.as_tensor(lattice, dtype=torch.float64).reshape(-1, 3, 3)
    frac = torch.as_tensor(frac_coords, dtype=torch.float64).reshape(-1, 3)
    num_atoms = torch.as_tensor(num_atoms, dtype=torch.long).reshape(-1)
    if bool((num_atoms <= 0).any()):
        raise ValueError("structure has no sites")
    if not (torch.isfinite(lattice).all() and torch.isfinite(frac).all()):
        raise ValueError("non-finite lattice or coordinates")
    n_total = frac.shape[0]
    batch = torch.repeat_interleave(torch.arange(len(num_atoms)), num_atoms)
    cart = torch.einsum("ni,nij->nj", frac, lattice[batch])
    edges = periodic_radius_graph(cart, lattice, num_atoms, cutoff, max_neighbors=max_neighbors)
    # the nearest neighbour of every atom is always kept, so the capped graph sees every overlap
    edge_crystal = batch[edges.edge_index[1]]
    n_crystals = len(num_atoms)
    edges_per_crystal = torch.bincount(edge_crystal, minlength=n_crystals)
    nearest = torch.full((n_crystals,), math.inf, dtype=torch.float64).scatter_reduce(
        0, edge_crystal, edges.distances, reduce="amin", include_self=True)
    problems: list[str | None] = [None] * n_crystals
    for b in range(n_crystals):
        if int(edges_per_crystal[b]) == 0:
            problems[b] = f"no two atoms within the encoder cutoff of {cutoff} Å (empty graph)"
        elif float(nearest[b]) < OVERLAP_DISTANCE:
            problems[b] = f"overlapping atoms ({float(nearest[b]):.2e} Å apart)"
    idx_kj, idx_ji = triplets(edges.edge_index, edges.images, n_total)
    angle, torsion = angles_and_torsions(edges.edge_index, edges.images, edges.vectors, idx_kj, idx_ji, n_total)
    triplets_per_crystal = torch.bincount(edge_crystal[idx_ji], minlength=n_crystals)
    return EncoderGeometry(edges.edge_index, edges.images, edges.distances, angle, torsion, idx_kj, idx_ji,
                           edges_per_crystal, triplets_per_crystal), problems


def encoder_geometry(lattice, frac_coords, cutoff: float, max_neighbors: int | None) -> EncoderGeometry:
    """:func:`encoder_geometry_batch` for one crystal (``lattice (3, 3)``, ``frac_coords (n, 3)``).

    Raises:
        ValueError: as :func:`encoder_geometry_batch`, and when the crystal has a problem
            (overlapping atoms, empty graph).
    """
    frac = torch.tensor(np.array(frac_coords, dtype=np.float64)).reshape(-1, 3)
    geometry, problems = encoder_geometry_batch(
        torch.tensor(np.array(lattice, dtype=np.float64)).reshape(1, 3, 3), frac,
        torch.tensor([frac.shape[0]]), cutoff, max_neighbors)
    if problems[0] is not None:
        raise ValueError(problems[0])
    return geometry


def lattice_from_parameters(lengths: Tensor, angles_deg: Tensor) -> tuple[Tensor, Tensor]:
    r"""Lattice matrices from lengths (Å) and angles (degrees), pymatgen's convention
    (``Lattice.from_parameters``, ``vesta=False``):

    .. math::
        \cos\gamma^* = \frac{\cos\alpha\cos\beta - \cos\gamma}{\sin\alpha\sin\beta},\quad
        a_1 = (a\sin\beta, 0, a\cos\beta),\
        a_2 = (-b\sin\alpha\cos\gamma^*, b\sin\alpha\sin\gamma^*, b\cos\alpha),\ a_3 = (0, 0, c).

    Shapes: ``lengths (B, 3)``, ``angles_deg (B, 3)`` -> ``(lattice (B, 3, 3), valid (B,) bool)``;
    ``valid`` is False where the six numbers describe no lattice (non-finite values, lengths
    <= 0, angles outside (0, 180), :math:`|\cos\gamma^*| \ge 1`); those matrices are garbage.
    """
    rad = torch.deg2rad(angles_deg)
    cos, sin = torch.cos(rad), torch.sin(rad)
    val = (cos[:, 0] * cos[:, 1] - cos[:, 2]) / (sin[:, 0] * sin[:, 1])
    finite = torch.isfinite(lengths).all(dim=1) & torch.isfinite(angles_deg).all(dim=1)
    valid = finite & (lengths > 0).all(dim=1) & (angles_deg > 0).all(dim=1) & (angles_deg < 180).all(dim=1)
    valid = valid & (val.abs() < 1.0 - 1e-9)
    gamma_star = torch.arccos(val.clamp(-1.0, 1.0))
    zeros = torch.zeros_like(lengths[:, 0])
    a1 = torch.stack([lengths[:, 0] * sin[:, 1], zeros, lengths[:, 0] * cos[:, 1]], dim=1)
    a2 = torch.stack([-lengths[:, 1] * sin[:, 0] * torch.cos(gamma_star),
                      lengths[:, 1] * sin[:, 0] * torch.sin(gamma_star),
                      lengths[:, 1] * cos[:, 0]], dim=1)
    a3 = torch.stack([zeros, zeros, lengths[:, 2]], dim=1)
    return torch.stack([a1, a2, a3], dim=1), valid


def lattice_parameters(lattice: Tensor) -> tuple[Tensor, Tensor]:
    """Lengths (Å) and angles (degrees; alpha = angle(b, c), beta = angle(a, c), gamma = angle(a, b))
    of lattice matrices ``(B, 3, 3)`` -> ``((B, 3), (B, 3))``."""
    lengths = lattice.norm(dim=-1)
    a, b, c = lattice[:, 0], lattice[:, 1], lattice[:, 2]

    def angle(u: Tensor, v: Tensor) -> Tensor:
        return torch.rad2deg(torch.atan2(torch.linalg.cross(u, v).norm(dim=-1), (u * v).sum(dim=-1)))

    return lengths, torch.stack([angle(b, c), angle(a, c), angle(a, b)], dim=1)
