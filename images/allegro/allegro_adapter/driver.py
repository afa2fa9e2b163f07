"""mateval's driver of the nequip 0.19 framework, shared by every model built in it (NequIP, Allegro).

The nequip framework's own Python API runs the same steps ``nequip-train`` (``nequip.scripts.train``)
runs on a Hydra config, on config sections that mirror the packages' ``configs/tutorial.yaml``,
with mateval's data, validation set and a Lightning callback that reports every epoch. A model's
adapter (``adapter.py`` beside this file) subclasses :class:`FrameworkAdapter` and says only which
model builder to call with which hyperparameters (:meth:`FrameworkAdapter.model_section`).

This file is byte-identical in ``images/nequip/nequip_adapter/driver.py`` and
``images/allegro/allegro_adapter/driver.py``: each model folder is its own Docker build context and
cannot import the other's code (``tests/unit/test_shared_model_files.py`` keeps the copies equal).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import ase.io
import lightning
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from hydra.utils import instantiate
from nequip.data import AtomicDataDict, from_ase
from nequip.nn import ForceStressOutput
from nequip.train import NequIPLightningModule
from nequip.utils.global_state import set_global_state
from pymatgen.core import Element
from pymatgen.io.ase import AseAtomsAdaptor
from torch import nn

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track
from runner.tasks.potential import check_target

# Lightning's hints about worker processes and logging intervals: harmless for these small data
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*number of training batches.*is smaller than the logging interval.*")

#: hyperparameters of the data, loss, optimizer, scheduler, EMA and trainer sections of the config
TRAINING_HYPERPARAMETERS = (
    "zbl", "energy_weight", "forces_weight", "lr", "lr_factor", "scheduler_patience", "lr_threshold", "min_lr",
    "batch_size", "valid_batch_size", "ema", "ema_decay", "patience", "min_delta", "epochs",
)
#: keys of a nequip ``AtomicDataDict`` batch handed to :class:`EnergyNetwork` (positional, in this order)
BATCH_KEYS = (AtomicDataDict.POSITIONS_KEY, AtomicDataDict.EDGE_INDEX_KEY, AtomicDataDict.EDGE_CELL_SHIFT_KEY,
              AtomicDataDict.CELL_KEY, AtomicDataDict.PBC_KEY, AtomicDataDict.ATOM_TYPE_KEY,
              AtomicDataDict.BATCH_KEY, AtomicDataDict.NUM_NODES_KEY)
#: the validation metric that selects the kept weights and drives the scheduler and early stopping
MONITORED = "val0_epoch/weighted_sum"


def _energy_model(graph_model: nn.Module) -> nn.Module:
    """The energy-only part of a nequip ``GraphModel``: the function inside its ``ForceStressOutput``."""
    inner = graph_model.model
    if not isinstance(inner, ForceStressOutput):
        raise TypeError(f"expected the nequip model to end in ForceStressOutput, found {type(inner).__name__}")
    return inner.func


class EnergyNetwork(nn.Module):
    """The trained nequip model behind a positional forward for parameter and FLOP counting.

    ``forward(*tensors)`` takes the batch tensors named in :data:`BATCH_KEYS` and returns the total
    energy per structure, shape ``(n_structures,)`` in eV, from the energy model inside the
    ``ForceStressOutput`` wrapper: the autograd backward that gives the forces is **not** in the
    forward FLOP count. Its parameters are exactly the trained model's (EMA weights when EMA is on).
    """

    def __init__(self, graph_model: nn.Module):
        super().__init__()
        self.graph_model = graph_model

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        data = dict(zip(BATCH_KEYS, tensors))
        return _energy_model(self.graph_model)(data)[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)


class _EpochReporter(lightning.Callback):
    """Reports each training epoch to mateval and keeps the state of the best-validation epoch.

    Lightning calls callbacks' ``on_train_epoch_end`` after the epoch's validation and before the
    module's own ``on_train_epoch_end`` (which computes and resets the loss), so the training loss
    read here is nequip's epoch loss (``train_loss_epoch/weighted_sum``) and the validation metrics
    are those of this epoch.
    """

    def __init__(self, on_epoch_end: EpochCallback, loss_name: str):
        super().__init__()
        self.on_epoch_end = on_epoch_end
        self.loss_name = loss_name
        self.best_loss = np.inf
        self.best_state: dict | None = None

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: NequIPLightningModule) -> None:
        train = pl_module.loss.compute(prefix="train/")
        metrics = trainer.callback_metrics
        val_loss, extra = None, {}
        if MONITORED in metrics:
            val_loss = float(metrics[MONITORED])
            extra = {"val_rmse_e_per_atom_meV": 1000.0 * float(metrics["val0_epoch/per_atom_energy_mse"]) ** 0.5,
                     "val_rmse_f_meV_per_A": 1000.0 * float(metrics["val0_epoch/forces_mse"]) ** 0.5}
            if val_loss < self.best_loss:
                self.best_loss, self.best_state = val_loss, copy.deepcopy(pl_module.state_dict())
        self.on_epoch_end(EpochRecord(epoch=trainer.current_epoch + 1, train_loss=float(train["train/weighted_sum"]),
                                      val_loss=val_loss, lr=float(trainer.optimizers[0].param_groups[0]["lr"]),
                                      loss_name=self.loss_name, extra=extra))


class FrameworkAdapter(ModelAdapter):
    r"""Trains and applies a model of the nequip 0.19 framework (subclasses name the model builder).

    What comes from nequip, unchanged: the model builder (:attr:`MODEL_BUILDER`, e.g.
    ``nequip.model.NequIPGNNModel``) with this run's hyperparameters; the data pipeline
    (``ASEDataModule`` on extxyz files,
    ``ChemicalSpeciesToAtomTypeMapper``, ``NeighborListTransform``); the training statistics of
    ``CommonDataStatisticsManager`` (average neighbour count, per-type force RMS as per-atom energy
    scale, mean per-atom energy as shift), resolved as ``nequip-train`` resolves
    ``${training_data_stats:...}``; the optional ZBL pair potential; the loss ``EnergyForceLoss``
    (:math:`\mathcal{L} = \lambda_E\,\mathrm{MSE}(E/N) + \lambda_F\,\mathrm{MSE}(F)`, eV² units,
    per-atom energy); ``EMALightningModule`` (or ``NequIPLightningModule`` without EMA); Adam with
    ``ReduceLROnPlateau`` on the validation loss; Lightning's ``EarlyStopping``; the Lightning
    ``Trainer`` loop. The config sections are those of nequip's ``configs/tutorial.yaml``.

    What mateval does instead of ``nequip-train``: the data come as pymatgen structures (written
    to extxyz files with ``AseAtomsAdaptor``), the validation set is the one handed to :meth:`fit`
    (never nequip's ``split_dataset``), every epoch reaches ``on_epoch_end`` through a Lightning
    callback, the weights of the epoch with the lowest validation loss are kept (as the tutorial's
    ``ModelCheckpoint`` ``best.ckpt``; the last epoch's without validation data), and no checkpoint
    or log files are written. Predictions use the trained ``GraphModel`` directly (EMA weights
    when EMA is on, as nequip's own model loading does).

    Units: energies in eV (total per cell), forces in eV/Å, lengths in Å. Losses in ``EpochRecord``
    are nequip's ``weighted_sum`` of the loss above (eV² and (eV/Å)²).

    Shapes: ``predict`` returns, per sample, ``{"energy": float, "forces": (n_atoms, 3) float64}``;
    ``forward_inputs`` returns the tensors of :data:`BATCH_KEYS` for :class:`EnergyNetwork`.

    Raises:
        ValueError: from ``__init__`` for a task type other than ``potential`` or a missing or
            unknown hyperparameter; from ``fit``/``predict`` for a sample without energy or forces,
            forces of the wrong shape, non-finite targets, or an element the model does not know
            (each naming the sample id).
    """

    #: the model builder (``training_module.model._target_`` in a nequip config); set by subclasses
    MODEL_BUILDER: str = ""
    #: hyperparameters passed to :attr:`MODEL_BUILDER` as the keyword of the same name
    MODEL_HYPERPARAMETERS: tuple[str, ...] = ()
    #: builder keyword -> training statistic of ``CommonDataStatisticsManager`` it is set to
    STATISTICS: Mapping[str, str] = {"avg_num_neighbors": "num_neighbors_mean",
                                     "per_type_energy_scales": "per_type_forces_rms",
                                     "per_type_energy_shifts": "per_atom_energy_mean"}

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "potential":
            raise ValueError(f"task type {task.task_type!r} of task {task.name!r} is not supported by "
                             f"{type(self).__name__} (supported: potential)")
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        set_global_state()  # as nequip-train: float64 default dtype, TF32 off (then mateval's seed below)
        lightning.seed_everything(int(seed), workers=True, verbose=False)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"mateval-{type(self).__name__.lower()}-"))
        self.type_names: list[str] | None = None
        self.module: NequIPLightningModule | None = None
        self.model: nn.Module | None = None  # the trained GraphModel

    # ------------------------------------------------------------------ hyperparameters
    @classmethod
    def _validate(cls, hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters, checked for completeness (types and ranges are model.yaml's
        ``hyperparameter_types``, checked by the runner)."""
        names = cls.hyperparameter_names()
        missing = [name for name in names if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(names))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for {cls.__name__}: {', '.join(unknown)}")
        return dict(hp)

    @classmethod
    def hyperparameter_names(cls) -> tuple[str, ...]:
        """Every hyperparameter this adapter reads (model.yaml must declare exactly these)."""
        return cls.MODEL_HYPERPARAMETERS + TRAINING_HYPERPARAMETERS

    # ------------------------------------------------------------------ config sections
    def model_section(self) -> dict[str, Any]:
        """``training_module.model`` of the config: the builder and its keywords, with the
        training-data statistics placeholders that :meth:`fit` resolves (as nequip-train's
        ``${training_data_stats:...}`` resolver)."""
        section: dict[str, Any] = {"_target_": self.MODEL_BUILDER, "seed": int(self.seed),
                                   "type_names": self.type_names}
        section.update({name: self.hp[name] for name in self.MODEL_HYPERPARAMETERS})
        section.update(self.STATISTICS)
        section.update(per_type_energy_scales_trainable=False, per_type_energy_shifts_trainable=False)
        if self.hp["zbl"]:
            section["pair_potential"] = {"_target_": "nequip.nn.pair_potential.ZBL", "units": "metal",
                                         "chemical_species": self.type_names}
        return section

    def _transforms(self) -> list[dict[str, Any]]:
        return [{"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                 "model_type_names": self.type_names,
                 "chemical_species_to_atom_type_map": {name: name for name in self.type_names}},
                {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": float(self.hp["r_max"])}]

    def _data_section(self, train_file: Path, val_file: Path | None) -> dict[str, Any]:
        return {"_target_": "nequip.data.datamodule.ASEDataModule", "seed": int(self.seed),
                "train_file_path": str(train_file), "val_file_path": [str(val_file)] if val_file else [],
                "transforms": self._transforms(),
                "train_dataloader": {"_target_": "torch.utils.data.DataLoader",
                                     "batch_size": int(self.hp["batch_size"]), "shuffle": True},
                "val_dataloader": {"_target_": "torch.utils.data.DataLoader",
                                   "batch_size": int(self.hp["valid_batch_size"])},
                "stats_manager": {"_target_": "nequip.data.CommonDataStatisticsManager",
                                  "dataloader_kwargs": {"batch_size": int(self.hp["valid_batch_size"])},
                                  "type_names": self.type_names}}

    def _training_module_section(self, stats: Mapping[str, Any], with_val: bool) -> dict[str, Any]:
        loss = {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                "coeffs": {"total_energy": float(self.hp["energy_weight"]), "forces": float(self.hp["forces_weight"])}}
        model = self.model_section()
        for key in self.STATISTICS:
            name = model[key]
            if name not in stats:
                raise RuntimeError(f"nequip computed no training statistic {name!r} (has {sorted(stats)})")
            model[key] = _plain(stats[name])
        section: dict[str, Any] = {
            "_target_": "nequip.train.EMALightningModule" if self.hp["ema"] else "nequip.train.NequIPLightningModule",
            "loss": loss, "val_metrics": copy.deepcopy(loss),
            "optimizer": {"_target_": "torch.optim.Adam", "lr": float(self.hp["lr"])},
            "model": model,
        }
        if self.hp["ema"]:
            section["ema_decay"] = float(self.hp["ema_decay"])
        if with_val:
            section["lr_scheduler"] = {
                "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                              "factor": float(self.hp["lr_factor"]), "patience": int(self.hp["scheduler_patience"]),
                              "threshold": float(self.hp["lr_threshold"]), "min_lr": float(self.hp["min_lr"])},
                "monitor": MONITORED, "interval": "epoch", "frequency": 1}
        return section

    # ------------------------------------------------------------------ data
    @staticmethod
    def _atoms(sample: Sample, with_target: bool):
        atoms = AseAtomsAdaptor.get_atoms(sample.structure)
        if with_target:  # the potential task's own check (mapping, finite numbers, forces (n, 3))
            energy, forces = check_target(sample.target, len(atoms), f"sample {sample.id!r}: target")
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        return atoms

    def _check_elements(self, samples: Sequence[Sample]) -> None:
        known = set(self.type_names)
        for sample in samples:
            missing = sorted({site.specie.symbol for site in sample.structure} - known)
            if missing:
                raise ValueError(f"sample {sample.id!r}: element(s) {missing} unknown to the model "
                                 f"(it knows {sorted(known)})")

    def _write(self, samples: Sequence[Sample], name: str) -> Path:
        path = self._workdir / f"{name}.extxyz"
        ase.io.write(path, [self._atoms(s, with_target=True) for s in samples], format="extxyz")
        return path

    def _type_names(self, train: Sequence[Sample]) -> list[str]:
        symbols = {site.specie.symbol for s in train for site in s.structure} | set(self.task.elements or ())
        return sorted(symbols, key=lambda symbol: Element(symbol).Z)

    def _batch(self, samples: Sequence[Sample], what: str) -> dict[str, torch.Tensor]:
        self._check_elements(samples)
        transforms = [instantiate(t) for t in self._transforms()]
        frames = []
        for sample in track(list(samples), what):
            data = from_ase(self._atoms(sample, with_target=False))
            for transform in transforms:
                data = transform(data)
            frames.append(data)
        return AtomicDataDict.to_(AtomicDataDict.batched_from_list(frames), self.device)

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} has no network before fit()")
        return EnergyNetwork(self.model)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        self.type_names = self._type_names(train)
        self._check_elements(list(train) + list(val))
        train_file = self._write(train, "train")
        val_file = self._write(val, "val") if len(val) else None
        datamodule = instantiate(self._data_section(train_file, val_file), _recursive_=False)
        stats = datamodule.get_statistics(dataset="train")
        section = self._training_module_section(stats, with_val=val_file is not None)
        module = instantiate(section, _recursive_=False, _convert_="all", num_datasets=datamodule.num_datasets,
                             info_dict={"training_module": section})
        loss_name = (f"nequip EnergyForceLoss weighted_sum (per-atom energy MSE x {self.hp['energy_weight']} + "
                     f"force MSE x {self.hp['forces_weight']}; eV^2/atom^2, eV^2/Å^2)")
        reporter = _EpochReporter(on_epoch_end, loss_name)
        callbacks: list[lightning.Callback] = [reporter]
        if val_file is not None:
            callbacks.append(lightning.pytorch.callbacks.EarlyStopping(
                monitor=MONITORED, min_delta=float(self.hp["min_delta"]), patience=int(self.hp["patience"])))
        trainer = lightning.Trainer(accelerator="cuda" if self.device.type == "cuda" else "cpu", devices=1,
                                    max_epochs=int(self.hp["epochs"]), logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                                    inference_mode=False, callbacks=callbacks, default_root_dir=str(self._workdir))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            trainer.fit(module, datamodule=datamodule)
        if reporter.best_state is not None:
            module.load_state_dict(reporter.best_state)
        self.module = module
        # as nequip's model loading: the EMA weights when EMA is on
        self.model = module.evaluation_model[next(iter(module.model.keys()))].to(self.device)
        self.model.eval()

    def predict(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        if self.model is None:
            raise RuntimeError("predict() before fit()")
        out: list[dict[str, Any]] = []
        batch_size = int(self.hp["valid_batch_size"])
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            batch = self._batch(chunk, f"{type(self).__name__} graphs (predict)")
            with torch.enable_grad():
                result = self.model(batch)
            energies = result[AtomicDataDict.TOTAL_ENERGY_KEY].detach().cpu().double().numpy().reshape(-1)
            forces = result[AtomicDataDict.FORCE_KEY].detach().cpu().double().numpy()
            ptr = np.concatenate([[0], np.cumsum(batch[AtomicDataDict.NUM_NODES_KEY].cpu().numpy())])
            for index, energy in enumerate(energies):
                out.append({"energy": float(energy), "forces": forces[ptr[index]:ptr[index + 1]].copy()})
        return out

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        batch = self._batch(samples, f"{type(self).__name__} graphs (profiling)")
        return tuple(batch[key] for key in BATCH_KEYS)


def _plain(value: Any) -> Any:
    """A training statistic as plain Python numbers (nequip returns tensors or dicts of them)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value)

