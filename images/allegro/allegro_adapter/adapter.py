"""The runner's entry point for Allegro (``allegro_adapter.adapter:AllegroAdapter``): the nequip
framework driver (:mod:`allegro_adapter.driver`) with Allegro's model builder."""

from __future__ import annotations

from typing import Any

from allegro_adapter.driver import TRAINING_HYPERPARAMETERS, FrameworkAdapter

#: keywords of the two-body Bessel radial-chemical embedding (``allegro.nn.TwoBodyBesselScalarEmbed``)
EMBED_HYPERPARAMETERS = ("num_bessels", "bessel_trainable", "polynomial_cutoff_p")
#: AllegroModel's keywords, passed under the same names
BUILDER_HYPERPARAMETERS = (
    "r_max", "l_max", "parity", "num_layers", "num_scalar_features", "num_tensor_features",
    "scalar_embed_mlp_hidden_layers_depth", "allegro_mlp_hidden_layers_depth", "readout_mlp_hidden_layers_depth",
    "tp_path_channel_coupling", "model_dtype",
)
MODEL_HYPERPARAMETERS = BUILDER_HYPERPARAMETERS + EMBED_HYPERPARAMETERS
HYPERPARAMETERS = MODEL_HYPERPARAMETERS + TRAINING_HYPERPARAMETERS
#: AllegroModel keywords set to ``num_scalar_features``, as nequip-allegro's tutorial.yaml interpolates them
SCALAR_WIDTHS = ("radial_chemical_embed_dim", "scalar_embed_mlp_hidden_layers_width",
                 "allegro_mlp_hidden_layers_width", "readout_mlp_hidden_layers_width")


class AllegroAdapter(FrameworkAdapter):
    """Trains and applies Allegro (Musaelian et al., Nat. Commun. 2023) through nequip-allegro 0.8.3
    on nequip 0.19.1: ``allegro.model.AllegroModel`` trained by
    :class:`~allegro_adapter.driver.FrameworkAdapter` (see there for data, loss, training, units,
    shapes and errors raised). The model section is nequip-allegro's ``configs/tutorial.yaml``'s:
    the keywords of :data:`BUILDER_HYPERPARAMETERS` flat, a ``TwoBodyBesselScalarEmbed`` with
    :data:`EMBED_HYPERPARAMETERS`, the MLP widths and embedding dimension equal to
    ``num_scalar_features``, the training statistics as per-atom energy scale (force RMS) and shift
    (mean per-atom energy), optional ZBL pair potential.
    """

    MODEL_BUILDER = "allegro.model.AllegroModel"
    MODEL_HYPERPARAMETERS = MODEL_HYPERPARAMETERS
    STATISTICS = {"avg_num_neighbors": "num_neighbors_mean", "per_type_energy_scales": "forces_rms",
                  "per_type_energy_shifts": "per_atom_energy_mean"}

    def model_section(self) -> dict[str, Any]:
        section = super().model_section()
        section["radial_chemical_embed"] = {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                                            **{name: section.pop(name) for name in EMBED_HYPERPARAMETERS}}
        section.update({name: int(self.hp["num_scalar_features"]) for name in SCALAR_WIDTHS})
        return section
