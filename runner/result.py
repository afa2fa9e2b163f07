"""Writing and checking run results (schema: ``runner/schemas/result.schema.json``).

Every file is written atomically (a temporary file in the same directory, then ``os.replace``),
NaN and infinities become JSON ``null``, and ``result.json`` is validated before it is written.
"""

from __future__ import annotations

import csv
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import jsonschema

from runner.manifest import load_schema

SCHEMA_VERSION = "1.0"
STATUSES = ("ok", "failed", "timeout", "oom", "cancelled")


class ResultError(ValueError):
    """A result file is missing, unparsable or fails the schema; the message names file and field."""


def utc_now() -> str:
    """ISO 8601 UTC timestamp with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_json_safe(value: Any) -> Any:
    """Recursively convert numpy scalars/arrays and tuples to plain JSON types; NaN/inf -> None."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if np is not None and isinstance(value, np.ndarray):
        return [to_json_safe(v) for v in value.tolist()]
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``;
    the temporary file is removed if anything fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def validate_result(result: Mapping[str, Any], source: str = "result") -> None:
    """Check ``result`` against the result schema.

    Raises:
        ResultError: naming ``source`` and every failing field with what was expected.
    """
    validator = jsonschema.Draft202012Validator(load_schema("result"))
    errors = sorted(validator.iter_errors(result), key=lambda e: list(e.absolute_path))
    if errors:
        from runner.manifest import field_path

        details = "; ".join(f"field '{field_path(e)}': {e.message[:300]}" for e in errors[:10])
        raise ResultError(f"{source}: fails result schema: {details}")


def write_result(run_dir: Path, result: Mapping[str, Any]) -> Path:
    """Validate and atomically write ``run_dir/result.json``; returns its path.

    Raises:
        ResultError: the result fails the schema (nothing is written then).
    """
    safe = to_json_safe(result)
    validate_result(safe, source=str(Path(run_dir) / "result.json"))
    path = Path(run_dir) / "result.json"
    atomic_write_text(path, json.dumps(safe, indent=2, allow_nan=False) + "\n")
    return path


def read_result(path: Path) -> dict[str, Any]:
    """Read and validate a ``result.json``.

    Raises:
        ResultError: missing, truncated/unparsable JSON, or schema failure (file and field named).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultError(f"{path}: cannot be read: {exc}") from exc
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: not valid JSON (truncated?): {exc}") from exc
    validate_result(result, source=str(path))
    return result


def write_csv(path: Path, columns: Mapping[str, list]) -> None:
    """Atomically write equal-length ``columns`` as a CSV with a header."""
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(rows)
    os.replace(tmp, path)


def log_tail(path: Path, max_lines: int = 60, max_chars: int = 8000) -> str | None:
    """The last lines of a log file, or ``None`` when there is none."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    return "\n".join(lines[-max_lines:])[-max_chars:]
