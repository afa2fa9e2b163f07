"""The per-run comparison table (runs as columns): resources, model size and cost, the run's
settings (so that runs with other settings are not read as seeds of one another), then the
metrics grouped as the task types' report sections say, labelled, unitized, formatted and
defined from :mod:`metrics.catalogue`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from metrics import catalogue

from .grouping import paper_differences, setting_of
from .sections import section_for
from .formatting import (as_dict, dig, format_count, format_fixed, format_flops, is_num, metric_definition,
                         metric_entry, metric_formatter, metric_label, metric_unit)
from .resources import RESOURCE_ROWS, resource_keys, resource_value, unavailable_reason
from .views import Cell, Row, RowGroup, RunView, status_cell

__all__ = ["comparison_groups"]


def _resource_cell(run: RunView, key: str, family: str, agg: str, fmt: Callable[[float], str]) -> Cell:
    phases = as_dict(dig(run.result, "resources", "phases"))
    value, gpus = resource_value(run.result, key, family, agg)
    keys = resource_keys(key, family, gpus)
    if value is not None:
        title = repr(value)
        if family == "gpu" and len(gpus) > 1:
            title += f" ({'mean' if agg == 'mean' else 'sum'} over GPUs {', '.join(str(i) for i in gpus)})"
        elif key == "duration (s)":
            parts = [f"{name}: {format_fixed(1)(dig(block, key))} s"
                     for name, block in phases.items() if is_num(dig(block, key))]
            if parts:
                title = " · ".join(parts)
        return Cell(fmt(value), title, "num")
    reason = unavailable_reason(run.result, keys, family)
    if reason:
        return Cell("n/a", reason, "na")
    if run.status != "ok":
        return status_cell(run, "value")
    if family == "gpu":
        return Cell("n/a", "no GPU metric recorded for this run (no GPU or telemetry off)", "na")
    return Cell("n/a", f"'{key}' not recorded in result.json", "na")


def _model_rows(runs: Sequence[RunView]) -> list[Row]:
    def stat_cell(run: RunView, value: Any, fmt: Callable[[float], str], exact: str, missing: str | None) -> Cell:
        if is_num(value):
            return Cell(fmt(value), exact.format(value), "num")
        if missing is None and run.status != "ok":
            return status_cell(run, "value")
        return Cell("n/a", missing or "not counted", "na")

    def stats_error(run: RunView, sub: str | None = None) -> str | None:
        ms = as_dict(run.result.get("model_stats"))
        if sub:
            err = dig(ms, sub, "error")
            if err:
                return f"not counted: {err}"
        if ms.get("error"):
            return f"not counted: {ms['error']}"
        return None

    return [
        Row("Params", [stat_cell(r, dig(r.result, "model_stats", "params"), format_count, "{:,} parameters",
                                 stats_error(r)) for r in runs]),
        Row("Forward FLOPs / sample", [
            stat_cell(r, dig(r.result, "model_stats", "flops", "forward_per_sample"), format_flops,
                      "{:,} FLOP per sample (forward)", stats_error(r, "flops")) for r in runs]),
        Row("Training FLOPs / epoch", [
            stat_cell(r, dig(r.result, "model_stats", "flops", "train_per_epoch"), format_flops,
                      "{:,} FLOP per training epoch (forward + backward)", stats_error(r, "flops")) for r in runs]),
    ]


def _settings_rows(runs: Sequence[RunView]) -> list[Row]:
    """What each run was run with: its hyperparameter profile, the values that differ from the
    paper's, the data variant and the sample limits (runs that differ here are not comparable seeds)."""
    settings = [setting_of(r.result) for r in runs]

    def text_cell(value: str | None, title: str | None = None, dim_when: str = "") -> Cell:
        if not value:
            return Cell("—", "not recorded in result.json", "dim")
        return Cell(value, title, "dim" if value == dim_when else "")

    changed = []
    for s in settings:
        items = [f"{k} {v.get('used')} (paper {v.get('paper')})" for k, v in s.overridden.items() if isinstance(v, dict)]
        changed.append(Cell(", ".join(items), "; ".join(paper_differences(s)) or None) if items
                       else Cell("none", "the paper's hyperparameters", "dim") if s.hyperparameters is not None
                       else Cell("—", "hyperparameters not recorded (the run ended before the model stage)", "dim"))
    return [
        Row("Hyperparameter profile", [text_cell(s.profile, "bench: model.yaml's bench_hyperparameters; paper: "
                                                 "the paper's defaults", "paper") for s in settings]),
        Row("Differs from the paper", changed, "hyperparameters whose value differs from the paper default"),
        Row("Data variant", [text_cell(s.variant, None, "full") for s in settings]),
        Row("Max samples", [Cell(", ".join(f"{k}={v}" for k, v in s.max_samples.items()), "--max-samples")
                            if s.max_samples else Cell("none", "every sample of the variant", "dim")
                            for s in settings]),
    ]


