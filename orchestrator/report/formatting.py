"""Formatting for the report and the summary: numbers, short text of JSON values, readers of nested
result fields, and how a metric is labelled, unitized and formatted (from :mod:`metrics.catalogue`)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Iterable, Mapping

from metrics import catalogue
from runner import profiling as _profiling

__all__ = ["is_num", "sig3", "format_count", "format_flops", "format_metric", "format_percent", "format_fixed",
           "short_json", "dig", "as_dict", "as_list", "unit_suffix", "metric_entry", "metric_label",
           "metric_formatter", "metric_presentation", "metric_definition", "metric_unit", "STATUS_CLASSES",
           "DEFAULT_FLOPS_NOTE", "THOP_NOTE"]

#: Footnotes on model cost, under the comparison table and the summary: the same statement the
#: runner stores with every count (runner/profiling.py), so that nothing says otherwise.
DEFAULT_FLOPS_NOTE = "FLOPs (torch.utils.flop_counter.FlopCounterMode): " + _profiling.NOT_COUNTED + "."
THOP_NOTE = (_profiling.THOP_NOTE + "; thop alone counts some element-wise layers (normalisation, pooling), "
             "so its MACs and the FLOPs differ by more than the factor 2 of a multiply-add: each run's "
             "model_stats.thop.comparison explains the difference layer by layer.")
#: CSS class of each run status (anything else: ``unknown``).
STATUS_CLASSES = {"ok": "ok", "failed": "failed", "timeout": "timeout", "oom": "oom", "cancelled": "cancelled"}


def is_num(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def sig3(x: float) -> str:
    """Three significant digits without switching to exponent notation (999.7 -> "1,000")."""
    s = f"{x:.3g}"
    return f"{x:,.0f}" if "e" in s else s


def format_count(n: float) -> str:
    """``1234567`` -> ``"1.23 M"``; below a thousand the plain integer."""
    if not is_num(n):
        return "n/a"
    a = abs(n)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{sig3(n / div)} {suffix}"
    return f"{int(round(n)):d}" if float(n).is_integer() else f"{n:.3g}"


def format_flops(n: float) -> str:
    """``4.56e9`` -> ``"4.56 GFLOP"``."""
    if not is_num(n):
        return "n/a"
    a = abs(n)
    for div, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{sig3(n / div)} {prefix}FLOP"
    return f"{n:.3g} FLOP"


def format_metric(v: float) -> str:
    """Four decimals for ordinary magnitudes, scientific notation for tiny or huge ones."""
    if not is_num(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-3 or a >= 1e6:
        return f"{v:.3e}"
    if a >= 1000:
        return f"{v:,.1f}"
    return f"{v:.4f}"


def format_percent(v: float) -> str:
    """A fraction as a percentage with two decimals: ``0.9859`` -> ``"98.59 %"``."""
    if not is_num(v):
        return "n/a"
    return f"{v * 100:.2f} %"


def format_fixed(decimals: int) -> Callable[[float], str]:
    """A formatter with ``decimals`` fixed decimals and thousands separators (``"n/a"`` for non-numbers)."""
    def fmt(v: float) -> str:
        return f"{v:,.{decimals}f}" if is_num(v) else "n/a"

    return fmt


def short_json(v: Any, limit: int = 300) -> str:
    """``v`` as one line of text (strings as they are, anything else as JSON), cut at ``limit`` characters."""
    if isinstance(v, str):
        s = v
    else:
        try:
            s = json.dumps(v, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            s = repr(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def dig(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...``, ``None`` where a level is missing or not a mapping."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


# ----------------------------------------------------------------------------------------------
# metrics: label, unit and formatter from the catalogue
# ----------------------------------------------------------------------------------------------

_FORMATTERS: dict[str, Callable[[float], str]] = {"number": format_metric, "percent": format_percent,
                                                   "count": format_count}


def unit_suffix(unit: str | None, power: int) -> str | None:
    """``unit`` raised to ``power`` (1 or 2) as shown: ``"eV"``, ``"eV²"``, ``"(eV/atom)²"``."""
    if not unit:
        return None
    if power == 1:
        return unit
    needs_parens = bool(re.search(r"[\s/*·]", unit))
    return f"({unit})²" if needs_parens else f"{unit}²"


def metric_entry(task_type: str | None, name: str) -> catalogue.MetricEntry | None:
    """The catalogue entry of metric ``name`` of ``task_type``, ``None`` when it has none."""
    try:
        return catalogue.entry(task_type or "", name)
    except KeyError:
        return None


def metric_unit(entry: catalogue.MetricEntry | None, task_unit: str | None) -> str:
    """The unit of a metric as shown (``""`` when dimensionless): the catalogue's literal unit, or
    the task's unit (or its square) for ``target`` (``target^2``)."""
    if entry is None or entry.unit is None:
        return ""
    if entry.unit in ("target", "target^2"):
        return unit_suffix(task_unit, 2 if entry.unit == "target^2" else 1) or ""
    return entry.unit


def metric_label(entry: catalogue.MetricEntry | None, name: str, unit: str) -> str:
    """Row label: the catalogue label (``name`` without an entry) with ``unit``:
    ``"MAE (eV)"``, ``"MSE (eV/atom)²"``, ``"Wasserstein (cm⁻¹)"``."""
    label = entry.label if entry is not None else name
    if not unit:
        return label
    return f"{label} {unit}" if unit.startswith("(") else f"{label} ({unit})"


def metric_formatter(entry: catalogue.MetricEntry | None) -> Callable[[float], str]:
    """The formatter of the entry's ``format`` (:func:`format_metric` without an entry)."""
    return _FORMATTERS.get(entry.format if entry is not None else "number", format_metric)


def metric_presentation(task_type: str | None, name: str, unit: str | None) -> tuple[str, str, Callable[[float], str]]:
    """(label, unit, formatter) of metric ``name`` of a ``task_type`` task whose target is in ``unit``,
    from :mod:`metrics.catalogue`, e.g. ``("MSE (eV/atom)²", "(eV/atom)²", format_metric)`` or
    ``("Validity", "", format_percent)``; ``unit`` is ``""`` when dimensionless. A metric without a
    catalogue entry is shown under its key, without unit, with :func:`format_metric`."""
    entry = metric_entry(task_type, name)
    shown_unit = metric_unit(entry, unit)
    return metric_label(entry, name, shown_unit), shown_unit, metric_formatter(entry)


def metric_definition(entry: catalogue.MetricEntry | None, results: Iterable[Mapping]) -> str | None:
    """Definition of a metric row: the sentence(s) the runs stored under the entry's
    ``metric_details.definition`` key (several different ones joined by `` | ``), else the
    catalogue's definition with placeholders filled from the first run's ``metric_details``;
    ``None`` for a metric without a catalogue entry."""
    if entry is None:
        return None
    results = list(results)
    found: list[str] = []
    for result in results:
        text = dig(result, "metric_details", "definition", entry.definition_key)
        if isinstance(text, str) and text.strip() and text.strip() not in found:
            found.append(text.strip())
    if found:
        return " | ".join(short_json(t, 600) for t in found)
    details = next((d for r in results if isinstance(d := dig(r, "metric_details"), Mapping) and d), {})
    return entry.describe(details)
