"""Per-model comparison of a set of runs, with statistics over seeds.

:func:`aggregate` turns the runs shown by ``mateval bench`` / ``mateval report`` (the records that
:func:`orchestrator.reader.read_runs` returns) into a :class:`SuiteTable`: one column per model and
setting (:mod:`orchestrator.report.grouping`: a model run with two settings, e.g. two epoch counts,
gets two columns labelled by what differs, e.g. ``epochs=3``), one row per model size figure and,
per task, per metric and resource figure. The HTML report
(:mod:`orchestrator.report.render`), :func:`write_markdown` (``summary.md``) and
:func:`write_csv` (``summary.csv``, one row per run and metric) all use it, so the three agree.
Metric labels, units, formats and definitions come from :mod:`metrics.catalogue`.

What a cell holds:

- values: mean ± sample standard deviation (``n - 1`` in the denominator) over the column's runs
  on the row's task with status ``ok``: runs that differ only in their seed (and, under ``--protocol
  matbench``, their fold: such runs have a column of their own, so the cell is Matbench's mean ± std
  over the 5 folds); a single value is shown without ``±``. When some runs of the model did not
  end ok the cell is marked ``(k/n ok)``; when ok runs have no value (a metric stored as ``null``,
  i.e. undefined for that run) it is marked ``(m n/a)``;
- no ok run: the failure status as published tables show it (``OOM``, ``TIMEOUT``, ``FAILED``,
  ``CANCELLED``); with mixed statuses the most frequent one and its count, e.g. ``OOM (2/3)``;
- ok runs but no value at all: ``n/a`` with the reason;
- the model has no run on that task: ``—``.

Trivial baselines and flags (:mod:`orchestrator.report.baseline`): a baseline row under each metric
(the baseline's mean over the same ok runs, the ratio model ÷ baseline), a flags row per task with
flagged runs, and :attr:`SuiteTable.flagged` listing them with their messages.

Resource rows (duration, GPU figures, energy, host load) are per task, like the metrics: never a
spread over tasks. Params and FLOPs are one value per column, or the range ``a–b`` when they differ
between its runs (different tasks can change the output head or the input size).

Settings: a column whose runs differ from the paper's settings carries a marker (``†1``) whose
note says how (``bench settings (epochs 10 vs paper 500)``, ``data: subset``, ``max-samples
train=96``); a task whose models were not run alike (profile, data variant, sample limits) gets a
note naming what differs.
"""

from __future__ import annotations

import csv
import html
import io
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from metrics import catalogue
from orchestrator.reader import RunRecord

from . import baseline as baseline_view
from .baseline import BASELINE_NOTE, FLAGS_NOTE, FlaggedRun
from .suite import ModelColumn, SuiteTable, SummaryCell, SummaryGroup, SummaryRow, plural as _plural
from .grouping import (deduplicate, fold_of, paper_differences, run_identity,  # noqa: F401 (run_identity: re-exported)
                       setting_columns, settings_text, task_mismatch_note)
from .formatting import (DEFAULT_FLOPS_NOTE, STATUS_CLASSES, dig, format_count, format_flops, is_num,
                         metric_definition, metric_entry, metric_presentation, short_json)
from .pages import model_key
from .resources import RESOURCE_ROWS, resource_keys, resource_value, unavailable_reason
from runner.result import atomic_write_text

__all__ = ["SummaryCell", "SummaryRow", "SummaryGroup", "ModelColumn", "SuiteTable", "aggregate",
           "write_markdown", "write_csv", "write_summaries", "SUMMARY_RESOURCE_LABELS", "PARAMS_LABEL",
           "FLOPS_LABEL", "MARKDOWN_FILE", "CSV_FILE", "FlaggedRun", "BASELINE_NOTE", "FLAGS_NOTE", "run_identity",
           "deduplicate"]

MARKDOWN_FILE = "summary.md"
CSV_FILE = "summary.csv"
#: The rows of :data:`orchestrator.report.resources.RESOURCE_ROWS` that the summary shows, in this order.
SUMMARY_RESOURCE_LABELS = ("Duration (s)", "GPU utilization (%)", "GPU memory utilization (%)", "GPU power (W)",
                           "GPU energy (J)", "Host CPU (%)", "Host memory (%)")
