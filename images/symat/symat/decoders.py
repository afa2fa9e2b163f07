r"""SyMat's VAE decoders: composition (number of element types -> element set -> counts) and lattice.

SyMat (Luo, Liu, Ji, NeurIPS 2023, Sec. 3.2) generates the atom types of a crystal as a
permutation-invariant *atom type set*: with :math:`\mathcal{V}` the element vocabulary and
:math:`z_A` the composition latent,

1. the number of distinct elements :math:`k \in \{1, \dots, K_{max}\}`:
   :math:`p(k \mid z_A) = \mathrm{softmax}(\mathrm{MLP}_k(z_A))` (cross-entropy loss);
2. the element set :math:`S \subset \mathcal{V}`, :math:`|S| = k`: independent Bernoulli logits
   :math:`\mathrm{MLP}_S(z_A) \in \mathbb{R}^{|\mathcal{V}|}` (binary cross-entropy, averaged over
   crystals and elements); at generation the :math:`k` most likely elements;
3. the count :math:`n_e \in \{1, \dots, N_{max}\}` of every element :math:`e \in S`:
   :math:`p(n_e \mid z_A, e) = \mathrm{softmax}(\mathrm{MLP}_n(z_A \odot h_e))` with :math:`h_e` the
   encoder's atom-type embedding of :math:`e` (cross-entropy, averaged over the elements of a
   crystal, then over crystals).

The lattice is generated from the lattice latent :math:`z_L` as the six standardised parameters
:math:`\hat\ell = \mathrm{MLP}_L(z_L)` (MSE loss); lengths are de-standardised and multiplied by
:math:`N^{1/3}`, angles are in degrees.

All MLPs have one hidden layer of 256 ReLU units (reference ``build_mlp``).

Differences from the reference code:
    - The element-set head covers the task's element vocabulary (the elements of the training
      split, ``TaskSpec.elements``) instead of all 100 atomic numbers, so generated crystals only
      contain known elements. Its BCE is therefore averaged over ``|V|`` instead of 100 outputs; the
      loss weight is the paper's.
    - At generation :math:`k` is capped at :math:`|\mathcal{V}|`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import build_mlp, segment_mean


class CompositionDecoder(nn.Module):
    """The three composition heads.

    Args:
        latent_dim: size of :math:`z_A`.
        hidden: hidden width of the MLPs.
        num_hidden_layers: hidden layers of the MLPs.
        num_elements: vocabulary size :math:`|V|`.
        max_count: :math:`N_{max}`, the largest number of distinct elements and of atoms of one
            element (classes ``1..max_count``; the reference uses ``max_num_atoms``).
        element_embedding: the encoder's atom-type embedding (shared, indexed by atomic number - 1).
    """

    def __init__(self, latent_dim: int, hidden: int, num_hidden_layers: int, num_elements: int, max_count: int,
                 element_embedding: nn.Embedding):
        super().__init__()
        self.num_elements, self.max_count = num_elements, max_count
        self.fc_num_types = build_mlp(latent_dim, hidden, num_hidden_layers, max_count)
        self.fc_types = build_mlp(latent_dim, hidden, num_hidden_layers, num_elements)
        self.fc_count = build_mlp(latent_dim, hidden, num_hidden_layers, max_count)
        self.element_embedding = element_embedding  # shared with the encoder, not owned

    def count_logits(self, z_comp: Tensor, crystal: Tensor, z_index: Tensor) -> Tensor:
        """Logits of the counts: ``z_comp (B, D)``, ``crystal (P,)``, ``z_index (P,)`` (atomic number - 1)
        -> ``(P, max_count)``."""
        return self.fc_count(z_comp[crystal] * self.element_embedding(z_index))

    def losses(self, z_comp: Tensor, counts: Tensor, vocab_atomic_numbers: Tensor) -> dict[str, Tensor]:
        r"""Composition losses.

        Args:
            z_comp: ``(B, D)`` composition latents.
            counts: ``(B, |V|)`` int64 atoms of each vocabulary element per crystal.
            vocab_atomic_numbers: ``(|V|,)`` int64 atomic numbers of the vocabulary.

        Returns:
            ``{"elem_type_num": CE of k, "elem_type": BCE of the set, "elem_num": CE of counts}``.
        """
        present = counts > 0
        num_types = present.sum(dim=1)
        loss_k = F.cross_entropy(self.fc_num_types(z_comp), num_types - 1)
        loss_set = F.binary_cross_entropy_with_logits(self.fc_types(z_comp), present.float())
        crystal, element = present.nonzero(as_tuple=True)
        logits = self.count_logits(z_comp, crystal, vocab_atomic_numbers[element] - 1)
        per_pair = F.cross_entropy(logits, counts[crystal, element] - 1, reduction="none")
        loss_n = segment_mean(per_pair, crystal, z_comp.shape[0]).mean()
        return {"elem_type_num": loss_k, "elem_type": loss_set, "elem_num": loss_n}

    @torch.no_grad()
    def decode(self, z_comp: Tensor, vocab_atomic_numbers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Most likely composition: ``k = argmax + 1`` (at most ``|V|``), the top-``k`` elements,
        ``argmax + 1`` atoms of each.

        Returns:
            ``(crystal (P,), atomic_number (P,), count (P,))`` int64, one row per (crystal, element)
            pair, crystals in order; every crystal has at least one pair.
        """
        k = (self.fc_num_types(z_comp).argmax(dim=1) + 1).clamp(max=self.num_elements)
        type_logits = self.fc_types(z_comp)
        order = type_logits.argsort(dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(self.num_elements, device=z_comp.device).expand_as(order))
        chosen = rank < k.unsqueeze(1)  # (B, |V|)
        crystal, element = chosen.nonzero(as_tuple=True)
        atomic_number = vocab_atomic_numbers[element]
        count = self.count_logits(z_comp, crystal, atomic_number - 1).argmax(dim=1) + 1
        return crystal, atomic_number, count


class LatticeDecoder(nn.Module):
    r""":math:`\hat\ell = \mathrm{MLP}_L(z_L)`: ``(B, latent_dim)`` -> ``(B, 6)`` standardised
    ``(a, b, c) / N^{1/3}`` and ``(alpha, beta, gamma)``."""

    def __init__(self, latent_dim: int, hidden: int, num_hidden_layers: int):
        super().__init__()
        self.fc = build_mlp(latent_dim, hidden, num_hidden_layers, 6)

    def forward(self, z_lattice: Tensor) -> Tensor:
        return self.fc(z_lattice)
