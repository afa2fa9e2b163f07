"""The runner's entry point for DPA-2 (``dpa2_adapter.adapter:Dpa2Adapter``): deepmd-kit's own
``dp --pt train`` in a subprocess on npy systems written from mateval's samples, its learning
curve streamed into ``on_epoch_end``, predictions with deepmd-kit's ``DeepPot`` on the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from dpa2_adapter import pure  # noqa: F401  (before deepmd.pt: never load the torch-2.11 op library)

import numpy as np
import torch
from torch import nn

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec
from runner.progress import track

#: hyperparameters, each mapped onto deepmd-kit's input.json by :func:`input_json`
HYPERPARAMETERS = (
    "repinit_tebd_dim", "repinit_rcut", "repinit_rcut_smth", "repinit_nsel", "repinit_neuron", "repinit_axis_neuron",
    "repinit_use_three_body", "three_body_sel", "three_body_rcut", "three_body_rcut_smth",
    "repformer_rcut", "repformer_rcut_smth", "repformer_nsel", "repformer_nlayers", "g1_dim", "g2_dim",
    "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead", "repformer_axis_neuron", "update_g2_has_attn",
    "fitting_neuron", "precision", "start_lr", "stop_lr", "decay_steps", "start_pref_e", "limit_pref_e",
    "start_pref_f", "limit_pref_f", "batch_size", "gradient_max_norm", "epochs", "change_bias_after_training",
)
MODEL_DIR = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------- data
def _symbols(structure) -> list[str]:
    return [site.specie.symbol for site in structure]


def _frame(sample: Sample, type_map: Sequence[str], with_target: bool) -> dict[str, np.ndarray]:
    """One structure in deepmd's units and layout: ``coord`` (n, 3) Å, ``box`` (9,) Å (rows = lattice
    vectors), ``atype`` (n,) indices into ``type_map``; with targets ``energy`` (eV) and ``force``
    (n, 3) eV/Å.

    Raises:
        ValueError: an element outside ``type_map``, or a missing/misshapen/non-finite target,
            naming the sample id.
    """
    structure = sample.structure
    index = {symbol: i for i, symbol in enumerate(type_map)}
    symbols = _symbols(structure)
    unknown = sorted(set(symbols) - set(index))
    if unknown:
        raise ValueError(f"sample {sample.id!r}: element(s) {unknown} unknown to the model (type_map {list(type_map)})")
    frame = {"coord": np.asarray(structure.cart_coords, dtype=np.float64),
             "box": np.asarray(structure.lattice.matrix, dtype=np.float64).reshape(9),
             "atype": np.array([index[s] for s in symbols], dtype=np.int64)}
    if with_target:
        target = sample.target
        if not isinstance(target, Mapping) or "energy" not in target or "forces" not in target:
            raise ValueError(f"sample {sample.id!r}: target must be a mapping with 'energy' (eV) and 'forces' (eV/Å), "
                             f"got {type(target).__name__}")
        forces = np.asarray(target["forces"], dtype=np.float64)
        if forces.shape != (len(symbols), 3):
            raise ValueError(f"sample {sample.id!r}: forces have shape {forces.shape}, expected ({len(symbols)}, 3)")
        energy = float(target["energy"])
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise ValueError(f"sample {sample.id!r}: non-finite energy or forces")
        frame["energy"], frame["force"] = np.float64(energy), forces
    return frame


def write_systems(samples: Sequence[Sample], root: Path, type_map: Sequence[str]) -> list[Path]:
    """Write ``samples`` as deepmd npy systems under ``root`` and return their folders.

    A deepmd system holds frames with one atom-type sequence (``type.raw``), so the atoms of each
    frame are ordered by type (stable) and frames are grouped by the resulting sequence (in
    practice by atom count for one element). Each system is ``type.raw``, ``type_map.raw`` and
    ``set.000/{coord,box,energy,force}.npy`` of shapes ``(nf, 3n)``, ``(nf, 9)``, ``(nf,)``,
    ``(nf, 3n)`` in Å, eV and eV/Å, float64.

    Raises:
        ValueError: as :func:`_frame`.
    """
    groups: dict[tuple[int, ...], list[dict[str, np.ndarray]]] = defaultdict(list)
    for sample in samples:
        frame = _frame(sample, type_map, with_target=True)
        order = np.argsort(frame["atype"], kind="stable")
        frame = {"coord": frame["coord"][order], "box": frame["box"], "atype": frame["atype"][order],
                 "energy": frame["energy"], "force": frame["force"][order]}
        groups[tuple(int(t) for t in frame["atype"])].append(frame)
    folders = []
    for number, (types, frames) in enumerate(sorted(groups.items(), key=lambda item: (len(item[0]), item[0]))):
        folder = Path(root) / f"sys-{number:03d}-{len(types)}atoms"
        (folder / "set.000").mkdir(parents=True)
        (folder / "type.raw").write_text("\n".join(str(t) for t in types) + "\n")
        (folder / "type_map.raw").write_text("\n".join(type_map) + "\n")
        np.save(folder / "set.000" / "coord.npy", np.stack([f["coord"].reshape(-1) for f in frames]))
        np.save(folder / "set.000" / "box.npy", np.stack([f["box"] for f in frames]))
        np.save(folder / "set.000" / "energy.npy", np.array([f["energy"] for f in frames], dtype=np.float64))
        np.save(folder / "set.000" / "force.npy", np.stack([f["force"].reshape(-1) for f in frames]))
        folders.append(folder)
    return folders


def _frames_per_system(folders: Sequence[Path]) -> list[int]:
    return [int(np.load(Path(f) / "set.000" / "energy.npy").shape[0]) for f in folders]


def steps_per_epoch(frames_per_system: Sequence[int], batch_size: int) -> int:
    """Training steps of one epoch: ``sum(ceil(frames / batch_size))`` over the systems (deepmd
    draws one system's batch per step)."""
    return max(1, sum(math.ceil(n / batch_size) for n in frames_per_system))


# ---------------------------------------------------------------------------------------- input.json
def _json_list(hp: Mapping[str, Any], name: str) -> list[int]:
    try:
        value = json.loads(hp[name]) if isinstance(hp[name], str) else list(hp[name])
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"hyperparameter {name}: expected a JSON list of integers such as '[25, 50, 100]', "
                         f"got {hp[name]!r}") from exc
    if not value or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"hyperparameter {name}: expected a non-empty list of positive integers, got {hp[name]!r}")
    return value


