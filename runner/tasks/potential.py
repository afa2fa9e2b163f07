"""Task type ``potential``: an interatomic potential, the total energy and the forces of each
structure.

A sample's target is ``{"energy": float, "forces": np.ndarray}``: the total energy of the cell (eV,
not per atom) and the forces on its atoms (float64, ``(n_atoms, 3)``, eV/Å, in site order). The
task as the model sees it (:meth:`Potential.model_task`) names the training set's elements,
sorted by atomic number, in ``TaskSpec.elements``. ``Sample.info["config_type"]`` (e.g. mlearn's
AIMD-NVT, Vacancy, Elastic, Surface) is not a target and reaches the model.

Model stage: ``adapter.predict(test)`` returns one ``{"energy": float, "forces": (n_atoms, 3)}``
per test structure, in order (:func:`check_predictions` checks types, shapes and finiteness and
names the sample); the runner writes them to ``model_predictions.jsonl``, one JSON object a line,
``{"id", "energy", "forces"}``.

Scoring stage: :meth:`Potential.read_output` reads that file defensively (size bounded, no link
followed, JSON depth bounded, every test id exactly once and no other, finite numbers, forces of
the test structure's shape); :meth:`Potential.score` computes the metrics of
:mod:`metrics.potential` overall and per configuration type (``metric_details["per_config_type"]``)
and writes

- ``predictions.extxyz``: one frame per test structure (extended XYZ, read by
  ``ase.io.read(path, index=":")``), info ``id``, ``config_type``, ``ref_energy``, ``pred_energy``
  (total, eV), arrays ``ref_forces``, ``pred_forces`` (eV/Å);
- ``predictions.csv``: one row per structure, ``id``, ``config_type``, ``n_atoms``,
  ``ref_energy_per_atom``, ``pred_energy_per_atom`` (eV/atom), ``force_rmse`` (eV/Å, over the
  structure's force components).

Baseline (:meth:`Potential.baseline`): per-element reference energies fitted by least squares on the
training set (:func:`metrics.potential.linear_reference_energies`) and zero forces.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from metrics import potential as pm
from runner.contract import Sample, TaskSpec
from runner.tasks.base import (MAX_OUTPUT_BYTES, Baseline, Flag, OutputError, Scored, ScoringContext, TaskType,
                               definitions, is_constant, write_columns)
from runner.wire import PREDICTIONS_FILE

#: the model stage's output (one JSON object per test structure)
OUTPUT_FILE = "model_predictions.jsonl"
#: the predictions in extended XYZ (ASE), written by the scoring stage
EXTXYZ_FILE = "predictions.extxyz"
#: deepest JSON nesting of one output line: {"forces": [[...], ...]}
MAX_LINE_DEPTH = 3
#: metric_details key of the per-configuration-type metrics
PER_CONFIG_TYPE = "per_config_type"


def _config_type(sample: Sample) -> str:
    return str((sample.info or {}).get("config_type", ""))


def _species(sample: Sample) -> list[str]:
    return [site.specie.symbol for site in sample.structure]


def check_target(value: Any, n_atoms: int, where: str) -> tuple[float, np.ndarray]:
    """``(energy, forces)`` of a target or prediction ``{"energy", "forces"}``.

    Raises:
        ValueError: naming ``where``: not a mapping, a missing key, an energy that is not a finite
            number, forces that are not finite numbers of shape ``(n_atoms, 3)``.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a dict with 'energy' and 'forces', got {type(value).__name__}")
    missing = [k for k in ("energy", "forces") if k not in value]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    energy = value["energy"]
    if isinstance(energy, (bool, np.bool_)) or np.ndim(energy) != 0:
        raise ValueError(f"{where}: energy is {energy!r}, expected one number (eV)")
    try:
        energy = float(energy)
        forces = np.asarray(value["forces"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: energy or forces are not numbers: {exc}") from None
    if not math.isfinite(energy):
        raise ValueError(f"{where}: energy is {energy}, expected a finite number")
    if forces.shape != (n_atoms, 3):
        raise ValueError(f"{where}: forces of shape {forces.shape}, expected ({n_atoms}, 3) (one row per atom)")
    if not np.all(np.isfinite(forces)):
        raise ValueError(f"{where}: forces hold {int((~np.isfinite(forces)).sum())} non-finite value(s)")
    return energy, forces


def check_predictions(raw: Any, test: Sequence[Sample]) -> list[tuple[float, np.ndarray]]:
    """The adapter's ``predict`` return value as ``[(energy, forces), ...]`` in test order.

    Raises:
        ValueError: not a list of ``len(test)`` entries, or an entry :func:`check_target` refuses
            (the sample's index and id named).
    """
    if isinstance(raw, (Mapping, str, bytes)) or not hasattr(raw, "__len__"):
        raise ValueError(f"model returned {type(raw).__name__} from predict(); expected a list of "
                         f"{len(test)} dicts {{'energy', 'forces'}}")
    entries = list(raw)
    if len(entries) != len(test):
        raise ValueError(f"model returned {len(entries)} predictions for {len(test)} test structures")
    return [check_target(entry, len(sample.structure), f"prediction {i} (sample {sample.id})")
            for i, (entry, sample) in enumerate(zip(entries, test))]


def stack(test: Sequence[Sample], values: Sequence[tuple[float, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``(energies (n,), forces (sum n_atoms, 3))`` of per-structure ``(energy, forces)`` pairs."""
    energies = np.array([e for e, _ in values], dtype=np.float64)
    forces = np.concatenate([f for _, f in values]) if values else np.zeros((0, 3))
    return energies, forces


def write_extxyz(path: Path, test: Sequence[Sample], ref: Sequence[tuple[float, np.ndarray]],
                 pred: Sequence[tuple[float, np.ndarray]]) -> None:
    """Write ``predictions.extxyz`` (see the module docstring) with ASE, atomically.

    Frames: the test structures (periodic cell, Cartesian positions, Å), info ``id``,
    ``config_type``, ``n_atoms``, ``ref_energy``, ``pred_energy`` (eV), arrays ``ref_forces``,
    ``pred_forces`` (eV/Å)."""
    import ase
    import ase.io

    frames = []
    for sample, (e_ref, f_ref), (e_pred, f_pred) in zip(test, ref, pred):
        s = sample.structure
        atoms = ase.Atoms(symbols=_species(sample), positions=s.cart_coords, cell=s.lattice.matrix, pbc=True)
        atoms.info.update({"id": sample.id, "config_type": _config_type(sample) or "none", "n_atoms": len(s),
                           "ref_energy": float(e_ref), "pred_energy": float(e_pred)})
        atoms.arrays["ref_forces"] = np.asarray(f_ref, dtype=np.float64)
        atoms.arrays["pred_forces"] = np.asarray(f_pred, dtype=np.float64)
        frames.append(atoms)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        ase.io.write(tmp, frames, format="extxyz")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prediction_rows(test: Sequence[Sample], ref: Sequence[tuple[float, np.ndarray]],
                    pred: Sequence[tuple[float, np.ndarray]]) -> dict[str, list]:
    """Columns of ``predictions.csv``: ``id``, ``config_type``, ``n_atoms``,
    ``ref_energy_per_atom``, ``pred_energy_per_atom`` (eV/atom), ``force_rmse`` (eV/Å, root mean
    square of the structure's force-component errors)."""
    cols: dict[str, list] = {k: [] for k in ("id", "config_type", "n_atoms", "ref_energy_per_atom",
                                             "pred_energy_per_atom", "force_rmse")}
    for sample, (e_ref, f_ref), (e_pred, f_pred) in zip(test, ref, pred):
        n = len(sample.structure)
        cols["id"].append(sample.id)
        cols["config_type"].append(_config_type(sample))
        cols["n_atoms"].append(n)
        cols["ref_energy_per_atom"].append(float(e_ref) / n)
        cols["pred_energy_per_atom"].append(float(e_pred) / n)
        cols["force_rmse"].append(float(np.sqrt(np.mean((np.asarray(f_pred) - np.asarray(f_ref)) ** 2))))
    return cols


def score(test: Sequence[Sample], ref: Sequence[tuple[float, np.ndarray]],
          pred: Sequence[tuple[float, np.ndarray]]) -> tuple[dict[str, float], dict[str, Any]]:
    """``(metrics, metric_details)`` of predictions against references, both ``[(energy (eV),
    forces (n_atoms, 3) eV/Å), ...]`` in the order of ``test``.

    ``metrics``: :func:`metrics.potential.potential_metrics` (energy errors in meV/atom, force
    errors in meV/Å). ``metric_details``: ``per_config_type`` (the same metrics per
    ``Sample.info["config_type"]``, with ``n_structures``), ``units``, the EFwT thresholds and the
    catalogue definitions.

    Raises:
        ValueError: from :mod:`metrics.potential` (shapes, non-finite values, no structure).
    """
    e_ref, f_ref = stack(test, ref)
    e_pred, f_pred = stack(test, pred)
    n_atoms = [len(s.structure) for s in test]
    values = pm.potential_metrics(e_ref, e_pred, f_ref, f_pred, n_atoms)
    details = {
        PER_CONFIG_TYPE: pm.potential_metrics_by_group(e_ref, e_pred, f_ref, f_pred, n_atoms,
                                                       [_config_type(s) or "none" for s in test]),
        "units": dict(pm.METRIC_UNITS),
        "efwt_thresholds": {"energy_eV": pm.EFWT_ENERGY_THRESHOLD, "force_eV_per_A": pm.EFWT_FORCE_THRESHOLD,
                            "energy_is": "total energy of the structure (fairchem), not per atom"},
        "n_structures": len(test),
        "n_atoms": int(sum(n_atoms)),
        "definition": definitions("potential", tuple(values)),
    }
    return values, details


def baseline_predictions(train: Sequence[Sample], test: Sequence[Sample],
                         elements: Sequence[str] | None = None) -> tuple[list[tuple[float, np.ndarray]], dict[str, float]]:
    """The baseline's predictions for ``test``: energies from per-element reference energies
    fitted on ``train`` (:func:`metrics.potential.linear_reference_energies`), zero forces.

    Returns:
        ``([(energy, zero forces), ...], {element: reference energy eV/atom})``.

    Raises:
        ValueError: no training structure, or a test atom of an element the training set lacks.
    """
    if not train:
        raise ValueError("the per-element baseline needs training structures")
    if elements is None:
        from pymatgen.core import Element

        elements = sorted({el for s in train for el in _species(s)}, key=lambda el: Element(el).Z)
    counts = pm.element_counts([_species(s) for s in train], elements)
    reference = pm.linear_reference_energies(counts, [float(s.target["energy"]) for s in train])
    predicted = pm.linear_reference_predict(pm.element_counts([_species(s) for s in test], elements), reference)
    return ([(float(e), np.zeros((len(s.structure), 3))) for e, s in zip(predicted, test)],
            {el: float(r) for el, r in zip(elements, reference)})


class Potential(TaskType):
    """See the module docstring."""

    name = "potential"
    output_file = OUTPUT_FILE

    # -- prepare (host) ------------------------------------------------------------------------
    def check_targets(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> None:
        for split, rows in samples.items():
            for sample in rows:
                if sample.target is not None or split != "test":
                    check_target(sample.target, len(sample.structure), f"{split} sample {sample.id}: target")

    def dataset_record(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        return {"config_types": {split: dict(sorted(Counter(_config_type(s) or "none" for s in rows).items()))
                                 for split, rows in samples.items()},
                "atoms": {split: int(sum(len(s.structure) for s in rows)) for split, rows in samples.items()}}

    def model_task(self, task: TaskSpec, train: Sequence[Sample]) -> TaskSpec:
        elements = sorted({el for s in train for el in s.structure.composition.elements}, key=lambda e: e.Z)
        return dataclasses.replace(task, elements=tuple(el.symbol for el in elements))

    def encode_target(self, value: Any) -> Any:
        if value is None:
            return None
        forces = np.asarray(value["forces"], dtype=np.float64)
        return {"energy": float(value["energy"]), "forces": forces.tolist()}

    def decode_target(self, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping) or "energy" not in value or "forces" not in value:
            raise ValueError("target: expected an object with 'energy' and 'forces'")
        forces = np.asarray(value["forces"], dtype=np.float64)
        if forces.ndim != 2 or forces.shape[1] != 3:
            raise ValueError(f"target: forces of shape {forces.shape}, expected (n_atoms, 3)")
        return {"energy": float(value["energy"]), "forces": forces}

    # -- model stage ---------------------------------------------------------------------------
    def write_output(self, run_dir: Path, raw: Any, test: Sequence[Sample], task: TaskSpec,
                     settings: Mapping[str, Any]) -> dict[str, str]:
        from runner.result import atomic_write_text

        values = check_predictions(raw, test)
        lines = [json.dumps({"id": s.id, "energy": e, "forces": f.tolist()}, allow_nan=False)
                 for s, (e, f) in zip(test, values)]
        atomic_write_text(Path(run_dir) / self.output_file, "\n".join(lines) + ("\n" if lines else ""))
        return {"model_predictions": self.output_file}

    # -- scoring (host) ------------------------------------------------------------------------
    def read_output(self, run_dir: Path, test: Sequence[Sample], task: TaskSpec) -> Any:
        """``[(energy, forces), ...]`` in test order, from ``model_predictions.jsonl``.

        Raises:
            OutputError: missing, a link or not a regular file, too large, a line that is not a
                JSON object ``{"id", "energy", "forces"}`` or is nested too deeply, an unknown,
                repeated or missing id, a non-finite number or forces of the wrong shape (file,
                line and id named).
        """
        from runner import safefiles

        path = Path(run_dir) / self.output_file
        try:
            data = safefiles.read_bytes(path, MAX_OUTPUT_BYTES)
        except FileNotFoundError:
            raise OutputError(f"{path}: the model output is missing") from None
        except OSError as exc:  # RefusedFile: a link, not a regular file, too large
            raise OutputError(f"{path}: {safefiles.describe(exc)}") from None
        size_of = {s.id: len(s.structure) for s in test}
        found: dict[str, tuple[float, np.ndarray]] = {}
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            if safefiles.json_depth(line) > MAX_LINE_DEPTH:
                raise OutputError(f"{where}: nested deeper than {MAX_LINE_DEPTH} levels")
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise OutputError(f"{where}: not JSON: {exc}") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise OutputError(f"{where}: expected an object with a string 'id'")
            identifier = entry["id"]
            if identifier not in size_of:
                raise OutputError(f"{where}: id {identifier[:60]!r} is not in the test split")
            if identifier in found:
                raise OutputError(f"{where}: id {identifier!r} appears twice")
            try:
                found[identifier] = check_target(entry, size_of[identifier], f"{where} (id {identifier})")
            except ValueError as exc:
                raise OutputError(str(exc)) from None
        missing = [s.id for s in test if s.id not in found]
        if missing:
            raise OutputError(f"{path}: {len(missing)} test id(s) without a prediction, e.g. {missing[0]!r}")
        return [found[s.id] for s in test]

    def score(self, output: Any, test: Sequence[Sample], task: TaskSpec, context: ScoringContext) -> Scored:
        ref = [check_target(s.target, len(s.structure), f"test sample {s.id}: target") for s in test]
        values, details = score(test, ref, output)
        run_dir = Path(context.run_dir)
        write_columns(run_dir / PREDICTIONS_FILE, prediction_rows(test, ref, output))
        write_extxyz(run_dir / EXTXYZ_FILE, test, ref, output)
        return Scored(values, details, {"predictions": PREDICTIONS_FILE, "predictions_extxyz": EXTXYZ_FILE})

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline:
        """The metrics of the per-element linear baseline (:func:`baseline_predictions`) on ``test``:
        reference energies fitted by least squares of the total energy on the element counts of the
        training structures, zero forces.

        Raises:
            ValueError: as :func:`baseline_predictions`.
        """
        pred, reference = baseline_predictions(train, test, task.elements)
        ref = [check_target(s.target, len(s.structure), f"test sample {s.id}: target") for s in test]
        values, details = score(test, ref, pred)
        energies = ", ".join(f"{el} {e:.4f} eV" for el, e in reference.items())
        return Baseline(f"per-element reference energies fitted by least squares on the training structures "
                        f"({energies} per atom) and zero forces", values,
                        {"reference_energies": reference, PER_CONFIG_TYPE: details[PER_CONFIG_TYPE],
                         "n_train": len(train)})

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        """``zero_forces`` when every predicted force component is 0 (the model learnt no forces);
        ``constant_prediction`` when every structure gets the same energy per atom."""
        found = []
        forces = [np.asarray(f, dtype=np.float64) for _, f in output] if output else []
        if forces and all(not np.any(f) for f in forces):
            found.append(Flag("zero_forces", "every predicted force component is 0 eV/Å: the model predicts no forces"))
        per_atom = np.asarray([float(e) / len(s.structure) for (e, _), s in zip(output, test)], dtype=np.float64)
        if per_atom.size > 1 and is_constant(per_atom):
            found.append(Flag("constant_prediction", f"every one of the {per_atom.size} test structures gets "
                                                     f"{per_atom[0]:.6g} eV/atom: the model predicts a constant"))
        return found


TASK_TYPE = Potential()
