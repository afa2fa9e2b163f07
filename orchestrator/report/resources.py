"""Resource figures of a run (``resources`` of ``result.json``): which rows the tables show, how a
value is read (GPU values combined over devices) and why one is unavailable."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Mapping, Sequence

from .formatting import as_dict, as_list, dig, format_fixed, is_num

__all__ = ["RESOURCE_ROWS", "resource_value", "resource_keys", "unavailable_reason", "GPU_KEY"]

# (row label, metric key without "gpu:N/" prefix, family, aggregation over GPUs, formatter)
RESOURCE_ROWS: Sequence[tuple[str, str, str, str, Callable[[float], str]]] = (
    ("Duration (s)", "duration (s)", "time", "", format_fixed(1)),
    ("GPU utilization (%)", "gpu_utilization (%)/mean", "gpu", "mean", format_fixed(1)),
    ("GPU memory utilization (%)", "memory_utilization (%)/mean", "gpu", "mean", format_fixed(1)),
    ("GPU memory used (%)", "memory_percent (%)/mean", "gpu", "mean", format_fixed(1)),
    ("GPU power (W)", "power_usage (W)/mean", "gpu", "sum", format_fixed(1)),
    ("GPU energy (J)", "energy (J)", "gpu", "sum", format_fixed(0)),
    ("Host CPU (%)", "host/cpu_percent (%)/mean", "host", "", format_fixed(1)),
    ("Host memory (%)", "host/memory_percent (%)/mean", "host", "", format_fixed(1)),
)

GPU_KEY = re.compile(r"^gpu:(\d+)/(.+)$")
_GPU_WORDS = {"gpu", "gpus", "gpu:*", "nvml", "cuda", "nvidia"}


def unavailable_reason(result: Mapping, keys: Sequence[str], family: str) -> str | None:
    """Reason from ``resources.unavailable`` for the first entry that covers one of ``keys``."""
    for entry in as_list(dig(result, "resources", "unavailable")):
        if not isinstance(entry, Mapping):
            continue
        metric = str(entry.get("metric") or "").strip()
        reason = str(entry.get("reason") or "unavailable")
        if not metric:
            continue
        low = metric.lower()
        if family == "gpu" and (low in _GPU_WORDS or re.fullmatch(r"gpu(:\d+|:\*)?/?\*?", low)):
            return reason
        if family == "host" and low in {"host", "host/*"}:
            return reason
        bare_metric = GPU_KEY.sub(r"\2", metric)
        for key in keys:
            bare_key = GPU_KEY.sub(r"\2", key)
            if (key == metric or key.startswith(metric) or fnmatch.fnmatchcase(key, metric)
                    or fnmatch.fnmatchcase(key, metric + "*")
                    or (bare_metric and bare_key.startswith(bare_metric))):
                return reason
    return None


def gpu_combined(block: Mapping[str, Any], key: str, agg: str) -> tuple[float | None, list[int]]:
    """The ``gpu:<N>/<key>`` values of ``block`` combined (``agg == "mean"``: mean, else sum) and the
    indices of the GPUs that have one; ``(None, [])`` without any."""
    found = sorted((int(m.group(1)), v) for k, v in block.items()
                   if (m := GPU_KEY.match(k)) and m.group(2) == key and is_num(v))
    if not found:
        return None, []
    vals = [v for _, v in found]
    return (sum(vals) / len(vals) if agg == "mean" else sum(vals)), [i for i, _ in found]


def resource_value(result: Mapping, key: str, family: str, agg: str) -> tuple[float | None, list[int]]:
    """One resource figure of a run from ``resources.overall``, as in the comparison table.

    ``key``, ``family`` and ``agg`` are the fields of a :data:`RESOURCE_ROWS` entry. For the GPU
    family the ``gpu:<N>/<key>`` values of every device are combined (``agg`` ``"mean"``: their
    mean, else their sum). Returns ``(value or None, indices of the GPUs used)``; never raises.
    """
    overall = as_dict(dig(result, "resources", "overall"))
    if family == "gpu":
        return gpu_combined(overall, key, agg)
    value = overall.get(key)
    return (value if is_num(value) else None), []


def resource_keys(key: str, family: str, gpus: Sequence[int] = ()) -> list[str]:
    """The ``resources.overall`` keys of a :data:`RESOURCE_ROWS` entry (for ``resources.unavailable``)."""
    if family == "gpu":
        return [f"gpu:{i}/{key}" for i in gpus] or [f"gpu:0/{key}"]
    return [key]
