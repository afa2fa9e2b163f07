r"""SyMat's coordinate generator: a score model on periodic interatomic distances.

SyMat (Luo, Liu, Ji, NeurIPS 2023, Sec. 3.4) generates atom positions with a score-based diffusion
model (NCSN-style denoising score matching, Song & Ermon 2019) whose network only sees interatomic
distances, which makes the generated coordinate distribution invariant to rotations,
translations, permutations and periodic translations.

**Noise.** :math:`L = 50` levels in geometric progression, :math:`\sigma_1 = 10 > \dots >
\sigma_L = 0.01` Å (:func:`noise_levels`). A crystal with Cartesian positions :math:`x` (Å) is
perturbed as :math:`\tilde x = x + \sigma_l \epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`,
with :math:`l` drawn uniformly per crystal, and wrapped back into the unit cell.

**Graph.** A periodic radius graph on :math:`\tilde x` (cutoff 4 Å for perov_5, the 5 nearest
incoming edges per atom, :func:`~symat.graph.periodic_radius_graph`); edges from an atom to its own
periodic images take part in message passing (they carry the lattice) but get no score (their
length does not depend on the positions).

**Score on distances.** A distance-only SphereNet (:class:`DistanceScoreNetwork`; no angles)
gives, for every edge :math:`j \to i` with length :math:`\tilde d_{ij}`, a scalar
:math:`s_\theta(\tilde d_{ij}; z_P)` conditioned on the coordinate latent :math:`z_P`. The target
is the denoising direction of that distance, normalised per noise level,

.. math:: t_{ij} = (d_{ij} - \tilde d_{ij}) / \nu_l,

where :math:`d_{ij}` is the same edge (same periodic image) in the clean crystal aligned to the
noisy one (each clean atom moved to its periodic image nearest to its noisy position) and
:math:`\nu_l` is the root-mean-square of :math:`d - \tilde d` over the training crystals at level
:math:`l` (:func:`estimate_score_norms`; :math:`\nu_l \approx \sqrt 2 \sigma_l` for small
:math:`\sigma_l`). Distance scores become coordinate scores by the chain rule,
:math:`\partial \tilde d_{ij} / \partial \tilde x_i = -v_{ij}/\tilde d_{ij}` with
:math:`v_{ij} = \tilde x_j + oL - \tilde x_i`:

.. math::
    S_i = \sum_{j \to i,\ j \ne i} s_\theta(\tilde d_{ij}) \frac{-v_{ij}}{\tilde d_{ij}},\qquad
    T_i = \sum_{j \to i,\ j \ne i} t_{ij} \frac{-v_{ij}}{\tilde d_{ij}},\qquad
    \mathcal L_{coord} = \frac{1}{B} \sum_c \frac{1}{3 N_c} \sum_{i \in c} \lVert S_i - T_i \rVert^2.

:math:`S` rotates with the frame and permutes with the atoms (E(3)- and permutation-equivariant)
because :math:`s_\theta` sees only distances and graph connectivity.

**Sampling** (:func:`annealed_langevin`): start from uniform random fractional coordinates; for
:math:`l = 1, \dots, L` take ``steps`` Langevin steps (paper/reference: 100) with
:math:`\alpha_l = \epsilon (\sigma_l / \sigma_L)^2` (:math:`\epsilon = 10^{-4}`)

.. math:: \tilde x \leftarrow \tilde x + \alpha_l S(\tilde x)/\nu_l + \sqrt{2\alpha_l}\,\tau\,\xi,
          \quad \xi \sim \mathcal N(0, I),

(the score estimate is :math:`S/\nu_l`, since the network predicts the normalised target), with
noise temperature :math:`\tau` (reference: 0.01 for perov_5), wrapping the fractional
coordinates into :math:`[0, 1)` after every step.

Units: positions and distances Å; scores Å⁻¹ (:math:`S/\nu_l`); the network output is
dimensionless.

Differences from the reference code:
    - Scores of several periodic images of the same atom pair are summed (the formula above); the
      reference first averages them per atom pair.
    - :math:`\nu_l` is estimated at the start of training from the training crystals (root mean
      square over edges); the reference ships a precomputed ``score_norm.txt`` per dataset whose
      origin is not documented (its perov_5 values match ours: :math:`\approx 1.41\,\sigma` at small
      :math:`\sigma`, saturating near 1.8 Å).
    - Periodic images are searched as far as the cutoff requires (the reference uses the 27
      neighbouring cells only); positions are wrapped into :math:`[0, 1)` (the reference wraps into
      :math:`[-0.5, 0.5)` and recentres, a translation).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import Tensor, nn

from .basis import SineBasis
from .encoder import EmbeddingBlock, InteractionBlock
from .graph import PeriodicEdges, periodic_radius_graph, triplets
from .layers import build_mlp, segment_mean, segment_sum


def noise_levels(num_levels: int = 50, sigma_min: float = 0.01, sigma_max: float = 10.0) -> Tensor:
    r"""Geometric noise levels :math:`\sigma_1 = \sigma_{max} > \dots > \sigma_L = \sigma_{min}` (Å).

    Shapes: -> ``(num_levels,)`` float32, descending.

    Raises:
        ValueError: ``num_levels < 1`` or not ``0 < sigma_min <= sigma_max`` (equal only for one level).
    """
    if num_levels < 1:
        raise ValueError(f"num_noise_levels must be >= 1, got {num_levels}")
    if not 0 < sigma_min <= sigma_max or (num_levels > 1 and sigma_min == sigma_max):
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), num_levels, dtype=torch.float64)).float()


def wrap_cart(cart: Tensor, lattice: Tensor, batch: Tensor) -> Tensor:
    """Wrap Cartesian positions into the unit cell (fractional coordinates in [0, 1)).

    Shapes: ``cart (N, 3)``, ``lattice (B, 3, 3)``, ``batch (N,)`` -> ``(N, 3)``.
    """
    frac = torch.einsum("ni,nij->nj", cart, torch.linalg.inv(lattice)[batch])  # f = x L^-1
    frac = frac - torch.floor(frac)
    return torch.einsum("ni,nij->nj", frac, lattice[batch])


def cart_to_frac(cart: Tensor, lattice: Tensor, batch: Tensor) -> Tensor:
    """Fractional coordinates wrapped into [0, 1): ``(N, 3)`` -> ``(N, 3)``."""
    frac = torch.einsum("ni,nij->nj", cart, torch.linalg.inv(lattice)[batch])
    frac = frac - torch.floor(frac)
    return torch.where(frac >= 1.0, frac - 1.0, frac)


_NEIGHBOUR_CELLS = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.float32)


def align_to(clean: Tensor, noisy: Tensor, lattice: Tensor, batch: Tensor) -> Tensor:
    """Move every clean atom to its periodic image nearest to its noisy position (27 candidate
    images around the rounded fractional difference).

    Shapes: ``clean, noisy (N, 3)`` Å, ``lattice (B, 3, 3)``, ``batch (N,)`` -> ``(N, 3)`` Å.
    """
    lat = lattice[batch]
    frac_diff = torch.einsum("ni,nij->nj", noisy - clean, torch.linalg.inv(lattice)[batch])
    base = torch.round(frac_diff)
    cells = base.unsqueeze(1) + _NEIGHBOUR_CELLS.to(clean.device, clean.dtype).unsqueeze(0)  # (N, 27, 3)
    candidates = clean.unsqueeze(1) + torch.einsum("nci,nij->ncj", cells, lat)
    best = (candidates - noisy.unsqueeze(1)).norm(dim=-1).argmin(dim=1)
    return candidates[torch.arange(clean.shape[0], device=clean.device), best]


class DistanceScoreNetwork(nn.Module):
    r"""The distance-only score network :math:`s_\theta(\tilde d_{ij}; z_P)`.

    A SphereNet without angles (the reference ``SphereNetLight``): atom-type embedding and the sine
    distance basis build edge features, ``num_layers`` :class:`~symat.encoder.InteractionBlock`
    updates pass messages along triplets ``k -> j -> i`` using distances only; the edge output
    :math:`e^2_{ji}` is concatenated with :math:`z_P` of its crystal and mapped to one scalar by an
    MLP (``Linear(H + D, 256)``, ReLU, ``Linear(256, 1)``). The network is not conditioned on the
    noise level (the target is normalised per level instead), as in the reference.

    Args:
        latent_dim: size of :math:`z_P`. hidden: edge feature width ``H``. num_layers: interaction
        blocks. int_emb_size, basis_emb_size_dist, num_radial, num_before_skip, num_after_skip:
        SphereNet sizes. basis_cutoff: Å, scale of the sine basis. fc_hidden, num_fc_hidden_layers:
        output MLP. cutoff: Å, radius of the graph. max_neighbors: nearest incoming edges kept.
    """

    def __init__(self, latent_dim: int, hidden: int = 128, num_layers: int = 4, int_emb_size: int = 64,
                 basis_emb_size_dist: int = 8, num_radial: int = 6, basis_cutoff: float = 5.0,
                 num_before_skip: int = 1, num_after_skip: int = 2, fc_hidden: int = 256,
                 num_fc_hidden_layers: int = 1, cutoff: float = 4.0, max_neighbors: int = 5):
        super().__init__()
        act = nn.SiLU()
        self.cutoff, self.max_neighbors = float(cutoff), int(max_neighbors)
        self.basis = SineBasis(num_radial, basis_cutoff)
        self.init_e = EmbeddingBlock(num_radial, hidden, act)
        self.update_es = nn.ModuleList(
            InteractionBlock(hidden, int_emb_size, basis_emb_size_dist, num_radial, num_before_skip,
                             num_after_skip, act, use_angles=False)
            for _ in range(num_layers))
        self.fc_score = build_mlp(hidden + latent_dim, fc_hidden, num_fc_hidden_layers, 1)

    def graph(self, cart: Tensor, lattice: Tensor, num_atoms: Tensor) -> PeriodicEdges:
        """The radius graph over (noisy) positions; no gradient flows through it."""
        return periodic_radius_graph(cart.detach(), lattice.detach(), num_atoms, self.cutoff, self.max_neighbors)

    def edge_scores(self, z: Tensor, edges: PeriodicEdges, latent: Tensor, batch: Tensor) -> Tensor:
        """Scalar score per edge: ``z (N,)`` atomic number - 1, ``latent (B, D)``, ``batch (N,)`` -> ``(E,)``."""
        src, dst = edges.edge_index[0], edges.edge_index[1]
        idx_kj, idx_ji = triplets(edges.edge_index, edges.images, z.shape[0])
        rbf = self.basis(edges.distances)
        e = self.init_e(z, rbf, src, dst)
        for update_e in self.update_es:
            e = update_e(e, rbf, None, None, idx_kj, idx_ji)
        features = torch.cat([e[1], latent[batch[dst]]], dim=-1)
        return self.fc_score(features).squeeze(-1)

    def atom_scores(self, z: Tensor, cart: Tensor, lattice: Tensor, num_atoms: Tensor, latent: Tensor,
                    edges: PeriodicEdges | None = None) -> tuple[Tensor, PeriodicEdges, Tensor]:
        r"""Per-atom score :math:`S_i = \sum_{j \to i, j \ne i} s_\theta(\tilde d_{ij}) (-v_{ij}/\tilde d_{ij})`
        (normalised units; divide by :math:`\nu_l` for Å⁻¹).

        Shapes: ``z (N,)`` int64 atomic number - 1, ``cart (N, 3)`` Å, ``lattice (B, 3, 3)`` Å,
        ``num_atoms (B,)``, ``latent (B, D)`` -> ``(S (N, 3), edges, edge_scores (E,))``.
        """
        if edges is None:
            edges = self.graph(cart, lattice, num_atoms)
        batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=cart.device), num_atoms)
        scores = self.edge_scores(z, edges, latent, batch)
        src, dst = edges.edge_index[0], edges.edge_index[1]
        weight = torch.where(src != dst, scores, torch.zeros_like(scores))
        unit = -edges.vectors / edges.distances.unsqueeze(-1)
        return segment_sum(weight.unsqueeze(-1) * unit, dst, cart.shape[0]), edges, scores

    def dsm_loss(self, z: Tensor, frac: Tensor, lattice: Tensor, num_atoms: Tensor, latent: Tensor,
                 sigmas: Tensor, score_norms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Denoising score-matching loss :math:`\mathcal L_{coord}` (module docstring) on one batch.

        Shapes: ``z (N,)``, ``frac (N, 3)``, ``lattice (B, 3, 3)`` Å, ``num_atoms (B,)``,
        ``latent (B, D)``, ``sigmas, score_norms (L,)`` -> scalar.
        """
        device = frac.device
        n_crystals = num_atoms.shape[0]
        batch = torch.repeat_interleave(torch.arange(n_crystals, device=device), num_atoms)
        level = torch.randint(0, sigmas.shape[0], (n_crystals,), device=device, generator=generator)
        lat = lattice.to(frac.dtype)
        clean = torch.einsum("ni,nij->nj", frac, lat[batch])
        noise = torch.randn(clean.shape, device=device, dtype=clean.dtype, generator=generator)
        noisy = wrap_cart(clean + sigmas[level][batch].unsqueeze(-1) * noise, lat, batch)
        aligned = align_to(clean, noisy, lat, batch)
        pred, edges, _ = self.atom_scores(z, noisy, lat, num_atoms, latent)
        src, dst = edges.edge_index[0], edges.edge_index[1]
        edge_crystal = batch[dst]
        clean_vec = aligned[src] + torch.einsum("ei,eij->ej", edges.images.to(lat.dtype), lat[edge_crystal]) - aligned[dst]
        target = (clean_vec.norm(dim=-1) - edges.distances) / score_norms[level][edge_crystal]
        target = torch.where(src != dst, target, torch.zeros_like(target))
        unit = -edges.vectors / edges.distances.unsqueeze(-1)
        target_atom = segment_sum(target.unsqueeze(-1) * unit, dst, frac.shape[0])
        per_atom = (pred - target_atom).pow(2).mean(dim=-1)
        return segment_mean(per_atom, batch, n_crystals).mean()


