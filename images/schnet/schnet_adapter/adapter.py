"""The runner's entry point for SchNet (``schnet_adapter.adapter:SchNetAdapter``), built from
schnetpack 2.0.4's own Python API: ``SchNet`` representation, ``Atomwise`` + ``Forces`` outputs in a
``NeuralNetworkPotential``, its transforms, ``AtomisticTask`` with ``ModelOutput`` losses, trained by a
pytorch-lightning ``Trainer`` as ``spktrain`` does, with mateval's data and validation set.
"""

from __future__ import annotations

import copy
import logging
import re
import typing
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.utils.data.dataloader as _torch_dataloader

# schnetpack 2.0.4 imports ``T_co`` from torch.utils.data.dataloader (schnetpack/data/loader.py), which
# torch >= 2.7 no longer re-exports; it is only a type annotation there. Restore it before the import.
if not hasattr(_torch_dataloader, "T_co"):
    _torch_dataloader.T_co = typing.TypeVar("T_co", covariant=True)

import pytorch_lightning as pl  # noqa: E402
import schnetpack as spk  # noqa: E402
import schnetpack.properties as props  # noqa: E402
import torchmetrics  # noqa: E402
from pymatgen.core import Element  # noqa: E402
from schnetpack.data import AtomsLoader  # noqa: E402
from schnetpack.data.stats import calculate_stats  # noqa: E402
from torch import nn  # noqa: E402

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec  # noqa: E402
from runner.progress import track  # noqa: E402

# Lightning's advice lines (AtomisticTask saves its model as a hyperparameter, batch size inference
# for self.log, srun/litlogger hints) repeat in every run.log without bearing on the run.
for _message in ("Attribute 'model' is an instance of", "Trying to infer the `batch_size`",
                 "The `srun` command is available", "`isinstance(treespec, LeafSpec)` is deprecated"):
    warnings.filterwarnings("ignore", message=".*" + re.escape(_message))
for _logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.WARNING)

HYPERPARAMETERS = (
    "cutoff", "n_atom_basis", "n_interactions", "n_rbf", "radial_basis", "n_filters", "shared_interactions",
    "n_output_layers", "neighbor_list", "energy_offsets", "energy_weight", "forces_weight", "lr",
    "weight_decay", "batch_size", "scheduler_factor", "scheduler_patience", "scheduler_cooldown", "ema_decay",
    "patience", "epochs",
)
#: keys of a schnetpack batch handed to :class:`EnergyNetwork` (positional, in this order)
BATCH_KEYS = (props.Z, props.R, props.cell, props.pbc, props.n_atoms, props.idx_m, props.idx_i, props.idx_j,
              props.offsets)
ZMAX = 100  # schnetpack's default size of the atom-reference table (RemoveOffsets/AddOffsets zmax)


