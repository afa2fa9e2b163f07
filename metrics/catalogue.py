"""The metric catalogue: every metric mateval reports, with its label, unit, format, direction,
definition and source, read from ``metrics/catalogue.yaml`` (the one place they are written).

The runner's task modules take their metric names and stored definitions from here; the report,
the summary and ``summary.csv`` take labels, units, formats, directions and definitions from here.
Plugins add entries for their own task types with :func:`register`.

Usage::

    from metrics import catalogue
    catalogue.names("regression")          # ('MAE', 'MSE', 'RMSE', 'R2', 'MaxError')
    catalogue.main_metric("generation")     # 'validity'
    catalogue.entry("spectra", "Wasserstein").unit   # 'cm⁻¹'

Pure: imports only the standard library and PyYAML.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

__all__ = ["MetricEntry", "entries", "entry", "names", "main_metric", "task_types", "register",
           "CATALOGUE_FILE", "UNITS", "FORMATS", "DIRECTIONS"]

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
#: ``unit`` values with a meaning of their own (anything else is a literal unit, shown as written).
UNITS = ("target", "target^2")
FORMATS = ("number", "percent", "count")
DIRECTIONS = ("lower", "higher")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class MetricEntry:
    """One metric of one task type.

    Attributes:
        name: key in ``result.json`` ``metrics`` (e.g. ``"MAE"``, ``"COV-R"``).
        task_type: the task type that reports it (``regression``, ``classification``,
            ``generation``, ``spectra`` or a plugin's).
        label: what tables show, without the unit (e.g. ``"Validity (structure)"``).
        unit: ``"target"`` (the task's unit), ``"target^2"`` (its square), a literal unit as shown
            (``"cm⁻¹"``, ``"J/(K·mol)"``, ``"g/cm³"``) or ``None`` (dimensionless).
        format: ``"number"``, ``"percent"`` (a fraction shown as a percentage) or ``"count"``.
        direction: ``"lower"`` or ``"higher"``: which is better.
        main: the task type's main metric (exactly one per task type).
        definition: one or two sentences; ``{placeholders}`` are filled from ``metric_details``
            (see :meth:`describe`).
        source: where the value is computed (function and module, paper).
        definition_key: key of ``metric_details.definition`` under which the runner stores this
            metric's definition (several metrics may share one, e.g. ``"coverage"``); defaults
            to ``name``.
    """

    name: str
    task_type: str
    label: str
    unit: str | None
    format: str
    direction: str
    main: bool
    definition: str
    source: str
    definition_key: str = ""

    def __post_init__(self) -> None:
        where = f"metric catalogue entry {self.task_type!r}/{self.name!r}"
        for attr in ("name", "task_type", "label", "definition", "source"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: field '{attr}' must be a non-empty string, got {value!r}")
        if self.unit is not None and (not isinstance(self.unit, str) or not self.unit.strip()):
            raise ValueError(f"{where}: field 'unit' must be a non-empty string or null, got {self.unit!r}")
        if self.format not in FORMATS:
            raise ValueError(f"{where}: field 'format' must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{where}: field 'direction' must be one of {', '.join(DIRECTIONS)}, "
                             f"got {self.direction!r}")
        if not isinstance(self.main, bool):
            raise ValueError(f"{where}: field 'main' must be true or false, got {self.main!r}")
        if not isinstance(self.definition_key, str):
            raise ValueError(f"{where}: field 'definition_key' must be a string, got {self.definition_key!r}")
        if not self.definition_key:
            object.__setattr__(self, "definition_key", self.name)

    @property
    def higher_is_better(self) -> bool:
        """``True`` when a larger value is better (``direction == "higher"``)."""
        return self.direction == "higher"

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Names of the ``{placeholders}`` of :attr:`definition`, in order of first appearance."""
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(self.definition)))

    def describe(self, values: Mapping[str, Any] | None = None) -> str:
        """:attr:`definition` with its placeholders filled from ``values``.

        A placeholder is looked up among the keys of ``values`` and then of the mappings it holds
        one level down (so ``metric_details`` itself can be passed: ``{structure}`` is found in
        ``metric_details["thresholds"]``); one without a value stays as written (``{cutoff}``).
        """
        values = values if isinstance(values, Mapping) else {}

        def fill(match: re.Match) -> str:
            key = match.group(1)
            if key in values and not isinstance(values[key], Mapping):
                return _text(values[key])
            for inner in values.values():
                if isinstance(inner, Mapping) and key in inner and not isinstance(inner[key], Mapping):
                    return _text(inner[key])
            return match.group(0)

        return _PLACEHOLDER.sub(fill, self.definition)


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_FIELDS = {f.name for f in fields(MetricEntry)}
_REQUIRED = _FIELDS - {"definition_key"}
_lock = threading.Lock()
_entries: list[MetricEntry] | None = None


