"""The runner's entry point for Matformer (``matformer.adapter:MatformerAdapter``)."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track

from .atom_features import N_ATOM_FEATURES, atom_features
from .graph import periodic_graph
from .network import Matformer

#: Every hyperparameter this adapter reads (exactly the keys of model.yaml's ``hyperparameters``).
HYPERPARAMETERS = (
    "cutoff", "max_neighbors", "use_lattice", "rbf_bins", "rbf_vmin", "rbf_vmax", "atom_features",
    "node_features", "heads", "conv_layers", "fc_features", "epochs", "batch_size",
    "learning_rate", "weight_decay", "loss", "scheduler",
)
INT_HYPERPARAMETERS = ("max_neighbors", "rbf_bins", "atom_features", "node_features", "heads", "conv_layers",
                       "fc_features", "epochs", "batch_size")
FLOAT_HYPERPARAMETERS = ("cutoff", "rbf_vmin", "rbf_vmax", "learning_rate", "weight_decay")


class MatformerAdapter(ModelAdapter):
    r"""Trains and applies :class:`~matformer.network.Matformer` under the mateval contract.

    Objectives (``B`` crystals per batch, :math:`\mu, s` the mean and sample standard deviation
    of the training targets, :math:`\hat z` the network output):

    .. math::
        \mathcal{L}_{\text{reg}} = \frac{1}{B}\sum_c \Bigl(\hat z_c - \frac{y_c - \mu}{s}\Bigr)^2,
        \quad \hat y_c = \mu + s\,\hat z_c;\qquad
        \mathcal{L}_{\text{cls}} = -\frac{1}{B}\sum_c \log \hat p_c(y_c),
        \quad P(y_c = 1) = \exp(\log \hat p_c(1)).

    Units: regression predictions are in the task's unit (e.g. eV); losses reported in
    ``EpochRecord`` are in standardized units (regression) or nats (classification).

    Training follows the reference recipe: AdamW (``learning_rate``, ``weight_decay``) with a
    one-cycle schedule (``max_lr = learning_rate``, ``epochs x batches per epoch`` steps, PyTorch's
    default 30 % warm-up); regression targets standardized with the training mean and standard
    deviation and an MSE loss on them (predictions are mapped back to the task's unit);
    classification with NLL on the network's log-softmax (``predict`` returns the softmax
    probability of class 1); the final weights are kept (no early stopping or best-epoch
    selection; ``val`` is only reported).

    Graphs are built once per structure and cached (keyed by sample id and a hash of the
    structure). Batches are shuffled with a ``torch.Generator`` seeded by ``seed``.

    Shapes: ``predict`` returns ``(n_samples,)`` float64; ``forward_inputs`` returns
    ``(x (N, 92) float32, edge_index (2, E) int64, edge_vec (E, 3) float32 Å, batch (N,) int64)``.

    Differences from the reference training script:
        - The last, smaller training batch is kept (the reference's loader drops it); a batch with
          a single atom, which BatchNorm cannot normalise in training mode, is skipped.
        - ``loss`` may be ``mse`` or ``l1`` for regression; classification always uses NLL.

    Raises:
        ValueError: from ``__init__`` for an unsupported task type, a missing or unknown
            hyperparameter, ``rbf_vmax <= rbf_vmin`` or ``atom_features`` other than the table's
            (the message names the hyperparameter; types and ranges are model.yaml's
            ``hyperparameter_types``, checked by the runner before the adapter starts);
            from ``fit``/``predict``/``forward_inputs`` when a structure yields an empty graph
            or cannot be featurised (the message names the sample id), or when ``train`` is empty.
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type not in ("regression", "classification"):
            raise ValueError(
                f"task type {task.task_type!r} of task {task.name!r} is not supported by Matformer "
                "(supported: regression, classification)"
            )
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.classification = task.task_type == "classification"
        self._graph_cache: dict[tuple[str, str], Data] = {}
        self._target_mean = 0.0
        self._target_std = 1.0
        self._network = Matformer(
            atom_features=self.hp["atom_features"],
            node_features=self.hp["node_features"],
            rbf_bins=self.hp["rbf_bins"],
            rbf_vmin=self.hp["rbf_vmin"],
            rbf_vmax=self.hp["rbf_vmax"],
            heads=self.hp["heads"],
            conv_layers=self.hp["conv_layers"],
            fc_features=self.hp["fc_features"],
            classification=self.classification,
        ).to(self.device)

    # ------------------------------------------------------------------ hyperparameters
    @staticmethod
    def _validate(hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters as Python ints, floats, strings and bools.

        Types and ranges are declared in model.yaml (``hyperparameter_types``) and checked by the
        runner before the adapter starts; here only what relates several hyperparameters or the code.
        """
        missing = [name for name in HYPERPARAMETERS if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for matformer: {', '.join(unknown)}")
        out: dict[str, Any] = {name: int(hp[name]) for name in INT_HYPERPARAMETERS}
        out.update({name: float(hp[name]) for name in FLOAT_HYPERPARAMETERS})
        out.update(loss=str(hp["loss"]), scheduler=str(hp["scheduler"]), use_lattice=hp["use_lattice"])
        if not out["rbf_vmax"] > out["rbf_vmin"]:
            raise ValueError(
                f"hyperparameter rbf_vmax ({out['rbf_vmax']}) must be greater than rbf_vmin ({out['rbf_vmin']})"
            )
        if out["atom_features"] != N_ATOM_FEATURES:
            raise ValueError(
                f"hyperparameter atom_features must be {N_ATOM_FEATURES} (the CGCNN table), got {out['atom_features']}"
            )
        return out

    # ------------------------------------------------------------------ graphs
    @staticmethod
    def _fingerprint(structure) -> str:
        digest = hashlib.sha1()
        digest.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
        digest.update(" ".join(str(site.species) for site in structure).encode())
        return digest.hexdigest()

    def _graph(self, sample: Sample) -> Data:
        key = (str(sample.id), self._fingerprint(sample.structure))
        cached = self._graph_cache.get(key)
        if cached is not None:
            return cached
        structure = sample.structure
        try:
            if len(structure) == 0:
                raise ValueError("structure has no sites")
            x = atom_features(structure)
            graph = periodic_graph(
                structure,
                cutoff=self.hp["cutoff"],
                max_neighbors=self.hp["max_neighbors"],
                use_lattice=self.hp["use_lattice"],
            )
        except ValueError as exc:
            raise ValueError(f"sample {sample.id!r}: cannot build a Matformer graph: {exc}") from exc
        if graph.num_edges == 0:
            raise ValueError(f"sample {sample.id!r}: the structure yields an empty graph (no edges)")
        data = Data(
            x=torch.from_numpy(x),
            edge_index=torch.from_numpy(graph.edge_index),
            edge_vec=torch.from_numpy(graph.edge_vec.astype(np.float32)),
            num_nodes=len(structure),
        )
        self._graph_cache[key] = data
        return data

    def _dataset(self, samples: Sequence[Sample], with_targets: bool) -> list[Data]:
        out = []
        for sample in track(samples, "graph building"):
            graph = self._graph(sample)
            data = Data(x=graph.x, edge_index=graph.edge_index, edge_vec=graph.edge_vec,
                        num_nodes=graph.num_nodes)
            if with_targets:
                data.y = torch.tensor([self._encode_target(sample)],
                                      dtype=torch.long if self.classification else torch.float32)
            out.append(data)
        return out

    def _encode_target(self, sample: Sample) -> float | int:
        if sample.target is None:
            raise ValueError(f"sample {sample.id!r} has no target")
        if self.classification:
            label = int(sample.target)
            if label not in (0, 1) or label != sample.target:
                raise ValueError(f"sample {sample.id!r}: class label must be 0 or 1, got {sample.target!r}")
            return label
        return (float(sample.target) - self._target_mean) / self._target_std

    def _run(self, batch: Batch) -> torch.Tensor:
        batch = batch.to(self.device)
        return self._network(batch.x, batch.edge_index, batch.edge_vec, batch.batch, batch.num_graphs)

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        return self._network

    def _loss_fn(self):
        if self.classification:
            return nn.NLLLoss(), "nll"
        if self.hp["loss"] == "l1":
            return nn.L1Loss(), "l1 (standardized)"
        return nn.MSELoss(), "mse (standardized)"

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        if not self.classification:
            targets = np.array([float(s.target) for s in train], dtype=np.float64)
            if not np.all(np.isfinite(targets)):
                bad = [s.id for s, t in zip(train, targets) if not np.isfinite(t)]
                raise ValueError(f"non-finite regression targets for samples {bad[:5]}")
            self._target_mean = float(targets.mean())
            std = float(targets.std(ddof=1)) if len(targets) > 1 else 0.0
            self._target_std = std if std > 1e-12 else 1.0

        train_data = self._dataset(train, with_targets=True)
        val_data = self._dataset(val, with_targets=True) if len(val) else []
        generator = torch.Generator()
        generator.manual_seed(int(self.seed))
        loader = DataLoader(train_data, batch_size=self.hp["batch_size"], shuffle=True, generator=generator)
        val_loader = DataLoader(val_data, batch_size=self.hp["batch_size"], shuffle=False) if val_data else None

        epochs = self.hp["epochs"]
        optimizer = torch.optim.AdamW(self._network.parameters(), lr=self.hp["learning_rate"],
                                      weight_decay=self.hp["weight_decay"])
        scheduler = None
        if self.hp["scheduler"] == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.hp["learning_rate"], total_steps=epochs * len(loader)
            )
        loss_fn, loss_name = self._loss_fn()

        for epoch in range(1, epochs + 1):
            self._network.train()
            total, count = 0.0, 0
            for batch in loader:
                if batch.num_nodes < 2:  # BatchNorm cannot normalise a single atom in training
                    continue
                optimizer.zero_grad(set_to_none=True)
                output = self._run(batch)
                loss = loss_fn(output, batch.y.to(self.device))
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += float(loss.detach()) * batch.num_graphs
                count += batch.num_graphs
            train_loss = total / count if count else float("nan")
            val_loss = self._evaluate(val_loader, loss_fn) if val_loader is not None else None
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                     lr=float(optimizer.param_groups[0]["lr"]), loss_name=loss_name))

    @torch.no_grad()
    def _evaluate(self, loader: DataLoader, loss_fn) -> float:
        self._network.eval()
        total, count = 0.0, 0
        for batch in loader:
            output = self._run(batch)
            total += float(loss_fn(output, batch.y.to(self.device))) * batch.num_graphs
            count += batch.num_graphs
        return total / count

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample]) -> np.ndarray:
        if len(samples) == 0:
            return np.zeros(0, dtype=np.float64)
        self._network.eval()
        loader = DataLoader(self._dataset(samples, with_targets=False), batch_size=self.hp["batch_size"],
                            shuffle=False)
        outputs = []
        for batch in loader:
            output = self._run(batch)
            if self.classification:
                outputs.append(output[:, 1].exp().clamp(0.0, 1.0).double().cpu())
            else:
                outputs.append((output.double() * self._target_std + self._target_mean).cpu())
        return torch.cat(outputs).numpy().astype(np.float64)

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        batch = Batch.from_data_list(self._dataset(samples, with_targets=False)).to(self.device)
        return batch.x, batch.edge_index, batch.edge_vec, batch.batch