def input_json(hp: Mapping[str, Any], type_map: Sequence[str], train_systems: Sequence[Path],
               val_systems: Sequence[Path], numb_steps: int, disp_freq: int, val_batches: int, seed: int) -> dict:
    """deepmd-kit's training input (``dp --pt train input.json``) for these hyperparameters, laid
    out as examples/water/dpa2/input_torch_medium.json; keys not set here take deepmd-kit's defaults.

    ``disp_freq`` is the number of steps of one epoch and ``disp_avg`` is on, so every
    ``lcurve.out`` line after the first is one epoch: training errors averaged over its steps,
    validation errors over ``val_batches`` batches of the validation systems.
    """
    seed = int(seed)
    training: dict[str, Any] = {
        "training_data": {"systems": [str(p) for p in train_systems], "batch_size": int(hp["batch_size"])},
        "numb_steps": int(numb_steps),
        "gradient_max_norm": float(hp["gradient_max_norm"]),
        "seed": seed,
        "disp_file": "lcurve.out",
        "disp_freq": int(disp_freq),
        "disp_avg": True,
        "save_freq": int(numb_steps),
        "max_ckpt_keep": 1,
    }
    if val_systems:
        training["validation_data"] = {"systems": [str(p) for p in val_systems], "batch_size": int(hp["batch_size"]),
                                       "numb_btch": int(val_batches)}
    return {
        "model": {
            "type_map": list(type_map),
            "descriptor": {
                "type": "dpa2",
                "repinit": {
                    "tebd_dim": int(hp["repinit_tebd_dim"]), "rcut": float(hp["repinit_rcut"]),
                    "rcut_smth": float(hp["repinit_rcut_smth"]), "nsel": int(hp["repinit_nsel"]),
                    "neuron": _json_list(hp, "repinit_neuron"), "axis_neuron": int(hp["repinit_axis_neuron"]),
                    "activation_function": "tanh", "three_body_sel": int(hp["three_body_sel"]),
                    "three_body_rcut": float(hp["three_body_rcut"]),
                    "three_body_rcut_smth": float(hp["three_body_rcut_smth"]),
                    "use_three_body": bool(hp["repinit_use_three_body"]),
                },
                "repformer": {
                    "rcut": float(hp["repformer_rcut"]), "rcut_smth": float(hp["repformer_rcut_smth"]),
                    "nsel": int(hp["repformer_nsel"]), "nlayers": int(hp["repformer_nlayers"]),
                    "g1_dim": int(hp["g1_dim"]), "g2_dim": int(hp["g2_dim"]),
                    "attn2_hidden": int(hp["attn2_hidden"]), "attn2_nhead": int(hp["attn2_nhead"]),
                    "attn1_hidden": int(hp["attn1_hidden"]), "attn1_nhead": int(hp["attn1_nhead"]),
                    "axis_neuron": int(hp["repformer_axis_neuron"]), "update_h2": False,
                    "update_g1_has_conv": True, "update_g1_has_grrg": True, "update_g1_has_drrd": True,
                    "update_g1_has_attn": False, "update_g2_has_g1g1": False,
                    "update_g2_has_attn": bool(hp["update_g2_has_attn"]), "update_style": "res_residual",
                    "update_residual": 0.01, "update_residual_init": "norm", "attn2_has_gate": True,
                    "use_sqrt_nnei": True, "g1_out_conv": True, "g1_out_mlp": True,
                },
                "precision": str(hp["precision"]),
                "add_tebd_to_repinit_out": False,
                "seed": seed,
            },
            "fitting_net": {"neuron": _json_list(hp, "fitting_neuron"), "resnet_dt": True,
                            "precision": str(hp["precision"]), "seed": seed},
        },
        "learning_rate": {"type": "exp", "decay_steps": int(hp["decay_steps"]), "start_lr": float(hp["start_lr"]),
                          "stop_lr": float(hp["stop_lr"])},
        "loss": {"type": "ener", "start_pref_e": float(hp["start_pref_e"]), "limit_pref_e": float(hp["limit_pref_e"]),
                 "start_pref_f": float(hp["start_pref_f"]), "limit_pref_f": float(hp["limit_pref_f"]),
                 "start_pref_v": 0.0, "limit_pref_v": 0.0},
        "training": training,
    }


