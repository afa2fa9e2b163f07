"""The e3nn phonon-DOS network (Chen, Andrejevic, Smidt et al., Adv. Sci. 8, 2004214 (2021)).

Built from e3nn primitives (``o3.FullyConnectedTensorProduct``, ``o3.TensorProduct``,
``o3.spherical_harmonics``, ``e3nn.nn.Gate``, ``e3nn.nn.FullyConnectedNet``,
``e3nn.math.soft_one_hot_linspace``); the layer structure follows the tutorial's ``Network``
(the January-2021 e3nn "gate points" design: self-connection, linear, edge tensor product with
radial-MLP weights, linear, gate) and its ``PeriodicNetwork`` wrapper (embedding, ReLU, mean
pooling, max normalisation). Message aggregation and pooling use ``index_add_`` (no
torch-scatter / torch-cluster).
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet, Gate
from torch import Tensor, nn

#: Scalar activations by parity (even: SiLU, odd: tanh) and gate activations (even: sigmoid, odd: tanh).
ACTIVATIONS = {1: nn.functional.silu, -1: torch.tanh}
GATE_ACTIVATIONS = {1: torch.sigmoid, -1: torch.tanh}


def path_exists(irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, ir_out) -> bool:
    """Whether some irrep of ``irreps_in1`` times some irrep of ``irreps_in2`` contains ``ir_out``."""
    ir_out = o3.Irrep(ir_out)
    return any(ir_out in ir1 * ir2 for _, ir1 in o3.Irreps(irreps_in1) for _, ir2 in o3.Irreps(irreps_in2))


def smooth_cutoff(x: Tensor) -> Tensor:
    r"""Smooth step :math:`u(x)` from 1 to 0 on :math:`x \in [1/2, 1]` (``x`` = length / cutoff).

    .. math::
        u(x) = \begin{cases} 1 & x < 1/2 \\ \tfrac12\bigl(1 - \cos(2\pi(x - 1))\bigr) & 1/2 \le x \le 1
        \\ 0 & x > 1 \end{cases}
    """
    y = 0.5 * (1.0 - torch.cos(2.0 * math.pi * (x - 1.0)))
    return torch.where(x < 0.5, torch.ones_like(y), torch.where(x > 1.0, torch.zeros_like(y), y))


class Convolution(nn.Module):
    r"""Equivariant point convolution with node attributes (one layer before its gate).

    For node features :math:`x` (irreps ``irreps_in``), node attributes :math:`z` (scalars),
    edges :math:`a \to b` with vector :math:`\vec r_{ab}` (Å), edge attributes
    :math:`Y_{ab} = u(|\vec r_{ab}|/r_{\max})\,Y^{(0..l_{\max})}(\hat r_{ab})` and radial basis
    :math:`B_{ab} \in \mathbb{R}^{n_b}`:

    .. math::
        s_b = \mathrm{SC}(x_b \otimes z_b),\qquad h_a = \mathrm{Lin}_1(x_a \otimes z_a)

    .. math::
        m_b = \frac{1}{\sqrt{\bar n}} \sum_{a \to b}
              \mathrm{TP}_{uvu}\bigl(h_a,\, Y_{ab};\ W = \mathrm{MLP}(B_{ab})\bigr)

    .. math::
        y_b = \sin(\pi/8)\, s_b + \cos(\pi/8)\, \mathrm{Lin}_2(m_b \otimes z_b)

    where SC, Lin₁ and Lin₂ are ``o3.FullyConnectedTensorProduct`` (learned weights shared by
    all nodes), TP an ``o3.TensorProduct`` with one ``uvu`` path for every output irrep
    :math:`l_{in} \otimes l_{edge} \to l_{out}` that occurs in ``irreps_out``, its weights given
    per edge by the radial MLP ``FullyConnectedNet([n_b] + radial_layers x [radial_neurons] +
    [weight_numel], SiLU)`` (no biases, so a zero basis vector gives zero weights), and
    :math:`\bar n` the average number of neighbours (edges per atom) of the training set.
    Output channels that SC cannot reach (its ``output_mask`` is 0) get :math:`\mathrm{Lin}_2`
    with coefficient 1 instead of :math:`\cos(\pi/8)`.

    Shapes (``N`` nodes, ``E`` edges): ``node_input (N, irreps_in.dim)``, ``node_attr (N,
    irreps_node_attr.dim)``, ``edge_src``/``edge_dst`` ``(E,)`` int64, ``edge_attr (E,
    irreps_edge_attr.dim)``, ``edge_basis (E, n_b)``, ``num_neighbors`` a 0-dim tensor; output
    ``(N, irreps_out.dim)``.
    """

    def __init__(self, irreps_in, irreps_node_attr, irreps_edge_attr, irreps_out, number_of_basis: int,
                 radial_layers: int, radial_neurons: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_node_attr = o3.Irreps(irreps_node_attr)
        self.irreps_edge_attr = o3.Irreps(irreps_edge_attr)
        self.irreps_out = o3.Irreps(irreps_out)

        self.sc = o3.FullyConnectedTensorProduct(self.irreps_in, self.irreps_node_attr, self.irreps_out)
        self.lin1 = o3.FullyConnectedTensorProduct(self.irreps_in, self.irreps_node_attr, self.irreps_in)

        mid, instructions = [], []
        for i_in, (mul, ir_in) in enumerate(self.irreps_in):
            for i_edge, (_, ir_edge) in enumerate(self.irreps_edge_attr):
                for ir_out in ir_in * ir_edge:
                    if ir_out in self.irreps_out:
                        instructions.append((i_in, i_edge, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid, permutation, _ = o3.Irreps(mid).sort()
        instructions = [(i1, i2, permutation[k], mode, train) for i1, i2, k, mode, train in instructions]
        self.irreps_mid = irreps_mid
        self.tp = o3.TensorProduct(self.irreps_in, self.irreps_edge_attr, irreps_mid, instructions,
                                   internal_weights=False, shared_weights=False)
        self.fc = FullyConnectedNet([number_of_basis] + radial_layers * [radial_neurons] + [self.tp.weight_numel],
                                    nn.functional.silu)
        self.lin2 = o3.FullyConnectedTensorProduct(irreps_mid, self.irreps_node_attr, self.irreps_out)
        c_s, c_x = math.sin(math.pi / 8), math.cos(math.pi / 8)
        mask = self.sc.output_mask.to(torch.get_default_dtype())
        self.register_buffer("c_x", (1.0 - mask) + c_x * mask, persistent=False)
        self.c_s = c_s

    def forward(self, node_input: Tensor, node_attr: Tensor, edge_src: Tensor, edge_dst: Tensor,
                edge_attr: Tensor, edge_basis: Tensor, num_neighbors: Tensor) -> Tensor:
        weight = self.fc(edge_basis)
        self_connection = self.sc(node_input, node_attr)
        h = self.lin1(node_input, node_attr)
        messages = self.tp(h[edge_src], edge_attr, weight)
        aggregated = h.new_zeros(h.shape[0], messages.shape[1]).index_add_(0, edge_dst, messages)
        aggregated = aggregated / num_neighbors.sqrt()
        out = self.lin2(aggregated, node_attr)
        return self.c_s * self_connection + self.c_x.to(out.dtype) * out


class GatedConvolution(nn.Module):
    """A :class:`Convolution` whose output is passed through an ``e3nn.nn.Gate``."""

    def __init__(self, conv: Convolution, gate: Gate):
        super().__init__()
        self.conv = conv
        self.gate = gate
        self.irreps_in = conv.irreps_in
        self.irreps_out = gate.irreps_out

    def forward(self, *args) -> Tensor:
        return self.gate(self.conv(*args))


class PDosNetwork(nn.Module):
    r"""E(3)-equivariant network from a crystal graph to a max-normalised spectrum (phonon DOS).

    Embedding (one ``Linear`` shared by features and attributes, as in the tutorial):

    .. math::
        x_i^{(0)} = \mathrm{ReLU}(W m_{Z_i} e_{Z_i} + c),\qquad z_i = \mathrm{ReLU}(W e_{Z_i} + c)

    with :math:`e_Z \in \mathbb{R}^{118}` the element one-hot and :math:`m_Z` the atomic mass (amu).
    Edges: :math:`B_{ab} = \sqrt{n_b}\,\mathrm{soft\_one\_hot\_linspace}(|\vec r_{ab}|; 0, r_{\max},
    n_b, \text{gaussian}, \text{cutoff=False})` and
    :math:`Y_{ab} = u(|\vec r_{ab}|/r_{\max})\,Y^{(0..l_{\max})}(\hat r_{ab})` (component-normalised
    spherical harmonics). ``layers`` gated convolutions with hidden irreps
    ``mul x (l, p)`` for :math:`l \le l_{\max}`, :math:`p = \pm 1` (only those the tensor products
    can reach; scalars SiLU / tanh by parity, gates sigmoid / tanh) and a final convolution to
    ``out_dim x 0e``:

    .. math::
        x^{(k)} = \mathrm{Gate}\bigl(\mathrm{Conv}_k(x^{(k-1)}, z)\bigr),\quad k = 1..K;\qquad
        o_i = \mathrm{ReLU}\bigl(\mathrm{Conv}_{K+1}(x^{(K)}, z)\bigr)_i

    .. math::
        g_c = \frac{1}{|c|}\sum_{i\in c} o_i,\qquad
        \hat y_c = \frac{g_c}{\max\bigl(\max_k g_{c,k},\ \varepsilon\bigr)}

    so every predicted spectrum is non-negative with maximum 1 (as the targets).

    Shapes (``N`` atoms, ``E`` edges, ``B`` crystals):
        - ``x``: ``(N, n_elements)`` float, mass-weighted one-hot (amu)
        - ``node_attr``: ``(N, n_elements)`` float, one-hot
        - ``edge_index``: ``(2, E)`` int64, row 0 source ``a`` (centre atom), row 1 destination
          ``b`` (neighbour); messages flow ``a -> b``
        - ``edge_vec``: ``(E, 3)`` float, Å, :math:`r_b + oL - r_a`
        - ``batch``: ``(N,)`` int64 crystal index of each atom in ``[0, B)``
        - output: ``(B, out_dim)``, non-negative, max 1 per row.

    Invariant to rotations, reflections and translations of the crystal, to the order of the
    atoms and (through the graph) to the choice of unit cell.

    Differences from the tutorial (``ninarina12/phononDoS_tutorial``):
        - float32 instead of the tutorial's ``torch.set_default_dtype(torch.float64)`` (speed; the
          invariances hold to ~1e-6).
        - :math:`\varepsilon = 10^{-12}` guards the max normalisation: the tutorial divides by the
          maximum directly, which gives NaN for a crystal whose ReLU output is all zero; here such a
          crystal gets the all-zero spectrum.
        - The average neighbour number :math:`\bar n` is a buffer (``num_neighbors``) set from the
          training graphs by the adapter (the tutorial passes ``n_train.mean()`` to the
          constructor); the same value for the same data.
        - The tensor-product paths are those of e3nn 0.6's gate-points design (an intermediate
          irrep is kept only if it occurs in the layer's output irreps).

    Args:
        n_elements: one-hot width (118).
        em_dim: embedding width (tutorial 64); features and attributes are ``em_dim x 0e``.
        mul: multiplicity of each hidden irrep (32).
        lmax: maximum degree of the spherical harmonics and hidden irreps (1).
        layers: number of gated convolutions (2); there are ``layers + 1`` convolutions.
        out_dim: number of spectrum points (51).
        max_radius: :math:`r_{\max}`, Å (5), end of the radial basis and of the smooth cutoff.
        number_of_basis: :math:`n_b` (10).
        radial_layers, radial_neurons: hidden layers and width of the radial MLP (1, 100).
        num_neighbors: initial :math:`\bar n` (replaced by the adapter before training).

    Raises:
        ValueError: non-positive sizes or radius.
    """

    def __init__(self, n_elements: int = 118, em_dim: int = 64, mul: int = 32, lmax: int = 1, layers: int = 2,
                 out_dim: int = 51, max_radius: float = 5.0, number_of_basis: int = 10, radial_layers: int = 1,
                 radial_neurons: int = 100, num_neighbors: float = 1.0, eps: float = 1e-12):
        super().__init__()
        for name, value in (("n_elements", n_elements), ("em_dim", em_dim), ("mul", mul), ("out_dim", out_dim),
                            ("number_of_basis", number_of_basis), ("radial_neurons", radial_neurons)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, value in (("lmax", lmax), ("layers", layers), ("radial_layers", radial_layers)):
            if int(value) < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not float(max_radius) > 0:
            raise ValueError(f"max_radius must be > 0 Å, got {max_radius}")
        if not float(num_neighbors) > 0:
            raise ValueError(f"num_neighbors must be > 0, got {num_neighbors}")
        self.lmax = int(lmax)
        self.max_radius = float(max_radius)
        self.number_of_basis = int(number_of_basis)
        self.eps = float(eps)
        self.register_buffer("num_neighbors", torch.tensor(float(num_neighbors)))

        self.embedding = nn.Linear(n_elements, em_dim)
        irreps_node_attr = o3.Irreps(f"{em_dim}x0e")
        self.irreps_edge_attr = o3.Irreps.spherical_harmonics(self.lmax)
        irreps_hidden = o3.Irreps([(mul, (l, p)) for l in range(self.lmax + 1) for p in (-1, 1)])
        self.irreps_out = o3.Irreps(f"{out_dim}x0e")

        irreps = o3.Irreps(f"{em_dim}x0e")
        self.layers = nn.ModuleList()
        for _ in range(int(layers)):
            scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden
                                 if ir.l == 0 and path_exists(irreps, self.irreps_edge_attr, ir)])
            gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden
                               if ir.l > 0 and path_exists(irreps, self.irreps_edge_attr, ir)])
            gate_ir = "0e" if path_exists(irreps, self.irreps_edge_attr, "0e") else "0o"
            gates = o3.Irreps([(m, gate_ir) for m, _ in gated])
            gate = Gate(scalars, [ACTIVATIONS[ir.p] for _, ir in scalars],
                        gates, [GATE_ACTIVATIONS[ir.p] for _, ir in gates], gated)
            conv = Convolution(irreps, irreps_node_attr, self.irreps_edge_attr, gate.irreps_in,
                               number_of_basis, radial_layers, radial_neurons)
            self.layers.append(GatedConvolution(conv, gate))
            irreps = gate.irreps_out
        self.output_conv = Convolution(irreps, irreps_node_attr, self.irreps_edge_attr, self.irreps_out,
                                       number_of_basis, radial_layers, radial_neurons)

    def set_num_neighbors(self, value: float) -> None:
        """Set :math:`\\bar n`, the average number of edges per atom (training set)."""
        if not float(value) > 0:
            raise ValueError(f"num_neighbors must be > 0, got {value}")
        self.num_neighbors.fill_(float(value))

    def node_outputs(self, x: Tensor, node_attr: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """Per-atom non-negative outputs ``(N, out_dim)`` before pooling (the tutorial's partial-DOS view)."""
        edge_src, edge_dst = edge_index[0], edge_index[1]
        edge_length = torch.linalg.vector_norm(edge_vec, dim=1)
        edge_sh = o3.spherical_harmonics(self.irreps_edge_attr, edge_vec, True, normalization="component")
        edge_attr = smooth_cutoff(edge_length / self.max_radius)[:, None] * edge_sh
        edge_basis = soft_one_hot_linspace(edge_length, 0.0, self.max_radius, self.number_of_basis,
                                           basis="gaussian", cutoff=False).mul(self.number_of_basis ** 0.5)
        h = torch.relu(self.embedding(x))
        z = torch.relu(self.embedding(node_attr))
        for layer in self.layers:
            h = layer(h, z, edge_src, edge_dst, edge_attr, edge_basis, self.num_neighbors)
        h = self.output_conv(h, z, edge_src, edge_dst, edge_attr, edge_basis, self.num_neighbors)
        return torch.relu(h)

    def forward(self, x: Tensor, node_attr: Tensor, edge_index: Tensor, edge_vec: Tensor, batch: Tensor,
                num_graphs: int | None = None) -> Tensor:
        """One forward pass; see the class docstring for shapes. ``num_graphs`` (``B``) defaults to
        ``batch.max() + 1``."""
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        out = self.node_outputs(x, node_attr, edge_index, edge_vec)
        summed = out.new_zeros(num_graphs, out.shape[1]).index_add_(0, batch, out)
        counts = out.new_zeros(num_graphs).index_add_(0, batch, torch.ones_like(batch, dtype=out.dtype))
        pooled = summed / counts.clamp_min(1.0)[:, None]
        maxima = pooled.max(dim=1, keepdim=True).values
        return pooled / maxima.clamp_min(self.eps)
