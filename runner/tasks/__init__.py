"""What is done in a run: the task catalogue and the task types.

A task (:class:`TaskDefinition`, catalogue :data:`TASKS`) names a dataset, a target and a task
type. A task type is one module of this package (``regression``, ``classification``,
``generation``, ``spectra``, ``potential``) whose ``TASK_TYPE`` (:class:`runner.tasks.base.TaskType`) knows how its
targets are checked, which adapter method the model stage calls, how the model's output is written
and read back, and how it is scored (see :mod:`runner.tasks.base`).

Plugins: every module named in ``MATEVAL_PLUGINS`` (comma-separated, importable) is imported by
:func:`load_plugins`; it may call :func:`register_task_type`, :func:`register_task` and
:func:`metrics.catalogue.register` at import time. Both stages load them.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from runner.contract import TaskSpec
from runner.datasets import DatasetError, LoadedDataset, cdvae, deepmd_water, mlearn, petretto, qm9
from runner.datasets.base import verified_sha256
from runner.tasks.base import TaskType


class UnknownTaskError(KeyError):
    """The task name is not in the catalogue (the message lists the known tasks)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class TaskDefinition:
    """A catalogue entry.

    Attributes:
        spec: what the model sees (:class:`runner.contract.TaskSpec`).
        dataset: dataset name (``perov_5``, ``carbon_24``, ``mp_20_biternary``, ``phonon_dos_petretto``).
        description: one line for reports.
        label: maps a dataset row to the target; ``None`` for generation.
        holdout_fraction: without the official ``train`` file (CDVAE's ``train.csv``, MP-20's), the
            share of the official ``val`` file held out for validation (see
            :func:`runner.datasets.cdvae.load`).
        num_samples: generation: how many crystals the model is asked for (``--num-samples``
            overrides); ``None`` otherwise.
        loader: a dataset of its own (the potential tasks): ``loader(variant, data_roots,
            max_samples, seed) -> LoadedDataset``; ``None`` for the CDVAE and phonon datasets.
        sha256_of: with ``loader``: ``sha256_of(variant, data_roots) -> {file: sha256}``, the
            files ``loader`` reads, without parsing them (for ``--resume``).
    """

    spec: TaskSpec
    dataset: str
    description: str
    label: Callable[[Mapping[str, Any]], float | int] | None
    holdout_fraction: float = cdvae.FULL_VAL_FRACTION
    num_samples: int | None = None
    loader: Callable[..., LoadedDataset] | None = None
    sha256_of: Callable[..., dict[str, str]] | None = None

    def load(self, variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None,
             seed: int = 0) -> LoadedDataset:
        """Load this task's data (see :func:`runner.datasets.cdvae.load`,
        :func:`runner.datasets.petretto.load` and :attr:`loader` for the errors raised). ``seed``
        is the run's seed: datasets whose validation split is drawn per run use it."""
        if self.loader is not None:
            return self.loader(variant, data_roots, max_samples, seed)
        if self.dataset == petretto.NAME:
            dataset, grid = petretto.load(variant, data_roots, max_samples)
            if tuple(float(g) for g in grid) != self.spec.grid:
                raise DatasetError(f"{dataset.path / 'data.csv'}: phfreq grid differs from task {self.spec.name}'s grid")
            return dataset
        return cdvae.load(self.dataset, variant, data_roots, self.label, max_samples, self.holdout_fraction)

    def data_sha256(self, variant: str, data_roots: Sequence[Path]) -> dict[str, str]:
        """``{file name: sha256}`` of the files this task's data are read from, as the run's
        ``dataset.sha256`` records them, without parsing them (for ``--resume``).

        Raises:
            DatasetError: the dataset is not found under ``data_roots``, or a file's sha256
                differs from the dataset's ``SHA256SUMS``.
        """
        if self.sha256_of is not None:
            return self.sha256_of(variant, data_roots)
        if self.dataset == petretto.NAME:
            directory, files = petretto.data_files(variant, data_roots)
        else:
            directory, files = cdvae.data_files(self.dataset, variant, data_roots)
        return verified_sha256(directory, list(files.values()))