# ---------------------------------------------------------------------------------------- learning curve
def read_lcurve(path: Path) -> tuple[list[str], list[list[float]]]:
    """Column names and complete rows of deepmd's ``lcurve.out`` (``#``-header; a partly written
    last line is left out). Returns ``([], [])`` while the file has no header yet."""
    if not Path(path).is_file():
        return [], []
    text = Path(path).read_text()
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # being written
    names: list[str] = []
    rows: list[list[float]] = []
    for line in lines:
        if line.startswith("#"):
            words = line.lstrip("#").split()
            if words and words[0] == "step":
                names = words
        elif line.strip() and names:
            values = [float(v) for v in line.split()]
            if len(values) == len(names):
                rows.append(values)
    return names, rows


def epoch_records(names: Sequence[str], rows: Sequence[Sequence[float]], spe: int) -> list[EpochRecord]:
    """One :class:`EpochRecord` per ``lcurve.out`` row that ends an epoch (step ``k * spe``; deepmd
    also writes step 1, which is skipped unless an epoch is one step).

    ``train_loss``/``val_loss`` are deepmd's ``rmse_trn``/``rmse_val``: the square root of its
    weighted energy/force loss (prefactors at that step's learning rate, see the README); ``extra``
    keeps the per-atom energy RMSE (meV/atom) and force RMSE (meV/Å) of both sets.
    """
    records = []
    col = {name: i for i, name in enumerate(names)}
    for row in rows:
        step = int(row[col["step"]])
        if step % spe:
            continue
        extra = {}
        for key, label in (("rmse_e", "rmse_e_per_atom_meV"), ("rmse_f", "rmse_f_meV_per_A")):
            for split in ("trn", "val"):
                name = f"{key}_{split}"
                if name in col and math.isfinite(row[col[name]]):
                    extra[f"{'train' if split == 'trn' else 'val'}_{label}"] = 1000.0 * row[col[name]]
        train = row[col["rmse_trn"]] if "rmse_trn" in col else row[col["rmse"]]
        val = row[col["rmse_val"]] if "rmse_val" in col else None
        records.append(EpochRecord(epoch=step // spe, train_loss=float(train),
                                   val_loss=float(val) if val is not None and math.isfinite(val) else None,
                                   lr=float(row[col["lr"]]) if "lr" in col else None,
                                   loss_name="deepmd ener loss: sqrt(pref_e*(dE/N)^2 + pref_f*mean dF^2) (eV-based; "
                                             "prefactors follow the learning rate)",
                                   extra=extra))
    return records


