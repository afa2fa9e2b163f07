"""Reading and validating a model folder's ``model.yaml`` (schema: ``runner/schemas/model.schema.json``)."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class ManifestError(ValueError):
    """``model.yaml`` is missing, unparsable or invalid; the message names the file and the field."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A JSON Schema shipped in ``runner/schemas`` (``"model"`` or ``"result"``)."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def field_path(error: jsonschema.ValidationError) -> str:
    """Dotted path of the field a schema error is about, e.g. ``paper.year`` (``<top level>`` if none)."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # the offending names are only in the message; report the first one as the field
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)  # keys may be ints
        parts += [str(name) for name in extra[:1]]
    elif error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        parts += missing[:1]
    return ".".join(parts) or "<top level>"


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
            ManifestError: an override names a hyperparameter the manifest does not declare.
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
        overridden = {k: {"paper": paper[k], "used": v} for k, v in effective.items() if paper[k] != v}
        return effective, overridden

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


def load_manifest(folder: Path) -> ModelManifest:
    """Read and validate ``<folder>/model.yaml``.

    Raises:
        ManifestError: missing file, YAML syntax error (with line), schema violation (naming the
            field and what was expected), ``name`` different from the folder name, or
            ``bench_hyperparameters`` naming an undeclared hyperparameter.
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
    if data["name"] != folder.name:
        raise ManifestError(f"{path}: field 'name': {data['name']!r} must equal the folder name {folder.name!r}")
    unknown = sorted(set(data.get("bench_hyperparameters", {})) - set(data["hyperparameters"]), key=str)
    if unknown:
        raise ManifestError(
            f"{path}: field 'bench_hyperparameters.{unknown[0]}': not declared in 'hyperparameters'"
        )
    return ModelManifest(folder=folder, path=path, data=data, sha256=hashlib.sha256(raw).hexdigest())
