"""Render a set of run directories (``results/<run_id>/``) into one self-contained HTML report.

The page is a single file with inline CSS, inline SVG figures and one small inline script
(:data:`TABLE_SCRIPT`: sorting and filtering of tables; the page reads completely without it): it
opens offline. Every string taken from a result (names, ids, messages, log tails, hyperparameters)
goes through Jinja2 autoescaping; only the SVGs made by :mod:`orchestrator.report.plots` and
:data:`TABLE_SCRIPT` are inserted with ``|safe``, and those contain no text taken from a result.

A broken input never stops the report: a run directory whose ``result.json`` is missing or not
valid JSON is listed under "Unreadable results", a schema violation is shown as a warning in the
run's section, and a missing or unreadable ``timeseries.csv`` / ``predictions.csv`` replaces the
figure with a note.

Generation runs (``task_type: "generation"``) get their metrics in the reference framework's terms
(validity, success rate and coverage as percentages, EMDs), a table of counts, histograms of density
and number of elements (valid generated crystals from ``generated.csv`` against the reference lists
in ``metric_details``) and drawings of the first few valid crystals of ``generated.cif``; a missing or
corrupt ``generated.csv`` / ``generated.cif`` gives a note instead.

Spectrum-prediction runs (``task_type: "spectra"``, e.g. phonon DOS) get their own metric group
(MAE, MSE, RMSE, R², Wasserstein distance in cm⁻¹, C_V(300 K) MAE), and their section draws the
predicted and true spectra of the best, the median and the worst test crystal by per-crystal MSE
(from the long-format ``predictions.csv``: ``id, frequency, target, prediction``), a histogram of the
per-crystal MSE and a parity plot of C_V(300 K); a missing or corrupt ``predictions.csv`` gives a
note instead of the spectra.

Layout: a navigation bar, the per-model summary (mean ± std over seeds, the reference's table), a
compact table of the runs (one row each: model, task, seed, status, duration, main metric), the
per-run comparison (runs as columns), one page per model (``section.model-page``, ``id="model-<slug>"``,
grouped by ``model.name`` like the summary) holding the sections of its runs ordered by task (order
of first appearance) and seed, and the environment page (``id="environment"``: image, Slurm job,
versions and hardware of every run).

Interactivity: one inline ``<script>`` (:data:`TABLE_SCRIPT`, a constant of this module; it holds
no data and reads the DOM only through ``textContent``/attributes) makes every
``table.sortable`` sortable by a click on a header (numerically on the ``data-sort`` values set
here for numeric cells, else by text) and puts a filter box above every ``table.filterable`` and
every table with a ``data-filter`` attribute (``data-filter="label"``: match the row label only).
Without JavaScript the tables are simply static. A Content-Security-Policy ``<meta>`` allows that
one script by its SHA-256 hash and nothing else (no other script, handler attribute or external
resource), as a second line of defence behind the escaping.
"""

from __future__ import annotations

import base64
import datetime as _dt
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jinja2

from . import plots

__all__ = [
    "render_report",
    "build_context",
    "format_count",
    "format_flops",
    "format_metric",
    "RESOURCE_ROWS",
    "REGRESSION_METRICS",
    "CLASSIFICATION_METRICS",
    "GENERATION_METRICS",
    "SPECTRA_METRICS",
    "SPECTRA_LABELS",
    "format_percent",
    "resource_value",
    "resource_keys",
    "MAIN_METRICS",
    "TABLE_SCRIPT",
    "ModelPage",
    "model_slug",
    "main_metric",
    "RUNS_COLUMNS",
    "ENVIRONMENT_COLUMNS",
]

REGRESSION_METRICS = ("MAE", "MSE", "RMSE", "R2", "MaxError")
CLASSIFICATION_METRICS = ("ROC-AUC", "Accuracy", "Precision", "Recall", "F1")
GENERATION_METRICS = ("validity_structure", "validity_composition", "validity", "success_rate", "COV-R", "COV-P",
                      "EMD_density", "EMD_num_elements")
#: Row labels of the generation metrics in the reference framework's (CDVAE's) terms.
GENERATION_LABELS = {
    "validity_structure": "Validity (structure)",
    "validity_composition": "Validity (composition)",
    "validity": "Validity",
    "success_rate": "Success rate",
    "COV-R": "COV-R",
    "COV-P": "COV-P",
    "EMD_density": "EMD density (g/cm³)",
    "EMD_num_elements": "EMD # elements",
}
#: Generation metrics that are fractions, shown as percentages.
_PERCENT_METRICS = {"validity_structure", "validity_composition", "validity", "success_rate", "COV-R", "COV-P"}
#: metric -> key of ``metric_details.definition`` whose sentence is the row's tooltip.
_DEFINITION_KEYS = {"validity_structure": "validity", "validity_composition": "validity", "validity": "validity",
                    "success_rate": "success_rate", "COV-R": "coverage", "COV-P": "coverage"}
#: Tooltips of our own for metrics without a definition in the result.
_FIXED_DEFINITIONS = {
    "validity_structure": "Share of crystals that pass the structural validity check.",
    "validity_composition": "Share of crystals that pass the compositional validity check.",
    "validity": "Share of crystals valid both structurally and compositionally.",
    "success_rate": "Share of the requested crystals the model returned.",
    "COV-R": "Coverage recall: share of reference crystals with a generated crystal nearby in fingerprint space.",
    "COV-P": "Coverage precision: share of generated crystals with a reference crystal nearby in fingerprint space.",
    "EMD_density": "Earth mover's distance between the density distributions (g/cm³) of the generated and the "
                   "reference crystals; lower is better.",
    "EMD_num_elements": "Earth mover's distance between the distributions of the number of elements per crystal "
                        "of the generated and the reference crystals; lower is better.",
}
SPECTRA_METRICS = ("MAE", "MSE", "RMSE", "R2", "Wasserstein", "Cv_300K_MAE")
#: Row labels of the spectrum metrics (the spectra are max-normalized: MAE/MSE/RMSE have no unit).
SPECTRA_LABELS = {
    "MAE": "MAE",
    "MSE": "MSE",
    "RMSE": "RMSE",
    "R2": "R²",
    "Wasserstein": "Wasserstein (cm⁻¹)",
    "Cv_300K_MAE": "C_V(300 K) MAE (J/(K·mol))",
}
#: Tooltips of the spectrum metric rows when the results carry no definition.
_SPECTRA_DEFINITIONS = {
    "MAE": "Mean absolute error between predicted and true spectrum over all test crystals and frequency "
           "grid points (spectra max-normalized).",
    "MSE": "Mean squared error between predicted and true spectrum over all test crystals and frequency grid "
           "points (spectra max-normalized).",
    "RMSE": "Square root of the MSE over all test crystals and frequency grid points.",
    "R2": "Coefficient of determination of the predicted spectra, over all test crystals and frequency grid "
          "points.",
    "Wasserstein": "Wasserstein-1 (earth mover's) distance between predicted and true spectrum, each normalised "
                   "to unit area, in cm⁻¹; mean over the test crystals.",
    "Cv_300K_MAE": "Mean absolute error of the phonon heat capacity C_V at 300 K computed from the predicted and "
                   "the true DOS, in J/(K·mol).",
}
_UNIT_METRICS = {"MAE": 1, "RMSE": 1, "MaxError": 1, "MSE": 2}
_STATUS_CLASSES = {"ok": "ok", "failed": "failed", "timeout": "timeout", "oom": "oom", "cancelled": "cancelled"}

DEFAULT_FLOPS_NOTE = (
    "FLOPs count the dense operations of the network (linear layers, convolutions, element-wise "
    "ops); gather/scatter message aggregation of graph networks is not counted, so graph models "
    "are under-counted."
)
THOP_NOTE = (
    "thop MACs count nn.Module layers only and miss functional matmuls (torch.matmul, @, einsum, "
    "F.linear), so they are a lower bound."
)
_LOG_TAIL_LINES = 60
_MAX_SCHEMA_ERRORS = 5


# ----------------------------------------------------------------------------------------------
# number formatting
# ----------------------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _sig3(x: float) -> str:
    """Three significant digits without switching to exponent notation (999.7 -> "1,000")."""
    s = f"{x:.3g}"
    return f"{x:,.0f}" if "e" in s else s


def format_count(n: float) -> str:
    """``1234567`` -> ``"1.23 M"``; below a thousand the plain integer."""
    if not _is_num(n):
        return "n/a"
    a = abs(n)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{_sig3(n / div)} {suffix}"
    return f"{int(round(n)):d}" if float(n).is_integer() else f"{n:.3g}"


def format_flops(n: float) -> str:
    """``4.56e9`` -> ``"4.56 GFLOP"``."""
    if not _is_num(n):
        return "n/a"
    a = abs(n)
    for div, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{_sig3(n / div)} {prefix}FLOP"
    return f"{n:.3g} FLOP"


def format_metric(v: float) -> str:
    """Four decimals for ordinary magnitudes, scientific notation for tiny or huge ones."""
    if not _is_num(v):
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
    if not _is_num(v):
        return "n/a"
    return f"{v * 100:.2f} %"


def _format_fixed(decimals: int) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        return f"{v:,.{decimals}f}" if _is_num(v) else "n/a"

    return fmt


