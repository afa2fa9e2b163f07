"""Matformer (Yan et al., "Periodic Graph Transformers for Crystal Material Property Prediction",
NeurIPS 2022), implemented from the paper for the mateval benchmark.

Modules: :mod:`.atom_features` (CGCNN input features), :mod:`.graph` (periodic multigraph),
:mod:`.layers` (RBF expansion, Matformer layer), :mod:`.network` (the model) and :mod:`.adapter`
(the runner's entry point, ``matformer.adapter:MatformerAdapter``).
"""

from .atom_features import atom_features
from .graph import PeriodicGraph, build_edges, periodic_graph
from .layers import MatformerConv, RBFExpansion
from .network import Matformer

__all__ = [
    "Matformer",
    "MatformerConv",
    "PeriodicGraph",
    "RBFExpansion",
    "atom_features",
    "build_edges",
    "periodic_graph",
]
