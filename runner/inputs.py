"""The model inputs of a run (``RUN_DIR/inputs/``): written by the prepare stage on the host, read
by the model stage.

- ``task.json``: ``{"task": <TaskSpec fields>, "task_type", "description", "dataset": <the result's
  dataset block>, "settings": {...}, "notes": [...]}``. ``settings`` holds what the task type's
  model call needs (``num_samples`` for generation).
- ``train.jsonl``, ``val.jsonl``: one JSON object a line, ``{"id", "structure", "target"}``, the
  structure as ``pymatgen.core.Structure.as_dict()`` (``Molecule.as_dict()`` for a non-periodic
  task; its ``@class`` picks the class read back, bit for bit), the target encoded by
  the task type (:meth:`runner.tasks.base.TaskType.encode_target`), plus ``"info"`` when the
  sample has any (:attr:`runner.contract.Sample.info`, e.g. a configuration type; never a target);
- ``test.jsonl``: the same without ``target``: the test targets never enter this folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from runner.contract import Sample, TaskSpec
from runner.wire import INPUTS_DIR, SPLIT_FILES, TASK_FILE


class InputsError(ValueError):
    """The inputs folder is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class ModelInputs:
    """What the model stage reads.

    Attributes:
        task: the task as the model sees it.
        task_type: the task type's name.
        description: one line about the task.
        dataset: the result's ``dataset`` block, as the prepare stage recorded it.
        settings: the task type's model-call settings (e.g. ``num_samples``).
        notes: notes for the result (e.g. how the split was made).
        splits: ``{"train": [...], "val": [...], "test": [...]}``; test samples have ``target=None``.
    """

    task: TaskSpec
    task_type: str
    description: str
    dataset: dict[str, Any]
    settings: dict[str, Any]
    notes: list[str]
    splits: dict[str, list[Sample]]


def write_inputs(run_dir: Path, task: TaskSpec, description: str, dataset: Mapping[str, Any],
                 settings: Mapping[str, Any], notes: Sequence[str], splits: Mapping[str, Sequence[Sample]],
                 encode_target) -> Path:
    """Write ``run_dir/inputs/``; the ``test`` split is written without targets. Returns the folder."""
    from runner.result import atomic_write_text

    folder = Path(run_dir) / INPUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    document = {"task": asdict(task), "task_type": task.task_type, "description": description,
                "dataset": dict(dataset), "settings": dict(settings), "notes": list(notes)}
    atomic_write_text(folder / TASK_FILE, json.dumps(document, indent=1, allow_nan=False) + "\n")
    for split, name in SPLIT_FILES.items():
        lines = []
        for sample in splits.get(split, ()):
            entry = {"id": sample.id, "structure": sample.structure.as_dict()}
            if sample.info:
                entry["info"] = dict(sample.info)
            if split != "test":
                entry["target"] = encode_target(sample.target)
            lines.append(json.dumps(entry, allow_nan=False))
        atomic_write_text(folder / name, "\n".join(lines) + ("\n" if lines else ""))
    return folder


def _task_spec(data: Any, path: Path) -> TaskSpec:
    if not isinstance(data, dict):
        raise InputsError(f"{path}: task: expected an object")
    known = {f.name for f in fields(TaskSpec)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("elements", "grid"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    try:
        return TaskSpec(**values)
    except TypeError as exc:
        raise InputsError(f"{path}: task: {exc}") from None


def _samples(path: Path, decode_target, with_targets: bool) -> Iterable[Sample]:
    from pymatgen.core import Molecule, Structure

    from runner import safefiles

    try:
        for number, line in enumerate(safefiles.iter_lines(path), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                kind = entry["structure"].get("@class", "Structure") if isinstance(entry["structure"], dict) else None
                if kind not in ("Structure", "Molecule"):
                    raise ValueError(f"structure of @class {kind!r}, expected a pymatgen Structure or Molecule")
                structure = (Molecule if kind == "Molecule" else Structure).from_dict(entry["structure"])
                target = decode_target(entry["target"]) if with_targets else None
                info = entry.get("info") or {}
                if not isinstance(info, dict):
                    raise ValueError(f"info is a JSON {type(info).__name__}, expected an object")
                yield Sample(id=str(entry["id"]), structure=structure, target=target, info=info)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                raise InputsError(f"{path}: line {number}: {type(exc).__name__}: {exc}") from None
    except OSError as exc:  # RefusedFile: a link or not a regular file
        raise InputsError(f"{path}: {safefiles.describe(exc)}") from None


def read_inputs(run_dir: Path, decode_target=None) -> ModelInputs:
    """Read ``run_dir/inputs/``. ``decode_target`` turns a JSON target into the model's target
    (default: the task type's :meth:`~runner.tasks.base.TaskType.decode_target`).

    Raises:
        InputsError: a missing or malformed file (file and line named).
    """
    folder = Path(run_dir) / INPUTS_DIR
    path = folder / TASK_FILE
    from runner import safefiles

    try:
        document = safefiles.load_json(path)
    except (OSError, ValueError) as exc:
        raise InputsError(f"{path}: cannot read the task file: {safefiles.describe(exc)}") from None
    if not isinstance(document, dict):
        raise InputsError(f"{path}: holds a JSON {type(document).__name__}, expected an object")
    task = _task_spec(document.get("task"), path)
    if decode_target is None:
        from runner.tasks import get_task_type

        decode_target = get_task_type(task.task_type).decode_target
    splits = {}
    for split, name in SPLIT_FILES.items():
        if not (folder / name).is_file():
            raise InputsError(f"{folder / name}: missing")
        splits[split] = list(_samples(folder / name, decode_target, with_targets=split != "test"))
    return ModelInputs(task=task, task_type=task.task_type, description=str(document.get("description", "")),
                       dataset=dict(document.get("dataset") or {}), settings=dict(document.get("settings") or {}),
                       notes=list(document.get("notes") or []), splits=splits)
