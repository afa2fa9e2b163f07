r"""The whole SyMat network as one module: VAE for composition and lattice + distance score model.

Training objective on a batch of :math:`B` crystals (Luo, Liu, Ji, NeurIPS 2023, Sec. 3; weights
from the reference configuration for perov_5/carbon_24/mp_20):

.. math::
    \mathcal L = \lambda_{KL}\,(\mathrm{KL}_{A,P} + \mathrm{KL}_L)
    + \lambda_k \mathcal L_k + \lambda_S \mathcal L_S + \lambda_n \mathcal L_n
    + \lambda_\ell \lVert \hat\ell - \ell_{std} \rVert^2 / 6 + \lambda_x \mathcal L_{coord}

with :math:`(\lambda_{KL}, \lambda_k, \lambda_S, \lambda_n, \lambda_\ell, \lambda_x) = (0.01, 1,
30, 1, 10, 10)`,
:math:`\mathrm{KL} = \frac1B\sum_c -\tfrac12 \sum_d (1 + \log\sigma_d^2 - \mu_d^2 - \sigma_d^2)`
for the 256-dimensional :math:`(z_A, z_P)` from the SphereNet encoder and the 128-dimensional
:math:`z_L` from the lattice encoder (:math:`\mu` clipped to :math:`\pm 14`, :math:`\log\sigma^2`
to :math:`\le 6`), :math:`\mathcal L_{k,S,n}` the composition losses (:mod:`.decoders`),
:math:`\ell_{std}` the standardised lattice parameters and :math:`\mathcal L_{coord}` the
denoising score-matching loss (:mod:`.score`), whose score network is conditioned on :math:`z_P`.
Latents are sampled with the reparameterisation trick (temperature 1 in training).

Generation (:meth:`SyMat.sample`): :math:`z_A, z_P, z_L \sim \mathcal N(0, T^2 I)` with one
temperature each (reference, perov_5: 1, 1, 0.01), composition and lattice decoded, then annealed
Langevin dynamics on the coordinates (:func:`~symat.score.annealed_langevin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoders import CompositionDecoder, LatticeDecoder
from .encoder import MAX_ATOMIC_NUMBER, LatticeEncoder, SphereNetEncoder
from .graph import lattice_from_parameters, lattice_parameters, min_plane_spacing
from .layers import segment_sum
from .score import DistanceScoreNetwork, annealed_langevin, noise_levels

#: Generated lattices with planes closer than this (Å) count as failed decodings.
MIN_PLANE_SPACING = 0.5


@dataclass(frozen=True)
class SyMatConfig:
    """Architecture and loss settings (defaults: the paper / reference configuration for perov_5)."""

    vocab: tuple[int, ...]  # atomic numbers of the element vocabulary, ascending
    max_count: int  # classes 1..max_count for the number of element types and per-element counts
    encoder_cutoff: float = 5.0
    encoder_max_neighbors: int = 12
    num_layers: int = 4
    hidden_channels: int = 128
    encoder_out_channels: int = 256
    int_emb_size: int = 64
    basis_emb_size_dist: int = 8
    basis_emb_size_angle: int = 8
    basis_emb_size_torsion: int = 8
    out_emb_channels: int = 256
    num_spherical: int = 7
    num_radial: int = 6
    envelope_exponent: int = 5
    num_before_skip: int = 1
    num_after_skip: int = 2
    num_output_layers: int = 3
    latent_dim: int = 128
    fc_hidden_dim: int = 256
    num_fc_hidden_layers: int = 1
    logvar_clip: float = 6.0
    mu_clip: float = 14.0
    score_basis_cutoff: float = 5.0
    score_cutoff: float = 4.0
    score_max_neighbors: int = 5
    num_noise_levels: int = 50
    sigma_min: float = 0.01
    sigma_max: float = 10.0
    loss_weights: dict = field(default_factory=lambda: {
        "kld": 0.01, "elem_type_num": 1.0, "elem_type": 30.0, "elem_num": 1.0, "lattice": 10.0, "coord": 10.0})


class SyMat(nn.Module):
    r"""SyMat: encoders, decoders and the score network; ``forward`` returns the training losses.

    Buffers set before training by the adapter: ``lattice_mean``, ``lattice_std`` (``(6,)``, of
    :math:`((a,b,c)/N^{1/3}, \alpha, \beta, \gamma)` over the training set, Å and degrees),
    ``score_norms`` (``(L,)`` :math:`\nu_l`, Å). ``sigmas`` (``(L,)``, Å, descending) and the
    vocabulary are fixed at construction.
    """

    def __init__(self, config: SyMatConfig):
        super().__init__()
        c = self.config = config
        if not config.vocab:
            raise ValueError("the element vocabulary is empty")
        if config.latent_dim != config.hidden_channels:
            raise ValueError(f"latent_dim ({config.latent_dim}) must equal hidden_channels ({config.hidden_channels}): "
                             "the element-count head multiplies z_A by the encoder's atom-type embedding")
        self.encoder = SphereNetEncoder(
            cutoff=c.encoder_cutoff, num_layers=c.num_layers, hidden_channels=c.hidden_channels,
            out_channels=c.encoder_out_channels, int_emb_size=c.int_emb_size,
            basis_emb_size_dist=c.basis_emb_size_dist, basis_emb_size_angle=c.basis_emb_size_angle,
            basis_emb_size_torsion=c.basis_emb_size_torsion, out_emb_channels=c.out_emb_channels,
            num_spherical=c.num_spherical, num_radial=c.num_radial, envelope_exponent=c.envelope_exponent,
            num_before_skip=c.num_before_skip, num_after_skip=c.num_after_skip,
            num_output_layers=c.num_output_layers)
        self.fc_mu = nn.Linear(c.encoder_out_channels, 2 * c.latent_dim)
        self.fc_var = nn.Linear(c.encoder_out_channels, 2 * c.latent_dim)
        self.lattice_encoder = LatticeEncoder(c.latent_dim, c.fc_hidden_dim, c.num_fc_hidden_layers)
        self.composition = CompositionDecoder(c.latent_dim, c.fc_hidden_dim, c.num_fc_hidden_layers, len(c.vocab),
                                              c.max_count, self.encoder.init_e.emb)
        self.lattice_decoder = LatticeDecoder(c.latent_dim, c.fc_hidden_dim, c.num_fc_hidden_layers)
        self.score = DistanceScoreNetwork(
            c.latent_dim, hidden=c.hidden_channels, num_layers=c.num_layers, int_emb_size=c.int_emb_size,
            basis_emb_size_dist=c.basis_emb_size_dist, num_radial=c.num_radial,
            basis_cutoff=c.score_basis_cutoff, num_before_skip=c.num_before_skip,
            num_after_skip=c.num_after_skip, fc_hidden=c.fc_hidden_dim,
            num_fc_hidden_layers=c.num_fc_hidden_layers, cutoff=c.score_cutoff,
            max_neighbors=c.score_max_neighbors)
        # the reference starts from unit variance: log-variance heads initialised to ~0
        nn.init.constant_(self.fc_var.weight, 1e-10)
        nn.init.zeros_(self.fc_var.bias)
        nn.init.constant_(self.lattice_encoder.fc_log_var[-1].weight, 1e-10)
        nn.init.zeros_(self.lattice_encoder.fc_log_var[-1].bias)

        vocab = torch.tensor(sorted(config.vocab), dtype=torch.long)
        if int(vocab.min()) < 1 or int(vocab.max()) > MAX_ATOMIC_NUMBER:
            raise ValueError(f"vocabulary atomic numbers must lie in 1..{MAX_ATOMIC_NUMBER}")
        to_vocab = torch.full((MAX_ATOMIC_NUMBER + 1,), -1, dtype=torch.long)
        to_vocab[vocab] = torch.arange(len(vocab))
        self.register_buffer("vocab", vocab)
        self.register_buffer("to_vocab", to_vocab)
        self.register_buffer("sigmas", noise_levels(c.num_noise_levels, c.sigma_min, c.sigma_max))
        self.register_buffer("score_norms", self.sigmas * 2**0.5)
        self.register_buffer("lattice_mean", torch.zeros(6))
        self.register_buffer("lattice_std", torch.ones(6))

    # ---------------------------------------------------------------- helpers
    def standardized_lattice(self, lattice: Tensor, num_atoms: Tensor) -> Tensor:
        r"""``((a, b, c) / N^{1/3}, alpha, beta, gamma)`` standardised: ``(B, 3, 3), (B,) -> (B, 6)``."""
        params = self.lattice_features(lattice, num_atoms)
        return (params - self.lattice_mean) / self.lattice_std

    @staticmethod
    def lattice_features(lattice: Tensor, num_atoms: Tensor) -> Tensor:
        """Raw ``((a, b, c) / N^{1/3}, alpha, beta, gamma)`` (Å, degrees): ``(B, 3, 3), (B,) -> (B, 6)``."""
        lengths, angles = lattice_parameters(lattice)
        scaled = lengths / num_atoms.to(lengths.dtype).pow(1.0 / 3.0).unsqueeze(-1)
        return torch.cat([scaled, angles], dim=-1)

    def _gaussian(self, mu: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu = mu.clamp(-self.config.mu_clip, self.config.mu_clip)
        log_var = log_var.clamp(max=self.config.logvar_clip)
        sample = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return mu, log_var, sample

    @staticmethod
    def _kld(mu: Tensor, log_var: Tensor) -> Tensor:
        return torch.mean(-0.5 * torch.sum(1.0 + log_var - mu**2 - log_var.exp(), dim=1))

    # ---------------------------------------------------------------- training
    def forward(self, atomic_numbers: Tensor, frac_coords: Tensor, lattice: Tensor, num_atoms: Tensor,
                edge_index: Tensor, distance: Tensor, angle: Tensor, torsion: Tensor, idx_kj: Tensor,
                idx_ji: Tensor) -> dict[str, Tensor]:
        r"""One training forward pass.

        Shapes (``N`` atoms, ``B`` crystals, ``E`` encoder edges, ``T`` triplets):
            ``atomic_numbers (N,)`` int64; ``frac_coords (N, 3)``; ``lattice (B, 3, 3)`` Å (rows =
            lattice vectors); ``num_atoms (B,)`` int64; the encoder geometry of
            :func:`~symat.graph.encoder_geometry_batch` with batch-global indices:
            ``edge_index (2, E)``, ``distance (E,)`` Å, ``angle, torsion (T,)`` rad,
            ``idx_kj, idx_ji (T,)``.

        Returns:
            ``{"loss": weighted total, "kld", "elem_type_num", "elem_type", "elem_num", "lattice",
            "coord"}`` (scalars; ``loss`` first).

        Raises:
            ValueError: an atom's element is outside the vocabulary, or a crystal has more than
                ``max_count`` element types or atoms of one element.
        """
        c = self.config
        n_crystals = num_atoms.shape[0]
        batch = torch.repeat_interleave(torch.arange(n_crystals, device=num_atoms.device), num_atoms)
        z = atomic_numbers - 1
        vocab_index = self.to_vocab[atomic_numbers.clamp(0, MAX_ATOMIC_NUMBER)]
        if bool((vocab_index < 0).any()):
            bad = sorted(set(atomic_numbers[vocab_index < 0].tolist()))
            raise ValueError(f"atomic numbers {bad} are not in the element vocabulary")
        counts = torch.zeros((n_crystals, len(c.vocab)), dtype=torch.long, device=num_atoms.device)
        counts.index_put_((batch, vocab_index), torch.ones_like(batch), accumulate=True)
        if int(counts.max()) > c.max_count or int((counts > 0).sum(dim=1).max()) > c.max_count:
            raise ValueError(f"a crystal exceeds max_count = {c.max_count} element types or atoms of one element")

        u = self.encoder(z, edge_index, distance.float(), angle.float(), torsion.float(), idx_kj, idx_ji,
                         batch, n_crystals)
        mu, log_var, latent = self._gaussian(self.fc_mu(u), self.fc_var(u))
        z_comp, z_pos = latent[:, :c.latent_dim], latent[:, c.latent_dim:]
        lattice_std = self.standardized_lattice(lattice.float(), num_atoms)
        mu_l, log_var_l, z_lat = self._gaussian(*self.lattice_encoder(lattice_std))

        losses = {"kld": self._kld(mu, log_var) + self._kld(mu_l, log_var_l)}
        losses.update(self.composition.losses(z_comp, counts, self.vocab))
        losses["lattice"] = F.mse_loss(self.lattice_decoder(z_lat), lattice_std)
        losses["coord"] = self.score.dsm_loss(z, frac_coords.float(), lattice.float(), num_atoms, z_pos,
                                              self.sigmas, self.score_norms)
        total = sum(c.loss_weights[name] * value for name, value in losses.items())
        return {"loss": total, **losses}

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def sample(self, n: int, temperatures: Sequence[float] = (1.0, 1.0, 0.01), langevin_steps: int = 100,
               step_size: float = 1e-4, noise_temperature: float = 0.01,
               generator: torch.Generator | None = None,
               on_level: Callable[[], None] | None = None) -> list[dict | None]:
        r"""Generate ``n`` crystals (``on_level``: called after each Langevin noise level).

        Args:
            n: number of crystals.
            temperatures: standard deviations of the priors of :math:`(z_A, z_P, z_L)`.
            langevin_steps: Langevin steps per noise level. step_size: :math:`\epsilon`.
            noise_temperature: :math:`\tau` of the Langevin noise.
            generator: optional torch RNG.

        Returns:
            ``n`` entries, each ``None`` (the decoded lattice is not a valid lattice: non-finite,
            impossible angles, or lattice planes closer than ``MIN_PLANE_SPACING`` Å, or the
            coordinates are not finite) or a dict with ``atomic_numbers (n_i,)`` int64,
            ``frac_coords (n_i, 3)``, ``lengths (3,)`` Å and ``angles (3,)`` degrees (numpy arrays).
        """
        c = self.config
        device = self.sigmas.device
        if n <= 0:
            return []

        def prior(t: float) -> Tensor:
            return torch.randn((n, c.latent_dim), device=device, generator=generator) * t

        z_comp, z_pos, z_lat = prior(temperatures[0]), prior(temperatures[1]), prior(temperatures[2])
        crystal, atomic_number, count = self.composition.decode(z_comp, self.vocab)
        num_atoms = segment_sum(count, crystal, n)
        params = self.lattice_decoder(z_lat) * self.lattice_std + self.lattice_mean
        lengths = params[:, :3] * num_atoms.to(params.dtype).pow(1.0 / 3.0).unsqueeze(-1)
        angles = params[:, 3:]
        lattice, valid = lattice_from_parameters(lengths.double(), angles.double())
        spacing = torch.zeros(n, dtype=torch.float64, device=device)
        if bool(valid.any()):
            spacing[valid] = min_plane_spacing(lattice[valid])
        valid = valid & (spacing >= MIN_PLANE_SPACING) & (num_atoms > 0)
        results: list[dict | None] = [None] * n
        keep = valid.nonzero().flatten()
        if keep.numel() == 0:
            return results
        pair_keep = valid[crystal]
        # atoms of the kept crystals, crystal by crystal (pairs are sorted by crystal)
        atoms = torch.repeat_interleave(atomic_number[pair_keep], count[pair_keep])
        sub_atoms = num_atoms[keep]
        sub_lattice = lattice[keep].float()
        z = atoms - 1
        latent = z_pos[keep]
        frac0 = torch.rand((atoms.shape[0], 3), device=device, generator=generator)

        def score_fn(cart: Tensor) -> Tensor:
            return self.score.atom_scores(z, cart, sub_lattice, sub_atoms, latent)[0]

        frac = annealed_langevin(score_fn, frac0, sub_lattice, sub_atoms, self.sigmas, self.score_norms,
                                 langevin_steps, step_size, noise_temperature, generator, on_level)
        start = 0
        for row, index in enumerate(keep.tolist()):
            stop = start + int(sub_atoms[row])
            coords = frac[start:stop]
            if bool(torch.isfinite(coords).all()):
                results[index] = {
                    "atomic_numbers": atoms[start:stop].cpu().numpy(),
                    "frac_coords": coords.double().cpu().numpy(),
                    "lengths": lengths[index].double().cpu().numpy(),
                    "angles": angles[index].double().cpu().numpy(),
                }
            start = stop
        return results
