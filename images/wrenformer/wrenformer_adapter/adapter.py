"""The runner's entry point for Wrenformer (``wrenformer_adapter.adapter:WrenformerAdapter``).

Wrenformer is aviary's transformer form of Wren (Goodall et al., "Rapid discovery of stable
materials by coordinate-free coarse graining", Sci. Adv. 8, eabn4117 (2022)): a crystal becomes
its protostructure label, the space group and the Wyckoff positions each element occupies (no
coordinates). Each occupied Wyckoff site is a token: its multiplicity weight, the element's
``matscholar200`` embedding (200) and the Wyckoff position's embedding (``bra-alg-off``, 444),
645 features. A transformer encoder (pre-norm, ``n_attn_layers`` x ``n_attn_heads``) reads the
tokens; its outputs are averaged over the equivalent Wyckoff-letter assignments of the space
group and pooled (masked mean) over the sites; residual networks map that to the target.

Everything is aviary-models 1.2.1's (``aviary.wrenformer.model.Wrenformer``,
``aviary.wrenformer.data.df_to_in_mem_dataloader`` with its ``collate_batch``, and the training
step of :mod:`.driver`) except the protostructure label, which aviary 1.2.1 takes from pymatgen:
``pymatgen.analysis.prototypes.get_protostructure_label(structure, method="spglib")`` (spglib at
symprec 0.1, falling back to 1e-5).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from aviary.core import AGGREGATORS
from aviary.wrenformer.data import df_to_in_mem_dataloader
from aviary.wrenformer.model import Wrenformer
from pymatgen.analysis.prototypes import get_protostructure_label
from torch import nn

from runner.contract import Sample
from runner.progress import track

from .driver import TARGET, AviaryAdapter, check_structures

#: Wyckoff token width: 1 (multiplicity weight) + 200 (matscholar200) + 444 (bra-alg-off)
N_FEATURES = 1 + 200 + 444


def lr_lambda(epoch: int, warmup_epochs: int = 10) -> float:
    """Learning-rate factor of aviary's ``train_wrenformer`` (``aviary/train.py`` of aviary before
    1.2, not shipped in 1.2.1): linear warm-up over ``warmup_epochs``, then inverse square-root
    decay, ``min((e + 1) ** -0.5, (e + 1) * warmup ** -1.5)`` for 0-based epoch ``e``."""
    return min((epoch + 1) ** (-0.5), (epoch + 1) * warmup_epochs ** (-1.5))


class WrenformerNetwork(nn.Module):
    """The trained Wrenformer behind a forward of plain tensors, for parameter and FLOP counting:
    ``forward(features (S, L, 645) float, mask (S, L) bool, equivalence_counts (n,) long)``, S the
    equivalent Wyckoff sets of the n crystals, L the longest site sequence. Returns the
    Wrenformer's one-tuple of ``(n, outputs)``. Its parameters are exactly the Wrenformer's."""

    def __init__(self, wrenformer: nn.Module):
        super().__init__()
        self.wrenformer = wrenformer

    def forward(self, features: torch.Tensor, mask: torch.Tensor, equivalence_counts: torch.Tensor):
        return self.wrenformer(features, mask, [int(c) for c in equivalence_counts.tolist()])


class WrenformerAdapter(AviaryAdapter):
    """Wrenformer through aviary: ``Wrenformer(**hyperparameters)`` trained with aviary's loss,
    normalizer and ``evaluate`` step (:class:`.driver.AviaryAdapter`); AdamW with the warm-up /
    inverse-square-root schedule of aviary's ``train_wrenformer`` (:func:`lr_lambda`).

    Shapes: see :class:`WrenformerNetwork`.

    Raises:
        ValueError: see :class:`.driver.AviaryAdapter`; also when spglib finds no protostructure
            for a sample, naming the sample.
    """

    model_name = "wrenformer"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hp = self.hyperparameters
        if hp["d_model"] % hp["n_attn_heads"]:
            raise ValueError(f"wrenformer: hyperparameter d_model ({hp['d_model']}) must be divisible by "
                             f"n_attn_heads ({hp['n_attn_heads']})")
        unknown = [a for a in hp["embedding_aggregations"].split(",") if a not in AGGREGATORS]
        if unknown or not hp["embedding_aggregations"]:
            raise ValueError(f"wrenformer: hyperparameter embedding_aggregations {hp['embedding_aggregations']!r}: "
                             f"each comma-separated entry must be one of {', '.join(AGGREGATORS)}")
        self._network: WrenformerNetwork | None = None

    def _build_model(self) -> nn.Module:
        hp = self.hyperparameters
        return Wrenformer(robust=self.robust, n_targets=self.n_targets, task_dict=self.task_dict,
                          device=str(self.device), n_features=N_FEATURES, d_model=hp["d_model"],
                          n_attn_layers=hp["n_attn_layers"], n_attn_heads=hp["n_attn_heads"],
                          dropout=hp["dropout"], trunk_hidden=(1024, 512), out_hidden=(256, 128, 64),
                          embedding_aggregations=tuple(hp["embedding_aggregations"].split(","))).to(self.device)

    @property
    def network(self) -> nn.Module:
        if self._network is None:
            self._network = WrenformerNetwork(self._aviary_model())
        return self._network

    def _optimizer(self, model: nn.Module):
        hp = self.hyperparameters
        optimizer = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
        warmup = hp["warmup_epochs"]
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_lambda(e, warmup))

    def protostructure_label(self, sample: Sample, split: str) -> str:
        """pymatgen's protostructure label (``aflow_label:chemsys``, e.g.
        ``"ABC_oI12_74_e_a_c:Dy-Fe-Mn"``), computed once per loader (training, validation,
        prediction).

        Raises:
            ValueError: spglib found no symmetry for the structure (naming the sample).
        """
        try:
            label = get_protostructure_label(sample.structure, method="spglib", raise_errors=True)
        except Exception as exc:  # spglib / pymatgen raise several types
            raise ValueError(f"{split} sample {sample.id!r}: no protostructure label from spglib "
                             f"({type(exc).__name__}: {exc})") from exc
        if not label or ":" not in label:
            raise ValueError(f"{split} sample {sample.id!r}: no protostructure label from spglib ({label!r})")
        return label

    def _loader(self, samples: Sequence[Sample], targets: np.ndarray | None, shuffle: bool, split: str):
        check_structures(samples, split)
        labels = [self.protostructure_label(s, split) for s in track(samples, f"{split} protostructure labels")]
        frame = pd.DataFrame({"material_id": [s.id for s in samples], "protostructure": labels})
        if targets is not None:
            frame[TARGET] = targets.astype(np.float32) if self.task.task_type == "regression" else targets
        size = self.hyperparameters["batch_size"] if shuffle else max(self.hyperparameters["batch_size"], 512)
        return df_to_in_mem_dataloader(frame, input_col="protostructure", target_col=TARGET, id_col="material_id",
                                       embedding_type="protostructure", device=str(self.device),
                                       batch_size=size, shuffle=shuffle)

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        (features, mask, counts), *_ = next(iter(self._loader(samples, None, shuffle=False, split="flops")))
        return (features.to(self.device), mask.to(self.device),
                torch.as_tensor(counts, dtype=torch.long, device=self.device))
