"""The runner's entry point for MACE (``mace_adapter.adapter:MaceAdapter``), built from mace-torch's
own Python API: the same argument parser, model construction, loss, optimizer, scheduler and
training step that ``mace_run_train`` uses, with mateval's data, validation set and epoch loop.
"""

from __future__ import annotations

import copy
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Mapping, Sequence

import warnings

# e3nn's TorchScript compilation warns once per layer about instance-level annotations; harmless,
# and hundreds of lines in run.log
warnings.filterwarnings("ignore", message="The TorchScript type system doesn't support instance-level annotations")

import mace  # noqa: E402,F401  (must come before e3nn: e3nn 0.4.4 fails to import under torch >= 2.6 otherwise)
import numpy as np
import torch
from mace import data as mace_data
from mace import modules as mace_modules
from mace import tools as mace_tools
from mace.modules.lora import inject_LoRAs, merge_lora_weights
from mace.tools import torch_geometric
from mace.tools.model_script_utils import configure_model
from mace.tools.scripts_utils import (LRScheduler, get_atomic_energies, get_loss_fn, get_optimizer,
                                     get_params_options)
from mace.tools.train import evaluate, train_one_epoch
from pymatgen.io.ase import AseAtomsAdaptor
from torch import nn

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track

#: hyperparameters passed to ``mace_run_train``'s argument parser as the flag of the same name
CLI_HYPERPARAMETERS = (
    "r_max", "num_channels", "max_L", "max_ell", "correlation", "num_interactions", "num_radial_basis",
    "num_cutoff_basis", "radial_MLP", "MLP_irreps", "interaction", "interaction_first", "scaling", "E0s",
    "energy_weight", "forces_weight", "lr", "weight_decay", "batch_size", "valid_batch_size",
    "ema", "ema_decay", "clip_grad", "scheduler_patience", "lr_factor", "patience", "default_dtype",
)
#: hyperparameters of mateval's own (not ``mace_run_train`` flags of the same name)
OWN_HYPERPARAMETERS = ("epochs", "foundation_model", "finetune_mode", "lora_rank", "lora_alpha")
HYPERPARAMETERS = CLI_HYPERPARAMETERS + OWN_HYPERPARAMETERS
#: keys of a MACE batch handed to :class:`EnergyNetwork` (positional, in this order)
BATCH_KEYS = ("positions", "node_attrs", "edge_index", "shifts", "unit_shifts", "cell", "batch", "ptr", "head")
#: ASE keys mateval writes the reference energy and forces under (never MACE's defaults
#: ``energy``/``forces``, which ASE calculators may shadow)
ENERGY_KEY, FORCES_KEY = "REF_energy", "REF_forces"


class EnergyNetwork(nn.Module):
    """The trained MACE model behind a positional forward for parameter and FLOP counting.

    ``forward(*tensors)`` takes the batch tensors named in :data:`BATCH_KEYS` and returns the
    total energy per structure, shape ``(n_structures,)`` in eV, computed with
    ``compute_force=False``: the backward pass that gives the forces is **not** in the FLOP count.
    Its parameters are exactly the MACE model's (LoRA adapters included, frozen base weights with
    ``requires_grad=False``).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(BATCH_KEYS, tensors))
        out = self.model(batch, training=self.training, compute_force=False, compute_virials=False,
                         compute_stress=False)
        return out["energy"]


class _LossCollector:
    """Stands in for ``mace.tools.MetricsLogger`` in ``train_one_epoch``: keeps each step's loss."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def log(self, metrics: Mapping[str, Any]) -> None:
        self.losses.append(float(metrics["loss"]))


