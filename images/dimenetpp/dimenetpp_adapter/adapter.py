"""The runner's entry point for DimeNet++ (``dimenetpp_adapter.adapter:DimeNetPPAdapter``):
torch_geometric's ``DimeNetPlusPlus`` (Gasteiger et al. 2020) on molecules, trained and applied
under the mateval contract."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

import torch_geometric.nn.models.dimenet as tg_dimenet
from torch_geometric.nn.models import DimeNetPlusPlus

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track

from . import graph

#: DimeNetPlusPlus's constructor arguments, model.yaml names (out_channels is 1: one property)
ARCHITECTURE = ("hidden_channels", "num_blocks", "int_emb_size", "basis_emb_size", "out_emb_channels",
                "num_spherical", "num_radial", "cutoff", "max_num_neighbors", "envelope_exponent",
                "num_before_skip", "num_after_skip", "num_output_layers")
TRAINING = ("epochs", "batch_size", "learning_rate", "warmup_steps", "decay_rate", "decay_steps", "loss", "batching")
HYPERPARAMETERS = ARCHITECTURE + TRAINING

#: the graph a padded batch hands to DimeNetPlusPlus.forward in place of its own construction
_GIVEN: list[dict] = []


def _radius_graph(pos, r, batch=None, loop=False, max_num_neighbors=32, flow="source_to_target", num_workers=1,
                  batch_size=None):
    if _GIVEN:
        return _GIVEN[-1]["edge_index"]
    return graph.radius_graph(pos, r, batch, loop, max_num_neighbors, flow)


def _triplets(edge_index, num_nodes):
    if _GIVEN:
        return _GIVEN[-1]["triplets"]
    return graph.triplets(edge_index, num_nodes)


def install_pure_pytorch_graph() -> None:
    """Replace the two functions ``torch_geometric.nn.models.dimenet`` calls that need the
    compiled extensions (``radius_graph``: torch-cluster or pyg-lib; ``triplets``: torch-sparse)
    by :mod:`dimenetpp_adapter.graph`'s pure-PyTorch ones. Idempotent."""
    tg_dimenet.radius_graph = _radius_graph
    tg_dimenet.triplets = _triplets


@contextlib.contextmanager
def given_graph(padded: dict) -> Iterator[None]:
    """Within the block, ``DimeNetPlusPlus.forward`` uses ``padded["edge_index"]`` and
    ``padded["triplets"]`` (from :func:`dimenetpp_adapter.graph.pad_graph`) instead of building them."""
    _GIVEN.append(padded)
    try:
        yield
    finally:
        _GIVEN.pop()