class EnergyNetwork(nn.Module):
    """The trained schnetpack model behind a positional forward for parameter and FLOP counting.

    ``forward(*tensors)`` takes the batch tensors named in :data:`BATCH_KEYS` (atomic numbers ``(N,)``,
    positions ``(N, 3)`` Å, cells ``(B, 3, 3)``, pbc ``(B, 3)``, atoms per structure ``(B,)``, structure
    index per atom ``(N,)``, neighbour pairs ``(P,)`` twice, periodic offsets ``(P, 3)`` Å) and returns
    the energy per structure, shape ``(B,)`` in eV without offsets, from the representation and the
    ``Atomwise`` head only: the ``Forces`` module (the backward pass giving the forces) is **not**
    run, so it is not in the FLOP count. Its parameters are exactly the schnetpack model's.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(BATCH_KEYS, tensors))
        for module in self.model.input_modules:  # PairwiseDistances
            inputs = module(inputs)
        inputs = self.model.representation(inputs)
        for module in self.model.output_modules:
            if isinstance(module, spk.atomistic.Forces):
                continue
            inputs = module(inputs)
        return inputs["energy"]


class _EpochReporter(pl.Callback):
    """Streams one :class:`EpochRecord` per epoch and keeps the weights of the best validation loss
    (those that were validated: the EMA weights when the EMA callback is on), as schnetpack's
    ``ModelCheckpoint`` on ``val_loss`` keeps its ``best_model``."""

    def __init__(self, on_epoch_end: EpochCallback, loss_name: str):
        self.on_epoch_end = on_epoch_end
        self.loss_name = loss_name
        self.step_losses: list[float] = []
        self.best_loss = np.inf
        self.best_state: dict | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.step_losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self.step_losses.append(float(loss.detach()))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        val_loss = float(metrics["val_loss"]) if "val_loss" in metrics else None
        extra = {}
        if "val_energy_rmse" in metrics:
            extra["val_rmse_energy_eV_per_structure"] = float(metrics["val_energy_rmse"])
        if "val_forces_rmse" in metrics:
            extra["val_rmse_f_meV_per_A"] = 1000.0 * float(metrics["val_forces_rmse"])
        if val_loss is not None and val_loss < self.best_loss:
            self.best_loss = val_loss
            self.best_state = copy.deepcopy(pl_module.model.state_dict())
        train_loss = float(np.mean(self.step_losses)) if self.step_losses else float("nan")
        self.on_epoch_end(EpochRecord(epoch=trainer.current_epoch + 1, train_loss=train_loss, val_loss=val_loss,
                                      lr=float(trainer.optimizers[0].param_groups[0]["lr"]),
                                      loss_name=self.loss_name, extra=extra))


class _Structures(torch.utils.data.Dataset):
    """In-memory list of schnetpack input dicts (transforms already applied once: the neighbour
    lists of fixed structures do not change between epochs)."""

    def __init__(self, items: list[dict[str, torch.Tensor]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(self.items[index])


class SchNetAdapter(ModelAdapter):
    r"""Trains and applies SchNet (Schütt et al., NeurIPS 2017; J. Chem. Phys. 148, 241722 (2018))
    through schnetpack 2.0.4.

    From schnetpack, unchanged: ``spk.representation.SchNet`` (Gaussian or Bessel radial basis,
    ``CosineCutoff``), ``spk.atomistic.Atomwise`` (sum over atoms) and ``spk.atomistic.Forces``
    (:math:`F = -\partial E / \partial R` by autograd) in ``spk.model.NeuralNetworkPotential`` with
    ``PairwiseDistances`` and the post-processors ``CastTo64`` + ``AddOffsets``; the preprocessing
    transforms ``RemoveOffsets``, ``MatScipyNeighborList``/``ASENeighborList`` (periodic) and
    ``CastTo32``; the offset statistics from ``schnetpack.data.stats.calculate_stats``; batching by
    ``AtomsLoader``; ``spk.task.AtomisticTask`` with two ``ModelOutput`` MSE losses
    (:math:`\mathcal{L} = w_E\,\mathrm{MSE}(E) + w_F\,\mathrm{MSE}(F)`, total energies in eV per
    structure, forces in eV/Å, so eV² units), AdamW, schnetpack's ``ReduceLROnPlateau`` on
    ``val_loss``, its ``ExponentialMovingAverage`` callback, and the Lightning ``EarlyStopping`` of
    ``spktrain``'s default config.

    What mateval does instead of ``spktrain``: structures come as pymatgen objects; the validation set
    is the one handed to :meth:`fit` (never schnetpack's ``num_val`` random split); every epoch reaches
    ``on_epoch_end``; the weights of the best validation loss are kept in memory (``spktrain``'s
    ``best_model`` checkpoint); no files, loggers or hydra configs.

    Shapes: ``predict`` returns, per sample, ``{"energy": float eV, "forces": (n_atoms, 3) float64
    eV/Å}``; ``forward_inputs`` returns the tensors of :data:`BATCH_KEYS` for :class:`EnergyNetwork`.

    Raises:
        ValueError: from ``__init__`` for a task type other than ``potential`` or a missing/unknown
            hyperparameter; from ``fit``/``predict`` for a sample without energy or forces, forces of
            the wrong shape, non-finite targets, or an element outside schnetpack's embedding
            (Z >= 100), each naming the sample id.
        RuntimeError: ``predict``/``network`` before ``fit``.
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        self.regression = task.task_type == "regression"
        if not (task.task_type == "potential" or (self.regression and not task.periodic and task.extensive)):
            raise ValueError(f"task {task.name!r} ({task.task_type}, periodic={task.periodic}, "
                             f"extensive={task.extensive}) is not supported by SchNet here (supported: potential; "
                             "regression of an extensive property of molecules, e.g. qm9_u0)")
        missing = [name for name in HYPERPARAMETERS if name not in self.hyperparameters]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(self.hyperparameters) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for schnet: {', '.join(unknown)}")
        self.hp = dict(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model: spk.model.NeuralNetworkPotential | None = None
        self.elements: set[int] = set()

    # ------------------------------------------------------------------ data
    def _neighbor_list(self) -> spk.transform.Transform:
        cls = {"matscipy": spk.transform.MatScipyNeighborList, "ase": spk.transform.ASENeighborList}
        return cls[self.hp["neighbor_list"]](cutoff=float(self.hp["cutoff"]))

    @staticmethod
    def _inputs(sample: Sample, index: int, with_target: bool) -> dict[str, torch.Tensor]:
        """schnetpack's input dict for one structure (as ``ASEAtomsData``/``AtomsConverter`` build it)."""
        structure = sample.structure
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
        bad = sorted(set(int(z) for z in numbers if z >= ZMAX))
        if bad:
            raise ValueError(f"sample {sample.id!r}: atomic number(s) {bad} outside SchNet's embedding (Z < {ZMAX})")
        inputs = {
            props.n_atoms: torch.tensor([len(structure)]),
            props.Z: torch.from_numpy(numbers),
            props.R: torch.from_numpy(np.asarray(structure.cart_coords, dtype=np.float64).copy()),
            # a Molecule (non-periodic task) has no lattice: a zero cell and no periodicity, as
            # schnetpack's AtomsConverter writes for an ase.Atoms without a cell
            props.cell: (torch.from_numpy(np.asarray(structure.lattice.matrix, dtype=np.float64).copy()).view(-1, 3, 3)
                         if hasattr(structure, "lattice") else torch.zeros((1, 3, 3), dtype=torch.float64)),
            props.pbc: torch.tensor([list(getattr(structure.lattice, "pbc", (True, True, True)))
                                     if hasattr(structure, "lattice") else [False, False, False]]).view(-1, 3),
            props.idx: torch.tensor([index]),
        }
        if with_target and not isinstance(sample.target, Mapping):  # regression: the property, under "energy"
            try:
                value = float(sample.target)
            except (TypeError, ValueError):
                raise ValueError(f"sample {sample.id!r}: target must be a number, got {type(sample.target).__name__}") from None
            if not np.isfinite(value):
                raise ValueError(f"sample {sample.id!r}: non-finite target")
            inputs["energy"] = torch.tensor([value], dtype=torch.float64)
        elif with_target:
            target = sample.target
            if not isinstance(target, Mapping) or "energy" not in target or "forces" not in target:
                raise ValueError(f"sample {sample.id!r}: target must be a mapping with 'energy' (eV) and "
                                 f"'forces' (eV/Å), got {type(target).__name__}")
            forces = np.asarray(target["forces"], dtype=np.float64)
            if forces.shape != (len(structure), 3):
                raise ValueError(f"sample {sample.id!r}: forces have shape {forces.shape}, "
                                 f"expected ({len(structure)}, 3)")
            energy = float(target["energy"])
            if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
                raise ValueError(f"sample {sample.id!r}: non-finite energy or forces")
            inputs["energy"] = torch.tensor([energy], dtype=torch.float64)
            inputs["forces"] = torch.from_numpy(forces.copy())
        return inputs

    def _transformed(self, samples: Sequence[Sample], transforms: list, with_target: bool, what: str) -> list:
        out = []
        for index, sample in enumerate(track(list(samples), what)):
            inputs = self._inputs(sample, index, with_target)
            if with_target is False:
                missing = sorted(set(inputs[props.Z].tolist()) - self.elements)
                if missing:
                    raise ValueError(f"sample {sample.id!r}: atomic number(s) {missing} not in the training data "
                                     f"(the model knows {sorted(self.elements)})")
            for transform in transforms:
                inputs = transform(inputs)
            out.append(inputs)
        return out

    def _loader(self, items: list, shuffle: bool) -> AtomsLoader:
        generator = torch.Generator().manual_seed(int(self.seed))
        return AtomsLoader(_Structures(items), batch_size=int(self.hp["batch_size"]), shuffle=shuffle,
                           num_workers=0, generator=generator)

    def _offsets(self, train_raw: list) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Atom references (least squares per element, ``energy_offsets: atomrefs``) or none, and the
        mean energy per atom left after them (``calculate_stats``, as ``AtomsDataModule.get_stats``)."""
        atomrefs = None
        if self.hp["energy_offsets"] == "atomrefs":
            zs = sorted(self.elements)
            counts = np.array([[int((item[props.Z] == z).sum()) for z in zs] for item in train_raw], dtype=np.float64)
            energies = np.array([float(item["energy"][0]) for item in train_raw])
            per_element, *_ = np.linalg.lstsq(counts, energies, rcond=None)
            atomrefs = torch.zeros((ZMAX,), dtype=torch.float64)
            atomrefs[zs] = torch.from_numpy(per_element)
        stats = calculate_stats(AtomsLoader(_Structures(train_raw), batch_size=int(self.hp["batch_size"])),
                                {"energy": True}, {"energy": atomrefs} if atomrefs is not None else None)
        return atomrefs, stats["energy"][0].detach().reshape(1)

    @staticmethod
    def _with_atomrefs(transform, atomrefs: torch.Tensor | None):
        # RemoveOffsets/AddOffsets evaluate ``atomrefs or torch.zeros(...)``, which raises for a tensor of
        # more than one element; the table is set after construction instead (see the README).
        if atomrefs is not None:
            transform.atomref = atomrefs.clone()
            transform._atomrefs_initialized = True
        return transform

    # ------------------------------------------------------------------ model
    def _build(self, mean: torch.Tensor, atomrefs: torch.Tensor | None) -> spk.model.NeuralNetworkPotential:
        hp = self.hp
        cutoff = float(hp["cutoff"])
        basis = {"gaussian": spk.nn.GaussianRBF, "bessel": spk.nn.BesselRBF}[hp["radial_basis"]]
        representation = spk.representation.SchNet(
            n_atom_basis=int(hp["n_atom_basis"]), n_interactions=int(hp["n_interactions"]),
            radial_basis=basis(n_rbf=int(hp["n_rbf"]), cutoff=cutoff),
            cutoff_fn=spk.nn.CosineCutoff(cutoff), n_filters=int(hp["n_filters"]) or None,
            shared_interactions=bool(hp["shared_interactions"]), max_z=ZMAX)
        with_refs = atomrefs is not None
        add = self._with_atomrefs(spk.transform.AddOffsets("energy", add_mean=True, add_atomrefs=with_refs,
                                                           propery_mean=mean.float()), atomrefs)
        return spk.model.NeuralNetworkPotential(
            representation=representation,
            input_modules=[spk.atomistic.PairwiseDistances()],
            output_modules=[spk.atomistic.Atomwise(n_in=int(hp["n_atom_basis"]), n_layers=int(hp["n_output_layers"]),
                                                   output_key="energy", aggregation_mode="sum")]
            + ([] if self.regression else [spk.atomistic.Forces(energy_key="energy", force_key="forces")]),
            postprocessors=[spk.transform.CastTo64(), add])

    def _task(self, model, with_val: bool) -> spk.task.AtomisticTask:
        hp = self.hp

        def metrics():
            return {"mae": torchmetrics.regression.MeanAbsoluteError(),
                    "rmse": torchmetrics.regression.MeanSquaredError(squared=False)}

        if self.regression:  # one property: its MSE alone (schnetpack's qm9_atomwise experiment)
            outputs = [spk.task.ModelOutput(name="energy", loss_fn=nn.MSELoss(), loss_weight=1.0, metrics=metrics())]
        else:
            outputs = [spk.task.ModelOutput(name="energy", loss_fn=nn.MSELoss(), loss_weight=float(hp["energy_weight"]),
                                            metrics=metrics()),
                       spk.task.ModelOutput(name="forces", loss_fn=nn.MSELoss(), loss_weight=float(hp["forces_weight"]),
                                            metrics=metrics())]
        scheduler = {}
        if with_val:  # ReduceLROnPlateau monitors val_loss; without validation data there is none
            # torch's class, not schnetpack.train.ReduceLROnPlateau: that one passes ``verbose``, which
            # torch 2.13 no longer accepts, and otherwise steps on the same unsmoothed loss (README).
            scheduler = dict(scheduler_cls=torch.optim.lr_scheduler.ReduceLROnPlateau, scheduler_monitor="val_loss",
                             scheduler_args={"mode": "min", "factor": float(hp["scheduler_factor"]),
                                             "patience": int(hp["scheduler_patience"]), "threshold": 0.0,
                                             "threshold_mode": "rel", "cooldown": int(hp["scheduler_cooldown"]),
                                             "min_lr": 0.0})
        return spk.task.AtomisticTask(model=model, outputs=outputs, optimizer_cls=torch.optim.AdamW,
                                      optimizer_args={"lr": float(hp["lr"]), "weight_decay": float(hp["weight_decay"])},
                                      **scheduler)

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        if self.model is None:
            raise RuntimeError("SchNet has no network before fit()")
        return EnergyNetwork(self.model)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        pl.seed_everything(int(self.seed), workers=True, verbose=False)
        train_raw = [self._inputs(s, i, True) for i, s in enumerate(train)]
        self.elements = {int(z) for item in train_raw for z in item[props.Z].tolist()}
        self.elements.update(Element(symbol).Z for symbol in (self.task.elements or ()))
        atomrefs, mean = self._offsets(train_raw)
        remove = self._with_atomrefs(spk.transform.RemoveOffsets("energy", remove_mean=True,
                                                                 remove_atomrefs=atomrefs is not None,
                                                                 propery_mean=mean), atomrefs)
        transforms = [remove, self._neighbor_list(), spk.transform.CastTo32()]
        train_items = self._transformed(train, transforms, True, "SchNet neighbour lists (train)")
        val_items = self._transformed(val, transforms, True, "SchNet neighbour lists (validation)") if len(val) else []
        self.model = self._build(mean, atomrefs)
        task = self._task(self.model, with_val=bool(val_items))
        hp = self.hp
        reporter = _EpochReporter(on_epoch_end, f"MSE of {self.task.target} ({self.task.unit}^2)" if self.regression else
                                  f"MSE energy/forces (eV^2; energy_weight={hp['energy_weight']}, "
                                  f"forces_weight={hp['forces_weight']})")
        callbacks: list[pl.Callback] = []
        if float(hp["ema_decay"]) > 0:
            callbacks.append(spk.train.ExponentialMovingAverage(decay=float(hp["ema_decay"])))
        callbacks.append(reporter)
        if val_items:
            callbacks.append(pl.callbacks.EarlyStopping(monitor="val_loss", patience=int(hp["patience"]), mode="min",
                                                        min_delta=0.0, check_on_train_epoch_end=False))
        trainer = pl.Trainer(max_epochs=int(hp["epochs"]), accelerator="gpu" if self.device.type == "cuda" else "cpu",
                             devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0, inference_mode=False,
                             gradient_clip_val=0, precision=32, callbacks=callbacks, deterministic=False)
        trainer.fit(task, train_dataloaders=self._loader(train_items, shuffle=True),
                    val_dataloaders=self._loader(val_items, shuffle=False) if val_items else None)
        if reporter.best_state is not None:
            self.model.load_state_dict(reporter.best_state)
        elif callbacks and isinstance(callbacks[0], spk.train.ExponentialMovingAverage):
            callbacks[0].ema.copy_to()  # no validation ran: use the averaged weights, as validation would
        self.model.to(self.device).eval()
        self.model.do_postprocessing = True

    def _batches(self, samples: Sequence[Sample], what: str):
        items = self._transformed(samples, [self._neighbor_list(), spk.transform.CastTo32()], False, what)
        for start in range(0, len(items), int(self.hp["batch_size"])):
            batch = spk.data.loader._atoms_collate_fn(items[start:start + int(self.hp["batch_size"])])
            yield {key: value.to(self.device) for key, value in batch.items()}

    def predict(self, samples: Sequence[Sample]) -> list[dict[str, Any]] | np.ndarray:
        if self.model is None:
            raise RuntimeError("predict() before fit()")
        out: list[dict[str, Any]] = []
        self.model.eval()
        if self.regression:
            values = [self.model(batch)["energy"].detach().cpu().double().numpy()
                      for batch in self._batches(samples, "SchNet neighbour lists (predict)")]
            return np.concatenate(values) if values else np.zeros(0)
        for batch in self._batches(samples, "SchNet neighbour lists (predict)"):
            result = self.model(batch)  # forces need autograd: no torch.no_grad here
            energies = result["energy"].detach().cpu().double().numpy()
            forces = result["forces"].detach().cpu().double().numpy()
            bounds = np.concatenate([[0], np.cumsum(batch[props.n_atoms].cpu().numpy())])
            for index, energy in enumerate(energies):
                out.append({"energy": float(energy), "forces": forces[bounds[index]:bounds[index + 1]].copy()})
        return out

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        batch = spk.data.loader._atoms_collate_fn(
            self._transformed(samples, [self._neighbor_list(), spk.transform.CastTo32()], False,
                              "SchNet neighbour lists (profiling)"))
        return tuple(batch[key].to(self.device) for key in BATCH_KEYS)
