"""The runner's entry point for Roost (``roost_adapter.adapter:RoostAdapter``).

Roost (Goodall and Lee, "Predicting materials properties without crystal structure: deep
representation learning from stoichiometry", Nat. Commun. 11, 6280 (2020),
https://doi.org/10.1038/s41467-020-19964-7) reads only the composition: each element is a node
(its ``matscholar200`` embedding and its fractional amount), every pair of elements is an edge,
``n_graph`` weighted soft-attention message-passing layers update the nodes and ``cry_heads``
weighted attention-pooling heads give the material's vector, which residual networks map to the
target. Everything here is aviary-models 1.2.1's: ``aviary.roost.model.Roost``,
``aviary.roost.data.CompositionData`` and ``collate_batch`` (featurization), and the training step
of :mod:`.driver`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from aviary.roost.data import CompositionData, collate_batch
from aviary.roost.model import Roost
from aviary.utils import initialize_optim
from torch import nn
from torch.utils.data import DataLoader

from runner.contract import Sample

from .driver import TARGET, AviaryAdapter, check_structures


def composition_frame(samples: Sequence[Sample], targets: np.ndarray | None) -> pd.DataFrame:
    """The table ``CompositionData`` reads: ``material_id``, ``composition`` (pymatgen's formula of
    the cell, e.g. ``"Dy2 Mn2 Fe2"``; Roost normalizes it to fractions) and the target (0 where
    predicting: the column must exist but is never read as a label then)."""
    return pd.DataFrame({
        "material_id": [s.id for s in samples],
        "composition": [s.structure.composition.formula for s in samples],
        TARGET: targets if targets is not None else np.zeros(len(samples)),
    })


class RoostAdapter(AviaryAdapter):
    """Roost through aviary: ``Roost(**hyperparameters)`` trained with aviary's loss, normalizer
    and ``evaluate`` step (:class:`.driver.AviaryAdapter`), optimizer and constant-rate
    ``MultiStepLR`` from ``aviary.utils.initialize_optim`` (the example script's defaults: AdamW,
    learning rate 3e-4, weight decay 1e-6).

    Shapes: ``forward_inputs`` returns ``(elem_weights (E, 1) float, elem_fea (E,) long Z,
    self_idx (P,) long, nbr_idx (P,) long, cry_elem_idx (E,) long)`` for E elements and P
    element pairs over the batch; ``network(*inputs)`` returns a one-tuple with the
    ``(n, 1)`` (``(n, 2)`` with ``robust``; ``2``/``4`` columns for classification) output.

    Raises:
        ValueError: see :class:`.driver.AviaryAdapter`; also for an element without a
            ``matscholar200`` embedding, naming the sample.
    """

    model_name = "roost"

    def _build_model(self) -> nn.Module:
        hp = self.hyperparameters
        return Roost(robust=self.robust, n_targets=self.n_targets, task_dict=self.task_dict,
                     device=str(self.device), elem_embedding=hp["elem_embedding"], elem_fea_len=hp["elem_fea_len"],
                     n_graph=hp["n_graph"], elem_heads=hp["elem_heads"], elem_gate=(hp["elem_gate"],),
                     elem_msg=(hp["elem_msg"],), cry_heads=hp["cry_heads"], cry_gate=(hp["cry_gate"],),
                     cry_msg=(hp["cry_msg"],), trunk_hidden=(1024, 512), out_hidden=(256, 128, 64)).to(self.device)

    def _optimizer(self, model: nn.Module):
        hp = self.hyperparameters
        return initialize_optim(model, optim=hp["optim"], learning_rate=hp["learning_rate"],
                                weight_decay=hp["weight_decay"], momentum=hp["momentum"], device=self.device)

    def _check_elements(self, samples: Sequence[Sample], split: str) -> None:
        known = self._aviary_model().elem_embedding.weight.detach().abs().sum(dim=1) > 0
        for sample in samples:
            for element in sample.structure.composition.elements:
                z = element.Z
                if z >= len(known) or not bool(known[z]):
                    raise ValueError(f"{split} sample {sample.id!r}: element {element} has no "
                                     f"{self.hyperparameters['elem_embedding']} embedding")

    def _loader(self, samples: Sequence[Sample], targets: np.ndarray | None, shuffle: bool, split: str):
        check_structures(samples, split)
        self._check_elements(samples, split)
        dataset = CompositionData(composition_frame(samples, targets), task_dict=self.task_dict)
        classification = self.task.task_type == "classification"

        def collate(batch):
            inputs, batch_targets, *ids = collate_batch(batch)
            if classification:  # CrossEntropyLoss wants (B,) labels; aviary's collate stacks (B, 1)
                batch_targets = tuple(t.view(-1) for t in batch_targets)
            return (inputs, batch_targets, *ids)

        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        size = self.hyperparameters["batch_size"] if shuffle else max(self.hyperparameters["batch_size"], 1024)
        return DataLoader(dataset, batch_size=size, shuffle=shuffle, generator=generator, collate_fn=collate)

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        inputs, *_ = next(iter(self._loader(samples, None, shuffle=False, split="flops")))
        return tuple(t.to(self.device) for t in inputs)