PARAMS_LABEL = "Params"
FLOPS_LABEL = "Forward FLOPs / sample"
CSV_COLUMNS = ("run_id", "model", "task", "seed", "status", "metric", "value", "unit", "settings")
#: Order in which failure statuses win a tie for "most frequent".
_FAILURE_ORDER = ("oom", "timeout", "failed", "cancelled")
_DASH = "—"

NOTES = (
    "Cells: mean ± sample standard deviation (n − 1 in the denominator) over the seeds whose run ended ok, "
    "only over runs of one model and task with the same settings and data (other settings: another column); "
    "a single value has no ±. Under --protocol matbench (column labelled protocol=matbench, or settings "
    "protocol=matbench) the runs are the 5 Matbench folds of each seed: the cell is the mean ± std over the folds.",
    "(k/n ok): only k of the column's n runs (on that task; for params and FLOPs: on all its "
    "tasks) ended ok, and the statistics use those k. (m n/a): m ok runs have no value for that row.",
    "OOM, TIMEOUT, FAILED, CANCELLED: no run ended ok; with mixed statuses the most frequent one is shown "
    "with its count, e.g. OOM (2/3).",
    "n/a: the runs ended ok but the value is missing (a metric stored as null is undefined for that run, "
    "e.g. R² of a constant target; a resource figure may not be measurable on the host). "
    "— : the model was not run on that task.",
    "Resource rows are per task: over the seeds of the column on that task, never over tasks (per run: "
    "nvitop means over the whole run; GPU utilization averaged, power and energy summed over the GPUs used).",
    "Params and FLOPs: one value per column, or the range a–b when its runs differ (e.g. between tasks). "
    + DEFAULT_FLOPS_NOTE,
)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _text(v: Any, default: str = "") -> str:
    return v if isinstance(v, str) and v else default


def _status(result: Mapping) -> str:
    return _text(result.get("status"), "unknown")


def _task_name(result: Mapping) -> str:
    return _text(dig(result, "task", "name"), "?")


def _metrics(result: Mapping) -> Mapping:
    m = result.get("metrics")
    return m if isinstance(m, Mapping) else {}


def _seed_text(result: Mapping) -> str:
    seed = result.get("seed")
    fold = fold_of(result)
    return ("?" if seed is None else str(seed)) + ("" if fold is None else f" fold {fold}")