@torch.no_grad()
def estimate_score_norms(frac: Tensor, lattice: Tensor, num_atoms: Tensor, sigmas: Tensor, cutoff: float,
                         max_neighbors: int, generator: torch.Generator | None = None,
                         chunk: int = 256) -> Tensor:
    r""":math:`\nu_l = \sqrt{\mathbb E[(d - \tilde d)^2]}` over the non-self edges of the score graph of
    the given (training) crystals perturbed at each level (one draw per crystal and level).

    Shapes: ``frac (N, 3)``, ``lattice (B, 3, 3)`` Å, ``num_atoms (B,)``, ``sigmas (L,)`` ->
    ``(L,)`` Å (float32). A level without any edge (cannot happen with real data) gets
    :math:`\sqrt 2 \sigma_l`.
    """
    device = frac.device
    starts = torch.cumsum(num_atoms, 0) - num_atoms
    norms = []
    for sigma in sigmas.tolist():
        total, count = 0.0, 0
        for c0 in range(0, num_atoms.shape[0], chunk):
            n_at = num_atoms[c0:c0 + chunk]
            a0 = int(starts[c0])
            a1 = a0 + int(n_at.sum())
            lat = lattice[c0:c0 + chunk].to(frac.dtype)
            batch = torch.repeat_interleave(torch.arange(n_at.shape[0], device=device), n_at)
            clean = torch.einsum("ni,nij->nj", frac[a0:a1], lat[batch])
            noise = torch.randn(clean.shape, device=device, dtype=clean.dtype, generator=generator)
            noisy = wrap_cart(clean + sigma * noise, lat, batch)
            aligned = align_to(clean, noisy, lat, batch)
            edges = periodic_radius_graph(noisy, lat, n_at, cutoff, max_neighbors)
            src, dst = edges.edge_index
            keep = src != dst
            clean_vec = aligned[src] + torch.einsum("ei,eij->ej", edges.images.to(lat.dtype), lat[batch[dst]]) - aligned[dst]
            diff = (clean_vec.norm(dim=-1) - edges.distances)[keep]
            total += float(diff.double().pow(2).sum())
            count += int(keep.sum())
        norms.append(math.sqrt(total / count) if count else math.sqrt(2) * sigma)
    return torch.tensor(norms, dtype=torch.float32, device=device)


