"""The one reader of ``result.json`` on the host: checked against the result schema once, then typed.

Every host-side consumer of finished runs reads them here: the HTML report and the summary
(:mod:`orchestrator.report`), ``--resume`` (:mod:`orchestrator.plan`) and ``mateval check-result``.
A result that cannot be read, is not JSON, is not a JSON object or fails
``runner/schemas/result.schema.json`` is *unreadable*: :func:`read_run` returns a
:class:`RunRecord` without a result and with the reason (file and field named), and never raises.

Usage::

    from orchestrator.reader import read_runs
    for record in read_runs(run_dirs):
        if record.ok:
            print(record.run_id, record.task_type, record.metrics.get("MAE"))
        else:
            print(record.directory, record.error)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from orchestrator.integrity import problems
from runner.result import ResultError, read_result
from runner.wire import RESULT_FILE

__all__ = ["RunRecord", "read_run", "read_runs", "read_result_file", "RESULT_FILE", "ResultError"]



def read_result_file(path: Path) -> dict[str, Any]:
    """Read ``path`` (a ``result.json``) and check it against the result schema
    (:func:`runner.result.read_result`).

    Raises:
        ResultError: the file is missing or unreadable, is not valid JSON, holds something other
            than a JSON object, or fails the schema; the message starts with the path and names
            the failing field(s) with what was expected.
    """
    return read_result(Path(path))


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) and value else default


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class RunRecord:
    """One run directory as read by :func:`read_run`.

    Attributes:
        directory: the run directory (``results/<run_id>/``).
        result: the schema-valid ``result.json`` as a dict, or ``None`` when unreadable.
        error: why the result could not be read (file and field named), ``None`` when readable.

    The accessors below read fields of a readable result (the schema guarantees their types);
    for an unreadable one they return the empty value (``""``, ``{}``, ``None``).
    """

    directory: Path
    result: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """``True`` when ``result.json`` was read and passed the schema."""
        return self.result is not None

    @property
    def path(self) -> Path:
        """The ``result.json`` of the run."""
        return self.directory / RESULT_FILE

    def _get(self, *keys: str) -> Any:
        value: Any = self.result
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    @property
    def run_id(self) -> str:
        """``run_id``, or the directory name when unreadable."""
        return _text(self._get("run_id"), self.directory.name)

    @property
    def model(self) -> str:
        """``model.name`` (the grouping key of the summary and the model pages)."""
        return _text(self._get("model", "name"))

    @property
    def display_name(self) -> str:
        """``model.display_name``, else ``model.name``, else the run id."""
        return _text(self._get("model", "display_name"), self.model or self.run_id)

    @property
    def task(self) -> str:
        """``task.name``."""
        return _text(self._get("task", "name"))

    @property
    def task_type(self) -> str:
        """``task_type`` (``regression``, ``classification``, ``generation``, ``spectra``, a plugin's)."""
        return _text(self._get("task_type"))

    @property
    def unit(self) -> str | None:
        """``task.unit`` (the target's unit), ``None`` when dimensionless or unreadable."""
        return _text(self._get("task", "unit")) or None

    @property
    def seed(self) -> int | None:
        """``seed``."""
        seed = self._get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def status(self) -> str:
        """``status`` (``ok``, ``failed``, ``timeout``, ``oom``, ``cancelled``); ``"unreadable"`` without a result."""
        return _text(self._get("status"), "unknown") if self.ok else "unreadable"

    @property
    def metrics(self) -> Mapping[str, Any]:
        """``metrics`` (values may be ``None``: undefined for the run)."""
        return _mapping(self._get("metrics"))

    @property
    def metric_details(self) -> Mapping[str, Any]:
        """``metric_details`` (``{}`` when absent)."""
        return _mapping(self._get("metric_details"))

    @property
    def config_sha256(self) -> str | None:
        """``config_sha256`` (what ``--resume`` matches), ``None`` when not recorded."""
        return _text(self._get("config_sha256")) or None

    @property
    def dataset_sha256(self) -> Mapping[str, str]:
        """``dataset.sha256``: ``{file name: sha256}`` of the files the run read."""
        return _mapping(self._get("dataset", "sha256"))

    @property
    def protocol(self) -> str:
        """``dataset.protocol.name`` (``"matbench"``), or ``"task"`` (the task's own split) when absent."""
        return _text(self._get("dataset", "protocol", "name"), "task")

    @property
    def fold(self) -> int | None:
        """``dataset.protocol.fold`` (0 to 4 for Matbench's protocol), ``None`` without a protocol."""
        fold = self._get("dataset", "protocol", "fold")
        return fold if isinstance(fold, int) and not isinstance(fold, bool) else None

    @property
    def files(self) -> Mapping[str, Any]:
        """``files``: ``{role: file name in the run directory}``."""
        return _mapping(self._get("files"))

    @property
    def error_message(self) -> str | None:
        """``error.message`` of a run that did not end ok, else the reading error, else ``None``."""
        if not self.ok:
            return self.error
        return _text(self._get("error", "message")) or None


def read_run(directory: Path) -> RunRecord:
    """Read ``directory/result.json`` (a path to a ``result.json`` is accepted too) and check it
    against what was sealed when the run was published (:func:`orchestrator.integrity.problems`: a
    changed ``result.json`` or run file, or ``ok`` without metrics, makes it unreadable, named).
    Never raises."""
    directory = Path(directory)
    if directory.name == RESULT_FILE and directory.is_file():
        directory = directory.parent
    try:
        result = read_result_file(directory / RESULT_FILE)
        found = problems(directory, result)
        if found:
            return RunRecord(directory, None, "; ".join(found))
        return RunRecord(directory, result, None)
    except ResultError as exc:
        return RunRecord(directory, None, str(exc))
    except Exception as exc:  # noqa: BLE001 - never raises: a reader bug must not hide the other runs
        return RunRecord(directory, None, f"{directory / RESULT_FILE}: cannot be read: {type(exc).__name__}: {exc}")


def read_runs(directories: Iterable[Path]) -> list[RunRecord]:
    """:func:`read_run` of each directory, in order. Never raises."""
    return [read_run(Path(d)) for d in directories]