def _count_statuses(results: Sequence[Mapping]) -> dict[str, int]:
    counts = Counter(_status(r) for r in results)
    order = ["ok", *_FAILURE_ORDER]
    return dict(sorted(counts.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def _status_cell(runs: Sequence[Mapping], what: str) -> SummaryCell:
    """Cell of a row where none of ``runs`` (at least one) ended ok."""
    counts = _count_statuses(runs)
    order = {s: i for i, s in enumerate(_FAILURE_ORDER)}
    status = max(counts, key=lambda s: (counts[s], -order.get(s, len(order))))
    text = status.upper()
    if len(counts) > 1:
        text += f" ({counts[status]}/{len(runs)})"
    detail = []
    for r in runs:
        err = r.get("error") if isinstance(r.get("error"), Mapping) else {}
        msg = (f"{_task_name(r)} " if len({_task_name(x) for x in runs}) > 1 else "") + \
            f"seed {_seed_text(r)}: {_status(r)}"
        if err.get("type") or err.get("message"):
            msg += f" ({err.get('type') or 'error'}: {str(err.get('message') or '')[:120]})"
        detail.append(msg)
    title = f"{what}: no run ended ok — " + "; ".join(detail)
    css = f"status-cell st-{STATUS_CLASSES.get(status, 'unknown')}"
    return SummaryCell(text, "status", n_ok=0, n_total=len(runs), status=status, status_counts=counts,
                       title=title, css=css)


def _marker(n_ok: int, n_total: int, n_values: int) -> str:
    parts = []
    if n_ok < n_total:
        parts.append(f"{n_ok}/{n_total} ok")
    if n_values < n_ok:
        parts.append(f"{n_ok - n_values} n/a")
    return f" ({'; '.join(parts)})" if parts else ""


def _plus_minus(mean: float, std: float | None, fmt: Callable[[float], str]) -> str:
    if std is None:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def _stat_cell(runs: Sequence[Mapping], get: Callable[[Mapping], Any], fmt: Callable[[float], str], what: str,
               missing: Callable[[Sequence[Mapping]], str], as_range: bool = False) -> SummaryCell:
    """Aggregate ``get(result)`` over the ok ones of ``runs``.

    ``as_range``: params/FLOPs: one value when all agree, else ``low–high`` (no mean ± std text).
    ``missing(ok_runs)`` gives the reason when no ok run has a value.
    """
    if not runs:
        return SummaryCell(_DASH, "absent", title=f"{what}: the model has no run here", css="dim")
    ok = [r for r in runs if _status(r) == "ok"]
    if not ok:
        return _status_cell(runs, what)
    counts = _count_statuses(runs)
    pairs = [(r, float(v)) for r in ok if is_num(v := get(r))]
    values = [v for _, v in pairs]
    marker = _marker(len(ok), len(runs), len(values))
    several_tasks = len({_task_name(r) for r in runs}) > 1

    def ref(r: Mapping) -> str:
        return f"{_task_name(r)} seed {_seed_text(r)}" if several_tasks else f"seed {_seed_text(r)}"

    not_ok = [f"{ref(r)}: {_status(r)}" for r in runs if _status(r) != "ok"]
    if not values:
        return SummaryCell("n/a" + _marker(len(ok), len(runs), len(ok)), "na", n_ok=len(ok), n_total=len(runs),
                           status_counts=counts, title=f"{what}: {missing(ok)}", css="na")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    low, high = min(values), max(values)
    sources = ", ".join(ref(r) for r, _ in pairs)
    if as_range:
        kind = "value" if low == high else "range"
        text = fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)}–{fmt(high)}"  # equal at display precision: one value
        title = f"{what}: " + ("; ".join(f"{v!r}" for v in dict.fromkeys(values)))
        title += f" (from {_plural(len(values), 'ok run')})"
    else:
        kind = "value"
        text = _plus_minus(mean, std, fmt)
        title = f"{what}: mean {mean!r}"
        if std is not None:
            title += f", sample std {std!r}"
        title += f" over {_plural(len(values), 'ok run')} ({sources}); values " + ", ".join(
            f"{v!r}" for v in values)
    if not_ok:
        title += "; not ok: " + ", ".join(not_ok)
    if len(values) < len(ok):
        title += f"; {len(ok) - len(values)} ok run(s) without a value: {missing(ok)}"
    return SummaryCell(text + marker, kind, mean=mean, std=std, low=low, high=high, values=values, n_ok=len(ok),
                       n_total=len(runs), status_counts=counts, title=title, css="num")


# ----------------------------------------------------------------------------------------------
# rows
# ----------------------------------------------------------------------------------------------


def _resource_specs() -> list[tuple[str, str, str, str, Callable[[float], str]]]:
    by_label = {row[0]: row for row in RESOURCE_ROWS}
    return [by_label[label] for label in SUMMARY_RESOURCE_LABELS if label in by_label]


def _label_unit(label: str) -> str:
    m = re.search(r"\(([^()]*)\)$", label)
    return m.group(1) if m else ""


def _resource_missing(key: str, family: str) -> Callable[[Sequence[Mapping]], str]:
    def reason(ok: Sequence[Mapping]) -> str:
        for r in ok:
            found = unavailable_reason(dict(r), resource_keys(key, family), family)
            if found:
                return found
        if family == "gpu":
            return "no GPU metric recorded for these runs (no GPU or telemetry off)"
        return f"'{key}' not recorded in result.json"

    return reason


def _stats_missing(sub: str | None) -> Callable[[Sequence[Mapping]], str]:
    def reason(ok: Sequence[Mapping]) -> str:
        for r in ok:
            err = (dig(r, "model_stats", sub, "error") if sub else None) or dig(r, "model_stats", "error")
            if err:
                return f"not counted: {short_json(err)}"
        return "not counted"

    return reason


def _params(r: Mapping) -> Any:
    return dig(r, "model_stats", "params")


def _flops(r: Mapping) -> Any:
    return dig(r, "model_stats", "flops", "forward_per_sample")