class DimeNetPPAdapter(ModelAdapter):
    r"""DimeNet++ (``torch_geometric.nn.models.DimeNetPlusPlus``) for one scalar property of molecules.

    Target: :math:`y = \sum_e n_e \epsilon_e + s\,\hat z`, where :math:`\epsilon_e` are per-element
    reference energies fitted by least squares on the training molecules' compositions, :math:`s`
    the standard deviation of the training residuals and :math:`\hat z` the network's output (a sum
    over atoms, so extensive). The loss (``loss``: ``l1``, the paper's MAE, or ``mse``) is on the
    standardized residual; epoch losses are reported in those units.

    Training as the paper: Adam, linear warm-up over ``warmup_steps`` then exponential decay
    ``decay_rate ** (step / decay_steps)``. Without the EMA of weights (see README).

    Batching (``batching``): ``dynamic`` builds each batch's graph at its own size (torch_geometric's
    way); ``padded`` gives every batch the same atom, edge and triplet counts (the largest molecule's
    counts times ``batch_size``, plus filler), masked out of the loss: the static-shape form of the
    DimeNet++ ports. Both give the same predictions (tested).

    Shapes: ``predict`` returns ``(n_samples,)`` float64 in the task's unit; ``forward_inputs``
    returns ``(z (N,) int64, pos (N, 3) float32 Å, batch (N,) int64)``.

    Raises:
        ValueError: from ``__init__`` for a task that is not regression on molecules
            (``TaskSpec.periodic`` false), a missing or unknown hyperparameter; from ``fit`` for an
            empty training set or a non-finite target; from ``predict`` for an element absent from
            the training molecules (sample id named).
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "regression" or task.periodic:
            raise ValueError(f"task {task.name!r} ({task.task_type}, periodic={task.periodic}) is not supported by "
                             "DimeNet++ here: regression on molecules only")
        missing = [name for name in HYPERPARAMETERS if name not in self.hyperparameters]
        unknown = sorted(set(self.hyperparameters) - set(HYPERPARAMETERS))
        if missing or unknown:
            raise ValueError(f"dimenetpp hyperparameters: missing {missing or 'none'}, unknown {unknown or 'none'}")
        self.hp = dict(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        torch.manual_seed(int(seed))
        install_pure_pytorch_graph()
        self._network = DimeNetPlusPlus(out_channels=1, **{name: self.hp[name] for name in ARCHITECTURE}).to(self.device)
        self._elements: list[int] = []
        self._references = np.zeros(0)
        self._scale = 1.0
        self._sizes: tuple[int, int, int] | None = None

    @property
    def network(self) -> nn.Module:
        return self._network

    # ------------------------------------------------------------------ data
    @staticmethod
    def _tensors(sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        molecule = sample.structure
        if not len(molecule):
            raise ValueError(f"sample {sample.id!r}: a molecule without atoms")
        z = torch.tensor([site.specie.Z for site in molecule], dtype=torch.long)
        return z, torch.tensor(np.asarray(molecule.cart_coords), dtype=torch.float32)

    def _counts(self, samples: Sequence[Sample]) -> np.ndarray:
        counts = np.zeros((len(samples), len(self._elements)))
        column = {z: k for k, z in enumerate(self._elements)}
        for row, sample in enumerate(samples):
            for site in sample.structure:
                if site.specie.Z not in column:
                    raise ValueError(f"sample {sample.id!r}: element {site.specie.symbol} is not in the training "
                                     f"molecules ({', '.join(str(z) for z in self._elements)})")
                counts[row, column[site.specie.Z]] += 1
        return counts

    def _molecule_sizes(self, samples: Sequence[Sample]) -> tuple[int, int, int]:
        """The largest atom, edge and triplet counts of one molecule among ``samples``."""
        atoms = edges = trips = 0
        for sample in samples:
            z, pos = self._tensors(sample)
            edge_index = graph.radius_graph(pos, self.hp["cutoff"], max_num_neighbors=self.hp["max_num_neighbors"])
            atoms = max(atoms, z.numel())
            edges = max(edges, edge_index.size(1))
            trips = max(trips, graph.triplets(edge_index, z.numel())[2].numel())
        return atoms, edges, trips

    def _batches(self, samples: Sequence[Sample], shuffle: bool, generator: torch.Generator | None = None):
        """``(z, pos, batch, n_molecules, padded or None, indices)`` per batch of ``batch_size`` molecules."""
        order = torch.randperm(len(samples), generator=generator).tolist() if shuffle else list(range(len(samples)))
        size = self.hp["batch_size"]
        for start in range(0, len(order), size):
            indices = order[start:start + size]
            parts = [self._tensors(samples[i]) for i in indices]
            z = torch.cat([p[0] for p in parts])
            pos = torch.cat([p[1] for p in parts])
            batch = torch.repeat_interleave(torch.arange(len(parts)), torch.tensor([p[0].numel() for p in parts]))
            padded = None
            if self.hp["batching"] == "padded":
                atoms, edges, trips = self._sizes
                padded = graph.pad_graph(z, pos, batch, size, self.hp["cutoff"], self.hp["max_num_neighbors"],
                                         size * atoms + 3, size * edges + 2, size * trips + 1)
            yield z, pos, batch, len(parts), padded, indices

    def _forward(self, z, pos, batch, n, padded) -> torch.Tensor:
        """The network's output for the ``n`` real molecules of one batch, shape ``(n,)``."""
        if padded is None:
            return self._network(z.to(self.device), pos.to(self.device), batch.to(self.device)).view(-1)
        with given_graph({key: (value.to(self.device) if torch.is_tensor(value) else tuple(v.to(self.device) for v in value))
                          for key, value in padded.items()}):
            out = self._network(padded["z"].to(self.device), padded["pos"].to(self.device), padded["batch"].to(self.device))
        return out.view(-1)[:n]

    # ------------------------------------------------------------------ contract
    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training molecule")
        targets = np.array([float(s.target) for s in train])
        if not np.all(np.isfinite(targets)):
            raise ValueError(f"non-finite targets for molecules {[s.id for s, t in zip(train, targets) if not np.isfinite(t)][:5]}")
        self._elements = sorted({site.specie.Z for s in train for site in s.structure})
        counts = self._counts(train)
        self._references = np.linalg.lstsq(counts, targets, rcond=None)[0]
        residual = targets - counts @ self._references
        self._scale = float(residual.std()) if len(train) > 1 and residual.std() > 1e-8 else 1.0
        if self.hp["batching"] == "padded":
            self._sizes = self._molecule_sizes(list(train) + list(val))
        standardized = {s.id: (t - r) / self._scale for s, t, r in zip(train, targets, counts @ self._references)}
        val_targets = {}
        if len(val):
            val_ref = self._counts(val) @ self._references
            val_targets = {s.id: (float(s.target) - r) / self._scale for s, r in zip(val, val_ref)}
        loss_fn = nn.L1Loss() if self.hp["loss"] == "l1" else nn.MSELoss()
        optimizer = torch.optim.Adam(self._network.parameters(), lr=self.hp["learning_rate"], amsgrad=True)
        warmup, rate, steps = self.hp["warmup_steps"], self.hp["decay_rate"], self.hp["decay_steps"]
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / max(warmup, 1)) * rate ** (step / steps))
        generator = torch.Generator().manual_seed(int(self.seed))
        for epoch in track(range(1, self.hp["epochs"] + 1), "DimeNet++ epochs", total=self.hp["epochs"]):
            self._network.train()
            total = 0.0
            for z, pos, batch, n, padded, indices in self._batches(train, True, generator):
                y = torch.tensor([standardized[train[i].id] for i in indices], dtype=torch.float32, device=self.device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self._forward(z, pos, batch, n, padded), y)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * n
            val_loss = None
            if len(val):
                self._network.eval()
                with torch.no_grad():
                    val_total = 0.0
                    for z, pos, batch, n, padded, indices in self._batches(val, False):
                        y = torch.tensor([val_targets[val[i].id] for i in indices], dtype=torch.float32, device=self.device)
                        val_total += float(loss_fn(self._forward(z, pos, batch, n, padded), y)) * n
                val_loss = val_total / len(val)
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=total / len(train), val_loss=val_loss,
                                     lr=float(optimizer.param_groups[0]["lr"]),
                                     loss_name=f"{self.hp['loss']} (standardized residual)"))

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample]) -> np.ndarray:
        if len(samples) == 0:
            return np.zeros(0)
        references = self._counts(samples) @ self._references
        if self.hp["batching"] == "padded":
            needed = self._molecule_sizes(samples)
            self._sizes = tuple(max(a, b) for a, b in zip(self._sizes or needed, needed))
        self._network.eval()
        out = np.zeros(len(samples))
        for z, pos, batch, n, padded, indices in self._batches(samples, False):
            out[indices] = self._forward(z, pos, batch, n, padded).double().cpu().numpy()
        result = references + self._scale * out
        if not np.all(np.isfinite(result)):
            raise ValueError("DimeNet++ produced non-finite predictions")
        return result

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        parts = [self._tensors(s) for s in samples]
        batch = torch.repeat_interleave(torch.arange(len(parts)), torch.tensor([p[0].numel() for p in parts]))
        return (torch.cat([p[0] for p in parts]).to(self.device), torch.cat([p[1] for p in parts]).to(self.device),
                batch.to(self.device))


__all__ = ["DimeNetPPAdapter", "install_pure_pytorch_graph", "given_graph"]
