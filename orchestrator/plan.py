"""The plan of a suite: which (model, task, seed) runs to make, with which settings, and which of
them ``--resume`` can skip.

A run is identified for ``--resume`` by its model, task and seed, the sha256 of the dataset files
it reads (``dataset.sha256`` in the result) and ``config_sha256``: a content hash of the model
folder (code, ``model.yaml``, Dockerfile, locks) and of every setting that changes what is computed
(data variant, profile, hyperparameter overrides, sample limits, number of generated crystals,
the evaluation protocol). Under ``--protocol matbench`` each (model, task, seed) is planned as 5
runs, one per Matbench fold (:mod:`runner.protocols.matbench`); the fold is part of a run's identity
but not of ``config_sha256``, so the 5 folds of one configuration share it and the summary keeps
them together.
Telemetry interval, backend and time limit are not part of it: they change how a run is measured
or where it runs, not its scores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from orchestrator import registry
from orchestrator.grid import Grid
from orchestrator.images import BuildContext, folder_files
from orchestrator.reader import read_runs
from orchestrator.results import new_run_id
from runner.datasets import DatasetError
from runner.manifest import ModelManifest
from runner.tasks import UnknownTaskError, get_task
from runner.wire import RunSpec

#: a run's time limit when neither the command line, the grid nor model.yaml gives one, seconds
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Planned:
    """One run of the plan, before it gets a run id.

    Attributes:
        manifest: the model's manifest.
        task: task name.
        seed: the seed.
        overrides: hyperparameter overrides (grid, then model entry, then ``--set``).
        config_sha256: see the module docstring.
        fold: the Matbench fold (0 to 4) under ``--protocol matbench``, else ``None``.
    """

    manifest: ModelManifest
    task: str
    seed: int
    overrides: dict[str, Any]
    config_sha256: str
    fold: int | None = None


@dataclass
class Settings:
    """What applies to every run of a suite (command line over grid file over defaults)."""

    data_variant: str = "subset"
    profile: str = "bench"
    overrides: dict[str, Any] = field(default_factory=dict)
    max_samples: dict[str, int] | None = None
    num_samples: int | None = None
    timeout_s: float | None = None
    #: ``"task"`` (the task's own split) or ``"matbench"`` (see :mod:`runner.protocols.matbench`)
    protocol: str = "task"


@dataclass(frozen=True)
class RunSettings:
    """Per-invocation settings that do not change what a run computes (not in ``config_sha256``).

    Attributes:
        backend: the backend's name.
        time_limit: maps a requested timeout (seconds) to the backend's enforced limit.
        data_roots: dataset directories, searched in order.
        sampling_interval_s: telemetry period.
        git_sha: mateval's commit.
        cache_dir: the scoring stage's fingerprint cache.
        n_jobs: scoring worker processes.
    """

    backend: str
    time_limit: Any
    data_roots: tuple[Path, ...]
    sampling_interval_s: float = 1.0
    git_sha: str | None = None
    cache_dir: Path | None = None
    n_jobs: int | None = None


def run_specs(plan: list[Planned], settings: Settings, run: RunSettings) -> list[RunSpec]:
    """The :class:`runner.wire.RunSpec` of every planned run (each with a new run id), in plan order.
    The time limit is the command line's or grid's, else ``model.yaml``'s ``timeout_s``, else
    :data:`DEFAULT_TIMEOUT_S`, as the backend enforces it."""
    specs = []
    for item in plan:
        manifest = item.manifest
        requested = settings.timeout_s if settings.timeout_s is not None else manifest.data.get("timeout_s")
        timeout = run.time_limit(DEFAULT_TIMEOUT_S if requested is None else requested)
        specs.append(RunSpec(
            run_id=new_run_id(manifest.name, item.task, item.seed, item.fold), model=manifest.name,
            model_dir=str(manifest.folder), task=item.task, seed=item.seed, data_variant=settings.data_variant,
            data_roots=[str(p) for p in run.data_roots], profile=settings.profile, overrides=item.overrides,
            max_samples=settings.max_samples, sampling_interval_s=run.sampling_interval_s, backend=run.backend,
            git_sha=run.git_sha, num_samples=settings.num_samples, n_jobs=run.n_jobs,
            cache_dir=str(run.cache_dir) if run.cache_dir else None, timeout_s=timeout,
            config_sha256=item.config_sha256, protocol=settings.protocol, fold=item.fold))
    return specs


def model_folder_sha256(folder: Path) -> str:
    """Content hash of every file of a model folder (no caches), as the image builds use it."""
    return BuildContext.from_files(folder_files(folder)).sha256


def config_sha256(model_sha: str, task: str, settings: Settings, overrides: dict[str, Any]) -> str:
    """The ``config_sha256`` of one run (see the module docstring)."""
    document = {"model_files": model_sha, "task": task, "data_variant": settings.data_variant,
                "profile": settings.profile, "overrides": overrides, "max_samples": settings.max_samples,
                "num_samples": settings.num_samples}
    if settings.protocol != "task":  # absent for the task's own split: earlier hashes stay valid
        document["protocol"] = settings.protocol
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def build(manifests: list[ModelManifest], tasks: list[str], seeds: list[int], settings: Settings,
          cli_overrides: dict[str, Any], grid: Grid | None = None, skipped: list[str] | None = None) -> list[Planned]:
    """Every (model, task, seed) to run, in order: models, then tasks, then seeds (then the 5
    folds of each seed under ``settings.protocol == "matbench"``).

    ``tasks`` from the command line win over the grid's, which win over the model's defaults. A
    task whose type (or kind of structure: crystal or molecule, ``model.yaml`` ``structures``) the model
    does not support is left out, with a line in ``skipped``.

    Raises:
        runner.tasks.UnknownTaskError: a task name not in the catalogue.
        runner.protocols.matbench.ProtocolError: ``--protocol matbench`` with a task named on the
            command line or in the grid whose type is not regression or classification (task and
            type named); such a task among a model's default tasks is skipped with a line.
    """
    from runner.protocols import matbench

    fold_numbers = [None] if settings.protocol == "task" else list(range(matbench.MATBENCH_KFOLD["n_splits"]))
    entries = {m.name: m for m in grid.models} if grid else {}
    plan = []
    for manifest in manifests:
        entry = entries.get(manifest.name)
        named = tasks or (entry.tasks if entry and entry.tasks else None) or \
            (list(grid.tasks) if grid and grid.tasks else None)
        model_tasks = named or manifest.data["default_tasks"]
        overrides = {**settings.overrides, **(entry.overrides if entry else {}), **cli_overrides}
        model_sha = model_folder_sha256(manifest.folder)
        for task in model_tasks:
            spec = get_task(task).spec
            task_type = spec.task_type
            if named or task_type in matbench.TASK_TYPES:
                matbench.check_protocol(settings.protocol, task, task_type)
            elif settings.protocol != "task":  # a model's default task the protocol does not apply to
                if skipped is not None:
                    skipped.append(f"{manifest.name} on {task}: --protocol {settings.protocol} does not apply to "
                                   f"{task_type} tasks")
                continue
            if task_type not in manifest.data["task_types"]:
                if skipped is not None:
                    skipped.append(f"{manifest.name} on {task}: task type {spec.task_type} not supported by the model")
                continue
            kind = "crystal" if spec.periodic else "molecule"
            if kind not in manifest.data.get("structures", ["crystal"]):
                if skipped is not None:
                    skipped.append(f"{manifest.name} on {task}: {kind}s not supported by the model "
                                   f"(model.yaml structures: {', '.join(manifest.data.get('structures', ['crystal']))})")
                continue
            digest = config_sha256(model_sha, task, settings, overrides)
            plan.extend(Planned(manifest, task, seed, overrides, digest, fold)
                        for seed in seeds for fold in fold_numbers)
    return plan


def resolve(grid: Grid | None, model_selection: str | None) -> list[ModelManifest]:
    """The manifests of ``--model`` (wins) or of the grid's models.

    Raises:
        ValueError: neither is given.
        orchestrator.registry.UnknownModelError, runner.manifest.ManifestError: as
            :func:`orchestrator.registry.resolve_models`; for a grid, the message names the file.
    """
    if model_selection:
        return registry.resolve_models(model_selection)
    if grid is None:
        raise ValueError("bench: give --model NAME (or 'all') or --grid FILE")
    manifests = []
    for index, entry in enumerate(grid.models):
        try:
            manifests.append(registry.get_model(entry.name))
        except registry.UnknownModelError as exc:
            raise registry.UnknownModelError(f"{grid.path}: models[{index}]: {exc}") from exc
    return manifests


def check_tasks(grid: Grid | None, cli_tasks: list[str]) -> None:
    """Every task named on the command line or in the grid is in the catalogue.

    Raises:
        runner.tasks.UnknownTaskError: naming the grid file and field for a grid's task.
    """
    for task in cli_tasks:
        get_task(task)
    if grid is None:
        return
    named = [("tasks", t) for t in grid.tasks or ()]
    named += [(f"models[{i}].tasks", t) for i, m in enumerate(grid.models) for t in m.tasks or ()]
    for where, task in named:
        try:
            get_task(task)
        except UnknownTaskError as exc:
            raise UnknownTaskError(f"{grid.path}: {where}: {exc}") from exc


def run_key(model: str, task: str, seed: int, config: str | None, data_sha: dict[str, str],
            fold: int | None = None) -> tuple:
    """The identity of a run for ``--resume`` (``fold``: the Matbench fold, ``None`` without)."""
    return model, task, seed, config, tuple(sorted(data_sha.items())), fold


def completed(run_dirs: Iterable[Path], unreadable: list[tuple[Path, str]] | None = None) -> dict[tuple, Path]:
    """``run_key -> run directory`` of every readable ``ok`` result among ``run_dirs``; the
    ``(directory, reason)`` of each unreadable one is appended to ``unreadable`` when given."""
    done = {}
    for record in read_runs(run_dirs):
        if not record.ok and unreadable is not None:
            unreadable.append((Path(record.directory), record.error or "unreadable result"))
        if not record.ok or record.status != "ok" or not record.result.get("config_sha256"):
            continue
        key = run_key(record.model, record.task, record.seed, record.result["config_sha256"],
                      record.result["dataset"].get("sha256") or {}, record.fold)
        done[key] = Path(record.directory)
    return done


def drop_completed(plan: list[Planned], settings: Settings, data_roots: list[Path],
                   run_dirs: Iterable[Path], unreadable: list[tuple[Path, str]] | None = None
                   ) -> tuple[list[Planned], list[tuple[Planned, Path]]]:
    """Split the plan into runs still to do and ``(run, existing ok run directory)`` pairs.

    A run whose dataset cannot be found stays in the plan (it will fail with the loader's error).
    A run directory whose result cannot be read is skipped (its runs are done again) and, when
    ``unreadable`` is given, appended to it as ``(directory, reason)``.
    """
    from runner.datasets.base import file_sha256
    from runner.protocols import matbench

    done = completed(run_dirs, unreadable)
    data_sha: dict[str, dict[str, str] | None] = {}  # by dataset: several tasks read the same files
    todo, skipped = [], []
    for item in plan:
        task = get_task(item.task)
        source = task.dataset
        official = matbench.official_file(item.task, data_roots) if settings.protocol == "matbench" else None
        if official is not None:  # the run reads Matbench's own file instead
            source = str(official)
            data_sha.setdefault(source, {official.name: file_sha256(official)})
        if source not in data_sha:
            try:
                data_sha[source] = task.data_sha256(settings.data_variant, data_roots)
            except DatasetError:
                data_sha[source] = None
        sha = data_sha[source]
        match = None if sha is None else done.get(run_key(item.manifest.name, item.task, item.seed,
                                                          item.config_sha256, sha, item.fold))
        if match is None:
            todo.append(item)
        else:
            skipped.append((item, match))
    return todo, skipped