def _task_info(runs: Sequence[Mapping]) -> tuple[str, str | None]:
    """(task type, unit) of a task's runs: from an ok run when there is one."""
    ordered = sorted(runs, key=lambda r: _status(r) != "ok")
    task_type = next((t for r in ordered if (t := _text(r.get("task_type")))), "")
    unit = next((u for r in ordered if (u := _text(dig(r, "task", "unit")))), None)
    return task_type, unit


def _task_metric_names(runs: Sequence[Mapping], task_type: str) -> list[str]:
    """Metric keys of a task: the known ones of its type in their order, then the others in order
    of first appearance. With no metric reported at all (every run failed), the type's list."""
    seen: list[str] = []
    for r in runs:
        for k in _metrics(r):
            if k not in seen:
                seen.append(k)
    known = catalogue.names(task_type)
    if not seen:
        return list(known)
    return [m for m in known if m in seen] + [m for m in seen if m not in known]


def _metric_row(task: str, task_type: str, unit: str | None, name: str, columns: Sequence[ModelColumn],
                runs_by: Mapping[tuple[str, str], list[Mapping]]) -> SummaryRow:
    label, _, fmt = metric_presentation(task_type, name, unit)
    full = f"{task} · {label}"

    def missing(ok: Sequence[Mapping]) -> str:
        if any(name in _metrics(r) for r in ok):
            return "could not be computed (stored as null: undefined for these runs)"
        return "not recorded in result.json"

    cells = [_stat_cell(runs_by.get((c.key, task), []), lambda r: _metrics(r).get(name), fmt, full, missing)
             for c in columns]
    title = metric_definition(metric_entry(task_type, name),
                              [r for c in columns for r in runs_by.get((c.key, task), [])])
    return SummaryRow(full, name, cells, task=task, title=title)


def _baseline_row(task: str, task_type: str, unit: str | None, name: str, columns: Sequence[ModelColumn],
                  runs_by: Mapping[tuple[str, str], list[Mapping]], model_row: SummaryRow) -> SummaryRow:
    """The baseline row under ``model_row``: per model, the baseline's mean over its ok runs on
    ``task`` and the ratio of the model's mean to it."""
    label, _, fmt = metric_presentation(task_type, name, unit)
    better = baseline_view.better_text(task_type, name)
    full = f"{task} · {label} · baseline (ratio = model ÷ baseline{', ' + better if better else ''})"

    def missing(ok: Sequence[Mapping]) -> str:
        if any(baseline_view.baseline_block(r) for r in ok):
            return "the baseline's value is undefined (null) for these runs"
        return "no baseline recorded in result.json"

    cells = []
    for column, model_cell in zip(columns, model_row.cells):
        runs = runs_by.get((column.key, task), [])
        cell = _stat_cell(runs, lambda r: baseline_view.baseline_metric(r, name), fmt,
                          f"{task} · {label} of the trivial baseline", missing)
        if cell.kind == "value" and cell.mean is not None:
            found = baseline_view.ratio(model_cell.mean, cell.mean)
            if found is not None:
                cell.ratio = found
                cell.text += f" (ratio {found:.3g})"
                cell.title = (cell.title or "") + (f"; ratio {found!r} = the model's mean {model_cell.mean!r} "
                                                   f"÷ the baseline's mean {cell.mean!r}"
                                                   + (f" ({better})" if better else ""))
            else:
                cell.text += " (no ratio)"
                reason = baseline_view.ratio_reason(model_cell.mean, cell.mean)
                cell.title = (cell.title or "") + "; no ratio: " + reason
        cells.append(cell)
    predictors = list(dict.fromkeys(str(b.get("predictor")) for c in columns
                                    for r in runs_by.get((c.key, task), [])
                                    if (b := baseline_view.baseline_block(r))))
    title = "The trivial baseline: " + " | ".join(predictors[:3]) if predictors else None
    return SummaryRow(full, name, cells, task=task, title=title, kind="baseline")


