"""The runner's entry point for the e3nn phonon-DOS network (``pdos.adapter:PDosAdapter``)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track

from .features import N_ELEMENTS, atomic_numbers, element_one_hot, mass_weighted_one_hot
from .graph import radius_graph
from .network import PDosNetwork

#: Every hyperparameter this adapter reads (exactly the keys of model.yaml's ``hyperparameters``).
HYPERPARAMETERS = (
    "cutoff", "self_interaction", "number_of_basis", "radial_layers", "radial_neurons", "em_dim", "mul",
    "lmax", "layers", "epochs", "batch_size", "learning_rate", "weight_decay", "lr_gamma", "cpu_threads",
)
INT_HYPERPARAMETERS = ("number_of_basis", "radial_layers", "radial_neurons", "em_dim", "mul", "lmax", "layers", "epochs",
                       "batch_size")
FLOAT_HYPERPARAMETERS = ("cutoff", "learning_rate", "weight_decay", "lr_gamma")
#: Crystals per forward pass in validation and prediction (no effect on the results: the network
#: has no batch-dependent layers).
EVAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class CrystalGraph:
    """Cached per-structure inputs: atomic numbers ``(N,)``, ``edge_index (2, E)`` int64 and
    ``edge_vec (E, 3)`` float32 in Å."""

    numbers: torch.Tensor
    edge_index: torch.Tensor
    edge_vec: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return int(self.numbers.shape[0])


class PDosAdapter(ModelAdapter):
    r"""Trains and applies :class:`~pdos.network.PDosNetwork` under the mateval contract.

    Objective (``B`` crystals per batch, ``G`` grid points, :math:`y_c` the max-normalised target
    spectrum, :math:`\hat y_c` the network output, itself max-normalised):

    .. math::
        \mathcal{L} = \frac{1}{B G}\sum_{c}\sum_{k=1}^{G} (\hat y_{c,k} - y_{c,k})^2

    Training follows the tutorial: AdamW (``learning_rate``, ``weight_decay``), the learning rate
    multiplied by ``lr_gamma`` after every epoch (``ExponentialLR``), batches of ``batch_size``
    crystals shuffled each epoch with a ``torch.Generator`` seeded by ``seed``, final weights kept
    (no early stopping or best-epoch selection; ``val`` is only reported). The average neighbour
    number :math:`\bar n` of the convolutions is the mean number of edges per atom over the training
    graphs (the tutorial's ``n_train.mean()``), set at the start of ``fit``.

    Units: spectra are unitless (max-normalised) on the task's grid (``TaskSpec.grid``, e.g. 51
    frequencies 0..1000 cm⁻¹); ``loss_name`` is ``"mse"`` on those values. Edge vectors in Å.

    Threads: on a CPU device ``fit`` and ``predict`` run with ``cpu_threads`` intra-op threads
    (default 1; ``null`` leaves PyTorch's setting) and restore the previous count afterwards. The
    network is many small tensor operations (about 220 edges per crystal, batch size 1), which gain
    nothing from intra-op parallelism; with 2 threads on a 2-core machine, one competing process
    made a training step 5-40x slower (75-600 ms instead of 16 ms), with 1 thread it stayed at 16 ms.

    Graphs (radius graph within ``cutoff`` Å, periodic images, self loops when
    ``self_interaction``) and atomic numbers are built once per structure and cached (keyed by
    sample id and a hash of the structure).

    Shapes: ``predict`` returns ``(n_samples, len(task.grid))`` float64, each row non-negative with
    maximum 1; ``forward_inputs`` returns ``(x (N, 118) float32 amu, node_attr (N, 118) float32,
    edge_index (2, E) int64, edge_vec (E, 3) float32 Å, batch (N,) int64)``.

    Differences from the tutorial's training:
        - Validation loss is computed every epoch (the tutorial evaluates at log-spaced steps).
        - The tutorial's reported training loss re-evaluates the whole training set at checkpoints;
          ``train_loss`` here is the running mean of the batch losses of the epoch (per crystal).
        - The split is the runner's (for ``phonon_dos`` the tutorial's own published split).
        - Cutoff 5 Å (the paper's); the tutorial notebook uses ``r_max = 4``.

    Raises:
        ValueError: from ``__init__`` for an unsupported task type or grid, or a missing or unknown
            hyperparameter (types and ranges are model.yaml's ``hyperparameter_types``, checked by
            the runner before the adapter starts); from
            ``fit``/``predict``/``forward_inputs`` when a structure cannot be encoded or has no
            neighbour within the cutoff, or a target has the wrong shape or non-finite values (the
            message names the sample id), or when ``train`` is empty.
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "spectra":
            raise ValueError(f"task type {task.task_type!r} of task {task.name!r} is not supported by pdos "
                             "(supported: spectra)")
        if not task.grid:
            raise ValueError(f"task {task.name!r} has no spectrum grid (TaskSpec.grid)")
        self.out_dim = len(task.grid)
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._graph_cache: dict[tuple[str, str], CrystalGraph] = {}
        self._network = PDosNetwork(
            n_elements=N_ELEMENTS,
            em_dim=self.hp["em_dim"],
            mul=self.hp["mul"],
            lmax=self.hp["lmax"],
            layers=self.hp["layers"],
            out_dim=self.out_dim,
            max_radius=self.hp["cutoff"],
            number_of_basis=self.hp["number_of_basis"],
            radial_layers=self.hp["radial_layers"],
            radial_neurons=self.hp["radial_neurons"],
        ).to(self.device)
        self._one_hot = torch.from_numpy(element_one_hot(np.arange(1, N_ELEMENTS + 1))).to(self.device)
        self._mass_one_hot = torch.from_numpy(mass_weighted_one_hot(np.arange(1, N_ELEMENTS + 1))).to(self.device)

    # ------------------------------------------------------------------ hyperparameters
    @staticmethod
    def _validate(hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters as Python ints, floats and bools (``cpu_threads`` may be ``None``).

        Types and ranges are declared in model.yaml (``hyperparameter_types``) and checked by the
        runner before the adapter starts.
        """
        missing = [name for name in HYPERPARAMETERS if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for pdos: {', '.join(unknown)}")
        out: dict[str, Any] = {name: int(hp[name]) for name in INT_HYPERPARAMETERS}
        out.update({name: float(hp[name]) for name in FLOAT_HYPERPARAMETERS})
        out["self_interaction"] = hp["self_interaction"]
        out["cpu_threads"] = None if hp["cpu_threads"] is None else int(hp["cpu_threads"])
        return out

    # ------------------------------------------------------------------ graphs
    @staticmethod
    def _fingerprint(structure) -> str:
        digest = hashlib.sha1()
        digest.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(structure.cart_coords, dtype=np.float64).tobytes())
        digest.update(" ".join(str(site.species) for site in structure).encode())
        return digest.hexdigest()

    def _graph(self, sample: Sample) -> CrystalGraph:
        key = (str(sample.id), self._fingerprint(sample.structure))
        cached = self._graph_cache.get(key)
        if cached is not None:
            return cached
        try:
            numbers = atomic_numbers(sample.structure)
            graph = radius_graph(sample.structure, cutoff=self.hp["cutoff"],
                                 self_interaction=self.hp["self_interaction"])
        except ValueError as exc:
            raise ValueError(f"sample {sample.id!r}: cannot build a pdos graph: {exc}") from exc
        if graph.num_neighbor_edges == 0:
            raise ValueError(f"sample {sample.id!r}: no atom has a neighbour within the cutoff of "
                             f"{self.hp['cutoff']} Å (the graph has no edges besides self loops)")
        data = CrystalGraph(numbers=torch.from_numpy(numbers),
                            edge_index=torch.from_numpy(graph.edge_index),
                            edge_vec=torch.from_numpy(graph.edge_vec.astype(np.float32)))
        self._graph_cache[key] = data
        return data

    def _target(self, sample: Sample) -> torch.Tensor:
        if sample.target is None:
            raise ValueError(f"sample {sample.id!r} has no target")
        target = np.asarray(sample.target, dtype=np.float64)
        if target.shape != (self.out_dim,) or not np.all(np.isfinite(target)):
            raise ValueError(f"sample {sample.id!r}: target must be {self.out_dim} finite values, "
                             f"got shape {target.shape}")
        return torch.from_numpy(target.astype(np.float32))

    def _collate(self, graphs: Sequence[CrystalGraph]) -> tuple[torch.Tensor, ...]:
        """Concatenate graphs into one batch: ``(x, node_attr, edge_index, edge_vec, batch)``."""
        sizes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
        offsets = torch.cumsum(sizes, 0) - sizes
        numbers = torch.cat([g.numbers for g in graphs]).to(self.device)
        edge_index = torch.cat([g.edge_index + int(off) for g, off in zip(graphs, offsets)], dim=1).to(self.device)
        edge_vec = torch.cat([g.edge_vec for g in graphs]).to(self.device)
        batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes).to(self.device)
        return self._mass_one_hot[numbers - 1], self._one_hot[numbers - 1], edge_index, edge_vec, batch

    @contextlib.contextmanager
    def _threads(self):
        """Run with ``cpu_threads`` intra-op threads on a CPU device, restoring the previous count."""
        wanted = self.hp["cpu_threads"]
        if wanted is None or self.device.type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        return self._network

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        with self._threads():
            self._fit(train, val, on_epoch_end)

    def _fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        train_graphs = [self._graph(s) for s in track(train, "graph building (train)")]
        train_targets = [self._target(s) for s in train]
        val_graphs = [self._graph(s) for s in track(val, "graph building (validation)")]
        val_targets = [self._target(s) for s in val]
        n_edges = sum(g.edge_index.shape[1] for g in train_graphs)
        n_nodes = sum(g.num_nodes for g in train_graphs)
        self._network.set_num_neighbors(n_edges / n_nodes)

        generator = torch.Generator()
        generator.manual_seed(int(self.seed))
        optimizer = torch.optim.AdamW(self._network.parameters(), lr=self.hp["learning_rate"],
                                      weight_decay=self.hp["weight_decay"])
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.hp["lr_gamma"])
        loss_fn = nn.MSELoss()
        batch_size = self.hp["batch_size"]

        for epoch in range(1, self.hp["epochs"] + 1):
            self._network.train()
            order = torch.randperm(len(train_graphs), generator=generator).tolist()
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                inputs = self._collate([train_graphs[i] for i in chosen])
                target = torch.stack([train_targets[i] for i in chosen]).to(self.device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self._network(*inputs, num_graphs=len(chosen)), target)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(chosen)
                count += len(chosen)
            scheduler.step()
            val_loss = self._evaluate(val_graphs, val_targets, loss_fn) if val_graphs else None
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=total / count, val_loss=val_loss,
                                     lr=float(optimizer.param_groups[0]["lr"]), loss_name="mse"))

    @torch.no_grad()
    def _forward_all(self, graphs: Sequence[CrystalGraph]) -> torch.Tensor:
        self._network.eval()
        outputs = []
        for start in range(0, len(graphs), EVAL_BATCH_SIZE):
            chunk = graphs[start:start + EVAL_BATCH_SIZE]
            outputs.append(self._network(*self._collate(chunk), num_graphs=len(chunk)).cpu())
        return torch.cat(outputs) if outputs else torch.zeros(0, self.out_dim)

    def _evaluate(self, graphs: Sequence[CrystalGraph], targets: Sequence[torch.Tensor], loss_fn) -> float:
        return float(loss_fn(self._forward_all(graphs), torch.stack(list(targets))))

    def predict(self, samples: Sequence[Sample]) -> np.ndarray:
        if len(samples) == 0:
            return np.zeros((0, self.out_dim), dtype=np.float64)
        graphs = [self._graph(s) for s in track(samples, "graph building")]
        with self._threads():
            return self._forward_all(graphs).numpy().astype(np.float64)

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        if len(samples) == 0:
            raise ValueError("forward_inputs needs at least one sample")
        return self._collate([self._graph(s) for s in samples])