def _short_json(v: Any, limit: int = 300) -> str:
    if isinstance(v, str):
        s = v
    else:
        try:
            s = json.dumps(v, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            s = repr(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


# ----------------------------------------------------------------------------------------------
# view model
# ----------------------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    title: str | None = None
    css: str = ""
    #: raw numeric value for sorting (``data-sort``), ``None`` for text cells
    sort: str | None = None
    #: in-page link target (``#run-3``), only ever an anchor made by this module
    href: str | None = None


@dataclass
class Row:
    label: str
    cells: list[Cell]
    title: str | None = None


@dataclass
class RowGroup:
    name: str
    rows: list[Row]


@dataclass
class Figure:
    key: str
    heading: str
    svg: str | None = None
    note: str | None = None
    caption: str | None = None
    #: extra CSS class of the <figure> ("small", "medium") and a line break after it
    size: str = ""
    break_after: bool = False
    #: spectra: id of the crystal drawn (shown in the HTML caption, escaped)
    crystal: str | None = None


@dataclass
class RunView:
    index: int
    anchor: str
    path: str
    result: dict
    run_id: str
    display_name: str
    model_name: str
    task_name: str
    task_type: str
    unit: str | None
    status: str
    status_label: str
    status_class: str
    meta: list[tuple[str, str]] = field(default_factory=list)
    dataset: list[tuple[str, str]] = field(default_factory=list)
    hyperparameters: list[tuple[str, str, str | None]] = field(default_factory=list)
    hyper_profile: str | None = None
    environment: list[tuple[str, str]] = field(default_factory=list)
    packages: list[tuple[str, str]] = field(default_factory=list)
    model_stats: list[tuple[str, str]] = field(default_factory=list)
    phase_table: dict | None = None
    unavailable: list[tuple[str, list[str]]] = field(default_factory=list)
    error: dict | None = None
    schema_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confusion: dict | None = None
    figures: list[Figure] = field(default_factory=list)
    generation: dict | None = None
    spectra: dict | None = None


@dataclass
class Unreadable:
    path: str
    error: str


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _schema_validator():
    """A jsonschema validator for result.json, or ``None`` when jsonschema/the schema is absent."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is a dependency
        return None
    candidates = [Path(__file__).resolve().parents[2] / "runner" / "schemas" / "result.schema.json"]
    try:
        from importlib import resources

        candidates.append(Path(str(resources.files("runner") / "schemas" / "result.schema.json")))
    except Exception:  # noqa: BLE001 - runner not importable: only the repo path is tried
        pass
    for path in candidates:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cls = jsonschema.validators.validator_for(schema)
        return cls(schema)
    return None


def _schema_errors(result: dict) -> list[str]:
    validator = _schema_validator()
    if validator is None:
        return []
    out = []
    for err in sorted(validator.iter_errors(result), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        msg = err.message if len(err.message) <= 300 else err.message[:299] + "…"
        out.append(f"{where}: {msg}")
        if len(out) > _MAX_SCHEMA_ERRORS:
            break
    return out


def _load_result(run_dir: Path) -> tuple[dict | None, str | None]:
    path = run_dir / "result.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "result.json not found"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read result.json: {type(exc).__name__}: {exc}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"result.json is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"result.json holds a JSON {type(data).__name__}, expected an object"
    return data, None


def _run_file(run_dir: Path, result: dict, key: str, default: str) -> Path:
    """Path of a run file named in ``result['files']``, kept inside the run directory."""
    name = _dig(result, "files", key)
    if isinstance(name, str) and name:
        candidate = (run_dir / name).resolve()
        try:
            candidate.relative_to(run_dir.resolve())
            return candidate
        except ValueError:
            pass
    return run_dir / default


# ----------------------------------------------------------------------------------------------
# comparison table
# ----------------------------------------------------------------------------------------------

# (row label, metric key without "gpu:N/" prefix, family, aggregation over GPUs, formatter)
RESOURCE_ROWS: Sequence[tuple[str, str, str, str, Callable[[float], str]]] = (
    ("Duration (s)", "duration (s)", "time", "", _format_fixed(1)),
    ("GPU utilization (%)", "gpu_utilization (%)/mean", "gpu", "mean", _format_fixed(1)),
    ("GPU memory utilization (%)", "memory_utilization (%)/mean", "gpu", "mean", _format_fixed(1)),
    ("GPU memory used (%)", "memory_percent (%)/mean", "gpu", "mean", _format_fixed(1)),
    ("GPU power (W)", "power_usage (W)/mean", "gpu", "sum", _format_fixed(1)),
    ("GPU energy (J)", "energy (J)", "gpu", "sum", _format_fixed(0)),
    ("Host CPU (%)", "host/cpu_percent (%)/mean", "host", "", _format_fixed(1)),
    ("Host memory (%)", "host/memory_percent (%)/mean", "host", "", _format_fixed(1)),
)

_GPU_KEY = re.compile(r"^gpu:(\d+)/(.+)$")
_GPU_WORDS = {"gpu", "gpus", "gpu:*", "nvml", "cuda", "nvidia"}


def _unavailable_reason(result: dict, keys: Sequence[str], family: str) -> str | None:
    """Reason from ``resources.unavailable`` for the first entry that covers one of ``keys``."""
    for entry in _as_list(_dig(result, "resources", "unavailable")):
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
        bare_metric = _GPU_KEY.sub(r"\2", metric)
        for key in keys:
            bare_key = _GPU_KEY.sub(r"\2", key)
            if (key == metric or key.startswith(metric) or fnmatch.fnmatchcase(key, metric)
                    or fnmatch.fnmatchcase(key, metric + "*")
                    or (bare_metric and bare_key.startswith(bare_metric))):
                return reason
    return None


def _status_cell(run: RunView, what: str) -> Cell:
    err = run.error or {}
    detail = ""
    if err.get("type") or err.get("message"):
        detail = f": {err.get('type') or 'error'}: {str(err.get('message') or '')[:200]}"
    return Cell(run.status_label, f"{what} not available, run ended with status {run.status}{detail}",
                f"status-cell st-{run.status_class}")


def resource_value(result: Mapping, key: str, family: str, agg: str) -> tuple[float | None, list[int]]:
    """One resource figure of a run from ``resources.overall``, as in the comparison table.

    ``key``, ``family`` and ``agg`` are the fields of a :data:`RESOURCE_ROWS` entry. For the GPU
    family the ``gpu:<N>/<key>`` values of every device are combined (``agg`` ``"mean"``: their
    mean, else their sum). Returns ``(value or None, indices of the GPUs used)``; never raises.
    """
    overall = _as_dict(_dig(result, "resources", "overall"))
    if family == "gpu":
        found = sorted(
            (int(m.group(1)), v)
            for k, v in overall.items()
            if (m := _GPU_KEY.match(k)) and m.group(2) == key and _is_num(v)
        )
        if not found:
            return None, []
        vals = [v for _, v in found]
        return (sum(vals) / len(vals) if agg == "mean" else sum(vals)), [i for i, _ in found]
    value = overall.get(key)
    return (value if _is_num(value) else None), []


def resource_keys(key: str, family: str, gpus: Sequence[int] = ()) -> list[str]:
    """The ``resources.overall`` keys of a :data:`RESOURCE_ROWS` entry (for ``resources.unavailable``)."""
    if family == "gpu":
        return [f"gpu:{i}/{key}" for i in gpus] or [f"gpu:0/{key}"]
    return [key]


def _resource_cell(run: RunView, key: str, family: str, agg: str, fmt: Callable[[float], str]) -> Cell:
    phases = _as_dict(_dig(run.result, "resources", "phases"))
    value, gpus = resource_value(run.result, key, family, agg)
    keys = resource_keys(key, family, gpus)
    if family == "gpu":
        if value is not None:
            title = f"{value!r}"
            if len(gpus) > 1:
                title += f" ({'mean' if agg == 'mean' else 'sum'} over GPUs {', '.join(str(i) for i in gpus)})"
            return Cell(fmt(value), title, "num")
    else:
        if value is not None:
            title = repr(value)
            if key == "duration (s)":
                parts = [f"{name}: {_format_fixed(1)(_dig(block, key))} s"
                         for name, block in phases.items() if _is_num(_dig(block, key))]
                if parts:
                    title = " · ".join(parts)
            return Cell(fmt(value), title, "num")
    reason = _unavailable_reason(run.result, keys, family)
    if reason:
        return Cell("n/a", reason, "na")
    if run.status != "ok":
        return _status_cell(run, "value")
    if family == "gpu":
        return Cell("n/a", "no GPU metric recorded for this run (no GPU or telemetry off)", "na")
    return Cell("n/a", f"'{key}' not recorded in result.json", "na")


def _model_rows(runs: Sequence[RunView]) -> list[Row]:
    rows: list[Row] = []

    def stat_cell(run: RunView, value: Any, fmt: Callable[[float], str], exact: str, missing: str | None) -> Cell:
        if _is_num(value):
            return Cell(fmt(value), exact.format(value), "num")
        if missing is None and run.status != "ok":
            return _status_cell(run, "value")
        return Cell("n/a", missing or "not counted", "na")

    def stats_error(run: RunView, sub: str | None = None) -> str | None:
        ms = _as_dict(run.result.get("model_stats"))
        if sub:
            err = _dig(ms, sub, "error")
            if err:
                return f"not counted: {err}"
        if ms.get("error"):
            return f"not counted: {ms['error']}"
        return None

    rows.append(Row("Params", [
        stat_cell(r, _dig(r.result, "model_stats", "params"), format_count, "{:,} parameters",
                  stats_error(r)) for r in runs]))
    rows.append(Row("Forward FLOPs / sample", [
        stat_cell(r, _dig(r.result, "model_stats", "flops", "forward_per_sample"), format_flops,
                  "{:,} FLOP per sample (forward)", stats_error(r, "flops")) for r in runs]))
    rows.append(Row("Training FLOPs / epoch", [
        stat_cell(r, _dig(r.result, "model_stats", "flops", "train_per_epoch"), format_flops,
                  "{:,} FLOP per training epoch (forward + backward)", stats_error(r, "flops"))
        for r in runs]))
    return rows


def _unit_suffix(unit: str | None, power: int) -> str | None:
    if not unit:
        return None
    if power == 1:
        return unit
    needs_parens = bool(re.search(r"[\s/*·]", unit))
    return f"({unit})²" if needs_parens else f"{unit}²"


#: Units of the spectrum metrics that have their own (not the target's).
SPECTRA_UNITS = {"Wasserstein": "cm⁻¹", "Cv_300K_MAE": "J/(K·mol)"}


def metric_presentation(task_type: str | None, name: str, unit: str | None) -> tuple[str, str, Callable[[float], str]]:
    """(label, unit, formatter) of metric ``name`` of a ``task_type`` task whose target is in ``unit``.

    Spectrum metrics: :data:`SPECTRA_LABELS` (which hold their units) and :data:`SPECTRA_UNITS`.
    Generation metrics: CDVAE's labels (:data:`GENERATION_LABELS`), shares formatted as percent.
    Other metrics: MAE, RMSE and MaxError in the target's unit, MSE in its square, e.g.
    ``("MSE (eV/atom)²", "(eV/atom)²", format_metric)``; ``unit`` is ``""`` when dimensionless.
    """
    if task_type == "spectra":
        return SPECTRA_LABELS.get(name, name), SPECTRA_UNITS.get(name, ""), format_metric
    if task_type == "generation" or name in GENERATION_METRICS:
        fmt = format_percent if name in _PERCENT_METRICS else format_metric
        return GENERATION_LABELS.get(name, name), "g/cm³" if name == "EMD_density" else "", fmt
    power = _UNIT_METRICS.get(name, 0)
    suffix = _unit_suffix(unit, power) if power else None
    if not suffix:
        return name, "", format_metric
    return (f"{name} {suffix}" if suffix.startswith("(") else f"{name} ({suffix})"), suffix, format_metric


def _metric_names(runs: Sequence[RunView]) -> list[str]:
    names: list[str] = []
    for r in runs:
        for k in _as_dict(r.result.get("metrics")):
            if k not in names:
                names.append(k)
    return names


def _definition(runs: Sequence[RunView], name: str) -> str | None:
    """Tooltip of a generation metric row: the definition(s) stored in the results, else ours."""
    key = _DEFINITION_KEYS.get(name)
    found: list[str] = []
    if key:
        for r in runs:
            text = _dig(r.result, "metric_details", "definition", key)
            if isinstance(text, str) and text.strip() and text.strip() not in found:
                found.append(text.strip())
    if found:
        return " | ".join(_short_json(t, 600) for t in found)
    return _FIXED_DEFINITIONS.get(name)


_TASK_METRICS = {"regression": REGRESSION_METRICS, "classification": CLASSIFICATION_METRICS,
                 "generation": GENERATION_METRICS, "spectra": SPECTRA_METRICS}


def _other_task_metric(run: RunView, name: str) -> bool:
    """True when ``name`` is a standard metric of another task type than the run's."""
    own = _TASK_METRICS.get(run.task_type)
    return own is not None and name not in own and any(name in m for m in _TASK_METRICS.values())


def _spectra_definition(runs: Sequence[RunView], name: str) -> str | None:
    """Tooltip of a spectrum metric row: the definition(s) stored in the spectra results, else ours."""
    found: list[str] = []
    for r in runs:
        if r.task_type != "spectra":
            continue
        text = _dig(r.result, "metric_details", "definition", name)
        if isinstance(text, str) and text.strip() and text.strip() not in found:
            found.append(text.strip())
    if found:
        return " | ".join(_short_json(t, 600) for t in found)
    return _SPECTRA_DEFINITIONS.get(name)


def _metric_rows(runs: Sequence[RunView], names: Sequence[str], spectra: bool = False) -> list[Row]:
    """Rows of metric ``names``. With ``spectra`` the rows are the spectrum metrics (only spectra runs
    have values); without it spectra runs are left out (their MAE is not a regression MAE)."""
    def foreign(r: RunView) -> bool:
        return (r.task_type == "spectra") != spectra

    rows = []
    for name in names:
        power = 0 if spectra else _UNIT_METRICS.get(name, 0)
        units = {_unit_suffix(r.unit, power) for r in runs
                 if not foreign(r) and name in _as_dict(r.result.get("metrics"))}
        shared_unit = units.pop() if len(units) == 1 else None
        per_cell_units = power > 0 and shared_unit is None
        label = SPECTRA_LABELS.get(name, name) if spectra else GENERATION_LABELS.get(name, name)
        if power and shared_unit:
            label = f"{name} {shared_unit}" if shared_unit.startswith("(") else f"{name} ({shared_unit})"
        fmt = format_percent if name in _PERCENT_METRICS and not spectra else format_metric
        cells = []
        for r in runs:
            metrics = _as_dict(r.result.get("metrics"))
            value = metrics.get(name)
            if foreign(r):
                see = " (see the spectrum metrics)" if r.task_type == "spectra" else ""
                cells.append(Cell("—", f"{label} is not reported for {r.task_type or 'this'} tasks{see}", "dim"))
            elif _is_num(value):
                text = fmt(value)
                unit = _unit_suffix(r.unit, power) if per_cell_units else None
                cells.append(Cell(f"{text} {unit}" if unit else text, repr(value), "num"))
            elif r.status != "ok" and not _other_task_metric(r, name):
                cells.append(_status_cell(r, label))
            elif name in metrics:
                cells.append(Cell("n/a", f"{label} could not be computed for this run (stored as null)", "na"))
            elif ((r.task_type == "generation" and name in GENERATION_METRICS)
                  or (r.task_type == "spectra" and name in SPECTRA_METRICS)):
                cells.append(Cell("n/a", f"{label} not recorded in result.json", "na"))
            else:
                cells.append(Cell("—", f"{label} is not reported for {r.task_type or 'this'} tasks", "dim"))
        if spectra:
            title = _spectra_definition(runs, name)
        else:
            title = _definition(runs, name) if name in GENERATION_METRICS else None
        rows.append(Row(label, cells, title))
    return rows


def _comparison(runs: Sequence[RunView]) -> list[RowGroup]:
    resources = [Row(label, [_resource_cell(r, key, fam, agg, fmt) for r in runs])
                 for label, key, fam, agg, fmt in RESOURCE_ROWS]
    groups = [RowGroup("Resources", resources), RowGroup("Model", _model_rows(runs))]
    spectra_runs = [r for r in runs if r.task_type == "spectra"]
    names = _metric_names([r for r in runs if r.task_type != "spectra"])
    known = [m for m in REGRESSION_METRICS + CLASSIFICATION_METRICS if m in names]
    other = known + sorted(n for n in names if n not in known and n not in GENERATION_METRICS)
    if other:
        groups.append(RowGroup("Metrics (test set)", _metric_rows(runs, other)))
    if spectra_runs:
        extra = sorted(n for n in _metric_names(spectra_runs) if n not in SPECTRA_METRICS)
        groups.append(RowGroup("Spectrum metrics (test set)",
                               _metric_rows(runs, [*SPECTRA_METRICS, *extra], spectra=True)))
    if any(r.task_type == "generation" for r in runs) or any(n in GENERATION_METRICS for n in names):
        generation = [m for m in GENERATION_METRICS
                      if m in names or any(r.task_type == "generation" for r in runs)]
        groups.append(RowGroup("Generation metrics (reference: test split)", _metric_rows(runs, generation)))
    return groups


# ----------------------------------------------------------------------------------------------
# per-run sections
# ----------------------------------------------------------------------------------------------


def _gpu_summary(g: Any) -> str:
    if isinstance(g, Mapping):
        name = g.get("name") or g.get("model") or "GPU"
        mem = g.get("memory_total_mib") or g.get("memory_mib") or g.get("memory_total")
        idx = g.get("index")
        s = f"{idx}: {name}" if idx is not None else str(name)
        if _is_num(mem):
            s += f" ({format_count(mem)}iB)" if mem >= 1024 else f" ({mem} MiB)"
        elif mem:
            s += f" ({mem})"
        return s
    return _short_json(g)


def _describe(run_dir: Path, index: int, result: dict) -> RunView:
    model = _as_dict(result.get("model"))
    task = _as_dict(result.get("task"))
    status = str(result.get("status") or "unknown")
    status_class = _STATUS_CLASSES.get(status, "unknown")
    run_id = str(result.get("run_id") or run_dir.name)
    unit = task.get("unit") if isinstance(task.get("unit"), str) else None
    run = RunView(
        index=index,
        anchor=f"run-{index}",
        path=str(run_dir),
        result=result,
        run_id=run_id,
        display_name=str(model.get("display_name") or model.get("name") or run_id),
        model_name=str(model.get("name") or ""),
        task_name=str(task.get("name") or ""),
        task_type=str(result.get("task_type") or ""),
        unit=unit,
        status=status,
        status_label=status.upper(),
        status_class=status_class,
    )
    run.error = _normalise_error(result.get("error"))
    run.schema_errors = _schema_errors(result)
    run.notes = [str(n) for n in _as_list(result.get("notes"))]

    # --- metadata -------------------------------------------------------------------------
    meta = [("Run id", run_id), ("Directory", str(run_dir)),
            ("Model", f"{run.display_name} ({run.model_name})" if run.model_name else run.display_name)]
    if model.get("entry_point"):
        meta.append(("Entry point", str(model["entry_point"])))
    paper = model.get("paper")
    if isinstance(paper, Mapping) and paper:
        meta.append(("Paper", " · ".join(f"{k}: {_short_json(v)}" for k, v in paper.items())))
    task_txt = run.task_name
    if task.get("target"):
        task_txt += f" — target {task['target']}"
    if unit:
        task_txt += f" [{unit}]"
    if run.task_type:
        task_txt += f" ({run.task_type})"
    meta.append(("Task", task_txt))
    if task.get("positive_class"):
        meta.append(("Positive class", str(task["positive_class"])))
    for label, key in (("Seed", "seed"), ("Backend", "backend"), ("Started", "started_at"),
                       ("Finished", "finished_at")):
        if result.get(key) is not None:
            meta.append((label, _short_json(result[key])))
    interval = _dig(result, "resources", "sampling_interval_s")
    if _is_num(interval):
        meta.append(("Telemetry interval", f"{interval:g} s"))
    run.meta = meta

    dataset = _as_dict(result.get("dataset"))
    ds = []
    for label, key in (("Name", "name"), ("Variant", "variant"), ("Split", "split"), ("Path", "path")):
        if dataset.get(key) not in (None, ""):
            ds.append((label, _short_json(dataset[key])))
    sizes = _as_dict(dataset.get("sizes"))
    if sizes:
        ds.append(("Sizes", ", ".join(f"{k} {v:,}" if _is_num(v) else f"{k} {v}" for k, v in sizes.items())))
    if dataset.get("class_balance"):
        ds.append(("Class balance", _short_json(dataset["class_balance"])))
    sha = _as_dict(dataset.get("sha256"))
    if sha:
        ds.append(("SHA-256", ", ".join(f"{k} {str(v)[:12]}…" for k, v in sha.items())))
    run.dataset = ds

    hp = _as_dict(result.get("hyperparameters"))
    effective = _as_dict(hp.get("effective"))
    overridden = _as_dict(hp.get("overridden"))
    run.hyper_profile = str(hp["profile"]) if hp.get("profile") else None
    rows = []
    for name, value in effective.items():
        ov = overridden.get(name)
        paper_val = None
        if isinstance(ov, Mapping) and "paper" in ov:
            paper_val = _short_json(ov.get("paper"))
        elif ov is not None:
            paper_val = _short_json(ov)
        rows.append((str(name), _short_json(value), paper_val))
    for name, ov in overridden.items():  # overrides of names missing from effective
        if name not in effective:
            used = ov.get("used") if isinstance(ov, Mapping) else None
            paper_val = ov.get("paper") if isinstance(ov, Mapping) else ov
            rows.append((str(name), _short_json(used), _short_json(paper_val)))
    run.hyperparameters = rows

    env = _as_dict(result.get("environment"))
    envrows = []
    for label, key in (("Python", "python"), ("Platform", "platform"), ("CPU", "cpu"),
                       ("CPU cores", "cpu_count"), ("Torch device", "torch_device"),
                       ("GPU driver", "gpu_driver"), ("Host", "hostname"),
                       ("mateval commit", "mateval_git_sha")):
        if env.get(key) not in (None, ""):
            envrows.append((label, _short_json(env[key])))
    gpus = _as_list(env.get("gpus"))
    if gpus:
        envrows.insert(5, ("GPUs", "; ".join(_gpu_summary(g) for g in gpus)))
    run.environment = envrows
    run.packages = [(str(k), "n/a" if v is None else str(v)) for k, v in _as_dict(env.get("packages")).items()]

    # --- model statistics -----------------------------------------------------------------
    ms = _as_dict(result.get("model_stats"))
    stats = []
    if _is_num(ms.get("params")):
        stats.append(("Parameters", f"{format_count(ms['params'])} ({ms['params']:,})"))
    if _is_num(ms.get("trainable_params")):
        stats.append(("Trainable parameters", f"{format_count(ms['trainable_params'])} ({ms['trainable_params']:,})"))
    flops = _as_dict(ms.get("flops"))
    for label, key in (("Forward FLOPs / sample", "forward_per_sample"),
                       ("Forward FLOPs / epoch", "forward_per_epoch"),
                       ("Training FLOPs / epoch", "train_per_epoch")):
        if _is_num(flops.get(key)):
            stats.append((label, format_flops(flops[key])))
    for label, key in (("FLOP counting method", "method"), ("Probe batch size", "probe_batch_size"),
                       ("FLOP counting error", "error")):
        if flops.get(key) not in (None, ""):
            stats.append((label, _short_json(flops[key])))
    thop = _as_dict(ms.get("thop"))
    if _is_num(thop.get("macs_per_sample")):
        stats.append(("thop MACs / sample", format_count(thop["macs_per_sample"]) + "MAC"))
    if thop.get("note"):
        stats.append(("thop note", _short_json(thop["note"])))
    if thop.get("error"):
        stats.append(("thop error", _short_json(thop["error"])))
    if ms.get("error"):
        stats.append(("Counting error", _short_json(ms["error"])))
    run.model_stats = stats

    # --- resources per phase --------------------------------------------------------------
    overall = _as_dict(_dig(result, "resources", "overall"))
    phases = {str(k): _as_dict(v) for k, v in _as_dict(_dig(result, "resources", "phases")).items()}
    columns = [("overall", overall)] + list(phases.items())
    prow = []
    for label, key, family, agg, fmt in RESOURCE_ROWS:
        cells = []
        for _, block in columns:
            if family == "gpu":
                vals = [v for k, v in block.items() if (m := _GPU_KEY.match(k)) and m.group(2) == key and _is_num(v)]
                v = (sum(vals) / len(vals) if agg == "mean" else sum(vals)) if vals else None
            else:
                v = block.get(key)
            cells.append(fmt(v) if _is_num(v) else "—")
        if any(c != "—" for c in cells):
            prow.append((label, cells))
    if prow:
        run.phase_table = {"columns": [c for c, _ in columns], "rows": prow}
    by_reason: dict[str, list[str]] = {}
    for e in _as_list(_dig(result, "resources", "unavailable")):
        if isinstance(e, Mapping):
            by_reason.setdefault(str(e.get("reason") or "unavailable"), []).append(str(e.get("metric") or "?"))
    run.unavailable = [(reason, metrics) for reason, metrics in by_reason.items()]

    # --- error ----------------------------------------------------------------------------
    if run.status != "ok" and (run.error is None or not run.error["log_tail"]):
        tail = _log_tail(_run_file(run_dir, result, "log", "run.log"))
        if tail:
            run.error = run.error or _normalise_error({})
            run.error.update(log_tail=tail, log_tail_from_file=True)

    # --- classification details -----------------------------------------------------------
    cm = _dig(result, "metric_details", "confusion_matrix")
    if cm is not None:
        run.confusion = _confusion(cm)

    run.figures = _figures(run_dir, result, run)
    if run.task_type == "generation":
        run.generation = _generation_view(run_dir, result, run)
    return run


def _normalise_error(err: Any) -> dict | None:
    """The ``error`` block with every key the template reads (strings or ``None``)."""
    if err is None:
        return None
    if not isinstance(err, Mapping):
        err = {"type": "error", "message": _short_json(err, 2000)}

    def text(key: str) -> str | None:
        v = err.get(key)
        return None if v is None or v == "" else (v if isinstance(v, str) else _short_json(v, 20000))

    return {"type": text("type"), "message": text("message") or "", "phase": text("phase"),
            "traceback": text("traceback"), "log_tail": text("log_tail"), "log_tail_from_file": False}


def _log_tail(path: Path) -> str | None:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()[-_LOG_TAIL_LINES:]
    except OSError:
        return None
    return "".join(lines).rstrip() or None


def _confusion(cm: Any) -> dict:
    """Normalise a confusion matrix to ``{"grid": [[tn, fp], [fn, tp]]}`` or ``{"text": ...}``."""
    if isinstance(cm, Mapping):
        low = {str(k).lower(): v for k, v in cm.items()}
        if all(k in low for k in ("tn", "fp", "fn", "tp")):
            return {"grid": [[_short_json(low["tn"]), _short_json(low["fp"])],
                             [_short_json(low["fn"]), _short_json(low["tp"])]], "text": None}
        mat = low.get("matrix")
        if isinstance(mat, list) and len(mat) == 2 and all(isinstance(r, list) and len(r) == 2 for r in mat):
            return {"grid": [[_short_json(v) for v in r] for r in mat], "text": None}
    if isinstance(cm, list) and len(cm) == 2 and all(isinstance(r, list) and len(r) == 2 for r in cm):
        return {"grid": [[_short_json(v) for v in r] for r in cm], "text": None}
    return {"grid": None, "text": _short_json(cm, 1000)}


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------


def _safe_plot(fig: Figure, make: Callable[[], str | None], empty_note: str) -> Figure:
    try:
        svg = make()
    except Exception as exc:  # noqa: BLE001 - a broken figure must not break the report
        fig.note = f"Figure could not be drawn: {type(exc).__name__}: {exc}"
        return fig
    if svg is None:
        fig.note = empty_note
    else:
        fig.svg = svg
    return fig


def _read_csv(path: Path, required: Sequence[str], dtype: Mapping[str, Any] | None = None):
    """``(frame, None)`` or ``(None, note)`` for a CSV that must contain ``required`` columns."""
    import pandas as pd

    if not path.is_file():
        return None, f"{path.name} not found — figure skipped."
    try:
        frame = pd.read_csv(path, dtype=dtype) if dtype else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        return None, f"{path.name} could not be read ({type(exc).__name__}: {exc}) — figure skipped."
    missing = [c for c in required if c not in frame.columns]
    if missing:
        return None, f"{path.name} lacks column(s) {', '.join(missing)} — figure skipped."
    if frame.empty:
        return None, f"{path.name} has no rows — figure skipped."
    return frame, None


def _figures(run_dir: Path, result: dict, run: RunView) -> list[Figure]:
    figs: list[Figure] = []

    # resource time series
    default_phases = ("setup", "train", "generate") if run.task_type == "generation" else ("setup", "train", "predict")
    fig = Figure("timeseries", "Resource usage over time")
    frame, note = _read_csv(_run_file(run_dir, result, "timeseries", "timeseries.csv"), [])
    phase_names = list(default_phases)
    if frame is not None and "phase" in frame.columns:
        present = {str(p) for p in frame["phase"].dropna().unique()}
        phase_names = [p for p in plots.KNOWN_PHASES if p in present] or phase_names
    fig.caption = ("Host CPU/memory and GPU series present in timeseries.csv; shaded bands and dotted lines mark "
                   f"the phases ({', '.join(phase_names)}); GPU power, if recorded, on the right axis.")
    if frame is None:
        fig.note = note
    else:
        if "elapsed (s)" not in frame.columns and "timestamp" not in frame.columns:
            fig.note = "timeseries.csv has neither an 'elapsed (s)' nor a 'timestamp' column — figure skipped."
        else:
            _safe_plot(fig, lambda: plots.timeseries_svg(frame),
                       "timeseries.csv has no host or GPU metric column with data — figure skipped.")
            if fig.svg and len(frame) > plots.MAX_LINE_POINTS:
                fig.caption += f" {len(frame):,} samples, drawn decimated to {plots.MAX_LINE_POINTS}."
    figs.append(fig)

    # loss curves
    history = [h for h in _as_list(result.get("history")) if isinstance(h, Mapping)]
    loss_names = sorted({str(h["loss_name"]) for h in history if h.get("loss_name")})
    fig = Figure("loss", "Loss curves",
                 caption=f"Loss per epoch ({', '.join(loss_names)})." if loss_names else "Loss per epoch.")
    if not history:
        fig.note = "No training history recorded."
    else:
        _safe_plot(fig, lambda: plots.loss_curves_svg([h.get("epoch") for h in history],
                                                      [h.get("train_loss") for h in history],
                                                      [h.get("val_loss") for h in history]),
                   "The history has no finite loss values.")
    figs.append(fig)

    # task figure
    pred_path = _run_file(run_dir, result, "predictions", "predictions.csv")
    metrics = _as_dict(result.get("metrics"))
    if run.task_type == "classification":
        figs.append(_roc_figure(pred_path, result, metrics))
    elif run.task_type == "generation":
        figs.extend(_generation_figures(run_dir, result, metrics))
    elif run.task_type == "spectra":
        spectra_figs, run.spectra = _spectra_section(pred_path, result, run)
        # the spectra on their own row under the resource plot, then loss, histogram and C_V parity
        trio = [f for f in spectra_figs if f.key.startswith("spectr")]
        figs = figs[:1] + trio + figs[1:] + [f for f in spectra_figs if f not in trio]
    else:
        unit = f" [{run.unit}]" if run.unit else ""
        fig = Figure("parity", "Parity plot (test set)",
                     caption=f"Prediction against target{unit}; the red line is y = x.")
        frame, note = _read_csv(pred_path, ["target", "prediction"])
        if frame is None:
            fig.note = note
        else:
            mae = metrics.get("MAE")
            _safe_plot(fig, lambda: plots.parity_svg(frame["target"].tolist(), frame["prediction"].tolist(),
                                                     mae if _is_num(mae) else None),
                       "predictions.csv has no finite target/prediction pairs — figure skipped.")
        figs.append(fig)
    return figs


def _roc_figure(pred_path: Path, result: dict, metrics: Mapping) -> Figure:
    import pandas as pd

    details = _as_dict(result.get("metric_details"))
    thr = details.get("threshold")
    thr = float(thr) if _is_num(thr) else None
    fig = Figure("roc", "ROC curve (test set)",
                 caption="ROC of the positive-class score; the red dot is the decision threshold"
                         + (f" ({thr:g})" if thr is not None else "") + ".")
    frame, note = _read_csv(pred_path, ["target", "score"])
    labels = scores = None
    if frame is not None:
        labels = pd.to_numeric(frame["target"], errors="coerce").tolist()
        scores = pd.to_numeric(frame["score"], errors="coerce").tolist()

    curve = details.get("roc_curve")
    fpr = plots.mapping_floats(curve, "fpr")
    tpr = plots.mapping_floats(curve, "tpr")
    auc = metrics.get("ROC-AUC")
    auc = float(auc) if _is_num(auc) else None
    if len(fpr) < 2 or len(fpr) != len(tpr):
        fpr = tpr = []
        if labels is not None:
            computed = plots.roc_from_scores(labels, scores)
            if computed is not None:
                fpr, tpr, auc_c = computed
                auc = auc if auc is not None else auc_c
    if len(fpr) < 2:
        fig.note = ("No ROC curve: " + (note or "metric_details.roc_curve is null and the predictions "
                                             "contain a single class") + "")
        return fig

    point = None
    if thr is not None:
        if labels is not None:
            point = plots.operating_point(labels, scores, thr)
        if point is None:
            ths = plots.mapping_floats(curve, "thresholds")
            if ths:
                point = plots.operating_point_from_curve(fpr, tpr, ths, thr)
    _safe_plot(fig, lambda: plots.roc_svg(fpr, tpr, auc, point, thr), "ROC curve has no finite points.")
    return fig


# ----------------------------------------------------------------------------------------------
# spectra runs
# ----------------------------------------------------------------------------------------------

_SPECTRA_COLUMNS = ("id", "frequency", "target", "prediction")
_CM1_UNITS = {"cm^-1", "cm-1", "1/cm", "cm⁻¹", "cm**-1", "cm^{-1}"}
#: Spectra of at most this many crystals are read from predictions.csv (bounds time and memory).
MAX_SPECTRA_CRYSTALS = 200_000


@dataclass
class _Spectra:
    """Long-format predictions.csv grouped by crystal, in the order of first appearance."""

    ids: list[str]
    frequency: list[Any]
    target: list[Any]
    prediction: list[Any]
    mse: list[float]  # recomputed from the file; NaN where no finite pair


def _load_spectra(path: Path) -> tuple[_Spectra | None, str | None]:
    import numpy as np
    import pandas as pd

    frame, note = _read_csv(path, _SPECTRA_COLUMNS, dtype={"id": str})
    if frame is None:
        return None, note
    freq = pd.to_numeric(frame["frequency"], errors="coerce")
    keep = freq.notna() & frame["id"].notna()
    if not keep.any():
        return None, f"{path.name} has no row with a crystal id and a numeric frequency — figure skipped."
    sub = pd.DataFrame({"id": frame.loc[keep, "id"].astype(str), "f": freq[keep],
                        "t": pd.to_numeric(frame.loc[keep, "target"], errors="coerce"),
                        "p": pd.to_numeric(frame.loc[keep, "prediction"], errors="coerce")})
    if sub["id"].nunique() > MAX_SPECTRA_CRYSTALS:
        return None, f"{path.name} holds more than {MAX_SPECTRA_CRYSTALS:,} crystals — figure skipped."
    out = _Spectra([], [], [], [], [])
    for cid, g in sub.groupby("id", sort=False):
        g = g.sort_values("f", kind="stable")
        t, p = g["t"].to_numpy(dtype=float), g["p"].to_numpy(dtype=float)
        both = np.isfinite(t) & np.isfinite(p)
        out.ids.append(str(cid))
        out.frequency.append(g["f"].to_numpy(dtype=float))
        out.target.append(t)
        out.prediction.append(p)
        out.mse.append(float(np.mean((p[both] - t[both]) ** 2)) if both.any() else math.nan)
    return out, None


def _aligned(details: Mapping, key: str, n: int | None) -> list[float | None] | None:
    """``metric_details.per_crystal[key]`` as floats/None, or ``None`` if absent or of another length."""
    values = _dig(details, "per_crystal", key)
    if not isinstance(values, list) or (n is not None and len(values) != n):
        return None
    return [float(v) if _is_num(v) else None for v in values]


def _rank_picks(mse: Sequence[float]) -> list[tuple[str, int]]:
    """``[(which, index)]``: best, median and worst crystal by MSE (fewer when < 3 are finite)."""
    order = sorted((i for i, v in enumerate(mse) if _is_num(v)), key=lambda i: (mse[i], i))
    if not order:
        return []
    if len(order) == 1:
        return [("only", order[0])]
    if len(order) == 2:
        return [("best", order[0]), ("worst", order[1])]
    return [("best", order[0]), ("median", order[(len(order) - 1) // 2]), ("worst", order[-1])]


_PICK_HEADINGS = {"best": "Best test crystal (lowest MSE)", "median": "Median test crystal (by MSE)",
                  "worst": "Worst test crystal (highest MSE)", "only": "The only test crystal with an MSE"}


def _spectra_section(pred_path: Path, result: dict, run: RunView) -> tuple[list[Figure], dict]:
    """Figures and facts of a spectra run: best/median/worst spectra, MSE histogram, C_V parity."""
    details = _as_dict(result.get("metric_details"))
    metrics = _as_dict(result.get("metrics"))
    spectra, note = _load_spectra(pred_path)
    n = len(spectra.ids) if spectra is not None else None
    grid_unit = details.get("grid_unit")
    cm1 = grid_unit is None or str(grid_unit).strip() in _CM1_UNITS
    xlabel = "frequency (cm⁻¹)" if cm1 else "frequency"
    unit_txt = "cm⁻¹" if cm1 else str(grid_unit)
    temp = details.get("temperature_K")
    temp_txt = f"{temp:g} K" if _is_num(temp) else "300 K"

    # per-crystal MSE: as reported (aligned with the crystals of predictions.csv), else recomputed
    mse: list[float] = []
    source = None
    stored = _aligned(details, "MSE", n)
    raw = _dig(details, "per_crystal", "MSE")
    if spectra is not None:
        if stored is not None:
            mse = [v if v is not None else r for v, r in zip(stored, spectra.mse)]
            filled = sum(v is None and _is_num(r) for v, r in zip(stored, spectra.mse))
            source = "as reported in metric_details.per_crystal.MSE"
            if filled:
                source += f"; {filled} null value(s) recomputed from {pred_path.name}"
        else:
            mse = list(spectra.mse)
            source = f"recomputed from {pred_path.name}"
            if isinstance(raw, list):
                source += (f" (metric_details.per_crystal.MSE has {len(raw):,} entries for {n:,} crystals: "
                           "not aligned)")
    elif stored is not None:
        mse = [v if v is not None else math.nan for v in stored]
        source = f"as reported in metric_details.per_crystal.MSE ({pred_path.name} unusable)"
    picks = _rank_picks(mse)
    wass = _aligned(details, "Wasserstein", n)

    figs: list[Figure] = []
    if spectra is None:
        figs.append(Figure("spectra", "Predicted vs true spectra (test set)", note=note, break_after=True))
    elif not picks:
        figs.append(Figure("spectra", "Predicted vs true spectra (test set)", break_after=True,
                           note=f"{pred_path.name} has no crystal with finite target and prediction values "
                                "— figure skipped."))
    else:
        finite = sum(_is_num(v) for v in mse)
        for k, (which, i) in enumerate(picks):
            fig = Figure(f"spectrum-{which}", _PICK_HEADINGS[which], size="small", crystal=spectra.ids[i],
                         break_after=k == len(picks) - 1)
            caption = f"MSE = {format_metric(mse[i])}"
            if wass is not None and wass[i] is not None:
                caption += f" · Wasserstein = {format_metric(wass[i])} {unit_txt}"
            rank = sorted(v for v in mse if _is_num(v)).index(mse[i]) + 1 if which != "only" else 1
            caption += f" (rank {rank:,} of {finite:,} by MSE; {spectra.frequency[i].size} grid points)"
            fig.caption = caption
            _safe_plot(fig, lambda i=i: plots.spectrum_svg(spectra.frequency[i], spectra.target[i],
                                                           spectra.prediction[i], xlabel=xlabel),
                       f"Crystal has fewer than two finite points in {pred_path.name} — figure skipped.")
            figs.append(fig)

    # histogram of per-crystal MSE
    fig = Figure("hist-mse", "Per-crystal MSE (test set)", size="medium")
    finite_mse = [v for v in mse if _is_num(v)]
    if not finite_mse:
        why = note.replace(" — figure skipped.", "") if note else f"{pred_path.name} has no finite values"
        fig.note = f"No per-crystal MSE: {why} and metric_details.per_crystal.MSE is not usable — figure skipped."
    else:
        marks = {w: mse[i] for w, i in picks if w != "only"}
        mean = sum(finite_mse) / len(finite_mse)
        fig.caption = (f"Per-crystal MSE of the {len(finite_mse):,} test crystals ({source}); coloured lines mark "
                       "the crystals drawn above, the dashed line the mean.")
        _safe_plot(fig, lambda: plots.per_crystal_histogram_svg(finite_mse, "per-crystal MSE", marks, mean),
                   "No finite per-crystal MSE — figure skipped.")
    figs.append(fig)

    # C_V parity
    fig = Figure("parity-cv", f"C_V({temp_txt}): predicted vs true", size="medium")
    cv_t = _aligned(details, "Cv_300K_true", None)
    cv_p = _aligned(details, "Cv_300K_pred", None)
    if cv_t is None or cv_p is None:
        fig.note = "metric_details.per_crystal has no Cv_300K_true / Cv_300K_pred lists — figure skipped."
    elif len(cv_t) != len(cv_p):
        fig.note = (f"metric_details.per_crystal.Cv_300K_true ({len(cv_t):,}) and Cv_300K_pred ({len(cv_p):,}) "
                    "differ in length — figure skipped.")
    else:
        pairs = [(a, b) for a, b in zip(cv_t, cv_p) if a is not None and b is not None]
        left_out = len(cv_t) - len(pairs)
        mae = metrics.get("Cv_300K_MAE")
        fig.caption = (f"Heat capacity at {temp_txt} from the predicted against that from the true DOS, per test "
                       f"crystal, in J/(K·mol); the red line is y = x; "
                       + ("MAE as reported in result.json (Cv_300K_MAE)." if _is_num(mae) else "MAE computed here.")
                       + (f" {left_out:,} crystal(s) without a C_V value left out." if left_out else ""))
        _safe_plot(fig, lambda: plots.parity_svg([a for a, _ in pairs], [b for _, b in pairs],
                                                 mae if _is_num(mae) else None,
                                                 xlabel="C_V true (J/(K·mol))", ylabel="C_V predicted (J/(K·mol))",
                                                 what="test crystals"),
                   "No crystal has both a true and a predicted C_V value — figure skipped.")
    figs.append(fig)

    # facts for the section
    facts: list[tuple[str, str]] = []
    if spectra is not None:
        facts.append(("Test crystals", f"{n:,} (in {pred_path.name})"))
    elif _is_num(_dig(result, "dataset", "sizes", "test")):
        facts.append(("Test crystals", f"{_dig(result, 'dataset', 'sizes', 'test'):,} (size of the test split)"))
    grid = [v for v in _as_list(details.get("grid")) if _is_num(v)]
    if grid:
        facts.append(("Frequency grid", f"{len(grid):,} points, {_sig3(min(grid))}–{_sig3(max(grid))} {unit_txt}"))
    if run.unit:
        facts.append(("Spectrum normalisation", run.unit))
    if _is_num(temp):
        facts.append(("C_V temperature", temp_txt))
    if source:
        facts.append(("Per-crystal MSE", source))
    definitions = [(SPECTRA_LABELS.get(str(k), str(k)), _short_json(v, 1000))
                   for k, v in _as_dict(details.get("definition")).items() if v not in (None, "")]
    return figs, {"facts": facts, "definitions": definitions}


# ----------------------------------------------------------------------------------------------
# generation runs
# ----------------------------------------------------------------------------------------------

#: Keys of ``result['files']`` that may name the generation outputs (first match wins).
_GEN_CSV_KEYS = ("generated_csv", "generated")
_GEN_CIF_KEYS = ("generated_cif", "structures", "cif", "generated")
#: Generated crystals drawn per run.
MAX_DRAWN_STRUCTURES = 4
#: Blocks of generated.cif tried at most (bounds the time spent on a corrupt file).
_MAX_PARSE_ATTEMPTS = 40
_MAX_CIF_BYTES = 512 * 1024 * 1024
_TRUE_WORDS = {"true", "1", "yes", "y", "t", "1.0"}
_CIF_BLOCK = re.compile(r"^data_generated_(\d+)\s*$")


def _gen_file(run_dir: Path, result: dict, keys: Sequence[str], default: str) -> Path:
    suffix = Path(default).suffix
    for key in keys:
        name = _dig(result, "files", key)
        if isinstance(name, str) and name.lower().endswith(suffix):
            return _run_file(run_dir, result, key, default)
    return run_dir / default


def _truthy(values: Sequence) -> list[bool]:
    """A CSV column of booleans (True/False, 1/0, yes/no; NaN is False) as Python bools."""
    out = []
    for v in values:
        if isinstance(v, bool) or type(v).__name__ == "bool_":
            out.append(bool(v))
        elif isinstance(v, (int, float)) or type(v).__module__ == "numpy":
            try:
                out.append(bool(math.isfinite(float(v)) and float(v) != 0))
            except (TypeError, ValueError):
                out.append(False)
        else:
            out.append(str(v).strip().lower() in _TRUE_WORDS)
    return out


def _generated_frame(run_dir: Path, result: dict):
    """``(frame, note)`` for generated.csv (any columns; callers check the ones they need)."""
    return _read_csv(_gen_file(run_dir, result, _GEN_CSV_KEYS, "generated.csv"), [])


def _valid_mask(frame) -> tuple[list[bool], str]:
    """Rows counted as generated-and-valid, and how they were chosen (for captions)."""
    if "valid" in frame.columns:
        mask = _truthy(frame["valid"].tolist())
        if "returned" in frame.columns:
            mask = [a and b for a, b in zip(mask, _truthy(frame["returned"].tolist()))]
        return mask, "valid"
    if "returned" in frame.columns:
        return _truthy(frame["returned"].tolist()), "returned (generated.csv has no 'valid' column)"
    return [True] * len(frame), "all rows (generated.csv has neither 'valid' nor 'returned')"


def _generation_figures(run_dir: Path, result: dict, metrics: Mapping) -> list[Figure]:
    import pandas as pd

    details = _as_dict(result.get("metric_details"))
    frame, note = _generated_frame(run_dir, result)
    figs = []
    specs = (
        ("hist-density", "Density: generated vs reference", "density", "reference_density", "EMD_density",
         plots.density_histogram_svg, "Density (g/cm³)", "each normalised to unit area"),
        ("hist-elements", "Number of elements: generated vs reference", "num_elements", "reference_num_elements",
         "EMD_num_elements", plots.num_elements_histogram_svg, "Number of distinct elements per crystal",
         "as fractions of each set"),
    )
    for key, heading, column, ref_key, emd_key, draw, what, norm in specs:
        fig = Figure(key, heading)
        figs.append(fig)
        if frame is None:
            fig.note = note
            continue
        if column not in frame.columns:
            fig.note = f"generated.csv lacks column {column} — figure skipped."
            continue
        mask, chosen = _valid_mask(frame)
        values = pd.to_numeric(frame[column], errors="coerce")
        gen = [float(v) for v, keep in zip(values.tolist(), mask) if keep and _is_num(float(v))]
        ref_raw = details.get(ref_key)
        ref = [float(v) for v in _as_list(ref_raw) if _is_num(v)]
        emd = metrics.get(emd_key)
        emd = float(emd) if _is_num(emd) else None
        caption = (f"{what} of the generated crystals ({chosen}, n = {len(gen):,}) and of the reference "
                   f"crystals (test split, n = {len(ref):,}), {norm}; EMD as reported in result.json.")
        if not ref:
            caption += f" metric_details has no {ref_key}: the reference is not drawn."
        if not gen:
            caption += " No generated crystal is in this set: only the reference is drawn."
        fig.caption = caption
        _safe_plot(fig, lambda: draw(gen, ref, emd),
                   f"No finite {column} values in generated.csv nor in metric_details.{ref_key} — figure skipped.")
    return figs


def _count_text(n: Any, total: Any, of: str) -> str:
    text = f"{int(n):,}" if _is_num(n) and float(n).is_integer() else _short_json(n)
    if _is_num(n) and _is_num(total) and total > 0:
        text += f" ({n / total * 100:.1f} % of {of})"
    return text


def _generation_view(run_dir: Path, result: dict, run: RunView) -> dict:
    """Counts, definitions and drawings of a few generated crystals for a generation run's section."""
    details = _as_dict(result.get("metric_details"))
    frame, _ = _generated_frame(run_dir, result)
    from_csv: dict[str, int] = {}
    if frame is not None:
        from_csv["n_requested"] = len(frame)
        if "returned" in frame.columns:
            from_csv["n_returned"] = sum(_truthy(frame["returned"].tolist()))
        if "valid" in frame.columns:
            from_csv["n_valid"] = sum(_valid_mask(frame)[0])
    ref_list = [v for v in _as_list(details.get("reference_density")) if _is_num(v)]
    if ref_list:
        from_csv["n_reference"] = len(ref_list)

    used_csv: list[str] = []

    def count(key: str) -> Any:
        v = details.get(key)
        if _is_num(v):
            return v
        if key in from_csv:
            used_csv.append(key)
            return from_csv[key]
        return None

    n_req, n_ret, n_valid, n_ref = (count(k) for k in ("n_requested", "n_returned", "n_valid", "n_reference"))
    counts: list[tuple[str, str]] = []
    if n_req is not None:
        counts.append(("Requested", _count_text(n_req, None, "")))
    if n_ret is not None:
        counts.append(("Returned", _count_text(n_ret, n_req, "requested")))
    if n_valid is not None:
        text = _count_text(n_valid, None, "")
        shares = [f"{n_valid / n * 100:.1f} % of {of}" for n, of in ((n_req, "requested"), (n_ret, "returned"))
                  if _is_num(n_valid) and _is_num(n) and n > 0]
        counts.append(("Valid", f"{text} ({', '.join(shares)})" if shares else text))
    if n_ref is not None:
        counts.append(("Reference crystals", _count_text(n_ref, None, "") + " (test split)"))
    thresholds = details.get("thresholds")
    if isinstance(thresholds, Mapping) and thresholds:
        counts.append(("Validity thresholds", " · ".join(f"{k}: {_short_json(v)}" for k, v in thresholds.items())))
    elif thresholds is not None:
        counts.append(("Validity thresholds", _short_json(thresholds)))
    hit = details.get("fingerprint_cache_hit")
    if isinstance(hit, bool):
        counts.append(("Fingerprint cache", "hit (reference fingerprints loaded from the cache)" if hit
                       else "miss (reference fingerprints computed in this run)"))
    elif hit is not None:
        counts.append(("Fingerprint cache", _short_json(hit)))
    if used_csv:
        counts.append(("Source", f"{', '.join(used_csv)} counted from generated.csv / metric_details lists "
                                 "(not recorded in metric_details)"))
    definitions = [(str(k).replace("_", " "), _short_json(v, 1000))
                   for k, v in _as_dict(details.get("definition")).items() if v not in (None, "")]

    structures = _structure_gallery(_gen_file(run_dir, result, _GEN_CIF_KEYS, "generated.cif"), frame)
    return {"counts": counts, "definitions": definitions, **structures}


def _block_index(name_line: str) -> int | None:
    m = _CIF_BLOCK.match(name_line.strip())
    return int(m.group(1)) if m else None


def _split_cif(text: str) -> list[tuple[int | None, str]]:
    """``[(index or None, block text)]`` for every ``data_`` block of a multi-block CIF."""
    blocks = []
    for part in re.split(r"(?m)^(?=data_)", text):
        if part.startswith("data_"):
            first = part.split("\n", 1)[0]
            blocks.append((_block_index(first), part))
    return blocks


def _structure_item(structure: Any) -> dict:
    symbols, colours, radii = [], [], []
    for site in structure:
        species = max(site.species.items(), key=lambda kv: kv[1])[0]  # majority species on a site
        el = getattr(species, "element", species)
        symbol = str(getattr(el, "symbol", "X"))
        z = int(getattr(el, "Z", 0) or 0)
        radius = getattr(el, "atomic_radius", None)
        symbols.append(symbol)
        colours.append(plots.element_rgb(symbol, z))
        radii.append(float(radius) if radius is not None else 1.0)
    legend, seen = [], set()
    for symbol, rgb in zip(symbols, colours):
        if symbol not in seen:
            seen.add(symbol)
            legend.append((symbol, "#%02x%02x%02x" % tuple(int(round(c * 255)) for c in rgb)))
    svg = plots.structure_svg(structure.lattice.matrix, structure.frac_coords, colours, radii)
    try:
        density = f"{float(structure.density):.2f} g/cm³"
    except Exception:  # noqa: BLE001 - cosmetic
        density = None
    return {"svg": svg, "formula": structure.composition.reduced_formula, "n_sites": len(structure),
            "legend": legend, "density": density,
            "note": None if svg else f"{len(structure)} sites: cell not drawn (too many sites or degenerate cell)."}


def _structure_gallery(cif_path: Path, frame) -> dict:
    """Drawings of the first valid generated crystals (``structures``) or a note why there are none."""
    out: dict[str, Any] = {"structures": [], "structures_note": None, "structures_caption": None,
                           "structures_parse_note": None}
    try:
        size = cif_path.stat().st_size
    except FileNotFoundError:
        out["structures_note"] = f"{cif_path.name} not found — no structures drawn."
        return out
    except OSError as exc:
        out["structures_note"] = f"{cif_path.name} could not be read ({type(exc).__name__}: {exc}) — no structures drawn."
        return out
    if size > _MAX_CIF_BYTES:
        out["structures_note"] = f"{cif_path.name} is larger than {_MAX_CIF_BYTES >> 20} MiB — no structures drawn."
        return out
    try:
        text = cif_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        out["structures_note"] = f"{cif_path.name} could not be read ({type(exc).__name__}: {exc}) — no structures drawn."
        return out
    blocks = _split_cif(text)
    if not blocks:
        out["structures_note"] = f"{cif_path.name} has no data_ block — no structures drawn."
        return out
    by_index = {i: b for i, b in blocks if i is not None}

    # which crystals to draw: the first valid ones per generated.csv, else the first blocks
    selection = "crystals in generated.cif (validity unknown: no usable generated.csv)"
    candidates: list[tuple[int | None, str]] = blocks
    total_valid = None
    if frame is not None and "index" in frame.columns and ("valid" in frame.columns or "returned" in frame.columns):
        mask, chosen = _valid_mask(frame)
        indices = []
        for v, keep in zip(frame["index"].tolist(), mask):
            try:
                if keep:
                    indices.append(int(v))
            except (TypeError, ValueError):
                continue
        if indices:
            total_valid = len(indices)
            candidates = [(i, by_index[i]) for i in indices if i in by_index]
            selection = f"{chosen} generated crystals"
            if not candidates:
                out["structures_note"] = (f"{cif_path.name} has no data_generated_<index> block for the "
                                          f"{chosen} crystals listed in generated.csv — no structures drawn.")
                return out
        else:
            selection = "crystals in generated.cif (none is valid according to generated.csv)"

    from pymatgen.core import Structure

    errors: list[str] = []
    for attempt, (index, block) in enumerate(candidates):
        if len(out["structures"]) >= MAX_DRAWN_STRUCTURES or attempt >= _MAX_PARSE_ATTEMPTS:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(block, fmt="cif")
            if len(structure) == 0:
                raise ValueError("no atoms")
            item = _structure_item(structure)
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for bad CIFs
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        item["index"] = index
        out["structures"].append(item)
    drawn = len(out["structures"])
    if errors:
        msg = (f"{len(errors)} block(s) of {cif_path.name} could not be parsed (first: {errors[0]})")
        if drawn == 0:
            out["structures_note"] = msg + " — no structures drawn."
            return out
        out["structures_parse_note"] = msg + "."
    if drawn:
        of = f" of {total_valid:,}" if total_valid is not None else ""
        out["structures_caption"] = (
            f"The first {drawn}{of} {selection}, parsed from {cif_path.name}: unit cell edges in grey, atoms "
            "coloured by element (Jmol colours), atoms on a cell face repeated on the opposite face.")
    return out


# ----------------------------------------------------------------------------------------------
# pages: runs table, model pages, environment
# ----------------------------------------------------------------------------------------------

#: The metric shown for a run in the runs table, by task type (lower is better except ROC-AUC and validity).
MAIN_METRICS = {"regression": "MAE", "classification": "ROC-AUC", "generation": "validity", "spectra": "MAE"}
_NOT_RECORDED = "not recorded"

#: The inline script of the report (see the module docstring). It is a constant: no data is ever
#: put into it, it only reads the DOM (textContent, data-sort) and builds elements with DOM calls.
TABLE_SCRIPT = """
(() => {
  "use strict";
  const key = (cell) => {
    const raw = cell ? cell.getAttribute("data-sort") : null;
    return {
      num: raw === null || raw.trim() === "" ? NaN : Number(raw),
      text: cell ? cell.textContent.trim().toLowerCase() : "",
      missing: !cell || cell.classList.contains("missing"),
    };
  };
  // numbers before text, values not recorded last (in both directions)
  const compare = (a, b, dir) => {
    if (a.missing !== b.missing) return a.missing ? 1 : -1;
    const an = !Number.isNaN(a.num), bn = !Number.isNaN(b.num);
    if (an && bn) return (a.num - b.num) * dir;
    if (an !== bn) return an ? -1 : 1;
    return a.text.localeCompare(b.text, undefined, { numeric: true }) * dir;
  };
  const sortable = (table) => {
    const body = table.tBodies[0];
    const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!body || !head) return;
    const original = new Map(Array.from(body.rows, (row, i) => [row, i]));
    const headers = Array.from(head.cells);
    const arrows = headers.map((th) => {
      const arrow = document.createElement("span");
      arrow.className = "sort-arrow";
      arrow.setAttribute("aria-hidden", "true");
      th.appendChild(arrow);
      return arrow;
    });
    headers.forEach((th, col) => {
      const sort = () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        headers.forEach((h, i) => { h.removeAttribute("aria-sort"); arrows[i].textContent = ""; });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        arrows[col].textContent = dir > 0 ? "\\u25b2" : "\\u25bc";
        Array.from(body.rows, (row) => ({ row, k: key(row.cells[col]) }))
          .sort((a, b) => compare(a.k, b.k, dir) || original.get(a.row) - original.get(b.row))
          .forEach((item) => body.appendChild(item.row));
      };
      th.classList.add("sort-header");
      th.tabIndex = 0;
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  };
  const filterable = (table) => {
    const labelOnly = table.getAttribute("data-filter") === "label";
    const input = document.createElement("input");
    input.type = "search";
    input.className = "table-filter";
    input.placeholder = labelOnly ? "Filter rows by name\\u2026" : "Filter rows\\u2026";
    input.setAttribute("aria-label", "Filter the rows of the table below");
    if (table.id) input.id = table.id + "-filter";
    const count = document.createElement("span");
    count.className = "filter-count";
    const bar = document.createElement("div");
    bar.className = "filter-bar";
    bar.append(input, count);
    const wrap = table.parentElement;
    (wrap && wrap.classList.contains("table-wrap") ? wrap : table).before(bar);
    input.addEventListener("input", () => {
      const q = input.value.trim().toLowerCase();
      let shown = 0, total = 0, group = null, groupText = "", hits = 0;
      const close = () => { if (group) group.hidden = q !== "" && hits === 0; };
      for (const body of table.tBodies) {
        for (const row of body.rows) {
          if (row.classList.contains("group")) {
            close();
            group = row; groupText = row.textContent.toLowerCase(); hits = 0;
            continue;
          }
          const cell = labelOnly ? row.cells[0] : row;
          const text = cell ? cell.textContent.toLowerCase() : "";
          const hit = q === "" || text.includes(q) || (group !== null && groupText.includes(q));
          row.hidden = !hit;
          total += 1;
          if (hit) { shown += 1; hits += 1; }
        }
      }
      close();
      count.textContent = q ? shown + " of " + total + " rows" : "";
    });
  };
  document.querySelectorAll("table.sortable").forEach(sortable);
  document.querySelectorAll("table.filterable, table[data-filter]").forEach(filterable);
})();
"""


def _csp(script: str) -> str:
    """Content-Security-Policy of the report: inline styles, and ``script`` (by its hash) as the only script."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


@dataclass
class ModelPage:
    """One model's page of the report.

    Attributes:
        anchor: element id of the page (``model-<slug>``), unique in the report.
        name: ``model.name`` (the grouping key, as in the per-model summary).
        display_name: heading (the summary's column label when there is one, else the display name).
        paper: the model's paper (``model.paper``) as one line of text, ``None`` when not recorded.
        runs: the model's runs, ordered by task (order of first appearance in the report) then seed.
        tasks: its tasks in that order.
        status_counts: ``[(status, count)]`` over its runs, ``ok`` first.
    """

    anchor: str
    name: str
    display_name: str
    paper: str | None
    runs: list[RunView]
    tasks: list[str]
    status_counts: list[tuple[str, int]]


def model_slug(name: str) -> str:
    """``"CGCNN (v2)"`` -> ``"cgcnn-v2"``: lower-case ASCII letters, digits and dashes (``"model"`` if empty)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _model_key(result: Mapping) -> str:
    """The model a result belongs to, as :func:`orchestrator.summary.aggregate` groups them."""
    model = _as_dict(result.get("model"))
    for v in (model.get("name"), model.get("display_name")):
        if isinstance(v, str) and v:
            return v
    return "?"


def _paper_text(paper: Any) -> str | None:
    if isinstance(paper, str):
        return paper.strip() or None
    if not isinstance(paper, Mapping) or not paper:
        return None
    parts = []
    title = paper.get("title")
    if title not in (None, ""):
        parts.append(_short_json(title))
    for k, v in paper.items():
        if k == "title" or v in (None, "", [], {}):
            continue
        text = ", ".join(map(str, v)) if isinstance(v, list) else _short_json(v)
        parts.append(f"{k}: {text}")
    return " · ".join(parts) or None


def _seed_key(run: RunView) -> tuple[int, float, str]:
    seed = run.result.get("seed")
    if _is_num(seed):
        return 0, float(seed), ""
    return (1, 0.0, "") if seed is None else (0, math.inf, str(seed))


def _model_pages(runs: Sequence[RunView], suite: Any = None) -> list[ModelPage]:
    """One :class:`ModelPage` per model (order of first appearance), runs ordered by task then seed."""
    task_order: dict[str, int] = {}
    for r in runs:
        task_order.setdefault(r.task_name, len(task_order))
    by_model: dict[str, list[RunView]] = {}
    for r in runs:
        by_model.setdefault(_model_key(r.result), []).append(r)
    columns = getattr(suite, "columns", None) or []
    labels = {c.name: c.label for c in columns if isinstance(getattr(c, "label", None), str)}
    pages: list[ModelPage] = []
    used: set[str] = set()
    for name, members in by_model.items():
        slug = base = model_slug(name)
        n = 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        ordered = sorted(members, key=lambda r: (task_order[r.task_name], _seed_key(r), r.index))
        display = labels.get(name) or next(
            (d for r in members if isinstance(d := _dig(r.result, "model", "display_name"), str) and d), name)
        paper = next((p for r in members if (p := _paper_text(_dig(r.result, "model", "paper")))), None)
        counts: dict[str, int] = {}
        for r in members:
            counts[r.status] = counts.get(r.status, 0) + 1
        pages.append(ModelPage(
            anchor=f"model-{slug}", name=name, display_name=display, paper=paper, runs=ordered,
            tasks=list(dict.fromkeys(r.task_name for r in ordered)),
            status_counts=sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))))
    return pages


def _missing(what: str = "") -> Cell:
    """An em dash for a value the result does not hold (sorted last by the table script)."""
    return Cell("—", f"{_NOT_RECORDED}{what}", "na missing")


def _text_cell(v: Any, css: str = "", title: str | None = None) -> Cell:
    if v is None or (isinstance(v, str) and not v.strip()) or v in ([], {}):
        return _missing()
    return Cell(_short_json(v), title, css)


def _num_cell(v: Any, fmt: Callable[[float], str] | None = None, title: str | None = None) -> Cell:
    if not _is_num(v):
        return _missing() if v is None else Cell(_short_json(v), title)
    if fmt is None:
        return Cell(f"{int(v):d}" if float(v).is_integer() else f"{v:g}", title, "num", sort=repr(v))
    return Cell(fmt(v), title or repr(v), "num", sort=repr(v))


def _status_text_cell(run: RunView) -> Cell:
    err = run.error or {}
    title = None
    if err.get("type") or err.get("message"):
        title = f"{err.get('type') or 'error'}: {str(err.get('message') or '')[:200]}"
    return Cell(run.status_label, title, f"status-cell st-{run.status_class}")


def main_metric(result: Mapping) -> tuple[str | None, Any]:
    """``(metric key, value)`` of the run's main metric (:data:`MAIN_METRICS`), else its first numeric
    metric, else ``(None, None)``. The value is returned as stored (it may be ``None``)."""
    metrics = _as_dict(result.get("metrics"))
    name = MAIN_METRICS.get(str(result.get("task_type") or ""))
    if name is not None:
        return name, metrics.get(name)
    for k, v in metrics.items():
        if _is_num(v):
            return str(k), v
    return None, None


#: (column heading, tooltip) of the runs table
RUNS_COLUMNS = (
    ("#", "order of the runs in the report"), ("Run id", None), ("Model", None), ("Task", None),
    ("Seed", None), ("Status", None), ("Duration (s)", "wall-clock duration of the whole run"),
    ("Main metric", "MAE for regression and spectra, ROC-AUC for classification, validity for generation"),
    ("Value", "the main metric on the test set"),
)


def _runs_table(runs: Sequence[RunView]) -> list[list[Cell]]:
    """One row of cells per run, in the columns of :data:`RUNS_COLUMNS`."""
    rows = []
    for r in runs:
        duration, _ = resource_value(r.result, "duration (s)", "time", "")
        name, value = main_metric(r.result)
        if name is None:
            label_cell, value_cell = _missing(": no metric"), (
                _status_text_cell(r) if r.status != "ok" else _missing(": no metric"))
        else:
            label, _, fmt = metric_presentation(r.task_type, name, r.unit)
            label_cell = Cell(label)
            if _is_num(value):
                value_cell = Cell(fmt(value), repr(value), "num", sort=repr(value))
            elif r.status != "ok":
                value_cell = _status_text_cell(r)
            elif name in _as_dict(r.result.get("metrics")):
                value_cell = Cell("n/a", f"{label} could not be computed for this run (stored as null)", "na")
            else:
                value_cell = _missing()
        rows.append([
            Cell(str(r.index), None, "num", sort=str(r.index), href=f"#{r.anchor}"),
            Cell(r.run_id, None, "mono", href=f"#{r.anchor}"),
            Cell(r.display_name),
            _text_cell(r.task_name),
            _num_cell(r.result.get("seed")),
            _status_text_cell(r),
            _num_cell(duration, _format_fixed(1)),
            label_cell,
            value_cell,
        ])
    return rows


#: (column heading, tooltip) of the environment table
ENVIRONMENT_COLUMNS = (
    ("Run id", None), ("Model", None), ("Task", None), ("Seed", None), ("Status", None), ("Backend", None),
    ("Image", "container image (Docker tag, or the Slurm job's image)"),
    ("Image id", "Docker image id (sha256); hover for the full id"),
    ("Slurm job", "Slurm job id and node; hover for partition, state and queue wait"),
    ("mateval commit", None), ("Python", None), ("torch", "torch version (its +cuXXX suffix is the CUDA build)"),
    ("torch_geometric", None), ("Device", "torch device of the run"), ("GPUs", None), ("GPU driver", None),
    ("CPU", "host CPU model"), ("CPU cores", "logical CPUs of the host (os.cpu_count)"), ("Host", None),
    ("Platform", None),
)


def _image_cells(result: Mapping) -> tuple[Cell, Cell]:
    container = _as_dict(result.get("container"))
    slurm = _as_dict(result.get("slurm"))
    backend = result.get("backend")
    image = container.get("image") or slurm.get("image")
    extra = []
    for label, key in (("base image", "base_image"), ("Docker", "docker_version"), ("memory limit", "memory_limit"),
                       ("CPUs", "cpus"), ("GPUs", "gpus")):
        if container.get(key) not in (None, ""):
            extra.append(f"{label}: {_short_json(container[key])}")
    if slurm.get("container") not in (None, ""):
        extra.append(f"started with: {_short_json(slurm['container'])}")
    if image:
        image_cell = Cell(_short_json(image), " · ".join(extra) or None, "mono")
    elif backend == "local":
        image_cell = _missing(" (local backend: no container image)")
    else:
        image_cell = _missing()
    image_id = container.get("image_id")
    if isinstance(image_id, str) and image_id:
        short = image_id if len(image_id) <= 19 else image_id[:19] + "…"
        id_cell = Cell(short, image_id, "mono")
    else:
        id_cell = _missing(" (local backend: no container image)" if backend == "local" and not image else "")
    return image_cell, id_cell


def _slurm_cell(result: Mapping) -> Cell:
    slurm = _as_dict(result.get("slurm"))
    job, node = slurm.get("job_id"), slurm.get("node")
    if job in (None, "") and node in (None, ""):
        return _missing(" (not a Slurm run)" if result.get("backend") not in (None, "slurm") else "")
    text = _short_json(job) if job not in (None, "") else "?"
    if node not in (None, ""):
        text += f" on {_short_json(node)}"
    details = [f"{label}: {_short_json(slurm[key])}" for label, key in
               (("state", "state"), ("partition", "partition"), ("account", "account"),
                ("time limit (min)", "time_limit_min"), ("queue wait (s)", "queue_wait_s"),
                ("exit code", "exit_code"), ("submitted", "submitted_at")) if slurm.get(key) not in (None, "")]
    return Cell(text, " · ".join(details) or None, "mono")


def _gpus_cell(env: Mapping) -> Cell:
    gpus = env.get("gpus")
    if isinstance(gpus, list) and gpus:
        return Cell("; ".join(_gpu_summary(g) for g in gpus))
    if isinstance(gpus, list):
        return Cell("none", "no GPU visible to the run")
    return _text_cell(gpus)


def _environment_table(runs: Sequence[RunView]) -> list[list[Cell]]:
    """One row of cells per run, in the columns of :data:`ENVIRONMENT_COLUMNS`."""
    rows = []
    for r in runs:
        env = _as_dict(r.result.get("environment"))
        packages = _as_dict(env.get("packages"))
        image_cell, id_cell = _image_cells(r.result)
        driver = env.get("gpu_driver") or _dig(r.result, "container", "gpu_driver")
        no_gpu = env.get("gpus") == [] and not driver
        sha = env.get("mateval_git_sha")
        long_sha = isinstance(sha, str) and len(sha) > 12
        rows.append([
            Cell(r.run_id, None, "mono", href=f"#{r.anchor}"),
            Cell(r.display_name),
            _text_cell(r.task_name),
            _num_cell(r.result.get("seed")),
            _status_text_cell(r),
            _text_cell(r.result.get("backend")),
            image_cell,
            id_cell,
            _slurm_cell(r.result),
            _text_cell(sha[:12] if long_sha else sha, "mono", sha if long_sha else None),
            _text_cell(env.get("python")),
            _text_cell(packages.get("torch")),
            _text_cell(packages.get("torch_geometric")),
            _text_cell(env.get("torch_device"), "mono"),
            _gpus_cell(env),
            _missing(" (no GPU visible to the run)") if no_gpu else _text_cell(driver),
            _text_cell(env.get("cpu")),
            _num_cell(env.get("cpu_count")),
            _text_cell(env.get("hostname"), "mono"),
            _text_cell(env.get("platform")),
        ])
    return rows



# ----------------------------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _footnotes(runs: Sequence[RunView]) -> list[str]:
    notes: list[str] = []
    for r in runs:
        nc = _dig(r.result, "model_stats", "flops", "not_counted")
        items = nc if isinstance(nc, list) else [nc] if nc else []
        for item in items:
            text = _short_json(item, 1000)
            if text and text not in notes:
                notes.append(text)
    if notes:
        notes = ["FLOPs exclude gather/scatter message aggregation. Not counted: " + "; ".join(notes)]
    else:
        notes = [DEFAULT_FLOPS_NOTE]
    return notes + [THOP_NOTE]


def build_context(run_dirs: Sequence[Path], title: str = "mateval report",
                  now: _dt.datetime | None = None) -> dict:
    """Everything the template needs, computed from the run directories.

    ``suite`` is the per-model comparison (:class:`orchestrator.summary.SuiteTable`, mean ± std over
    seeds) of the readable runs, ``None`` without runs or when it could not be computed
    (``suite_error`` then says why). ``models`` are the per-model pages (:class:`ModelPage`),
    ``runs_table`` / ``environment_table`` the rows (lists of cells) of the runs and the environment
    tables under the headings ``runs_columns`` / ``environment_columns``; ``table_script`` is
    :data:`TABLE_SCRIPT` and ``csp`` the Content-Security-Policy that allows only it.
    """
    runs: list[RunView] = []
    unreadable: list[Unreadable] = []
    loaded: list[tuple[Path, dict | None, str | None]] = []
    for raw in run_dirs:
        run_dir = Path(raw)
        if run_dir.is_file() and run_dir.name == "result.json":
            run_dir = run_dir.parent
        result, error = _load_result(run_dir)
        loaded.append((run_dir, result, error))
        if result is None:
            unreadable.append(Unreadable(str(run_dir / "result.json"), error or "unknown error"))
            continue
        try:
            runs.append(_describe(run_dir, len(runs) + 1, result))
        except Exception as exc:  # noqa: BLE001 - last line of defence for one odd result
            unreadable.append(Unreadable(str(run_dir / "result.json"),
                                         f"could not be rendered: {type(exc).__name__}: {exc}"))
    from orchestrator.summary import aggregate  # imports this module: not at the top

    suite, suite_error = None, None
    try:
        suite = aggregate(loaded) if runs else None
    except Exception as exc:  # noqa: BLE001 - the per-run table below still shows everything
        suite_error = f"the per-model summary could not be computed: {type(exc).__name__}: {exc}"
    now = now or _dt.datetime.now(_dt.timezone.utc)
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "title": title,
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "runs": runs,
        "status_counts": sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0])),
        "unreadable": unreadable,
        "groups": _comparison(runs) if runs else [],
        "footnotes": _footnotes(runs),
        "suite": suite,
        "suite_error": suite_error,
        "models": _model_pages(runs, suite),
        "runs_columns": RUNS_COLUMNS,
        "runs_table": _runs_table(runs),
        "environment_columns": ENVIRONMENT_COLUMNS,
        "environment_table": _environment_table(runs),
        "table_script": TABLE_SCRIPT,
        "csp": _csp(TABLE_SCRIPT),
    }


def render_report(run_dirs: Sequence[Path], out_path: Path, title: str = "mateval report") -> Path:
    """Write the HTML report for ``run_dirs`` to ``out_path`` and return ``out_path``.

    ``run_dirs`` are ``results/<run_id>/`` directories (a path to a ``result.json`` is accepted
    too). The file is written atomically; parent directories are created.
    """
    out_path = Path(out_path)
    context = build_context(list(run_dirs), title)
    html = _environment().get_template("report.html.j2").render(**context)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out_path
