"""The prepare stage (host, mateval's own environment): load a run's dataset and write the model
inputs (:mod:`runner.inputs`) into its run directory, test targets left out.

The scoring stage (:mod:`runner.score`) loads the same data again with :func:`load_task_data` and
checks that the files' sha256 are those recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.datasets import LoadedDataset
from runner.inputs import write_inputs
from runner.tasks import TaskDefinition, get_task, get_task_type
from runner.tasks.base import TaskType
from runner.wire import RunSpec


@dataclass(frozen=True)
class TaskData:
    """A run's task, its task type and its loaded dataset."""

    definition: TaskDefinition
    task_type: TaskType
    dataset: LoadedDataset
    #: the run's ``--max-samples`` limits (``{split: n}``), ``None`` without; recorded so that the
    #: summary can tell a truncated run from a full one (the file sha256 are the same)
    max_samples: dict[str, int] | None = None

    def record(self) -> dict[str, Any]:
        """The result's ``dataset`` block (with ``max_samples`` when the run truncated a split)."""
        d = self.dataset
        limits = {"max_samples": dict(self.max_samples)} if self.max_samples else {}
        protocol = {"protocol": dict(d.protocol)} if d.protocol else {}
        return {"name": d.name, "variant": d.variant, "path": str(d.path), "split": d.split_description,
                "sizes": d.sizes(), "sha256": d.sha256, **limits, **protocol,
                **self.task_type.dataset_record(self.definition.spec, d.splits)}


def load_task_data(spec: RunSpec) -> TaskData:
    """Load the data of ``spec``'s task and check its targets. With ``spec.protocol ==
    "matbench"`` the splits are those of fold ``spec.fold`` (:func:`runner.protocols.matbench.apply`;
    the sample limits apply to the fold's splits).

    Raises:
        runner.tasks.UnknownTaskError: unknown task.
        runner.protocols.matbench.ProtocolError: an unknown protocol, a task type Matbench's
            protocol does not apply to (named), or a missing or bad fold.
        runner.datasets.DatasetError: the dataset is missing, corrupted or unparsable.
        ValueError: a target the task type does not accept (sample named), or an unknown task type.
    """
    definition = get_task(spec.task)
    task_type = get_task_type(definition.spec.task_type)
    roots = [Path(p) for p in spec.data_roots]
    if spec.protocol == "task":
        dataset = definition.load(spec.data_variant, roots, spec.max_samples, seed=spec.seed)
    else:
        from runner.protocols import matbench

        matbench.check_protocol(spec.protocol, definition.spec.name, definition.spec.task_type)
        if spec.fold is None:
            raise matbench.ProtocolError(f"run spec {spec.run_id}: protocol {spec.protocol} needs a fold (0 to 4)")
        official = matbench.official_file(definition.spec.name, roots)  # Matbench's own rows: no other load
        whole = None if official is not None else definition.load(spec.data_variant, roots, None, seed=spec.seed)
        dataset = matbench.apply(definition.spec.name, definition.spec.task_type, whole, int(spec.fold),
                                 int(spec.seed), definition.holdout_fraction or matbench.DEFAULT_VAL_FRACTION,
                                 roots, spec.max_samples)
    task_type.check_targets(definition.spec, dataset.splits)
    return TaskData(definition, task_type, dataset, dict(spec.max_samples) if spec.max_samples else None)


def task_record(definition: TaskDefinition) -> dict[str, Any]:
    """The result's ``task`` block."""
    s = definition.spec
    return {"name": s.name, "target": s.target, "unit": s.unit, "positive_class": s.positive_class,
            "description": definition.description}


def prepare(spec: RunSpec, run_dir: Path, data: TaskData | None = None) -> TaskData:
    """Write ``run_dir/inputs/`` for ``spec`` (loading the data unless ``data`` is given).

    Raises:
        as :func:`load_task_data`.
    """
    data = data or load_task_data(spec)
    definition, task_type = data.definition, data.task_type
    model_task = task_type.model_task(definition.spec, data.dataset.splits["train"])
    settings = {"num_samples": spec.num_samples or definition.num_samples}
    write_inputs(run_dir, model_task, definition.description, data.record(), settings, data.dataset.notes,
                 data.dataset.splits, task_type.encode_target)
    return data
