"""The runner's entry point for SyMat (``symat.adapter:SyMatAdapter``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import Progress

from .encoder import MAX_ATOMIC_NUMBER
from .graph import encoder_geometry_batch
from .score import estimate_score_norms
from .vae import SyMat, SyMatConfig

#: Every hyperparameter this adapter reads (exactly the keys of model.yaml's ``hyperparameters``).
INT_HYPERPARAMETERS = (
    "encoder_max_neighbors", "num_layers", "hidden_channels", "encoder_out_channels", "int_emb_size",
    "basis_emb_size_dist", "basis_emb_size_angle", "basis_emb_size_torsion", "out_emb_channels", "num_spherical",
    "num_radial", "envelope_exponent", "num_before_skip", "num_after_skip", "num_output_layers", "latent_dim",
    "fc_hidden_dim", "num_fc_hidden_layers", "score_max_neighbors", "num_noise_levels", "batch_size", "epochs",
    "langevin_steps", "generation_batch_size",
)
FLOAT_HYPERPARAMETERS = (
    "encoder_cutoff", "logvar_clip", "mu_clip", "score_basis_cutoff", "score_cutoff", "sigma_min", "sigma_max",
    "kld_weight", "elem_type_num_weight", "elem_type_weight", "elem_num_weight", "lattice_weight", "coord_weight",
    "learning_rate", "weight_decay", "max_grad_value", "langevin_step_size", "temperature_composition",
    "temperature_coordinate", "temperature_lattice", "langevin_noise_temperature",
)
HYPERPARAMETERS = INT_HYPERPARAMETERS + FLOAT_HYPERPARAMETERS
#: At most this many training crystals are used to estimate the per-level score normalisers.
SCORE_NORM_CRYSTALS = 1024
#: Crystals per chunk when building encoder graphs.
GRAPH_CHUNK = 256


@dataclass(frozen=True)
class CrystalRecord:
    """One crystal prepared for SyMat: species, coordinates, lattice and its encoder geometry
    (indices local to the crystal). Float64 geometry, Å and radians."""

    sample_id: str
    atomic_numbers: torch.Tensor  # (n,) int64
    frac_coords: torch.Tensor  # (n, 3) float64
    lattice: torch.Tensor  # (3, 3) float64, rows = lattice vectors
    edge_index: torch.Tensor  # (2, E)
    distances: torch.Tensor  # (E,)
    angles: torch.Tensor  # (T,)
    torsions: torch.Tensor  # (T,)
    idx_kj: torch.Tensor  # (T,)
    idx_ji: torch.Tensor  # (T,)


class SyMatAdapter(ModelAdapter):
    r"""Trains :class:`~symat.vae.SyMat` and samples crystals from it under the mateval contract.

    Training (reference recipe): Adam (``learning_rate``, betas 0.9/0.999, ``weight_decay``),
    ``batch_size`` crystals per step, gradient values clipped to ``max_grad_value``, ``epochs``
    epochs, final weights kept; the loss is the weighted sum of the VAE losses and the
    denoising score-matching loss (``loss_name = "elbo+dsm"``: negative ELBO terms with the paper's
    weights plus the weighted DSM loss; dimensionless). Before the first epoch the lattice
    standardisation (mean and population standard deviation + 1e-5, as the reference's scaler) and
    the per-level score normalisers are computed from the training crystals (at most
    ``SCORE_NORM_CRYSTALS`` of them for the normalisers).

    Encoder graphs are built once per structure and cached (key: sample id and a hash of the
    structure). Batches are shuffled with a ``torch.Generator`` seeded by ``seed``; the noise of
    the VAE and of score matching uses torch's global RNG (seeded by the runner).

    ``generate(n)`` samples in chunks of ``generation_batch_size``; each entry is a
    ``pymatgen.core.Structure`` (``Lattice.from_parameters`` of the decoded lengths and angles and
    the Langevin fractional coordinates) or ``None`` when decoding failed (see
    :meth:`~symat.vae.SyMat.sample`).

    ``forward_inputs`` returns ``(atomic_numbers (N,), frac_coords (N, 3), lattice (B, 3, 3),
    num_atoms (B,), edge_index (2, E), distance (E,), angle (T,), torsion (T,), idx_kj (T,),
    idx_ji (T,))`` on ``self.device`` for :meth:`~symat.vae.SyMat.forward`.

    Differences from the reference training script: no restart-from-checkpoint heuristics (the
    reference reloads the previous epoch's weights when a batch loss leaves [0.1, 100] after epoch
    10); a batch with a non-finite loss is skipped instead. The validation loss is reported only
    (no model selection); validation crystals whose composition lies outside the training
    vocabulary or ``max_count`` are left out of it.

    Raises:
        ValueError: from ``__init__`` for a non-generation task, a missing or unknown hyperparameter,
            ``sigma_min >= sigma_max`` or ``latent_dim != hidden_channels`` (the message names it;
            types and ranges are model.yaml's ``hyperparameter_types``, checked by the runner before
            the adapter starts); from ``fit``/``forward_inputs``
            for structures that cannot be encoded (the message names the sample id): no sites,
            partial occupancies, elements beyond Z = 100, overlapping atoms, no neighbour within
            ``encoder_cutoff``, a singular or too flat lattice; from ``fit`` when ``train`` is empty
            or a training crystal has more element types or atoms of one element than
            ``TaskSpec.max_atoms``.
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "generation":
            raise ValueError(
                f"task type {task.task_type!r} of task {task.name!r} is not supported by SyMat (supported: generation)"
            )
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._cache: dict[tuple[str, str], CrystalRecord] = {}
        self._network: SyMat | None = None
        if task.elements and task.max_atoms:
            self._network = self._build(self._vocab_from_symbols(task.elements), int(task.max_atoms))

    # ------------------------------------------------------------------ hyperparameters
    @staticmethod
    def _validate(hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters as Python ints and floats.

        Types and ranges are declared in model.yaml (``hyperparameter_types``) and checked by the
        runner before the adapter starts; here only what relates several hyperparameters.
        """
        missing = [name for name in HYPERPARAMETERS if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for symat: {', '.join(unknown)}")
        out: dict[str, Any] = {name: int(hp[name]) for name in INT_HYPERPARAMETERS}
        out.update({name: float(hp[name]) for name in FLOAT_HYPERPARAMETERS})
        if out["sigma_min"] >= out["sigma_max"]:
            raise ValueError(
                f"hyperparameter sigma_min ({out['sigma_min']}) must be smaller than sigma_max ({out['sigma_max']})")
        if out["latent_dim"] != out["hidden_channels"]:
            raise ValueError(
                f"hyperparameter latent_dim ({out['latent_dim']}) must equal hidden_channels ({out['hidden_channels']}): "
                "the element-count head multiplies z_A by the encoder's atom-type embedding")
        return out

    def _build(self, vocab: tuple[int, ...], max_count: int) -> SyMat:
        hp = self.hp
        names = ("encoder_cutoff", "encoder_max_neighbors", "num_layers", "hidden_channels", "encoder_out_channels",
                 "int_emb_size", "basis_emb_size_dist", "basis_emb_size_angle", "basis_emb_size_torsion",
                 "out_emb_channels", "num_spherical", "num_radial", "envelope_exponent", "num_before_skip",
                 "num_after_skip", "num_output_layers", "latent_dim", "fc_hidden_dim", "num_fc_hidden_layers",
                 "logvar_clip", "mu_clip", "score_basis_cutoff", "score_cutoff", "score_max_neighbors",
                 "num_noise_levels", "sigma_min", "sigma_max")
        weights = {"kld": hp["kld_weight"], "elem_type_num": hp["elem_type_num_weight"],
                   "elem_type": hp["elem_type_weight"], "elem_num": hp["elem_num_weight"],
                   "lattice": hp["lattice_weight"], "coord": hp["coord_weight"]}
        config = SyMatConfig(vocab=vocab, max_count=max_count, loss_weights=weights, **{n: hp[n] for n in names})
        return SyMat(config).to(self.device)

    @staticmethod
    def _vocab_from_symbols(symbols: Sequence[str]) -> tuple[int, ...]:
        from pymatgen.core import Element

        numbers = sorted({Element(symbol).Z for symbol in symbols})
        too_heavy = [z for z in numbers if z > MAX_ATOMIC_NUMBER]
        if too_heavy:
            raise ValueError(f"elements with Z > {MAX_ATOMIC_NUMBER} are not supported: {too_heavy}")
        return tuple(numbers)

    # ------------------------------------------------------------------ data
    @staticmethod
    def _fingerprint(structure) -> str:
        digest = hashlib.sha1()
        digest.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
        digest.update(" ".join(str(site.species) for site in structure).encode())
        return digest.hexdigest()

    @staticmethod
    def _species(sample: Sample) -> np.ndarray:
        structure = sample.structure
        if len(structure) == 0:
            raise ValueError(f"sample {sample.id!r}: structure has no sites")
        if not structure.is_ordered:
            raise ValueError(f"sample {sample.id!r}: partial occupancies are not supported")
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
        if numbers.max() > MAX_ATOMIC_NUMBER:
            raise ValueError(f"sample {sample.id!r}: elements beyond Z = {MAX_ATOMIC_NUMBER} are not supported")
        return numbers

    def _records(self, samples: Sequence[Sample]) -> list[CrystalRecord]:
        hp = self.hp
        keys = [(str(s.id), self._fingerprint(s.structure)) for s in samples]
        todo = [i for i, key in enumerate(keys) if key not in self._cache]
        progress = Progress("graph building", len(todo))
        for c0 in range(0, len(todo), GRAPH_CHUNK):
            chunk = [samples[i] for i in todo[c0:c0 + GRAPH_CHUNK]]
            numbers = [self._species(s) for s in chunk]
            lattices = [np.array(s.structure.lattice.matrix, dtype=np.float64) for s in chunk]
            fracs = [np.array(s.structure.frac_coords, dtype=np.float64) for s in chunk]
            try:
                geometry, problems = encoder_geometry_batch(
                    torch.tensor(np.stack(lattices)), torch.tensor(np.concatenate(fracs)),
                    torch.tensor([len(n) for n in numbers]), hp["encoder_cutoff"], hp["encoder_max_neighbors"])
            except ValueError:
                # find the culprit(s) one by one for a message naming the sample
                for sample, lat, frac, num in zip(chunk, lattices, fracs, numbers):
                    try:
                        encoder_geometry_batch(torch.tensor(lat[None]), torch.tensor(frac), torch.tensor([len(num)]),
                                               hp["encoder_cutoff"], hp["encoder_max_neighbors"])
                    except ValueError as exc:
                        raise ValueError(f"sample {sample.id!r}: cannot build the SyMat encoder graph: {exc}") from exc
                raise
            for sample, problem in zip(chunk, problems):
                if problem is not None:
                    raise ValueError(f"sample {sample.id!r}: cannot build the SyMat encoder graph: {problem}")
            node_start = np.cumsum([0] + [len(n) for n in numbers])
            edge_start = torch.cumsum(geometry.edges_per_crystal, 0) - geometry.edges_per_crystal
            trip_start = torch.cumsum(geometry.triplets_per_crystal, 0) - geometry.triplets_per_crystal
            for b, sample in enumerate(chunk):
                e0, e1 = int(edge_start[b]), int(edge_start[b] + geometry.edges_per_crystal[b])
                t0, t1 = int(trip_start[b]), int(trip_start[b] + geometry.triplets_per_crystal[b])
                record = CrystalRecord(
                    sample_id=str(sample.id),
                    atomic_numbers=torch.from_numpy(numbers[b]),
                    frac_coords=torch.from_numpy(fracs[b]),
                    lattice=torch.from_numpy(lattices[b]),
                    edge_index=geometry.edge_index[:, e0:e1] - int(node_start[b]),
                    distances=geometry.distances[e0:e1].float(),
                    angles=geometry.angles[t0:t1].float(),
                    torsions=geometry.torsions[t0:t1].float(),
                    idx_kj=geometry.idx_kj[t0:t1] - e0,
                    idx_ji=geometry.idx_ji[t0:t1] - e0,
                )
                self._cache[(record.sample_id, self._fingerprint(sample.structure))] = record
            progress.update(len(chunk))
        progress.close()
        return [self._cache[key] for key in keys]

    def _collate(self, records: Sequence[CrystalRecord]) -> tuple:
        num_atoms = torch.tensor([len(r.atomic_numbers) for r in records], dtype=torch.long)
        num_edges = torch.tensor([r.distances.shape[0] for r in records], dtype=torch.long)
        node_offset = torch.cumsum(num_atoms, 0) - num_atoms
        edge_offset = torch.cumsum(num_edges, 0) - num_edges
        num_trip = torch.tensor([r.angles.shape[0] for r in records], dtype=torch.long)
        device = self.device
        args = (
            torch.cat([r.atomic_numbers for r in records]),
            torch.cat([r.frac_coords for r in records]).float(),
            torch.stack([r.lattice for r in records]).float(),
            num_atoms,
            torch.cat([r.edge_index for r in records], dim=1) + torch.repeat_interleave(node_offset, num_edges),
            torch.cat([r.distances for r in records]),
            torch.cat([r.angles for r in records]),
            torch.cat([r.torsions for r in records]),
            torch.cat([r.idx_kj for r in records]) + torch.repeat_interleave(edge_offset, num_trip),
            torch.cat([r.idx_ji for r in records]) + torch.repeat_interleave(edge_offset, num_trip),
        )
        return tuple(a.to(device) for a in args)

    def _compatible(self, record: CrystalRecord) -> str | None:
        """Why a crystal cannot be scored by the network's composition heads, or ``None``."""
        network = self._network
        vocab = set(network.config.vocab)
        numbers, counts = np.unique(record.atomic_numbers.numpy(), return_counts=True)
        outside = [int(z) for z in numbers if int(z) not in vocab]
        if outside:
            return f"atomic numbers {outside} are not in the element vocabulary"
        if len(numbers) > network.config.max_count or counts.max() > network.config.max_count:
            return f"more than max_count = {network.config.max_count} element types or atoms of one element"
        return None

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        if self._network is None:
            raise RuntimeError("the SyMat network is built by fit() when the task gives no elements/max_atoms")
        return self._network

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        train_records = self._records(train)
        if self._network is None:
            vocab = tuple(sorted({int(z) for r in train_records for z in r.atomic_numbers.tolist()}))
            max_count = int(self.task.max_atoms or max(len(r.atomic_numbers) for r in train_records))
            self._network = self._build(vocab, max_count)
        for record in train_records:
            problem = self._compatible(record)
            if problem is not None:
                raise ValueError(f"sample {record.sample_id!r}: {problem}")
        val_records = [r for r in self._records(val) if self._compatible(r) is None] if len(val) else []
        network = self._network
        self._set_statistics(train_records)

        generator = torch.Generator()
        generator.manual_seed(int(self.seed))
        optimizer = torch.optim.Adam(network.parameters(), lr=self.hp["learning_rate"], betas=(0.9, 0.999),
                                     weight_decay=self.hp["weight_decay"])
        batch_size = self.hp["batch_size"]
        names = ("kld", "elem_type_num", "elem_type", "elem_num", "lattice", "coord")
        for epoch in range(1, self.hp["epochs"] + 1):
            network.train()
            order = torch.randperm(len(train_records), generator=generator).tolist()
            totals = dict.fromkeys(("loss",) + names, 0.0)
            count, skipped = 0, 0
            for start in range(0, len(order), batch_size):
                batch = [train_records[i] for i in order[start:start + batch_size]]
                out = network(*self._collate(batch))
                loss = out["loss"]
                if not torch.isfinite(loss):
                    skipped += 1
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_value_(network.parameters(), self.hp["max_grad_value"])
                optimizer.step()
                for key in totals:
                    totals[key] += float(out[key].detach()) * len(batch)
                count += len(batch)
            train_loss = totals["loss"] / count if count else float("nan")
            val_loss = self._evaluate(val_records) if val_records else None
            extra = {f"train_{k}": totals[k] / count for k in names} if count else {}
            extra["skipped_batches"] = float(skipped)
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                     lr=float(optimizer.param_groups[0]["lr"]), loss_name="elbo+dsm", extra=extra))

    def _set_statistics(self, records: Sequence[CrystalRecord]) -> None:
        network = self._network
        lattice = torch.stack([r.lattice for r in records])
        num_atoms = torch.tensor([len(r.atomic_numbers) for r in records])
        features = SyMat.lattice_features(lattice, num_atoms)
        network.lattice_mean.copy_(features.mean(dim=0).float())
        network.lattice_std.copy_((features.std(dim=0, unbiased=False) + 1e-5).float())
        generator = torch.Generator()
        generator.manual_seed(int(self.seed) + 1)
        subset = records
        if len(records) > SCORE_NORM_CRYSTALS:
            pick = torch.randperm(len(records), generator=generator)[:SCORE_NORM_CRYSTALS].tolist()
            subset = [records[i] for i in pick]
        norms = estimate_score_norms(
            torch.cat([r.frac_coords for r in subset]).float(), torch.stack([r.lattice for r in subset]).float(),
            torch.tensor([len(r.atomic_numbers) for r in subset]), network.sigmas.cpu(),
            network.config.score_cutoff, network.config.score_max_neighbors, generator=generator)
        network.score_norms.copy_(norms.to(network.score_norms.device))

    @torch.no_grad()
    def _evaluate(self, records: Sequence[CrystalRecord]) -> float:
        network = self._network
        network.eval()
        total = 0.0
        for start in range(0, len(records), self.hp["batch_size"]):
            batch = records[start:start + self.hp["batch_size"]]
            total += float(network(*self._collate(batch))["loss"]) * len(batch)
        return total / len(records)

    @torch.no_grad()
    def generate(self, n: int) -> list:
        from pymatgen.core import Lattice, Structure

        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        network = self.network
        network.eval()
        hp = self.hp
        out: list = []
        progress = Progress("generating crystals", n)
        while len(out) < n:
            chunk = min(hp["generation_batch_size"], n - len(out))
            levels = Progress(f"annealed Langevin dynamics of crystals {len(out) + 1}-{len(out) + chunk}, noise level",
                              int(network.sigmas.shape[0]))
            samples = network.sample(
                chunk, temperatures=(hp["temperature_composition"], hp["temperature_coordinate"],
                                     hp["temperature_lattice"]),
                langevin_steps=hp["langevin_steps"], step_size=hp["langevin_step_size"],
                noise_temperature=hp["langevin_noise_temperature"], on_level=levels.update)
            levels.close()
            for item in samples:
                if item is None:
                    out.append(None)
                    continue
                try:
                    lattice = Lattice.from_parameters(*item["lengths"].tolist(), *item["angles"].tolist())
                    out.append(Structure(lattice, item["atomic_numbers"].tolist(), item["frac_coords"]))
                except Exception:  # pymatgen rejects the cell: count as a failed decoding
                    out.append(None)
            progress.update(len(samples))
        progress.close()
        return out

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        return self._collate(self._records(samples))
