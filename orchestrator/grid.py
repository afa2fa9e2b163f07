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
    timeout_s: 1800               # optional per-run limit (seconds)
    backend: slurm                # optional: auto | local | docker | slurm
    slurm: {partition: gpu, time: 60, gpus: 1}     # optional: see orchestrator.backends.slurm

Per-model entries override the grid's ``tasks`` and add their own ``set`` on top of the grid's.
Command-line flags override the file (``--seed``, ``--task``, ``--set``, ``--data``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.backends import BACKENDS

TOP_LEVEL = {"name", "models", "tasks", "seeds", "data", "profile", "set", "max_samples", "num_samples", "timeout_s",
             "backend", "slurm"}
MODEL_KEYS = {"name", "tasks", "set"}
BACKEND_NAMES = ("auto", *BACKENDS)


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise GridError(f"{where}: expected a non-empty list of names, got {value!r}")
    return tuple(v.strip() for v in value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise GridError(f"{where}: expected a mapping of names to values, got {value!r}")
    return dict(value)


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The YAML document in ``path``.

    Raises:
        error: (e.g. :class:`GridError`) the file cannot be read (``<path>: cannot read <what>``)
            or is not valid YAML (``<path>: invalid YAML: ...``).
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from exc


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file.

    Models and tasks are checked against the registry and the task catalogue by the caller (the
    plan), which names this file in its errors too.

    Raises:
        GridError: unreadable file, invalid YAML, unknown field, or a field of the wrong type; the
            message starts with ``<file>: <field>``.
    """
    path = Path(path)
    document = read_yaml(path, GridError, "the grid file")
    if not isinstance(document, dict):
        raise GridError(f"{path}: expected a mapping with at least 'models', got {type(document).__name__}")
    unknown = sorted(set(document) - TOP_LEVEL)
    if unknown:
        raise GridError(f"{path}: unknown field(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(TOP_LEVEL))}")
    if "models" not in document:
        raise GridError(f"{path}: models: missing (a list of model names)")
    raw_models = document["models"]
    if isinstance(raw_models, str):
        raw_models = [raw_models]
    if not isinstance(raw_models, list) or not raw_models:
        raise GridError(f"{path}: models: expected a non-empty list, got {raw_models!r}")
    models = []
    for index, entry in enumerate(raw_models):
        where = f"{path}: models[{index}]"
        if isinstance(entry, str) and entry.strip():
            models.append(GridModel(entry.strip()))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise GridError(f"{where}: expected a model name or a mapping with 'name', got {entry!r}")
        extra = sorted(set(entry) - MODEL_KEYS)
        if extra:
            raise GridError(f"{where}: unknown field(s) {', '.join(map(str, extra))}; allowed: name, tasks, set")
        tasks = _names(entry["tasks"], f"{where}.tasks") if entry.get("tasks") is not None else None
        models.append(GridModel(entry["name"].strip(), tasks, _mapping(entry.get("set"), f"{where}.set")))
    names = [m.name for m in models]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise GridError(f"{path}: models: listed more than once: {', '.join(duplicated)}")

    seeds = document.get("seeds", [0])
    if _is_int(seeds):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        raise GridError(f"{path}: seeds: expected a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise GridError(f"{path}: seeds: repeated seed in {seeds!r}")
    data = document.get("data")
    if data is not None and data not in ("subset", "full"):
        raise GridError(f"{path}: data: expected 'subset' or 'full', got {data!r}")
    profile = document.get("profile")
    if profile is not None and profile not in ("bench", "paper"):
        raise GridError(f"{path}: profile: expected 'bench' or 'paper', got {profile!r}")
    max_samples = document.get("max_samples")
    if max_samples is not None:
        max_samples = _mapping(max_samples, f"{path}: max_samples")
        for split, value in max_samples.items():
            if split not in ("train", "val", "test") or not _is_int(value) or value < 1:
                raise GridError(f"{path}: max_samples.{split}: expected train|val|test = positive integer, got {value!r}")
    num_samples = document.get("num_samples")
    if num_samples is not None and (not _is_int(num_samples) or num_samples < 1):
        raise GridError(f"{path}: num_samples: expected a positive integer, got {num_samples!r}")
    timeout_s = document.get("timeout_s")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
        raise GridError(f"{path}: timeout_s: expected a positive number of seconds, got {timeout_s!r}")
    backend = document.get("backend")
    if backend is not None and backend not in BACKEND_NAMES:
        raise GridError(f"{path}: backend: expected one of {', '.join(BACKEND_NAMES)}, got {backend!r}")
    name = document.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise GridError(f"{path}: name: expected a non-empty string, got {name!r}")
    return Grid(path=path, name=name.strip(), models=tuple(models),
                tasks=_names(document["tasks"], f"{path}: tasks") if document.get("tasks") is not None else None,
                seeds=tuple(seeds), data=data, profile=profile, overrides=_mapping(document.get("set"), f"{path}: set"),
                max_samples=max_samples, num_samples=num_samples,
                timeout_s=None if timeout_s is None else float(timeout_s), backend=backend,
                slurm=_mapping(document.get("slurm"), f"{path}: slurm"))
