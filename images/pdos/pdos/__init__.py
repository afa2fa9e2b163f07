"""The e3nn phonon-DOS network (Chen, Andrejevic, Smidt et al., "Direct Prediction of Phonon
Density of States With Euclidean Neural Networks", Adv. Sci. 8, 2004214 (2021); tutorial defaults
of ninarina12/phononDoS_tutorial), implemented for the mateval benchmark with e3nn.

Modules: :mod:`.graph` (periodic radius graph), :mod:`.features` (mass-weighted element
one-hot), :mod:`.network` (the equivariant network) and :mod:`.adapter` (the runner's entry point,
``pdos.adapter:PDosAdapter``).
"""

from .features import N_ELEMENTS, atomic_numbers, element_one_hot, mass_weighted_one_hot, node_inputs
from .graph import PeriodicGraph, radius_graph
from .network import Convolution, PDosNetwork

__all__ = [
    "N_ELEMENTS",
    "Convolution",
    "PDosNetwork",
    "PeriodicGraph",
    "atomic_numbers",
    "element_one_hot",
    "mass_weighted_one_hot",
    "node_inputs",
    "radius_graph",
]
