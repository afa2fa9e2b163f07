"""The runner's entry point for NequIP (``nequip_adapter.adapter:NequipAdapter``): the nequip
framework driver (:mod:`nequip_adapter.driver`) with NequIP's model builder."""

from __future__ import annotations

from nequip_adapter.driver import TRAINING_HYPERPARAMETERS, FrameworkAdapter

#: NequIPGNNModel's keywords, passed under the same names
MODEL_HYPERPARAMETERS = (
    "r_max", "num_layers", "l_max", "parity", "num_features", "radial_mlp_depth", "radial_mlp_width",
    "num_bessels", "bessel_trainable", "polynomial_cutoff_p", "model_dtype",
)
HYPERPARAMETERS = MODEL_HYPERPARAMETERS + TRAINING_HYPERPARAMETERS


class NequipAdapter(FrameworkAdapter):
    """Trains and applies NequIP (Batzner et al., Nat. Commun. 2022) through nequip 0.19.1:
    ``nequip.model.NequIPGNNModel`` (interaction blocks of equivariant convolutions) trained by
    :class:`~nequip_adapter.driver.FrameworkAdapter` (see there for data, loss, training, units,
    shapes and errors raised). The model section is nequip's ``configs/tutorial.yaml``'s: every
    keyword of :data:`MODEL_HYPERPARAMETERS` flat, the training statistics as the per-atom energy
    scales (per-type force RMS) and shifts (mean per-atom energy), optional ZBL pair potential.
    """

    MODEL_BUILDER = "nequip.model.NequIPGNNModel"
    MODEL_HYPERPARAMETERS = MODEL_HYPERPARAMETERS
