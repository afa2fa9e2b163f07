"""What is done in a run: the task catalogue and one scoring driver per task type.

A task names a dataset, a target and a task type. The driver of the task type
(``runner.tasks.regression``, ``runner.tasks.classification`` or ``runner.tasks.generation``) turns
a model's predictions (or generated crystals) into ``metrics``, ``metric_details`` and the rows of
``predictions.csv`` (``generated.csv`` and ``generated.cif`` for generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from runner.contract import TaskSpec
from runner.datasets import DatasetError, LoadedDataset, cdvae, petretto
from runner.datasets.base import verified_sha256


class UnknownTaskError(KeyError):
    """The task name is not in the catalogue (the message lists the known tasks)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class TaskDefinition:
    """A catalogue entry.

    Attributes:
        spec: what the model sees (:class:`runner.contract.TaskSpec`).
        dataset: dataset name (``perov_5``, ``carbon_24``).
        description: one line for reports.
        label: maps a dataset row to the target; ``None`` for generation.
        holdout_fraction: without CDVAE's ``train.csv``, the share of its ``val.csv`` held out for
            validation (see :func:`runner.datasets.cdvae.load`).
        num_samples: generation: how many crystals the model is asked for (``--num-samples``
            overrides); ``None`` otherwise.
    """

    spec: TaskSpec
    dataset: str
    description: str
    label: Callable[[Mapping[str, Any]], float | int] | None
    holdout_fraction: float = cdvae.FULL_VAL_FRACTION
    num_samples: int | None = None

    def load(self, variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None) -> LoadedDataset:
        """Load this task's data (see :func:`runner.datasets.cdvae.load` and
        :func:`runner.datasets.petretto.load` for the errors raised)."""
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
        if self.dataset == petretto.NAME:
            directory, files = petretto.data_files(variant, data_roots)
        else:
            directory, files = cdvae.data_files(self.dataset, variant, data_roots)
        return verified_sha256(directory, list(files.values()))


def _generation(name: str, dataset: str, description: str) -> TaskDefinition:
    return TaskDefinition(spec=TaskSpec(name=name, task_type="generation", target="structure", unit=None),
                          dataset=dataset, description=description, label=None, holdout_fraction=0.0,
                          num_samples=1000)


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
}


def get_task(name: str) -> TaskDefinition:
    """Catalogue lookup.

    Raises:
        UnknownTaskError: listing the known task names.
    """
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


def driver(task_type: str):
    """The scoring module of a task type (has ``score(y_true, y_pred)`` and ``prediction_columns``)."""
    from runner.tasks import classification, generation, regression, spectra

    drivers = {"regression": regression, "classification": classification, "generation": generation,
               "spectra": spectra}
    if task_type not in drivers:
        raise ValueError(f"no scoring driver for task type {task_type!r}; known: {sorted(drivers)}")
    return drivers[task_type]