def _flags_row(task: str, columns: Sequence[ModelColumn],
               runs_by: Mapping[tuple[str, str], list[Mapping]]) -> SummaryRow:
    """The flags row of ``task``: per model, each flag code with the share of its ok runs that raised it."""
    cells = []
    for column in columns:
        runs = runs_by.get((column.key, task), [])
        ok = [r for r in runs if _status(r) == "ok"]
        if not runs:
            cells.append(SummaryCell(_DASH, "absent", title=f"{task}: the model has no run here", css="dim"))
            continue
        if not ok:
            cells.append(SummaryCell("", "na", n_total=len(runs), title="no run ended ok", css="dim"))
            continue
        counts = Counter(code for r in ok for code in baseline_view.flag_codes(r))
        if not counts:
            cells.append(SummaryCell("none", "value", n_ok=len(ok), n_total=len(runs), css="dim",
                                     title=f"{task}: no flag in {_plural(len(ok), 'ok run')}"))
            continue
        text = "⚠ " + ", ".join(f"{code} ({n}/{len(ok)})" for code, n in counts.items())
        title = "; ".join(f"seed {_seed_text(r)}: {f['code']}: {f['message']}" for r in ok
                          for f in baseline_view.flags(r))
        cells.append(SummaryCell(text, "flags", n_ok=len(ok), n_total=len(runs), title=title, css="flagged"))
    return SummaryRow(f"{task} · flags", "flags", cells, task=task, kind="flags",
                      title="degenerate results found by the scoring stage (hover a cell for the messages)")


#: What the functions below accept: records of :func:`orchestrator.reader.read_runs`, or (until every
#: caller reads through the reader) ``(directory, result or None, error or None)`` triples.
Runs = Iterable["RunRecord | tuple[Any, Mapping[str, Any] | None, str | None]"]


def _records(runs: Runs) -> list[RunRecord]:
    """``runs`` as :class:`RunRecord`s (triples converted; their result is taken as read)."""
    out = []
    for run in runs:
        if isinstance(run, RunRecord):
            out.append(run)
        else:
            directory, result, error = run
            ok = isinstance(result, dict)
            out.append(RunRecord(Path(str(directory)), result if ok else None,
                                 None if ok else str(error or "no result")))
    return out


def _valid(records: Sequence[RunRecord]) -> tuple[list[Mapping], list[tuple[str, str]], list[tuple[str, list[str]]]]:
    results, duplicates = deduplicate([r.result for r in records if r.ok])
    unreadable = [(str(r.directory), r.error or "no result") for r in records if not r.ok]
    return results, unreadable, duplicates


def _task_layout(results: Sequence[Mapping]) -> list[tuple[str, str, str | None, list[str]]]:
    """``[(task, task type, unit, metric keys)]`` in order of first appearance."""
    by_task: dict[str, list[Mapping]] = {}
    for r in results:
        by_task.setdefault(_task_name(r), []).append(r)
    layout = []
    for task, runs in by_task.items():
        task_type, unit = _task_info(runs)
        layout.append((task, task_type, unit, _task_metric_names(runs, task_type)))
    return layout


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


