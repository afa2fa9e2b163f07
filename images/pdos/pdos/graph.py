"""Periodic radius graph of a crystal (all atoms of the infinite crystal within a cutoff)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodicGraph:
    """The radius graph of one unit cell.

    Attributes:
        edge_index: ``(2, E)`` int64; row 0 the centre atom ``i`` (message source), row 1 the
            neighbour atom ``j`` (message destination), both indices into the unit cell.
        edge_vec: ``(E, 3)`` float64, Å: :math:`r_j + o_{ij} L - r_i`, the vector from atom ``i``
            to the image ``o_{ij}`` of atom ``j``.
        images: ``(E, 3)`` int64, the lattice translation :math:`o_{ij}` of the neighbour.
        num_nodes: number of atoms in the unit cell.
        num_self_loops: number of zero-length self edges ``(i, i, o = 0)`` included.
    """

    edge_index: np.ndarray
    edge_vec: np.ndarray
    images: np.ndarray
    num_nodes: int
    num_self_loops: int

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def num_neighbor_edges(self) -> int:
        """Edges to other atoms or to periodic images (self loops excluded)."""
        return self.num_edges - self.num_self_loops


def radius_graph(structure, cutoff: float = 5.0, self_interaction: bool = True,
                 numerical_tol: float = 1e-8) -> PeriodicGraph:
    r"""Every pair of atoms of the periodic crystal closer than ``cutoff`` (periodic images included).

    .. math::
        \mathcal{E} = \{(i, j, o) : \lVert r_j + oL - r_i \rVert \le r_{\max},\ (j, o) \ne (i, 0)\}
        \;\cup\; \{(i, i, 0)\ \text{if self\_interaction}\}

    with :math:`r_i` the Cartesian positions (Å), :math:`L` the lattice matrix (rows are the
    lattice vectors, Å) and :math:`o \in \mathbb{Z}^3`. The edge set is symmetric:
    :math:`(i, j, o) \in \mathcal{E} \Leftrightarrow (j, i, -o) \in \mathcal{E}`. One vectorised
    call of pymatgen's ``Structure.get_neighbor_list`` (distances up to ``cutoff`` plus its
    ``numerical_tol``); edges are sorted by ``(i, j, o)`` so that the graph does not depend on
    the search order. The graph (its multiset of edge vectors per atom) depends only on the
    infinite crystal, not on the choice of unit cell or origin.

    Self loops: the tutorial builds its graphs with ASE's ``neighbor_list(..., self_interaction=True)``,
    which adds each atom as its own neighbour at zero distance. In the network such an edge has
    :math:`Y^{(1)} = 0`, :math:`Y^{(0)} = 1` and the radial basis at 0 Å, so it acts as an extra
    learned self-connection; it also counts in the average neighbour number. ``self_interaction``
    keeps that behaviour (default).

    Shapes:
        ``edge_index (2, E)`` int64, ``edge_vec (E, 3)`` float64 in Å, ``images (E, 3)`` int64.

    Args:
        structure: ``pymatgen.core.Structure`` (Å), periodic in all three directions.
        cutoff: :math:`r_{\max}`, Å (paper: 5; tutorial notebook: 4).
        self_interaction: add the zero-length edge ``(i, i, 0)`` for every atom (tutorial: yes).
        numerical_tol: pymatgen's tolerance, Å.

    Returns:
        :class:`PeriodicGraph`.

    Raises:
        ValueError: an empty structure or a non-positive cutoff.
    """
    n_atoms = len(structure)
    if n_atoms == 0:
        raise ValueError("structure has no sites: cannot build a graph")
    if not float(cutoff) > 0:
        raise ValueError(f"cutoff must be > 0 Å, got {cutoff}")
    centers, neighbors, images, _ = structure.get_neighbor_list(float(cutoff), numerical_tol=numerical_tol,
                                                                exclude_self=True)
    centers = np.asarray(centers, dtype=np.int64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    images = np.rint(np.asarray(images, dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    n_self = 0
    if self_interaction:
        own = np.arange(n_atoms, dtype=np.int64)
        centers = np.concatenate([centers, own])
        neighbors = np.concatenate([neighbors, own])
        images = np.concatenate([images, np.zeros((n_atoms, 3), dtype=np.int64)])
        n_self = n_atoms
    order = np.lexsort((images[:, 2], images[:, 1], images[:, 0], neighbors, centers))
    centers, neighbors, images = centers[order], neighbors[order], images[order]
    cart = np.asarray(structure.cart_coords, dtype=np.float64)
    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64)
    edge_vec = cart[neighbors] + images @ lattice - cart[centers]
    return PeriodicGraph(
        edge_index=np.stack([centers, neighbors]),
        edge_vec=edge_vec,
        images=images,
        num_nodes=n_atoms,
        num_self_loops=n_self,
    )