class MaceAdapter(ModelAdapter):
    r"""Trains and applies MACE (Batatia et al., NeurIPS 2022) through mace-torch 0.3.16.

    What comes from mace-torch, unchanged: the defaults of ``mace_run_train``'s argument parser
    (``mace.tools.build_default_arg_parser``, ``check_args``) filled with this run's
    hyperparameters; the model built by ``mace.tools.model_script_utils.configure_model`` (model
    ``MACE``: a ``ScaleShiftMACE`` with zero shift and the ``rms_forces_scaling`` scale), or, with a
    ``foundation_model``, the foundation's architecture and weights (``load_foundations_elements``);
    LoRA adapters from ``mace.modules.lora.inject_LoRAs``; E0s from the least-squares fit on the
    training set (``E0s: average``, ``mace.data.compute_average_E0s``); the average neighbour
    count of the training graphs; ``WeightedEnergyForcesLoss``
    (:math:`\mathcal{L} = \frac{\lambda_E}{B}\sum_b \bigl(\frac{\hat E_b - E_b}{N_b}\bigr)^2 +
    \frac{\lambda_F}{3N}\sum_{i,\alpha}(\hat F_{i\alpha} - F_{i\alpha})^2`, eV² units); the
    AMSGrad Adam with weight decay on the interaction and product weights; ``ReduceLROnPlateau`` on
    the validation loss; gradient clipping; optional EMA; ``train_one_epoch`` and ``evaluate``.

    What mateval does instead of ``mace_run_train``: the data come as pymatgen structures
    (converted with ``AseAtomsAdaptor``), the validation set is the one handed to :meth:`fit` (never
    mace's ``valid_fraction`` split), each epoch is reported through ``on_epoch_end``, and the
    weights of the epoch with the lowest validation loss are kept (as ``mace_run_train``'s
    checkpoint handler does; the last epoch's without validation data). Not wrapped: SWA/stage
    two, multi-head replay fine-tuning (it needs the foundation's training data), distributed
    training.

    Units: energies in eV (total per cell), forces in eV/Å, lengths in Å. Losses in
    ``EpochRecord`` are the weighted energy/forces loss above (eV²).

    Shapes: ``predict`` returns, per sample, ``{"energy": float, "forces": (n_atoms, 3) float64}``;
    ``forward_inputs`` returns the tensors of :data:`BATCH_KEYS` for :class:`EnergyNetwork`.

    Raises:
        ValueError: from ``__init__`` for a task type other than ``potential``, a missing or
            unknown hyperparameter, ``finetune_mode: lora`` without a ``foundation_model``, or a
            ``foundation_model`` path that does not exist; from ``fit`` for a foundation model
            without weights for an element of the task; from ``fit``/``predict`` for a sample
            without energy or forces, forces of the wrong shape, or an element the model does not
            know (each naming the sample id).
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "potential":
            raise ValueError(f"task type {task.task_type!r} of task {task.name!r} is not supported by MACE "
                             "(supported: potential)")
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        # mace_run_train sets the global default dtype; AtomicData and the model follow it.
        mace_tools.set_default_dtype(self.hp["default_dtype"])
        self._workdir = tempfile.mkdtemp(prefix="mateval-mace-")
        self.args = self._mace_args()
        self.model: nn.Module | None = None
        self.z_table: mace_tools.AtomicNumberTable | None = None
        self.output_args: dict[str, bool] | None = None
        self.atomic_energies: dict[int, float] | None = None

    # ------------------------------------------------------------------ hyperparameters
    @staticmethod
    def _validate(hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters, checked for completeness and for what relates several of them
        (types and ranges are model.yaml's ``hyperparameter_types``, checked by the runner)."""
        missing = [name for name in HYPERPARAMETERS if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for mace: {', '.join(unknown)}")
        out = dict(hp)
        foundation = str(out["foundation_model"] or "")
        out["foundation_model"] = foundation
        if out["finetune_mode"] == "lora" and not foundation:
            raise ValueError("hyperparameter finetune_mode is 'lora' but foundation_model is empty: "
                             "LoRA adapts a foundation model; give its path")
        if foundation and not Path(foundation).is_file():
            raise ValueError(f"hyperparameter foundation_model: no such file {foundation!r}")
        return out

    def _mace_args(self):
        """``mace_run_train``'s parsed arguments: its defaults, overridden by this run's
        hyperparameters (passed as its command-line flags, so its own parsing applies)."""
        argv = ["--name", "mateval", "--work_dir", self._workdir, "--seed", str(int(self.seed)),
                "--max_num_epochs", str(int(self.hp["epochs"])), "--device", self.device.type,
                "--loss", "weighted"]
        switches = {}
        for name in CLI_HYPERPARAMETERS:
            value = self.hp[name]
            if isinstance(value, bool):  # store_true switches (--ema): set after parsing
                switches[name] = value
            else:
                argv += [f"--{name}", str(value)]
        if self.hp["foundation_model"]:
            argv += ["--foundation_model", self.hp["foundation_model"], "--multiheads_finetuning", "False"]
            if self.hp["finetune_mode"] == "lora":
                argv += ["--lora", "True", "--lora_rank", str(int(self.hp["lora_rank"])),
                         "--lora_alpha", str(float(self.hp["lora_alpha"]))]
        args = mace_tools.build_default_arg_parser().parse_args(argv)
        for name, value in switches.items():
            setattr(args, name, value)
        args, _ = mace_tools.check_args(args)
        # set by mace_run_train for the plain energy/forces loss (run_train.py, "compute_energy")
        args.compute_energy, args.compute_dipole = True, False
        return args

    # ------------------------------------------------------------------ data
    @staticmethod
    def _atoms(sample: Sample, with_target: bool):
        atoms = AseAtomsAdaptor.get_atoms(sample.structure)
        info = dict(getattr(sample, "info", None) or {})
        if "config_type" in info:
            atoms.info["config_type"] = str(info["config_type"])
        if with_target:
            target = sample.target
            if not isinstance(target, Mapping) or "energy" not in target or "forces" not in target:
                raise ValueError(f"sample {sample.id!r}: target must be a mapping with 'energy' (eV) and "
                                 f"'forces' (eV/Å), got {type(target).__name__}")
            forces = np.asarray(target["forces"], dtype=np.float64)
            if forces.shape != (len(atoms), 3):
                raise ValueError(f"sample {sample.id!r}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
            energy = float(target["energy"])
            if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
                raise ValueError(f"sample {sample.id!r}: non-finite energy or forces")
            atoms.info[ENERGY_KEY] = energy
            atoms.arrays[FORCES_KEY] = forces
        return atoms

    def _configs(self, samples: Sequence[Sample], with_target: bool) -> list:
        keyspec = mace_data.KeySpecification(info_keys={"energy": ENERGY_KEY}, arrays_keys={"forces": FORCES_KEY})
        return [mace_data.config_from_atoms(self._atoms(s, with_target), key_specification=keyspec)
                for s in samples]

    def _graphs(self, samples: Sequence[Sample], with_target: bool, what: str) -> list:
        known = set(self.z_table.zs)
        out = []
        configs = self._configs(samples, with_target)
        for sample, config in track(list(zip(samples, configs)), what):
            missing = sorted(set(int(z) for z in config.atomic_numbers) - known)
            if missing:
                raise ValueError(f"sample {sample.id!r}: atomic number(s) {missing} unknown to the model "
                                 f"(it knows {sorted(known)})")
            out.append(mace_data.AtomicData.from_config(config, z_table=self.z_table, cutoff=float(self.args.r_max),
                                                        heads=["Default"]))
        return out

    def _loader(self, graphs: list, batch_size: int, shuffle: bool, drop_last: bool = False):
        generator = torch.Generator().manual_seed(int(self.seed))
        return torch_geometric.dataloader.DataLoader(dataset=graphs, batch_size=batch_size, shuffle=shuffle,
                                                     drop_last=drop_last, generator=generator)

    # ------------------------------------------------------------------ model
    def _build(self, train_configs: list, train_loader, foundation: nn.Module | None) -> None:
        args = self.args
        self.atomic_energies = get_atomic_energies(args.E0s, train_configs, self.z_table)
        atomic_energies = np.array([self.atomic_energies[z] for z in self.z_table.zs])
        if foundation is None:
            args.avg_num_neighbors = mace_modules.compute_avg_num_neighbors(train_loader)
        model, self.output_args = configure_model(args, train_loader, atomic_energies, foundation, ["Default"],
                                                  self.z_table, None)
        model.to(self.device)
        if self.hp["foundation_model"] and self.hp["finetune_mode"] == "lora":
            model = inject_LoRAs(model, rank=int(self.hp["lora_rank"]), alpha=float(self.hp["lora_alpha"]))
        self.model = model

    def _check_foundation_elements(self, foundation: nn.Module) -> None:
        """MACE fine-tunes only elements its foundation was trained on (``load_foundations_elements``
        copies their per-element weights); raises ValueError naming the file and the missing
        elements otherwise (mace-torch itself fails with "14 is not in list")."""
        from pymatgen.core import Element

        known = {int(z) for z in foundation.atomic_numbers.tolist()}
        missing = sorted(set(self.z_table.zs) - known)
        if missing:
            raise ValueError(
                f"hyperparameter foundation_model: {self.hp['foundation_model']} was trained on "
                f"{', '.join(Element.from_Z(z).symbol for z in sorted(known))}; it has no weights for "
                f"{', '.join(Element.from_Z(z).symbol for z in missing)} of this task ({self.task.name})")

    def _z_table(self, train: Sequence[Sample]) -> mace_tools.AtomicNumberTable:
        from pymatgen.core import Element

        zs = {int(site.specie.Z) for s in train for site in s.structure}
        zs.update(Element(symbol).Z for symbol in (self.task.elements or ()))
        return mace_tools.AtomicNumberTable(sorted(zs))

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> nn.Module:
        if self.model is None:
            raise RuntimeError("MACE has no network before fit()")
        return EnergyNetwork(self.model)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        self.z_table = self._z_table(train)
        args = self.args
        foundation = None
        if self.hp["foundation_model"]:  # a whole pickled module, as mace_run_train saves it
            foundation = torch.load(self.hp["foundation_model"], map_location=self.device, weights_only=False)
            args.r_max = float(foundation.r_max.item())  # as mace_run_train: the foundation's cutoff
            self._check_foundation_elements(foundation)
        train_configs = self._configs(train, with_target=True)
        train_graphs = self._graphs(train, True, "MACE graphs (train)")
        val_graphs = self._graphs(val, True, "MACE graphs (validation)") if len(val) else []
        batch_size = int(self.hp["batch_size"])
        # mace_run_train drops the last incomplete batch; with fewer structures than one batch
        # that would leave nothing to train on, so then it is kept.
        loader = self._loader(train_graphs, batch_size, shuffle=True, drop_last=len(train_graphs) > batch_size)
        val_loader = self._loader(val_graphs, int(self.hp["valid_batch_size"]), shuffle=False) if val_graphs else None
        self._build(train_configs, loader, foundation)

        model = self.model
        loss_fn = get_loss_fn(args, False, False)
        optimizer = get_optimizer(args, get_params_options(args, model))
        scheduler = LRScheduler(optimizer, args)
        ema = None
        if args.ema:
            from torch_ema import ExponentialMovingAverage

            ema = ExponentialMovingAverage(model.parameters(), decay=args.ema_decay)
        best_loss, best_state, stale = np.inf, None, 0
        valid_loss = None
        for epoch in range(1, int(self.hp["epochs"]) + 1):
            if epoch > 1 and valid_loss is not None:
                scheduler.step(metrics=valid_loss)
            collector = _LossCollector()
            model.train()
            train_one_epoch(model=model, loss_fn=loss_fn, data_loader=loader, optimizer=optimizer, epoch=epoch,
                            output_args=self.output_args, max_grad_norm=args.clip_grad, ema=ema, logger=collector,
                            device=self.device, distributed=False)
            train_loss = float(np.mean(collector.losses)) if collector.losses else float("nan")
            extra: dict[str, float] = {}
            valid_loss = None
            if val_loader is not None:
                with ema.average_parameters() if ema is not None else nullcontext():
                    valid_loss, aux = evaluate(model=model, loss_fn=loss_fn, data_loader=val_loader,
                                               output_args=self.output_args, device=self.device)
                    valid_loss = float(valid_loss)
                    extra = {"val_rmse_e_per_atom_meV": 1000.0 * float(aux["rmse_e_per_atom"]),
                             "val_rmse_f_meV_per_A": 1000.0 * float(aux["rmse_f"])}
                    if valid_loss < best_loss:
                        best_loss, best_state, stale = valid_loss, copy.deepcopy(model.state_dict()), 0
                    else:
                        stale += 1
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=valid_loss,
                                     lr=float(optimizer.param_groups[0]["lr"]),
                                     loss_name=f"weighted energy/forces (eV^2; energy_weight={args.energy_weight}, "
                                               f"forces_weight={args.forces_weight})",
                                     extra=extra))
            if stale >= int(self.hp["patience"]):
                break
        if ema is not None and best_state is None:
            ema.copy_to(model.parameters())
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()

    def _outputs(self, batch, compute_force: bool) -> dict:
        batch = batch.to(self.device)
        return self.model(batch.to_dict(), training=False, compute_force=compute_force, compute_virials=False,
                          compute_stress=False)

    def predict(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        if self.model is None:
            raise RuntimeError("predict() before fit()")
        if len(samples) == 0:
            return []
        self.model.eval()
        graphs = self._graphs(samples, False, "MACE graphs (predict)")
        out: list[dict[str, Any]] = []
        for batch in self._loader(graphs, int(self.hp["valid_batch_size"]), shuffle=False):
            result = self._outputs(batch, compute_force=True)
            energies = result["energy"].detach().cpu().double().numpy()
            forces = result["forces"].detach().cpu().double().numpy()
            ptr = batch.ptr.cpu().numpy()
            for index, energy in enumerate(energies):
                out.append({"energy": float(energy), "forces": forces[ptr[index]:ptr[index + 1]].copy()})
        return out

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        graphs = self._graphs(samples, False, "MACE graphs (profiling)")
        batch = torch_geometric.batch.Batch.from_data_list(graphs).to(self.device)
        tensors = batch.to_dict()
        return tuple(tensors[key] for key in BATCH_KEYS)

    # ------------------------------------------------------------------ saving
    def save_model(self, path: str | os.PathLike) -> Path:
        """Write the trained MACE model as ``mace_run_train`` does (``torch.save`` of the whole
        module, LoRA adapters merged into the base weights, on the CPU), so that it can serve as
        a ``foundation_model`` or be loaded by ``mace.calculators.MACECalculator``.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.model is None:
            raise RuntimeError("save_model() before fit()")
        model = merge_lora_weights(copy.deepcopy(self.model)).to("cpu")
        path = Path(path)
        torch.save(model, path)
        return path