def _is_metal(band_gap: Any) -> float | int:
    """1 for a metal (band gap <= 0 eV), 0 otherwise; a missing or non-finite gap is returned as NaN,
    which the loader refuses naming the file and row."""
    gap = float(band_gap)
    return int(gap <= 0.0) if math.isfinite(gap) else math.nan


def _generation(name: str, dataset: str, description: str) -> TaskDefinition:
    return TaskDefinition(spec=TaskSpec(name=name, task_type="generation", target="structure", unit=None),
                          dataset=dataset, description=description, label=None, holdout_fraction=0.0,
                          num_samples=1000)


def _mlearn(element: str) -> TaskDefinition:
    name = f"mlearn_{element.lower()}"
    return TaskDefinition(
        spec=TaskSpec(name=name, task_type="potential", target="energy_forces", unit="eV"),
        dataset=f"mlearn_{element}",
        description=f"Interatomic potential for {element}: total energy (eV) and forces (eV/Å) of the DFT (PBE) "
                    f"configurations of Zuo et al. 2020's mlearn benchmark, on its published train/test split.",
        label=None,
        loader=lambda variant, roots, max_samples, seed: mlearn.load(element, variant, roots, max_samples, seed),
        sha256_of=lambda variant, roots: mlearn.data_sha256(element, variant, roots),
    )


TASKS: dict[str, TaskDefinition] = {
    "perov5_heat_ref": TaskDefinition(
        spec=TaskSpec(name="perov5_heat_ref", task_type="regression", target="heat_ref", unit="eV"),
        dataset="perov_5",
        description="Regression of the heat of formation against the reference set (heat_ref, eV as given by CMR) "
                    "of cubic perovskites (Castelli et al. 2012, CDVAE's perov_5).",
        label=lambda row: float(row["heat_ref"]),
    ),
    "perov5_has_gap": TaskDefinition(
        spec=TaskSpec(name="perov5_has_gap", task_type="classification", target="has_gap", unit=None,
                      positive_class="ind_gap > 0 eV"),
        dataset="perov_5",
        description="Classification of cubic perovskites (CDVAE's perov_5) into those with a non-zero indirect band "
                    "gap (ind_gap > 0 eV, GLLB-SC, about 4 % positive) and those without.",
        label=lambda row: int(float(row["ind_gap"]) > 0.0),
    ),
    "mp20_formation_energy": TaskDefinition(
        spec=TaskSpec(name="mp20_formation_energy", task_type="regression", target="formation_energy_per_atom",
                      unit="eV/atom"),
        dataset="mp_20_biternary",
        description="Regression of the DFT formation energy per atom (formation_energy_per_atom, eV/atom) of Materials "
                    "Project crystals with 2-20 atoms per cell (the binary and ternary compounds of MP-20).",
        label=lambda row: float(row["formation_energy_per_atom"]),
    ),
    "mp20_is_metal": TaskDefinition(
        spec=TaskSpec(name="mp20_is_metal", task_type="classification", target="is_metal", unit=None,
                      positive_class="metal: band_gap = 0 eV (PBE)"),
        dataset="mp_20_biternary",
        description="Classification of Materials Project crystals (the binary and ternary compounds of MP-20) into "
                    "metals (PBE band gap = 0 eV, the positive class, about 70 %) and non-metals (band gap > 0 eV).",
        label=lambda row: _is_metal(row["band_gap"]),
    ),
    "phonon_dos": TaskDefinition(
        spec=TaskSpec(name="phonon_dos", task_type="spectra", target="phdos", unit="max-normalized",
                      grid=tuple(float(f) for f in range(0, 1001, 20)), grid_unit="cm^-1"),
        dataset=petretto.NAME,
        description="Prediction of the phonon density of states (51 frequencies, 0-1000 cm^-1, max-normalized) of "
                    "1,522 Materials Project crystals (Petretto et al. 2018) on the e3nn tutorial's published split.",
        label=None,
    ),
    "perov5_generation": _generation(
        "perov5_generation", "perov_5",
        "Generation of cubic perovskites (CDVAE's perov_5, 5 atoms per cell): train on the training split, "
        "generate, score validity, coverage (COV-R/COV-P) and EMD against the test split."),
    "carbon24_generation": _generation(
        "carbon24_generation", "carbon_24",
        "Generation of carbon allotropes (CDVAE's carbon_24, 6-24 atoms per cell, AIRSS): train on the training "
        "split, generate, score validity, coverage (COV-R/COV-P) and EMD against the test split."),
    **{f"mlearn_{element.lower()}": _mlearn(element) for element in mlearn.ELEMENTS},
    "water_deepmd": TaskDefinition(
        spec=TaskSpec(name="water_deepmd", task_type="potential", target="energy_forces", unit="eV"),
        dataset=deepmd_water.NAME,
        description="Interatomic potential for liquid water (64 H2O, periodic): total energy (eV) and forces (eV/Å) "
                    "of DeePMD-kit's example data, which its authors provide for testing only; systems 0-2 train, "
                    "system 3 test.",
        label=None,
        loader=lambda variant, roots, max_samples, seed: deepmd_water.load(variant, roots, max_samples, seed),
        sha256_of=deepmd_water.data_sha256,
    ),
    "qm9_u0": TaskDefinition(
        spec=TaskSpec(name="qm9_u0", task_type="regression", target="U0", unit="eV", periodic=False,
                      extensive=True),
        dataset=qm9.NAME,
        description="Regression of the internal energy at 0 K (U0, eV; total, no atom references subtracted) of QM9's "
                    "small organic molecules (Ramakrishnan et al. 2014, B3LYP/6-31G(2df,p)); non-periodic molecules.",
        label=None,
        loader=lambda variant, roots, max_samples, seed: qm9.load(variant, roots, max_samples, seed, "U0"),
        sha256_of=qm9.data_sha256,
    ),
}


