"""Reading and validating a model folder's ``model.yaml`` (schema: ``runner/schemas/model.schema.json``).

``hyperparameter_types`` in ``model.yaml`` declares each hyperparameter's type and allowed values::

    hyperparameter_types:
      epochs: {type: integer, minimum: 1}
      learning_rate: {type: number, exclusive_minimum: 0}
      lr_gamma: {type: number, exclusive_minimum: 0, maximum: 1}
      loss: {type: string, choices: [mse, l1]}
      use_lattice: {type: boolean}
      cpu_threads: {type: integer, minimum: 1, nullable: true}

``type`` is ``integer`` (not a bool, not ``2.0``), ``number`` (an integer or a finite float: NaN and
infinities are rejected), ``boolean`` or ``string``; ``minimum``, ``maximum``, ``exclusive_minimum``
and ``exclusive_maximum`` apply to integers and numbers; ``choices`` lists the only values allowed;
``nullable: true`` also allows ``null``. The paper defaults and the bench values are checked when
``model.yaml`` is read, the effective values (after the profile and the overrides) by
:meth:`ModelManifest.hyperparameters`, before the runner starts the adapter. Checks that relate
several hyperparameters, or a hyperparameter and the task, stay in the adapter.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from runner import numeric
from runner.schemas import field_path, load_schema  # noqa: F401 (also imported from here by callers)


class ManifestError(ValueError):
    """``model.yaml`` is missing, unparsable or invalid; the message names the file and the field."""


#: the bounds of ``hyperparameter_types`` entries and how they read in messages
_BOUNDS = {"minimum": ">=", "exclusive_minimum": ">", "maximum": "<=", "exclusive_maximum": "<"}
_TYPE_WORDS = {"integer": "an integer", "number": "a finite number", "boolean": "true or false", "string": "a string"}


def _has_type(kind: str, value: Any) -> bool:
    """``value`` is of hyperparameter type ``kind`` (bools are not numbers; NaN and inf are not numbers)."""
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return kind in ("integer", "number")
    return kind == "number" and isinstance(value, numbers.Real) and math.isfinite(value)


def describe_hyperparameter_type(declaration: Mapping[str, Any]) -> str:
    """What a ``hyperparameter_types`` entry allows, in words: ``"an integer >= 1"``,
    ``"a finite number > 0 and <= 1"``, ``"one of ['mse', 'l1']"``, ``"... or null"``."""
    if "choices" in declaration:
        text = f"one of {list(declaration['choices'])!r}"
    else:
        text = _TYPE_WORDS[declaration["type"]]
        bounds = [f"{word} {declaration[key]!r}" for key, word in _BOUNDS.items() if key in declaration]
        if bounds:
            text += " " + " and ".join(bounds)
    return text + (" or null" if declaration.get("nullable") else "")


def hyperparameter_fits(declaration: Mapping[str, Any], value: Any) -> bool:
    """``value`` satisfies the ``hyperparameter_types`` entry ``declaration``."""
    if value is None:
        return bool(declaration.get("nullable"))
    if not _has_type(declaration["type"], value):
        return False
    if "choices" in declaration and not any(_has_type(declaration["type"], c) and c == value
                                            for c in declaration["choices"]):
        return False
    if declaration["type"] not in ("integer", "number"):
        return True
    return (value >= declaration.get("minimum", -math.inf) and value <= declaration.get("maximum", math.inf)
            and value > declaration.get("exclusive_minimum", -math.inf)
            and value < declaration.get("exclusive_maximum", math.inf))


def _declaration_problem(declaration: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(sub-field, what is wrong)`` for a schema-valid ``hyperparameter_types`` entry, else ``None``."""
    kind = declaration["type"]
    for key in _BOUNDS:
        if key in declaration:
            if kind not in ("integer", "number"):
                return key, f"applies to type integer or number, not {kind}"
            if not isinstance(declaration[key], numbers.Integral) and not math.isfinite(declaration[key]):
                return key, f"expected a finite number, got {declaration[key]!r}"
    for choice in declaration.get("choices", ()):
        if not _has_type(kind, choice):
            return "choices", f"{choice!r} is not {_TYPE_WORDS[kind]} (type {kind})"
    return None


