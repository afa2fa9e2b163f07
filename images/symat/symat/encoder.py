r"""SyMat's encoders: a SphereNet on the periodic crystal graph, and the lattice MLPs.

SyMat (Luo, Liu, Ji, NeurIPS 2023, Sec. 3.2-3.3) encodes a crystal :math:`M = (A, P, L)` (atom
types, positions, lattice) into three Gaussian latents:

- :math:`z_A \in \mathbb{R}^{128}` (composition) and :math:`z_P \in \mathbb{R}^{128}`
  (coordinates) from a SphereNet (Liu et al., ICLR 2022) on the radius graph of the crystal with
  periodic images; the crystal embedding :math:`u \in \mathbb{R}^{256}` is mapped by two linear maps
  to :math:`(\mu, \log\sigma^2) \in \mathbb{R}^{2 \times 256}`, split into the two latents.
- :math:`z_L \in \mathbb{R}^{128}` (lattice) from the six standardised lattice parameters
  :math:`\ell = ((a, b, c) / N^{1/3}, \alpha, \beta, \gamma)` (:class:`LatticeEncoder`).

SphereNet (notation of the reference implementation): edge features :math:`e^1_{ji}, e^2_{ji}`,
node features :math:`v_i`, crystal feature :math:`u`; :math:`\mathrm{act}` = SiLU (swish).

.. math::
    e^1_{ji} = \mathrm{act}(W[h_{Z_i} \Vert h_{Z_j} \Vert \mathrm{act}(W_r e_{RBF}(d_{ji}))]),\quad
    e^2_{ji} = (W'_r e_{RBF}(d_{ji})) \odot e^1_{ji}

**Interaction** (per layer, :class:`InteractionBlock`), for triplets ``k -> j -> i``:

.. math::
    m_{kj} = \mathrm{act}(W_{down}[\mathrm{act}(W_{kj} e^1_{kj}) \odot W_{rbf} e_{RBF}(d_{kj})]),\quad
    \tilde m_{ji} = \mathrm{act}\Bigl(W_{up} \sum_k m_{kj} \odot W_{sbf} a_{SBF}(d_{kj}, \theta_{kji})
    \odot W_{t} a_{TBF}(d_{kj}, \theta_{kji}, \varphi_{kji})\Bigr)

.. math::
    e^1_{ji} \leftarrow \mathrm{Res}^{2}\bigl(\mathrm{act}(W \,\mathrm{Res}(\mathrm{act}(W_{ji} e^1_{ji})
    + \tilde m_{ji})) + e^1_{ji}\bigr),\quad e^2_{ji} = (W'_r e_{RBF}(d_{ji})) \odot e^1_{ji}

**Node / crystal update** (:class:`OutputBlock`): :math:`v_i = W_{out}\,\mathrm{act}^3(W_{up}
\sum_j e^2_{ji})` (three hidden layers), :math:`u \mathrel{+}= \sum_i v_i` after the embedding and
after each of the 4 layers. The basis functions are in :mod:`.basis`; distances, angles and
torsions are precomputed once per crystal (:func:`~symat.graph.encoder_geometry_batch`).

Units: distances Å, angles and torsions radians, lattice lengths Å, lattice angles degrees
(standardised before entering the network). Features are dimensionless.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .basis import RadialBesselBasis, SphericalTorsionBasis
from .layers import ResidualLayer, build_mlp, glorot_orthogonal, segment_sum

#: Rows of the atom-type embedding (atomic numbers 1..100), as in the reference.
MAX_ATOMIC_NUMBER = 100


class EmbeddingBlock(nn.Module):
    r"""Initial edge features :math:`(e^1, e^2)` from atom types and distances.

    Shapes: ``z (N,)`` int64 atomic numbers - 1, ``rbf (E, R)``, ``src, dst (E,)`` ->
    ``((E, H), (E, H))``.
    """

    def __init__(self, num_radial: int, hidden: int, act: nn.Module):
        super().__init__()
        self.act = act
        self.emb = nn.Embedding(MAX_ATOMIC_NUMBER, hidden)
        self.lin_rbf_0 = nn.Linear(num_radial, hidden)
        self.lin = nn.Linear(3 * hidden, hidden)
        self.lin_rbf_1 = nn.Linear(num_radial, hidden, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.emb.weight, -3**0.5, 3**0.5)
        self.lin_rbf_0.reset_parameters()
        self.lin.reset_parameters()
        glorot_orthogonal(self.lin_rbf_1.weight)

    def forward(self, z: Tensor, rbf: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        h = self.emb(z)
        rbf0 = self.act(self.lin_rbf_0(rbf))
        e1 = self.act(self.lin(torch.cat([h[dst], h[src], rbf0], dim=-1)))
        return e1, self.lin_rbf_1(rbf) * e1


class InteractionBlock(nn.Module):
    r"""One SphereNet edge update (see the module docstring). With ``use_angles=False`` the
    triplet messages carry no angle/torsion factor (SyMat's distance-only score network, the
    reference ``SphereNetLight``).

    Shapes: ``e = ((E, H), (E, H))``, ``rbf (E, R)``, ``sbf (T, S*R)``, ``tbf (T, S*S*R)``,
    ``idx_kj, idx_ji (T,)`` -> ``((E, H), (E, H))``.
    """

    def __init__(self, hidden: int, int_emb_size: int, basis_emb_size_dist: int, num_radial: int,
                 num_before_skip: int, num_after_skip: int, act: nn.Module, *, use_angles: bool = True,
                 basis_emb_size_angle: int = 8, basis_emb_size_torsion: int = 8, num_spherical: int = 7):
        super().__init__()
        self.act, self.use_angles = act, use_angles
        self.lin_rbf1 = nn.Linear(num_radial, basis_emb_size_dist, bias=False)
        self.lin_rbf2 = nn.Linear(basis_emb_size_dist, hidden, bias=False)
        if use_angles:
            self.lin_sbf1 = nn.Linear(num_spherical * num_radial, basis_emb_size_angle, bias=False)
            self.lin_sbf2 = nn.Linear(basis_emb_size_angle, int_emb_size, bias=False)
            self.lin_t1 = nn.Linear(num_spherical**2 * num_radial, basis_emb_size_torsion, bias=False)
            self.lin_t2 = nn.Linear(basis_emb_size_torsion, int_emb_size, bias=False)
        self.lin_rbf = nn.Linear(num_radial, hidden, bias=False)
        self.lin_kj = nn.Linear(hidden, hidden)
        self.lin_ji = nn.Linear(hidden, hidden)
        self.lin_down = nn.Linear(hidden, int_emb_size, bias=False)
        self.lin_up = nn.Linear(int_emb_size, hidden, bias=False)
        self.layers_before_skip = nn.ModuleList(ResidualLayer(hidden, act) for _ in range(num_before_skip))
        self.lin = nn.Linear(hidden, hidden)
        self.layers_after_skip = nn.ModuleList(ResidualLayer(hidden, act) for _ in range(num_after_skip))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        names = ["lin_rbf1", "lin_rbf2", "lin_kj", "lin_ji", "lin_down", "lin_up", "lin", "lin_rbf"]
        if self.use_angles:
            names += ["lin_sbf1", "lin_sbf2", "lin_t1", "lin_t2"]
        for name in names:
            lin = getattr(self, name)
            glorot_orthogonal(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        for layer in [*self.layers_before_skip, *self.layers_after_skip]:
            layer.reset_parameters()

    def forward(self, e: tuple[Tensor, Tensor], rbf: Tensor, sbf: Tensor | None, tbf: Tensor | None,
                idx_kj: Tensor, idx_ji: Tensor) -> tuple[Tensor, Tensor]:
        e1, _ = e
        x_ji = self.act(self.lin_ji(e1))
        x_kj = self.act(self.lin_kj(e1)) * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = self.act(self.lin_down(x_kj))[idx_kj]
        if self.use_angles:
            x_kj = x_kj * self.lin_sbf2(self.lin_sbf1(sbf)) * self.lin_t2(self.lin_t1(tbf))
        x_kj = self.act(self.lin_up(segment_sum(x_kj, idx_ji, e1.shape[0])))
        h = x_ji + x_kj
        for layer in self.layers_before_skip:
            h = layer(h)
        h = self.act(self.lin(h)) + e1
        for layer in self.layers_after_skip:
            h = layer(h)
        return h, self.lin_rbf(rbf) * h


class OutputBlock(nn.Module):
    r"""Node features from incoming edges: :math:`v_i = W_{out}\,\mathrm{act}(W_3 \cdots
    \mathrm{act}(W_1 W_{up} \sum_j e^2_{ji}))`.

    Shapes: ``e2 (E, H)``, ``dst (E,)`` -> ``(N, out_channels)``.
    """

    def __init__(self, hidden: int, out_emb_channels: int, out_channels: int, num_layers: int, act: nn.Module):
        super().__init__()
        self.act = act
        self.lin_up = nn.Linear(hidden, out_emb_channels)
        self.lins = nn.ModuleList(nn.Linear(out_emb_channels, out_emb_channels) for _ in range(num_layers))
        self.lin = nn.Linear(out_emb_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_orthogonal(self.lin_up.weight)
        for lin in self.lins:
            glorot_orthogonal(lin.weight)
            nn.init.zeros_(lin.bias)
        glorot_orthogonal(self.lin.weight)

    def forward(self, e2: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
        v = self.lin_up(segment_sum(e2, dst, num_nodes))
        for lin in self.lins:
            v = self.act(lin(v))
        return self.lin(v)


class SphereNetEncoder(nn.Module):
    r"""SphereNet on precomputed periodic geometry -> crystal embedding :math:`u` (sum over atoms
    of the node outputs of the embedding and every layer).

    Shapes:
        ``z (N,)`` int64 atomic number - 1; ``edge_index (2, E)`` (row 0 source, row 1 target);
        ``distance (E,)`` Å; ``angle, torsion (T,)`` rad; ``idx_kj, idx_ji (T,)``; ``batch (N,)``
        crystal of each atom; -> ``(B, out_channels)``.

    Invariant to rotations, translations, atom permutations and the choice of unit-cell origin
    (its inputs are).

    Differences from the paper / reference code:
        - Graph: a radius graph (``cutoff`` Å, the ``max_neighbors`` nearest of every atom kept,
          with ties) instead of the reference's CrystalNN bonds (pymatgen's CrystalNN is slow and
          not part of the paper's method description); see ``README.md``.
        - Bases: see :mod:`.basis` (same functions, evaluated stably; torsion harmonics paired with
          Bessel functions of the same degree).
    """

    def __init__(self, cutoff: float = 5.0, num_layers: int = 4, hidden_channels: int = 128,
                 out_channels: int = 256, int_emb_size: int = 64, basis_emb_size_dist: int = 8,
                 basis_emb_size_angle: int = 8, basis_emb_size_torsion: int = 8, out_emb_channels: int = 256,
                 num_spherical: int = 7, num_radial: int = 6, envelope_exponent: int = 5,
                 num_before_skip: int = 1, num_after_skip: int = 2, num_output_layers: int = 3):
        super().__init__()
        act = nn.SiLU()
        self.rbf = RadialBesselBasis(num_radial, cutoff, envelope_exponent)
        self.triplet_basis = SphericalTorsionBasis(num_spherical, num_radial, cutoff)
        self.init_e = EmbeddingBlock(num_radial, hidden_channels, act)
        self.init_v = OutputBlock(hidden_channels, out_emb_channels, out_channels, num_output_layers, act)
        self.update_es = nn.ModuleList(
            InteractionBlock(hidden_channels, int_emb_size, basis_emb_size_dist, num_radial, num_before_skip,
                             num_after_skip, act, use_angles=True, basis_emb_size_angle=basis_emb_size_angle,
                             basis_emb_size_torsion=basis_emb_size_torsion, num_spherical=num_spherical)
            for _ in range(num_layers))
        self.update_vs = nn.ModuleList(
            OutputBlock(hidden_channels, out_emb_channels, out_channels, num_output_layers, act)
            for _ in range(num_layers))
        self.out_channels = out_channels

    def forward(self, z: Tensor, edge_index: Tensor, distance: Tensor, angle: Tensor, torsion: Tensor,
                idx_kj: Tensor, idx_ji: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        src, dst = edge_index[0], edge_index[1]
        num_nodes = z.shape[0]
        rbf = self.rbf(distance)
        sbf, tbf = self.triplet_basis(distance, angle, torsion, idx_kj)
        e = self.init_e(z, rbf, src, dst)
        v = self.init_v(e[1], dst, num_nodes)
        u = segment_sum(v, batch, num_graphs)
        for update_e, update_v in zip(self.update_es, self.update_vs):
            e = update_e(e, rbf, sbf, tbf, idx_kj, idx_ji)
            v = update_v(e[1], dst, num_nodes)
            u = u + segment_sum(v, batch, num_graphs)
        return u


class LatticeEncoder(nn.Module):
    r"""The lattice branch of the encoder: :math:`\mu_L = \mathrm{MLP}_\mu(\hat\ell)`,
    :math:`\log\sigma_L^2 = \mathrm{MLP}_\sigma(\hat\ell)` from the standardised lattice parameters
    :math:`\hat\ell \in \mathbb{R}^6` (one hidden layer of ``hidden`` ReLU units each).

    Shapes: ``(B, 6)`` -> ``((B, latent_dim), (B, latent_dim))``.
    """

    def __init__(self, latent_dim: int, hidden: int, num_hidden_layers: int):
        super().__init__()
        self.fc_mu = build_mlp(6, hidden, num_hidden_layers, latent_dim)
        self.fc_log_var = build_mlp(6, hidden, num_hidden_layers, latent_dim)

    def forward(self, params: Tensor) -> tuple[Tensor, Tensor]:
        return self.fc_mu(params), self.fc_log_var(params)
