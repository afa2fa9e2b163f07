"""The Matformer network: embeddings, a stack of Matformer layers, mean pooling and a readout."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from .layers import MatformerConv, RBFExpansion


class Matformer(nn.Module):
    r"""Matformer (Yan et al., NeurIPS 2022) for one property per crystal.

    .. math::
        f_i^{(0)} = W_a x_i + b_a,\qquad
        e_{ij} = \operatorname{softplus}\bigl(W_r \operatorname{RBF}(\lVert r_j + o_{ij}L - r_i\rVert) + b_r\bigr)

    .. math::
        f^{(l)} = \operatorname{MatformerConv}_l\bigl(f^{(l-1)}, e\bigr),\quad l = 1,\dots,L;\qquad
        g_c = \frac{1}{|c|}\sum_{i \in c} f_i^{(L)}

    .. math::
        \hat y_c = W_o\,\operatorname{SiLU}(W_f g_c + b_f) + b_o
        \quad\text{(regression)},\qquad
        \log \hat p_c = \operatorname{LogSoftmax}\bigl(W_o\,\operatorname{SiLU}(W_f g_c + b_f) + b_o\bigr)
        \quad\text{(classification, 2 classes)}

    where :math:`x_i` is the 92-dim CGCNN feature vector of atom :math:`i` and :math:`c` a crystal.

    Shapes (``N`` atoms, ``E`` edges, ``B`` crystals in the batch):
        - ``x``: ``(N, atom_features)`` float32
        - ``edge_index``: ``(2, E)`` int64 (row 0 source ``j``, row 1 target ``i``)
        - ``edge_vec``: ``(E, 3)`` float32, Å (only its length is used, so the output is
          invariant to rotations and translations)
        - ``batch``: ``(N,)`` int64 crystal index of each atom, values in ``[0, B)``
        - output: ``(B,)`` for regression (the standardized target if trained on one), or
          ``(B, 2)`` log-probabilities for classification.

    Differences from the reference code:
        - The edge embedding is ``RBF -> Linear -> Softplus`` as in the paper's description; the
          reference appends a further ``Linear(d, d)``.
        - The reference hard-codes five layers in ``forward``; we loop over ``conv_layers``.
        - See :class:`~matformer.layers.RBFExpansion` (edge length vs ``-0.75/d``) and
          :class:`~matformer.layers.MatformerConv` (node update) for the other two.

    Args:
        atom_features: input node feature width (92 for CGCNN features).
        node_features: ``d``, the width of node and edge embeddings.
        rbf_bins, rbf_vmin, rbf_vmax: the radial basis (count, first and last centre in Å).
        heads: attention heads per layer.
        conv_layers: number of Matformer layers.
        fc_features: width of the hidden readout layer.
        classification: two-class log-softmax output instead of one regression output.

    Raises:
        ValueError: for non-positive widths or counts (from the layers).
    """

    def __init__(
        self,
        atom_features: int = 92,
        node_features: int = 128,
        rbf_bins: int = 128,
        rbf_vmin: float = 0.0,
        rbf_vmax: float = 8.0,
        heads: int = 4,
        conv_layers: int = 5,
        fc_features: int = 128,
        classification: bool = False,
    ):
        super().__init__()
        for name, value in (("atom_features", atom_features), ("node_features", node_features),
                            ("conv_layers", conv_layers), ("fc_features", fc_features)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.classification = bool(classification)
        self.atom_embedding = nn.Linear(atom_features, node_features)
        self.rbf = RBFExpansion(rbf_vmin, rbf_vmax, rbf_bins)
        self.edge_embedding = nn.Sequential(nn.Linear(rbf_bins, node_features), nn.Softplus())
        self.layers = nn.ModuleList(
            [MatformerConv(node_features, heads=heads, edge_dim=node_features) for _ in range(conv_layers)]
        )
        self.fc = nn.Sequential(nn.Linear(node_features, fc_features), nn.SiLU())
        self.fc_out = nn.Linear(fc_features, 2 if self.classification else 1)

    def reset_parameters(self) -> None:
        """Re-initialise every learnable parameter and the BatchNorm running statistics."""
        self.atom_embedding.reset_parameters()
        self.edge_embedding[0].reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.fc[0].reset_parameters()
        self.fc_out.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_vec: Tensor, batch: Tensor,
                num_graphs: int | None = None) -> Tensor:
        """One forward pass; see the class docstring for shapes. ``num_graphs`` (``B``) defaults
        to ``batch.max() + 1``."""
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        h = self.atom_embedding(x)
        e = self.edge_embedding(self.rbf(torch.linalg.vector_norm(edge_vec, dim=-1)))
        for layer in self.layers:
            h = layer(h, edge_index, e)
        pooled = scatter(h, batch, dim=0, dim_size=num_graphs, reduce="mean")
        out = self.fc_out(self.fc(pooled))
        if self.classification:
            return torch.log_softmax(out, dim=-1)
        return out.squeeze(-1)