@dataclass(frozen=True)
class ModelManifest:
    """A validated ``model.yaml``.

    Attributes:
        folder: the model folder (``images/<name>``).
        path: the manifest file.
        data: the parsed document (validated).
        sha256: sha256 of the manifest's bytes (identifies the model configuration in results).
    """

    folder: Path
    path: Path
    data: Mapping[str, Any]
    sha256: str

    @property
    def name(self) -> str:
        """The model's name (equals the folder name)."""
        return self.data["name"]

    @property
    def display_name(self) -> str:
        """Human-readable name for reports."""
        return self.data["display_name"]

    def hyperparameters(self, profile: str, overrides: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
        """Effective hyperparameters for ``profile`` (``"paper"`` or ``"bench"``) and overrides.

        Returns:
            ``(effective, overridden)`` where ``overridden`` maps each name whose value differs from
            the paper default to ``{"paper": default, "used": value}``.

        Raises:
            ManifestError: an override names a hyperparameter the manifest does not declare, or a
                value does not fit its ``hyperparameter_types`` entry (see :meth:`check_hyperparameters`).
        """
        paper = dict(self.data["hyperparameters"])
        effective = dict(paper)
        if profile == "bench":
            effective.update(self.data.get("bench_hyperparameters", {}))
        elif profile != "paper":
            raise ManifestError(f"unknown hyperparameter profile {profile!r}; expected 'paper' or 'bench'")
        for key, value in (overrides or {}).items():
            if key not in paper:
                raise ManifestError(
                    f"{self.path}: hyperparameters: no hyperparameter named {key!r} "
                    f"(declared: {', '.join(sorted(paper))})"
                )
            effective[key] = value
        self.check_hyperparameters(effective, overrides)
        overridden = {k: {"paper": paper[k], "used": v} for k, v in effective.items() if paper[k] != v}
        return effective, overridden

    @property
    def hyperparameter_types(self) -> dict[str, dict[str, Any]]:
        """The ``hyperparameter_types`` entries by name (empty when model.yaml declares none)."""
        return dict(self.data.get("hyperparameter_types", {}))

    def check_hyperparameters(self, values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                              field: str = "hyperparameters") -> None:
        """Check ``values`` against ``hyperparameter_types`` (names without an entry are not checked).

        Args:
            values: hyperparameter values by name (e.g. the effective ones).
            overrides: the overrides among them, named as such in the message.
            field: the field the values are named under in the message.

        Raises:
            ManifestError: ``<model.yaml>: field 'hyperparameters.<name>': expected <what>, got <value>``.
        """
        check_hyperparameter_values(self.path, self.hyperparameter_types, values, field, overrides or {})

    def load_entry_point(self) -> type:
        """Import ``entry_point`` with the model folder on ``sys.path``.

        Raises:
            ManifestError: the module or class cannot be imported (the import error is chained).
        """
        module_name, _, class_name = self.data["entry_point"].partition(":")
        folder = str(self.folder)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(module_name)
            return getattr(module, class_name)
        except (ImportError, AttributeError) as exc:
            raise ManifestError(
                f"{self.path}: entry_point: cannot import {self.data['entry_point']!r}: {type(exc).__name__}: {exc}"
            ) from exc


def check_hyperparameter_values(path: Path, types: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any],
                                field: str = "hyperparameters", overrides: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ManifestError` naming ``path`` and ``<field>.<name>`` for the first value (in the
    order of ``values``) that does not fit its entry in ``types``."""
    for name, value in values.items():
        declaration = types.get(name)
        if declaration is not None and not hyperparameter_fits(declaration, value):
            source = " (an override)" if name in (overrides or {}) else ""
            raise ManifestError(f"{path}: field '{field}.{name}': expected {describe_hyperparameter_type(declaration)}, "
                                f"got {value!r}{source}")


def _unknown_task_type(name: str) -> str | None:
    """Why ``name`` is not a task type (built in, or registered by a plugin of ``MATEVAL_PLUGINS``), else ``None``."""
    from runner import tasks  # not at import time: runner.tasks loads the datasets' code and the plugins

    if name in tasks.BUILTIN_TASK_TYPES:
        return None
    try:
        tasks.get_task_type(name)
    except (ValueError, ImportError) as exc:
        return str(exc)
    return None


def load_manifest(folder: Path) -> ModelManifest:
    """Read and validate ``<folder>/model.yaml``.

    Raises:
        ManifestError: missing file, YAML syntax error (with line), schema violation (naming the
            field and what was expected), a ``timeout_s`` that is not a finite number of seconds in
            :data:`runner.numeric.TIMEOUT`'s range, ``name`` different from the folder name, a task type
            neither built in nor registered by a plugin,
            ``bench_hyperparameters`` or ``hyperparameter_types`` naming an undeclared hyperparameter,
            a ``hyperparameter_types`` entry that contradicts itself (bounds on a string, a choice
            of another type), or a paper default or bench value that does not fit its type entry.
    """
    folder = Path(folder).resolve()
    path = folder / "model.yaml"
    if not path.is_file():
        raise ManifestError(f"{path}: no model.yaml in model folder {folder}")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ManifestError(f"{path}: not valid YAML{line}: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    validator = jsonschema.Draft202012Validator(load_schema("model"))
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        details = "; ".join(f"field '{field_path(e)}': {e.message}" for e in errors)
        raise ManifestError(f"{path}: invalid manifest: {details}")
    if "timeout_s" in data and not numeric.TIMEOUT.fits(data["timeout_s"]):  # the schema lets NaN and inf through
        raise ManifestError(f"{path}: field 'timeout_s': expected {numeric.TIMEOUT.describe()}, got {data['timeout_s']!r}")
    if data["name"] != folder.name:
        raise ManifestError(f"{path}: field 'name': {data['name']!r} must equal the folder name {folder.name!r}")
    unknown = sorted(set(data.get("bench_hyperparameters", {})) - set(data["hyperparameters"]), key=str)
    if unknown:
        raise ManifestError(
            f"{path}: field 'bench_hyperparameters.{unknown[0]}': not declared in 'hyperparameters'"
        )
    for index, task_type in enumerate(data["task_types"]):
        problem = _unknown_task_type(task_type)
        if problem:
            raise ManifestError(f"{path}: field 'task_types.{index}': {problem}")
    types = data.get("hyperparameter_types", {})
    for name, declaration in types.items():
        if name not in data["hyperparameters"]:
            raise ManifestError(f"{path}: field 'hyperparameter_types.{name}': not declared in 'hyperparameters'")
        problem = _declaration_problem(declaration)
        if problem:
            raise ManifestError(f"{path}: field 'hyperparameter_types.{name}.{problem[0]}': {problem[1]}")
    check_hyperparameter_values(path, types, data["hyperparameters"])
    check_hyperparameter_values(path, types, data.get("bench_hyperparameters", {}), "bench_hyperparameters")
    return ModelManifest(folder=folder, path=path, data=data, sha256=hashlib.sha256(raw).hexdigest())