def get_task(name: str) -> TaskDefinition:
    """Catalogue lookup.

    Raises:
        UnknownTaskError: listing the known task names.
    """
    if name not in TASKS:
        load_plugins()
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


BUILTIN_TASK_TYPES = ("regression", "classification", "generation", "spectra", "potential")
_TASK_TYPES: dict[str, TaskType] = {}
PLUGINS_VARIABLE = "MATEVAL_PLUGINS"


def register_task_type(task_type: TaskType) -> None:
    """Add a task type (a plugin's). Raises ``ValueError`` for a name already registered."""
    if not task_type.name or task_type.name in _TASK_TYPES:
        raise ValueError(f"task type {task_type.name!r} is empty or already registered")
    _TASK_TYPES[task_type.name] = task_type


def register_task(definition: TaskDefinition) -> None:
    """Add a task to the catalogue (a plugin's). Raises ``ValueError`` for a name already there."""
    if definition.spec.name in TASKS:
        raise ValueError(f"task {definition.spec.name!r} is already in the catalogue")
    TASKS[definition.spec.name] = definition


def load_plugins(names: str | None = None) -> list[str]:
    """Import the plugin modules named in ``names`` (default: ``$MATEVAL_PLUGINS``), once each.

    Raises:
        ImportError: a plugin module cannot be imported (its name in the message).
    """
    from runner.plugins import import_plugins

    return import_plugins(PLUGINS_VARIABLE, names)


def get_task_type(name: str) -> TaskType:
    """The task type called ``name`` (built in, or registered by a plugin).

    Raises:
        ValueError: unknown task type (the known ones listed).
    """
    if name not in _TASK_TYPES and name in BUILTIN_TASK_TYPES:
        module = importlib.import_module(f"runner.tasks.{name}")
        _TASK_TYPES[name] = module.TASK_TYPE
    if name not in _TASK_TYPES:
        load_plugins()
    if name not in _TASK_TYPES:
        known = sorted(set(BUILTIN_TASK_TYPES) | set(_TASK_TYPES))
        raise ValueError(f"unknown task type {name!r}; known: {', '.join(known)}")
    return _TASK_TYPES[name]