def aggregate(loaded: Runs) -> SuiteTable:
    """Build the per-model comparison of ``loaded``.

    Args:
        loaded: the runs as :func:`orchestrator.reader.read_runs` returns them (schema-checked
            :class:`~orchestrator.reader.RunRecord`s; ``(directory, result, error)`` triples are
            accepted too). Unreadable ones are counted as unreadable and otherwise left out.

    Returns:
        A :class:`SuiteTable` with one column per model and setting (``model.name``, in order of
        first appearance, labelled with ``model.display_name``, what tells the model's settings
        apart and the settings marker) and the rows: params, forward FLOPs per sample, then per
        task (in order of first appearance) its metrics (with baseline and flags rows) and the
        resource rows of :data:`SUMMARY_RESOURCE_LABELS`. See the module docstring for what a cell
        shows.

    Never raises on odd result content; an empty ``loaded`` gives a table without columns.
    """
    results, unreadable, duplicates = _valid(_records(loaded))
    runs_by: dict[tuple[str, str], list[Mapping]] = {}
    columns, by_column, setting = _columns(results)
    for c in columns:
        for r in by_column[c.key]:
            runs_by.setdefault((c.key, _task_name(r)), []).append(r)

    model_rows = [
        SummaryRow(PARAMS_LABEL, "params",
                   [_stat_cell(by_column[c.key], _params, format_count, PARAMS_LABEL, _stats_missing(None),
                               as_range=True) for c in columns], title="trainable and frozen parameters"),
        SummaryRow(FLOPS_LABEL, "flops",
                   [_stat_cell(by_column[c.key], _flops, format_flops, FLOPS_LABEL, _stats_missing("flops"),
                               as_range=True) for c in columns],
                   title="FLOPs of one forward pass per sample"),
    ]
    groups = [SummaryGroup("Model", model_rows)]
    any_baseline = any_flags = False
    task_notes = []
    for task, task_type, unit, names in _task_layout(results):
        task_runs = [r for c in columns for r in runs_by.get((c.key, task), [])]
        with_baseline = any(baseline_view.baseline_block(r) for r in task_runs)
        rows = []
        for name in names:
            rows.append(_metric_row(task, task_type, unit, name, columns, runs_by))
            if with_baseline:
                rows.append(_baseline_row(task, task_type, unit, name, columns, runs_by, rows[-1]))
        if any(baseline_view.flags(r) for r in task_runs):
            rows.append(_flags_row(task, columns, runs_by))
            any_flags = True
        rows += _resource_rows(task, columns, runs_by)
        any_baseline = any_baseline or with_baseline
        details = ", ".join(x for x in (task_type, unit) if x)
        heading = f"{task} ({details})" if details else task
        mismatch = task_mismatch_note(task, [(c.label, setting[c.key])
                                             for c in columns if (c.key, task) in runs_by])
        if mismatch:
            task_notes.append(mismatch)
            heading += " — models not run alike: see the notes"
        if rows:
            groups.append(SummaryGroup(heading, rows))
    _note_cells(groups, columns)
    labels = {c.key: " · ".join(x for x in (c.model_label, c.setting) if x) for c in columns}
    column_of = {id(r): c.key for c in columns for r in by_column[c.key]}
    flagged = [FlaggedRun(labels.get(column_of.get(id(r), ""), model_key(r)), _task_name(r), _seed_text(r),
                          str(r.get("run_id")), baseline_view.flags(r)) for r in results if baseline_view.flags(r)]
    settings_notes = list(dict.fromkeys(f"{c.marker}: {'; '.join(c.notes)}" for c in columns if c.marker))
    notes = list(NOTES) + ([BASELINE_NOTE] if any_baseline else []) + ([FLAGS_NOTE] if any_flags else [])
    notes += [f"Settings that differ from the paper's: {n}" for n in settings_notes] + task_notes
    return SuiteTable(columns, groups, len(results), _count_statuses(results), unreadable, notes=notes,
                      duplicates=duplicates, flagged=flagged)


def _columns(results: Sequence[Mapping]) -> tuple[list[ModelColumn], dict[str, list[Mapping]], dict[str, Any]]:
    """The columns (one per model and setting, see :func:`~orchestrator.report.grouping.setting_columns`),
    ``{column key: its runs}`` and ``{column key: its Setting}``."""
    split = setting_columns(results)
    display: dict[str, str] = {}
    for r in results:
        display.setdefault(model_key(r), _text(dig(r, "model", "display_name"), model_key(r)))
    repeated = Counter(display.values())
    markers: dict[str, str] = {}
    columns, by_column, setting = [], {}, {}
    for sc in split:
        name = display[sc.model]
        if repeated[name] > 1 and name != sc.model:  # two models with one display name: tell them apart
            name = f"{name} ({sc.model})"
        notes = paper_differences(sc.setting)
        marker = markers.setdefault("; ".join(notes), f"†{len(markers) + 1}") if notes else ""
        label = " · ".join(x for x in (name, sc.label) if x) + (f" {marker}" if marker else "")
        columns.append(ModelColumn(sc.model, label, sc.tasks, len(sc.runs), _count_statuses(sc.runs), key=sc.key,
                                   model_label=name, setting=sc.label, notes=notes, marker=marker))
        by_column[sc.key] = sc.runs
        setting[sc.key] = sc.setting
    return columns, by_column, setting


