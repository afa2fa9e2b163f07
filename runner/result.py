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

from runner.schemas import field_path, load_schema
from runner.wire import LOG_FILE, RESULT_FILE

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
        tmp.unlink(missing_ok=True)  # a link planted under this name is removed, never followed
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644),
                       "wb") as handle:
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
    """Read and validate a ``result.json`` (the one implementation; the host's typed reader,
    :mod:`orchestrator.reader`, calls it).

    Raises:
        ResultError: missing or unreadable, not valid JSON (truncated?), not a JSON object, or a
            schema failure; the message starts with the path and names the failing field(s).
    """
    from runner import safefiles

    path = Path(path)
    try:
        result = safefiles.load_json(path)
    except FileNotFoundError:
        raise ResultError(f"{path}: {path.name} not found") from None
    except safefiles.RefusedFile as exc:
        raise ResultError(f"{path}: {exc.name} {exc.reason}; not read") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ResultError(f"{path}: not valid JSON (truncated?): {exc}") from None
    except (OSError, MemoryError) as exc:
        raise ResultError(f"{path}: cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(result, dict):
        raise ResultError(f"{path}: holds a JSON {type(result).__name__}, expected an object")
    validate_result(result, source=str(path))
    return result


def write_csv(path: Path, columns: Mapping[str, list]) -> None:
    """Atomically write equal-length ``columns`` as a CSV with a header."""
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a link planted under this name is removed, never followed
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644),
                   "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(rows)
    os.replace(tmp, path)


def log_tail(path: Path, max_lines: int = 60, max_chars: int = 8000) -> str | None:
    """The last lines of a log file of a run directory (read from the end, at most
    :data:`runner.safefiles.MAX_LOG_TAIL_BYTES`), or ``None`` when there is none. A log that is a
    symbolic link or not a regular file is not read: the text says so instead (e.g.
    ``"run.log is a symbolic link; not read"``)."""
    from runner import safefiles

    try:
        lines = safefiles.read_tail(path).splitlines()
    except safefiles.RefusedFile as exc:
        return f"{exc.name} {exc.reason}; not read"
    except OSError:
        return None
    return "\n".join(lines[-max_lines:])[-max_chars:]


def base_result(spec) -> dict[str, Any]:
    """A schema-valid result skeleton for ``spec`` (a :class:`runner.wire.RunSpec`) with ``status:
    failed``, filled in as the run progresses. The orchestrator uses it too, to record runs that
    died before writing a result."""
    from runner import environment

    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "model": {"name": spec.model, "display_name": spec.model, "entry_point": "unknown"},
        "task": {"name": spec.task, "target": "unknown", "unit": None},
        "task_type": "regression",
        "dataset": {"name": "unknown", "variant": spec.data_variant, "sizes": {}, "sha256": {},
                    **({"max_samples": dict(spec.max_samples)} if spec.max_samples else {}),
                    **({"protocol": {"name": spec.protocol, "fold": spec.fold}}
                       if getattr(spec, "protocol", "task") != "task" else {})},
        "status": "failed",
        "config_sha256": spec.config_sha256,
        "backend": spec.backend,
        "seed": spec.seed,
        "started_at": utc_now(),
        "finished_at": utc_now(),
        "hyperparameters": {"effective": {}, "overridden": {}, "profile": spec.profile},
        "resources": {"sampling_interval_s": spec.sampling_interval_s, "overall": {}, "phases": {}, "unavailable": []},
        "model_stats": {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None},
        "metrics": {},
        "metric_details": {},
        "history": [],
        "environment": environment.describe(spec.git_sha, None, [], None),
        "error": None,
        "files": {"result": RESULT_FILE, "log": LOG_FILE},
        "notes": [],
    }