@torch.no_grad()
def annealed_langevin(score_fn: Callable[[Tensor], Tensor], frac_init: Tensor, lattice: Tensor, num_atoms: Tensor,
                      sigmas: Tensor, score_norms: Tensor, steps: int, step_size: float, noise_temperature: float,
                      generator: torch.Generator | None = None,
                      on_level: Callable[[], None] | None = None) -> Tensor:
    r"""Annealed Langevin dynamics over the noise levels (module docstring). ``on_level`` (optional)
    is called after each noise level (progress).

    Args:
        score_fn: ``cart (N, 3)`` -> normalised per-atom score ``S (N, 3)`` (fixed types, lattice, latent).
        frac_init: ``(N, 3)`` initial fractional coordinates (uniform in [0, 1) for SyMat).
        lattice: ``(B, 3, 3)`` Å. num_atoms: ``(B,)``.
        sigmas: ``(L,)`` descending noise levels; score_norms: ``(L,)`` their :math:`\nu_l`.
        steps: Langevin steps per level. step_size: :math:`\epsilon`.
        noise_temperature: :math:`\tau`. generator: optional torch RNG.

    Returns:
        ``(N, 3)`` fractional coordinates in [0, 1).
    """
    device = frac_init.device
    batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=device), num_atoms)
    lat = lattice.to(frac_init.dtype)
    cart = torch.einsum("ni,nij->nj", frac_init, lat[batch])
    sigma_min = float(sigmas.min())
    for level in range(sigmas.shape[0]):
        alpha = step_size * (float(sigmas[level]) / sigma_min) ** 2
        norm = float(score_norms[level])
        for _ in range(steps):
            score = score_fn(cart) / norm
            noise = torch.randn(cart.shape, device=device, dtype=cart.dtype, generator=generator)
            cart = wrap_cart(cart + alpha * score + math.sqrt(2 * alpha) * noise_temperature * noise, lat, batch)
        if on_level is not None:
            on_level()
    return cart_to_frac(cart, lat, batch)