def _resource_rows(task: str, columns: Sequence[ModelColumn],
                   runs_by: Mapping[tuple[str, str], list[Mapping]]) -> list[SummaryRow]:
    """The resource rows of ``task``: per column, mean ± std over its runs on that task only."""
    rows = []
    for label, key, family, agg, fmt in _resource_specs():
        getter = (lambda k, f, a: lambda r: resource_value(r, k, f, a)[0])(key, family, agg)
        full = f"{task} · {label}"
        cells = [_stat_cell(runs_by.get((c.key, task), []), getter, fmt, full, _resource_missing(key, family))
                 for c in columns]
        rows.append(SummaryRow(full, label, cells, task=task,
                               title="mean ± std over the ok seeds of the column on this task (never over tasks)"))
    return rows


def _note_cells(groups: Sequence[SummaryGroup], columns: Sequence[ModelColumn]) -> None:
    """Append each column's settings notes to the tooltips of its value cells (an ``n/a`` cell's
    tooltip is its Markdown footnote: kept to the reason)."""
    for group in groups:
        for row in group.rows:
            for column, cell in zip(columns, row.cells):
                if column.notes and cell.kind in ("value", "range"):
                    cell.title = (cell.title or row.label) + f"; settings {column.marker}: " + "; ".join(column.notes)


def _md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell: no raw HTML, no column breaks, one line."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown(table: SuiteTable, title: str = "mateval summary") -> str:
    """The Markdown text of ``table`` (see :func:`write_markdown`)."""
    lines = [f"# {_md_escape(title)}", "", _md_escape(table.header) + ".", ""]
    if not table.columns:
        lines += ["No readable runs.", ""]
    else:
        footnotes: dict[str, int] = {}
        head = ["Metric", *(_md_escape(f"{c.label} ({_plural(c.n_runs, 'run')})") for c in table.columns)]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" + "---:|" * len(table.columns))
        for row in table.rows:
            cells = []
            for cell in row.cells:
                text = _md_escape(cell.text)
                if cell.kind == "na" and cell.title:
                    n = footnotes.setdefault(cell.title, len(footnotes) + 1)
                    text += f" [^{n}]"
                cells.append(text)
            lines.append("| " + " | ".join([_md_escape(row.label), *cells]) + " |")
        lines.append("")
        lines += [f"- {_md_escape(note)}" for note in table.notes]
        if footnotes:
            lines.append("")
            lines += [f"[^{n}]: {_md_escape(reason)}" for reason, n in footnotes.items()]
        lines.append("")
    if table.flagged:
        lines += ["Flagged results (degenerate; found by the scoring stage):", ""]
        for run in table.flagged:
            for flag in run.flags:
                lines.append(f"- ⚠ **{_md_escape(run.model)}** on {_md_escape(run.task)}, seed {_md_escape(run.seed)} "
                             f"(`{_md_escape(run.run_id).replace('`', '')}`): `{_md_escape(flag['code'])}`: "
                             f"{_md_escape(flag['message'])}")
        lines.append("")
    if table.duplicates:
        lines += ["Repeated runs of the same model, task, seed, configuration and data (counted once: the "
                  "last ok run):", ""]
        lines += [f"- `{_md_escape(kept)}` counted; not counted: "
                  + ", ".join(f"`{_md_escape(r)}`" for r in left) for kept, left in table.duplicates]
        lines.append("")
    if table.unreadable:
        lines += ["Unreadable results (not included):", ""]
        lines += [f"- `{_md_escape(d).replace('`', '')}`: {_md_escape(e)}" for d, e in table.unreadable]
        lines.append("")
    return "\n".join(lines)


