"""SyMat (Luo, Liu, Ji, "Towards Symmetry-Aware Generation of Periodic Materials", NeurIPS 2023),
implemented from the paper for the mateval benchmark.

Modules: :mod:`.graph` (periodic radius graphs, triplets, angles and torsions), :mod:`.basis`
(spherical Bessel / spherical-harmonics bases), :mod:`.encoder` (SphereNet encoder, lattice
encoder), :mod:`.decoders` (composition and lattice decoders), :mod:`.score` (distance score
network, noise schedule, denoising score matching, annealed Langevin dynamics), :mod:`.vae` (the
whole network) and :mod:`.adapter` (the runner's entry point, ``symat.adapter:SyMatAdapter``).
"""

from .graph import encoder_geometry, encoder_geometry_batch, periodic_radius_graph, triplets
from .score import DistanceScoreNetwork, annealed_langevin, noise_levels
from .vae import SyMat, SyMatConfig

__all__ = [
    "DistanceScoreNetwork",
    "SyMat",
    "SyMatConfig",
    "annealed_langevin",
    "encoder_geometry",
    "encoder_geometry_batch",
    "noise_levels",
    "periodic_radius_graph",
    "triplets",
]
