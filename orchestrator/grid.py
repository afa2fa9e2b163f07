"""Grid specs: one YAML file that lists models, tasks and seeds, and runs on every backend.

A grid file (``mateval bench --grid FILE``; see ``examples/grid-small.yaml``)::

    name: grid-small              # optional; used in the report title
    models: [matformer]           # names under images/, or entries {name, tasks, set}
    tasks: [perov5_heat_ref, perov5_has_gap]   # optional; default: each model's default_tasks
    seeds: [0, 1]                 # optional; default [0]
    data: subset                  # optional: subset | full
    profile: bench                # optional: bench | paper
    set: {epochs: 2}              # optional hyperparameter overrides for every model
    max_samples: {train: 200, val: 50, test: 100}   # optional
    num_samples: 100              # optional: generation tasks
    protocol: matbench            # optional: task (default, the task's split) | matbench (5 folds)
    timeout_s: 1800               # optional per-run limit (seconds)
    backend: slurm                # optional: auto | local | docker | slurm
    slurm: {partition: gpu, time: 60, gpus: 1}     # optional: see orchestrator.backends.slurm

Per-model entries override the grid's ``tasks`` and add their own ``set`` on top of the grid's.
Command-line flags override the file (``--seed``, ``--task``, ``--set``, ``--data``, ...).

The fields are checked against ``orchestrator/schemas/grid.schema.json``; what a schema cannot say
(a seed or a model listed twice, NaN or an infinite ``timeout_s``, an integer written ``2.0``) is
checked here, the numbers by the rules of :mod:`runner.numeric` that the command line uses too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.yamlfile import read_yaml, schema_problems
from runner import numeric


class GridError(ValueError):
    """The grid file is unreadable or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class GridModel:
    """One model of a grid: its name, its tasks (``None``: the model's defaults) and overrides."""

    name: str
    tasks: tuple[str, ...] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Grid:
    """A parsed grid file (see the module docstring for the fields)."""

    path: Path
    name: str
    models: tuple[GridModel, ...]
    tasks: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0,)
    data: str | None = None
    profile: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    max_samples: dict[str, int] | None = None
    num_samples: int | None = None
    timeout_s: float | None = None
    backend: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None


def _names(value: str | list[str] | None) -> tuple[str, ...] | None:
    """A schema-valid name or list of names as a tuple (``None`` stays ``None``)."""
    if value is None:
        return None
    return tuple(v.strip() for v in ([value] if isinstance(value, str) else value))


def _optional(rule: numeric.Rule, value: Any, name: str) -> int | float | None:
    """``value`` checked against ``rule`` (``None`` stays ``None``; see :meth:`runner.numeric.Rule.check`)."""
    return None if value is None else rule.check(value, name)


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file.

    Models and tasks are checked against the registry and the task catalogue by the caller (the
    plan), which names this file in its errors too.

    Raises:
        GridError: unreadable file, invalid YAML, unknown field, a field of the wrong type, or a
            number out of its range (NaN and infinities included); the message starts with ``<file>: <field>`` (e.g. ``grid.yaml: models[0].tasks: ...``).
    """
    path = Path(path)
    document = read_yaml(path, GridError, "the grid file")
    problems = schema_problems(document, "grid")
    if problems:
        raise GridError(f"{path}: " + "; ".join(problems))
    models = []
    for entry in [document["models"]] if isinstance(document["models"], str) else document["models"]:
        if isinstance(entry, str):
            models.append(GridModel(entry.strip()))
        else:
            models.append(GridModel(entry["name"].strip(), _names(entry.get("tasks")), dict(entry.get("set") or {})))
    names = [m.name for m in models]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise GridError(f"{path}: models: listed more than once: {', '.join(duplicated)}")
    seeds = document.get("seeds", [0])
    seeds = [seeds] if not isinstance(seeds, list) else seeds
    try:
        seeds = [numeric.SEED.check(seed, f"{path}: seeds") for seed in seeds]
        timeout_s = _optional(numeric.TIMEOUT, document.get("timeout_s"), f"{path}: timeout_s")
        num_samples = _optional(numeric.COUNT, document.get("num_samples"), f"{path}: num_samples")
        max_samples = document.get("max_samples") or None
        if max_samples is not None:
            max_samples = {split: numeric.COUNT.check(n, f"{path}: max_samples.{split}")
                           for split, n in max_samples.items()}
    except numeric.NumberError as exc:
        raise GridError(str(exc)) from None
    if len(set(seeds)) != len(seeds):
        raise GridError(f"{path}: seeds: repeated seed in {seeds!r}")
    return Grid(path=path, name=document.get("name", path.stem).strip(), models=tuple(models),
                tasks=_names(document.get("tasks")), seeds=tuple(seeds), data=document.get("data"),
                profile=document.get("profile"), overrides=dict(document.get("set") or {}),
                max_samples=max_samples, num_samples=num_samples, timeout_s=timeout_s, backend=document.get("backend"),
                slurm=dict(document.get("slurm") or {}), protocol=document.get("protocol"))


__all__ = ["Grid", "GridError", "GridModel", "load_grid", "read_yaml"]