def _entry_from(raw: Mapping[str, Any] | MetricEntry, where: str) -> MetricEntry:
    if isinstance(raw, MetricEntry):
        return raw
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with fields {', '.join(sorted(_REQUIRED))}, "
                         f"got {type(raw).__name__}")
    unknown = sorted(set(raw) - _FIELDS)
    missing = sorted(_REQUIRED - set(raw))
    label = f"{where} ({raw.get('task_type', '?')}/{raw.get('name', '?')})"
    if unknown:
        raise ValueError(f"{label}: unknown field(s) {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(sorted(_FIELDS))}")
    if missing:
        raise ValueError(f"{label}: missing field(s) {', '.join(missing)}")
    return MetricEntry(**{k: raw[k] for k in raw})


def _check(items: list[MetricEntry]) -> None:
    seen: set[tuple[str, str]] = set()
    for e in items:
        key = (e.task_type, e.name)
        if key in seen:
            raise ValueError(f"metric catalogue: duplicate entry {e.task_type!r}/{e.name!r}")
        seen.add(key)
    for task_type in dict.fromkeys(e.task_type for e in items):
        mains = [e.name for e in items if e.task_type == task_type and e.main]
        if len(mains) != 1:
            raise ValueError(f"metric catalogue: task type {task_type!r} must have exactly one main metric, "
                             f"has {len(mains)} ({', '.join(mains) or 'none'})")


def _load(path: Path = CATALOGUE_FILE) -> list[MetricEntry]:
    """The entries of ``path`` (raises ``ValueError`` naming the file and the entry)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of metric entries, got {type(raw).__name__}")
    items = [_entry_from(item, f"{path}: entry {i}") for i, item in enumerate(raw)]
    _check(items)
    return items


def _all() -> list[MetricEntry]:
    global _entries
    if _entries is None:
        with _lock:
            if _entries is None:
                _entries = _load()
    return _entries


def entries(task_type: str | None = None) -> list[MetricEntry]:
    """All entries in catalogue order, or those of ``task_type`` (an empty list for an unknown one)."""
    return [e for e in _all() if task_type is None or e.task_type == task_type]


def entry(task_type: str, name: str) -> MetricEntry:
    """The entry of metric ``name`` of ``task_type``.

    Raises:
        KeyError: naming the known metrics of ``task_type`` (or the known task types).
    """
    for e in _all():
        if e.task_type == task_type and e.name == name:
            return e
    known = names(task_type)
    if not known:
        raise KeyError(f"no metric catalogue entries for task type {task_type!r}; "
                       f"known task types: {', '.join(task_types())}")
    raise KeyError(f"metric {name!r} is not in the catalogue for task type {task_type!r}; "
                   f"known: {', '.join(known)}")


def names(task_type: str) -> tuple[str, ...]:
    """Metric keys of ``task_type`` in catalogue order (empty for an unknown task type)."""
    return tuple(e.name for e in _all() if e.task_type == task_type)


def main_metric(task_type: str) -> str:
    """Key of the main metric of ``task_type`` (the one the runs table shows).

    Raises:
        KeyError: ``task_type`` has no entries (naming the known task types).
    """
    for e in _all():
        if e.task_type == task_type and e.main:
            return e.name
    raise KeyError(f"no metric catalogue entries for task type {task_type!r}; "
                   f"known task types: {', '.join(task_types())}")


def task_types() -> tuple[str, ...]:
    """Task types with entries, in catalogue order (built-in ones first, then plugins')."""
    return tuple(dict.fromkeys(e.task_type for e in _all()))


def register(new_entries: Iterable[MetricEntry | Mapping[str, Any]]) -> list[MetricEntry]:
    """Add entries (a plugin's task type or extra metrics); returns them as :class:`MetricEntry`.

    All are checked before any is added: fields as in ``catalogue.yaml``, no (task type, name)
    already present or repeated, and every task type still with exactly one main metric.

    Raises:
        ValueError: a malformed entry, a duplicate ``(task_type, name)``, or a task type left
            without exactly one main metric (nothing is added then).
    """
    global _entries
    added = [_entry_from(raw, f"metric catalogue register(): entry {i}") for i, raw in enumerate(new_entries)]
    with _lock:
        current = _entries if _entries is not None else _load()
        combined = [*current, *added]
        _check(combined)
        _entries = combined
    return added
