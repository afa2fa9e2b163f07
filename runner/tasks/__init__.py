"""What is done in a run: the task catalogue and one scoring driver per task type.

A task names a dataset, a target and a task type. The driver of the task type
(``runner.tasks.regression`` or ``runner.tasks.classification``) turns a model's predictions into
``metrics``, ``metric_details`` and the rows of ``predictions.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from runner.contract import TaskSpec
from runner.datasets import LoadedDataset, perov5


class UnknownTaskError(KeyError):
    """The task name is not in the catalogue (the message lists the known tasks)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class TaskDefinition:
    """A catalogue entry.

    Attributes:
        spec: what the model sees (:class:`runner.contract.TaskSpec`).
        dataset: dataset name (``perov_5``).
        description: one line for reports.
        label: maps a dataset row to the target.
        loader: ``loader(variant, data_roots, label, max_samples) -> LoadedDataset``.
    """

    spec: TaskSpec
    dataset: str
    description: str
    label: Callable[[Mapping[str, Any]], float | int]
    loader: Callable[..., LoadedDataset]

    def load(self, variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None) -> LoadedDataset:
        """Load this task's data (see :func:`runner.datasets.perov5.load` for the errors raised)."""
        return self.loader(variant, data_roots, self.label, max_samples)


TASKS: dict[str, TaskDefinition] = {
    "perov5_heat_ref": TaskDefinition(
        spec=TaskSpec(name="perov5_heat_ref", task_type="regression", target="heat_ref", unit="eV"),
        dataset="perov_5",
        description="Regression of the heat of formation against the reference set (heat_ref, eV as given by CMR) "
                    "of cubic perovskites (Castelli et al. 2012, CDVAE's perov_5).",
        label=lambda row: float(row["heat_ref"]),
        loader=perov5.load,
    ),
    "perov5_has_gap": TaskDefinition(
        spec=TaskSpec(name="perov5_has_gap", task_type="classification", target="has_gap", unit=None,
                      positive_class="ind_gap > 0 eV"),
        dataset="perov_5",
        description="Classification of cubic perovskites (CDVAE's perov_5) into those with a non-zero indirect band "
                    "gap (ind_gap > 0 eV, GLLB-SC, about 4 % positive) and those without.",
        label=lambda row: int(float(row["ind_gap"]) > 0.0),
        loader=perov5.load,
    ),
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
    from runner.tasks import classification, regression

    drivers = {"regression": regression, "classification": classification}
    if task_type not in drivers:
        raise ValueError(f"no scoring driver for task type {task_type!r}; known: {sorted(drivers)}")
    return drivers[task_type]