# ---------------------------------------------------------------------------------------- network
class EnergyNetwork(nn.Module):
    """The trained DPA-2 energy model (deepmd-kit's ``EnergyModel``) behind a positional forward
    for parameter and FLOP counting.

    ``forward(*tensors)`` takes, for each of k structures, the 4 tensors of
    :meth:`Dpa2Adapter.forward_inputs` (extended coordinates ``(1, n_ext*3)``, extended types
    ``(1, n_ext)``, neighbour list ``(1, n, sum(sel))``, mapping ``(1, n_ext)``) and returns the
    total energies, shape ``(k,)`` in eV, from ``atomic_model.forward_common_atomic`` (descriptor,
    fitting net, output bias). Not counted: the neighbour-list construction (done in
    ``forward_inputs``) and the backward pass that gives the forces.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if len(tensors) % 4:
            raise ValueError(f"expected 4 tensors per structure, got {len(tensors)}")
        energies = []
        for i in range(0, len(tensors), 4):
            coord, atype, nlist, mapping = tensors[i:i + 4]
            out = self.model.atomic_model.forward_common_atomic(coord, atype, nlist, mapping=mapping)
            energies.append(out["energy"].sum())
        return torch.stack(energies)


# ---------------------------------------------------------------------------------------- adapter
class Dpa2Adapter(ModelAdapter):
    r"""Trains and applies DPA-2 (Zhang et al., npj Comput. Mater. 2024) through deepmd-kit 3.2.0.

    What comes from deepmd-kit, unchanged: the whole training (``dp --pt train input.json``, run as
    a subprocess through :mod:`dpa2_adapter.pure`, i.e. deepmd's ``main`` without its compiled op
    library): the DPA-2 descriptor and fitting net, the data statistics (descriptor normalisation,
    per-type energy bias by least squares on the training systems), the energy loss
    :math:`\mathcal{L} = p_e(t)\,\bigl(\Delta E/N\bigr)^2 + p_f(t)\,\overline{\Delta F^2}` with
    prefactors interpolated between ``start_pref_*`` and ``limit_pref_*`` along the learning rate,
    Adam with exponential learning-rate decay to ``stop_lr`` at the last step, gradient clipping;
    and inference (``deepmd.infer.DeepPot`` on the final checkpoint ``model.ckpt.pt``).

    What mateval does: writes the training and the given validation samples as separate deepmd
    npy systems (:func:`write_systems`; validation is never a deepmd split), sets
    ``numb_steps = epochs x steps per epoch`` and ``disp_freq = steps per epoch``, and reports each
    ``lcurve.out`` line as an epoch while the subprocess runs. deepmd draws each step's system at
    random in proportion to its size, so an "epoch" is as many steps as one pass would take, not
    an exact pass; its validation errors are averaged over as many validation batches as the
    validation set holds, drawn the same way. The model of the last step is kept (deepmd-kit has no
    best-validation checkpoint).

    Units: energies in eV (total per cell), forces in eV/Å, lengths in Å.

    Shapes: ``predict`` returns, per sample, ``{"energy": float, "forces": (n_atoms, 3) float64}``;
    ``forward_inputs`` returns 4 tensors per sample for :class:`EnergyNetwork`.

    Raises:
        ValueError: from ``__init__`` for a task type other than ``potential`` or a missing,
            unknown or malformed hyperparameter; from ``fit``/``predict`` for a sample without
            energy or forces, forces of the wrong shape, or an element the model does not know
            (each naming the sample id).
        RuntimeError: ``dp --pt train`` failed (the message ends with its log).
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type != "potential":
            raise ValueError(f"task type {task.task_type!r} of task {task.name!r} is not supported by DPA-2 "
                             "(supported: potential)")
        self.hp = self._validate(self.hyperparameters)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.workdir = Path(tempfile.mkdtemp(prefix="mateval-dpa2-"))
        self.type_map: list[str] | None = None
        self.checkpoint: Path | None = None
        self._deep_pot = None

    @staticmethod
    def _validate(hp: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters, checked for completeness and list syntax (types and ranges are
        model.yaml's ``hyperparameter_types``, checked by the runner)."""
        missing = [name for name in HYPERPARAMETERS if name not in hp]
        if missing:
            raise ValueError(f"missing hyperparameter(s): {', '.join(missing)}")
        unknown = sorted(set(hp) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for dpa2: {', '.join(unknown)}")
        for name in ("repinit_neuron", "fitting_neuron"):
            _json_list(hp, name)
        return dict(hp)

    def _type_map(self, train: Sequence[Sample]) -> list[str]:
        from pymatgen.core import Element

        symbols = {s for sample in train for s in _symbols(sample.structure)} | set(self.task.elements or ())
        return sorted(symbols, key=lambda s: Element(s).Z)

    # ------------------------------------------------------------------ training
    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(MODEL_DIR), *sys.path[1:]]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        threads = str(torch.get_num_threads())
        env.setdefault("DP_INTRA_OP_PARALLELISM_THREADS", threads)
        env.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", threads)
        # OpenMP threads that sleep instead of spinning while waiting: on a shared (loaded) CPU
        # spinning threads made one training step ~9x slower (README)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.setdefault("NUM_WORKERS", "0")  # deepmd's DataLoader worker processes (default min(4, CPUs))
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "") if self.device.type == "cuda" else ""
        return env

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if len(train) == 0:
            raise ValueError("fit needs at least one training sample")
        self.type_map = self._type_map(train)
        data = self.workdir / "data"
        train_systems = write_systems(train, data / "train", self.type_map)
        val_systems = write_systems(val, data / "val", self.type_map) if len(val) else []
        batch = int(self.hp["batch_size"])
        spe = steps_per_epoch(_frames_per_system(train_systems), batch)
        val_batches = steps_per_epoch(_frames_per_system(val_systems), batch) if val_systems else 0
        epochs = int(self.hp["epochs"])
        config = input_json(self.hp, self.type_map, train_systems, val_systems, epochs * spe, spe, val_batches,
                            self.seed)
        (self.workdir / "input.json").write_text(json.dumps(config, indent=2))
        print(f"DPA-2: {len(train)} training frames in {len(train_systems)} system(s), {len(val)} validation "
              f"frames in {len(val_systems)}; {spe} steps per epoch, {epochs * spe} steps", flush=True)
        self._run_dp(["--pt", "train", "input.json"], on_epoch_end, spe, epochs)
        checkpoint = self.workdir / "model.ckpt.pt"
        if not checkpoint.is_file():
            raise RuntimeError(f"dp --pt train wrote no checkpoint {checkpoint}: {self._log_tail()}")
        if self.hp["change_bias_after_training"]:
            # deepmd-kit's own `dp change-bias` (mode "change"): least squares of the trained
            # model's energy errors on the training systems, added to the per-type energy bias
            biased = self.workdir / "model.ckpt.bias.pt"
            self._run_dp(["--pt", "change-bias", checkpoint.name, "-s", str(data / "train"), "-m", "change",
                          "-o", biased.name])
            checkpoint = biased
        self.checkpoint = checkpoint.resolve()
        self._deep_pot = None

    def _log_tail(self, n: int = 4000) -> str:
        log = self.workdir / "dp.log"
        return log.read_text(errors="replace")[-n:] if log.is_file() else ""

    def _run_dp(self, args: list[str], on_epoch_end: EpochCallback | None = None, spe: int = 1,
                epochs: int = 0) -> None:
        """Run ``python -m dpa2_adapter.pure ARGS`` (deepmd's ``dp``) in the work folder, its output
        appended to ``dp.log``; with ``on_epoch_end``, report each finished epoch from ``lcurve.out``
        while it runs.

        Raises:
            RuntimeError: ``dp`` failed, or reported fewer than ``epochs`` epochs.
        """
        reported = 0

        def report() -> None:
            nonlocal reported
            if on_epoch_end is None:
                return
            for record in epoch_records(*read_lcurve(self.workdir / "lcurve.out"), spe)[reported:]:
                on_epoch_end(record)
                reported += 1

        command = [sys.executable, "-m", "dpa2_adapter.pure", *args]
        with open(self.workdir / "dp.log", "ab") as log:
            process = subprocess.Popen(command, cwd=self.workdir, env=self._environment(), stdout=log,
                                       stderr=subprocess.STDOUT)
            try:
                while process.poll() is None:
                    time.sleep(1.0)
                    report()
            except BaseException:
                process.kill()
                process.wait()
                raise
        report()
        if process.returncode != 0:
            raise RuntimeError(f"dp {' '.join(args)} failed with exit status {process.returncode}; its log "
                               f"({self.workdir / 'dp.log'}) ends:\n{self._log_tail()}")
        if on_epoch_end is not None and reported != epochs:
            raise RuntimeError(f"dp {' '.join(args)} reported {reported} of {epochs} epochs in lcurve.out")

    # ------------------------------------------------------------------ inference
    @property
    def deep_pot(self):
        """deepmd-kit's ``DeepPot`` on the trained checkpoint (loaded once)."""
        if self.checkpoint is None:
            raise RuntimeError("DPA-2 has no model before fit()")
        if self._deep_pot is None:
            from deepmd.infer import DeepPot

            self._deep_pot = DeepPot(str(self.checkpoint), auto_batch_size=False)
        return self._deep_pot

    @property
    def energy_model(self) -> nn.Module:
        """The trained deepmd-kit ``EnergyModel`` (a torch module) inside ``DeepPot``."""
        wrapper = self.deep_pot.deep_eval.dp
        return wrapper.model["Default"] if hasattr(wrapper, "model") else wrapper

    @property
    def network(self) -> nn.Module:
        return EnergyNetwork(self.energy_model)

    def predict(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        if len(samples) == 0:
            return []
        dp = self.deep_pot
        type_map = dp.get_type_map()
        out: list[dict[str, Any]] = []
        for sample in track(list(samples), "DPA-2 predict"):
            frame = _frame(sample, type_map, with_target=False)
            energy, forces, _ = dp.eval(frame["coord"].reshape(1, -1), frame["box"].reshape(1, 9), frame["atype"],
                                        atomic=False)
            out.append({"energy": float(np.asarray(energy).reshape(-1)[0]),
                        "forces": np.asarray(forces, dtype=np.float64).reshape(len(frame["atype"]), 3).copy()})
        return out

    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        from deepmd.pt.utils.nlist import extend_input_and_build_neighbor_list

        model = self.energy_model
        dtype = torch.float64  # deepmd's coordinate precision (GLOBAL_PT_FLOAT_PRECISION); it casts inside
        type_map = self.deep_pot.get_type_map()
        tensors: list[torch.Tensor] = []
        for sample in samples:
            frame = _frame(sample, type_map, with_target=False)
            coord = torch.tensor(frame["coord"].reshape(1, -1, 3), dtype=dtype, device=self.device)
            atype = torch.tensor(frame["atype"].reshape(1, -1), device=self.device)
            box = torch.tensor(frame["box"].reshape(1, 9), dtype=dtype, device=self.device)
            ext_coord, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
                coord, atype, model.get_rcut(), model.get_sel(), mixed_types=model.mixed_types(), box=box)
            tensors += [ext_coord.reshape(1, -1), ext_atype, nlist, mapping]
        return tuple(tensors)

    def save_model(self, path: str | os.PathLike) -> Path:
        """Copy deepmd-kit's checkpoint (``model.ckpt.pt``, loadable by ``deepmd.infer.DeepPot`` and
        ``dp --pt freeze``) to ``path``.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.checkpoint is None:
            raise RuntimeError("save_model() before fit()")
        return Path(shutil.copyfile(self.checkpoint, path))


__all__ = ["Dpa2Adapter", "EnergyNetwork", "HYPERPARAMETERS", "epoch_records", "input_json", "read_lcurve",
           "steps_per_epoch", "write_systems"]