def _reported(runs: Sequence[RunView]) -> list[str]:
    """Metric keys reported by ``runs``, in order of first appearance."""
    names: list[str] = []
    for r in runs:
        for k in as_dict(r.result.get("metrics")):
            if k not in names:
                names.append(k)
    return names


class _Group:
    """One group of metric rows: the task types whose sections share a heading."""

    def __init__(self, heading: str, order: int) -> None:
        self.heading, self.order = heading, order
        self.task_types: list[str] = []
        self.show_all = False

    def entry(self, name: str) -> catalogue.MetricEntry | None:
        for t in self.task_types:
            if (e := metric_entry(t, name)) is not None:
                return e
        return None

    def catalogue_names(self) -> list[str]:
        return list(dict.fromkeys(n for t in self.task_types for n in catalogue.names(t)))


def _groups(runs: Sequence[RunView]) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for r in runs:
        section = section_for(r.task_type)
        g = groups.setdefault(section.metric_group, _Group(section.metric_group, section.metric_group_order))
        if r.task_type not in g.task_types:
            g.task_types.append(r.task_type)
        g.show_all = g.show_all or section.show_all_metrics
    known = catalogue.task_types()
    for g in groups.values():  # catalogue order (regression before classification), then the others
        g.task_types.sort(key=lambda t: known.index(t) if t in known else len(known))
    return sorted(groups.values(), key=lambda g: (g.order, g.heading))


def _foreign(run: RunView, group: _Group) -> bool:
    """A run of another group whose section keeps its metrics apart (``see_also``) or whose metric
    names collide with this group's (a spectrum MAE is not a regression MAE): its cells in this
    group are left empty even if it has a value."""
    if run.task_type in group.task_types:
        return False
    if section_for(run.task_type).see_also:  # its metrics are shown in its own group only
        return True
    own = set(catalogue.names(run.task_type))
    return bool(own & set(group.catalogue_names()))


def _other_task_metric(run: RunView, name: str) -> bool:
    """True when ``name`` is a catalogue metric of another task type than the run's."""
    own = catalogue.names(run.task_type)
    return bool(own) and name not in own and any(name in catalogue.names(t) for t in catalogue.task_types())


def _metric_rows(runs: Sequence[RunView], group: _Group, names: Sequence[str]) -> list[Row]:
    group_runs = [r for r in runs if r.task_type in group.task_types]
    rows = []
    for name in names:
        entry = group.entry(name)
        units = {metric_unit(entry, r.unit) for r in group_runs if name in as_dict(r.result.get("metrics"))}
        shared_unit = units.pop() if len(units) == 1 else None
        if entry is not None and entry.unit is not None and entry.unit not in catalogue.UNITS:
            shared_unit = entry.unit  # a literal unit: the same for every run
        per_run_unit = entry is not None and entry.unit in catalogue.UNITS and shared_unit is None
        label = metric_label(entry, name, "" if per_run_unit else shared_unit or "")
        fmt = metric_formatter(entry)
        cells = []
        for r in runs:
            metrics = as_dict(r.result.get("metrics"))
            value = metrics.get(name)
            if _foreign(r, group):
                see = section_for(r.task_type).see_also
                cells.append(Cell("—", f"{label} is not reported for {r.task_type or 'this'} tasks"
                                       + (f" (see {see})" if see else ""), "dim"))
            elif is_num(value):
                text = fmt(value)
                unit = metric_unit(entry, r.unit) if per_run_unit else None
                cells.append(Cell(f"{text} {unit}" if unit else text, repr(value), "num"))
            elif r.status != "ok" and not _other_task_metric(r, name):
                cells.append(status_cell(r, label))
            elif name in metrics:
                cells.append(Cell("n/a", f"{label} could not be computed for this run (stored as null)", "na"))
            elif r.task_type in group.task_types and group.show_all and name in catalogue.names(r.task_type):
                cells.append(Cell("n/a", f"{label} not recorded in result.json", "na"))
            else:
                cells.append(Cell("—", f"{label} is not reported for {r.task_type or 'this'} tasks", "dim"))
        rows.append(Row(label, cells, metric_definition(entry, [r.result for r in group_runs])))
    return rows


def comparison_groups(runs: Sequence[RunView]) -> list[RowGroup]:
    """The row groups of the comparison table of ``runs``: resources, model, settings (profile,
    hyperparameters that differ from the paper's, data variant, sample limits), then one group of
    metric rows per section heading (catalogue metrics in catalogue order, then other reported
    keys in alphabetical order)."""
    resources = [Row(label, [_resource_cell(r, key, fam, agg, fmt) for r in runs])
                 for label, key, fam, agg, fmt in RESOURCE_ROWS]
    out = [RowGroup("Resources", resources), RowGroup("Model", _model_rows(runs)),
           RowGroup("Settings", _settings_rows(runs))]
    for group in _groups(runs):
        reported = _reported([r for r in runs if r.task_type in group.task_types])
        known = group.catalogue_names()
        listed = known if group.show_all else [n for n in known if n in reported]
        names = listed + sorted(n for n in reported if n not in known)
        if names:
            out.append(RowGroup(group.heading, _metric_rows(runs, group, names)))
    return out
