"""Settings files of the orchestrator (grid files, Slurm settings): read the YAML, check it against
its JSON Schema in ``orchestrator/schemas/``, and say what is wrong naming the field.

The schemas are Draft 2020-12 with one annotation of ours: ``"expected"``, a phrase saying what a
field must hold ("a positive integer"). An error inside a field is reported on the deepest field
whose schema carries ``"expected"``, as ``<field>: expected <phrase>, got <value>``, so a bad item
of a list names the list and what the list must hold. Fields are named like
``models[0].tasks`` and ``max_samples.train``.

Imports nothing of mateval's, so that any module may use it without an import loop.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
#: schema keywords whose next step in the schema path is one step into the instance
_INTO_INSTANCE = {"properties": 2, "patternProperties": 2, "prefixItems": 2, "items": 1, "additionalProperties": 1}


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The YAML document in ``path``.

    Raises:
        error: (e.g. :class:`orchestrator.grid.GridError`) the file cannot be read
            (``<path>: cannot read <what>``) or is not valid YAML (``<path>: invalid YAML: ...``).
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from exc


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The JSON Schema ``orchestrator/schemas/<name>.schema.json`` (``"grid"`` or ``"slurm"``)."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def _strict_integer(checker, instance: Any) -> bool:
    # JSON Schema calls 2.0 an integer; a seed, a count or a time limit of 2.0 is a typo here
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


def field_name(parts: Iterable[Any], prefix: str = "") -> str:
    """``["models", 0, "tasks"]`` -> ``"models[0].tasks"`` (after ``prefix``, e.g. ``"slurm"``)."""
    name = prefix
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _fits(branch_errors: list, depth: int) -> bool:
    """A branch of ``anyOf``/``oneOf`` has the value's shape: no type or required error at its level."""
    return not any(e.validator in ("type", "required") and len(e.absolute_path) == depth for e in branch_errors)


def _reported(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For an ``anyOf``/``oneOf`` error, the error of the one branch the value fits, if exactly one."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [errors for errors in branches.values() if _fits(errors, len(error.absolute_path))]
        if len(fitting) != 1:
            break
        error = min(fitting[0], key=lambda e: [str(p) for p in e.absolute_path])
    return error


def _expected(schema: dict, error: jsonschema.ValidationError) -> tuple[int, str] | None:
    """``(instance depth, phrase)`` of the deepest schema on the error's path with ``"expected"``."""
    node, depth, found = schema, 0, None
    path = list(error.absolute_schema_path)
    index = 0
    while True:
        if isinstance(node, dict) and "expected" in node:
            found = (depth, node["expected"])
        if index >= len(path):
            return found
        keyword = path[index]
        if keyword in _INTO_INSTANCE and isinstance(node, dict) and isinstance(node.get(keyword), (dict, list, bool)):
            steps = _INTO_INSTANCE[keyword]
            node = node[keyword] if steps == 1 else node[keyword][path[index + 1]]
            depth += 1
            index += steps
            continue
        try:
            node = node[keyword]
        except (KeyError, IndexError, TypeError):
            return found
        index += 1


def schema_problems(document: Any, name: str, prefix: str = "") -> list[str]:
    """What is wrong with ``document`` under schema ``name``, one ``"<field>: <what>"`` per problem
    (``<field>`` after ``prefix``; a problem with the whole document has no field). Empty if valid."""
    schema = load_schema(name)
    problems = []
    for error in sorted(_Validator(schema).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        error = _reported(error)
        parts = list(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            for extra in sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str):
                problems.append(f"{field_name(parts + [extra], prefix)}: unknown field (allowed: {allowed})")
            continue
        if error.validator == "required":
            for missing in (m for m in error.validator_value if m not in error.instance):
                hint = error.schema.get("properties", {}).get(missing, {}).get("expected")
                problems.append(f"{field_name(parts + [missing], prefix)}: missing"
                                + (f" (expected {hint})" if hint else ""))
            continue
        expected = _expected(schema, error)
        if expected is not None:
            depth, phrase = expected
            value = document
            for part in parts[:depth]:
                value = value[part]
            what = f"expected {phrase}, got {value!r}"
            parts = parts[:depth]
        else:
            what = error.message
        field = field_name(parts, prefix)
        problems.append(f"{field}: {what}" if field else what)
    return list(dict.fromkeys(problems))


__all__ = ["read_yaml", "load_schema", "schema_problems", "field_name", "SCHEMA_DIR"]