def write_markdown(table: SuiteTable, path: Path, title: str = "mateval summary") -> Path:
    """Write ``table`` as ``summary.md``: a title, a header line (runs, models, tasks, statuses), a
    Markdown table (one row per :class:`SummaryRow`, one column per model and setting) and the notes; an ``n/a``
    cell gets a footnote with its reason. Text from results is escaped (no raw HTML, no ``|``).

    The file is written atomically (parent directories are created); returns ``path``.

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, markdown(table, title))
    return path


def _csv_value(v: Any) -> str:
    if not is_num(v):
        return ""
    return str(int(v)) if isinstance(v, int) else repr(float(v))


def _csv_safe(text: Any) -> str:
    """A text field that a spreadsheet will not evaluate as a formula."""
    s = "" if text is None else str(text)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def csv_rows(loaded: Runs) -> list[dict[str, str]]:
    """The rows of :func:`write_csv` as dicts keyed by :data:`CSV_COLUMNS`."""
    records = _records(loaded)
    results = [r.result for r in records if r.ok]  # every run, repeats included: one row per run
    layout = {task: (task_type, unit, names) for task, task_type, unit, names in _task_layout(results)}
    rows: list[dict[str, str]] = []
    for record in records:
        directory, result = record.directory, record.result
        if result is None:
            rows.append({"run_id": _csv_safe(Path(str(directory)).name), "model": "", "task": "", "seed": "",
                         "status": "unreadable", "metric": "", "value": "", "unit": "", "settings": ""})
            continue
        base = {"run_id": _csv_safe(_text(result.get("run_id"), Path(str(directory)).name)),
                "model": _csv_safe(_text(dig(result, "model", "display_name"), model_key(result))),
                "task": _csv_safe(_task_name(result)), "seed": _csv_value(result.get("seed")),
                "status": _csv_safe(_status(result)), "settings": _csv_safe(settings_text(result))}
        for label, key, family, agg, _ in _resource_specs():
            rows.append({**base, "metric": label, "value": _csv_value(resource_value(result, key, family, agg)[0]),
                         "unit": _label_unit(label)})
        rows.append({**base, "metric": PARAMS_LABEL, "value": _csv_value(_params(result)), "unit": ""})
        rows.append({**base, "metric": FLOPS_LABEL, "value": _csv_value(_flops(result)), "unit": "FLOP"})
        task_type, unit, names = layout[_task_name(result)]
        has_baseline = baseline_view.baseline_block(result) is not None
        for name in names:
            _, row_unit, _ = metric_presentation(task_type, name, unit)
            value = _metrics(result).get(name)
            rows.append({**base, "metric": _csv_safe(name), "value": _csv_value(value), "unit": _csv_safe(row_unit)})
            if has_baseline:
                base_value = baseline_view.baseline_metric(result, name)
                rows.append({**base, "metric": _csv_safe(f"{name} baseline"), "value": _csv_value(base_value),
                             "unit": _csv_safe(row_unit)})
                rows.append({**base, "metric": _csv_safe(f"{name} ÷ baseline"),
                             "value": _csv_value(baseline_view.ratio(value, base_value)), "unit": ""})
        for code in baseline_view.flag_codes(result):
            rows.append({**base, "metric": _csv_safe(f"flag {code}"), "value": "1", "unit": ""})
    return rows


def write_csv(loaded: Runs, path: Path) -> Path:
    """Write ``summary.csv``: tidy data, one row per run and metric.

    Columns: ``run_id, model, task, seed, status, metric, value, unit, settings``; ``settings``
    (:func:`~orchestrator.report.grouping.settings_text`: profile, data variant, sample limits and
    the hyperparameters that differ from the paper's) tells runs that must not be averaged together. ``metric`` is a resource
    row label (as in the table, e.g. ``Duration (s)``), ``Params``, ``Forward FLOPs / sample`` or a
    metric key of the run's task (every metric reported by any run of that task, so failed runs
    get rows too), for a run with a trivial baseline also ``<metric> baseline`` (the baseline's
    value) and ``<metric> ÷ baseline`` (the ratio; empty when the baseline is not above 0), and
    ``flag <code>`` (value 1) for each flag the run raised; ``model`` is the display name;
    ``value`` is the full-precision number, empty when missing (null metric, failed run, not
    measured). An unreadable result gives one row with status ``unreadable`` and no metric. Text cells that a spreadsheet would take for a formula
    are prefixed with ``'``. The file is written atomically; returns ``path``.

    Raises:
        OSError: the file cannot be written.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(loaded))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())
    return path


def write_summaries(loaded: Runs, directory: Path) -> tuple[Path, Path]:
    """Write ``directory/summary.md`` and ``directory/summary.csv`` for ``loaded``; returns both paths.

    Raises:
        OSError: a file cannot be written.
    """
    import fcntl

    loaded = _records(loaded)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".summary.lock", "w") as lock:  # two suites in one directory: one at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        md = write_markdown(aggregate(loaded), directory / MARKDOWN_FILE)
        return md, write_csv(loaded, directory / CSV_FILE)
