"""Accuracy against cost: the figure the HTML report opens with, one per task.

For every task, each model's main metric (:func:`metrics.catalogue.main_metric` of the task type;
mean over the model's ``ok`` runs on the task, error bar ± the sample standard deviation over
seeds when there are several) is drawn against what it cost, in up to four small panels that share
the metric axis:

- training time: ``resources.phases.train["duration (s)"]`` (seconds of the train phase);
- GPU energy of training: ``resources.phases.train["gpu:<N>/energy (J)"]`` summed over the GPUs
  (the panel is left out when no run recorded one);
- parameters: ``model_stats.params``;
- forward FLOPs per sample: ``model_stats.flops.forward_per_sample``.

Each panel draws the Pareto front (:func:`pareto_front`: the best metric reached for at most that
cost) as a step line and the trivial baseline (``result["baseline"]``, :mod:`.baseline`; its mean
over the same runs) as a horizontal dashed line. The x axis is logarithmic when the values span two
decades or more. A task with no cost recorded gets a note instead of a figure.

Text from results (model display names, the task name) reaches the SVG in two ways only: as the
text of matplotlib ``<text>`` elements, which matplotlib XML-escapes (drawn with
``parse_math=False``, so a ``$`` is not read as mathtext), and in the ``<title>``/``<desc>`` this
module adds, escaped with :func:`html.escape`.

Runs are counted as the summary counts them (:func:`orchestrator.report.summary.deduplicate`: a
repeated computation once) and grouped by ``model.name`` (:func:`orchestrator.report.pages.model_key`).
"""

from __future__ import annotations

import html
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import matplotlib
from matplotlib.ticker import EngFormatter, MaxNLocator

from metrics import catalogue
from orchestrator.reader import RunRecord

from . import baseline as baseline_view
from .formatting import dig, format_count, format_flops, is_num, metric_presentation, sig3
from .pages import model_key
from .plots import _RC, _new_figure, _svg_from_figure
from .resources import gpu_combined
from .grouping import deduplicate

__all__ = ["CostAxis", "COST_AXES", "ModelPoint", "Panel", "TaskTradeoff", "pareto_front", "task_tradeoffs",
           "tradeoff_svg", "NO_COST_NOTE", "TRADEOFF_NOTE"]

#: The note of a task whose runs recorded none of the costs.
NO_COST_NOTE = ("No cost recorded for this task: none of its ok runs has a training time, a GPU energy, a "
                "parameter count or a FLOP count, so there is no accuracy-against-cost figure.")
#: What the figures show (under the heading of the section).
TRADEOFF_NOTE = ("One marker per model: the mean of the task's main metric over the model's ok runs (error bars: "
                 "± sample standard deviation over seeds, when there are several) against its cost. Step line: the "
                 "Pareto front (the best metric reached for at most that cost). Dashed line: the trivial baseline "
                 "(mean over the same runs). Training time and GPU energy are those of the train phase; FLOPs are "
                 "one forward pass per sample. Log x axis where the values span two decades or more.")

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
_BASELINE_COLOUR = "#b3261e"
_FRONT_COLOUR = "#333333"
#: Span (max / min) from which the x axis is logarithmic.
LOG_SPAN = 100.0


def _train_time(result: Mapping) -> float | None:
    value = dig(result, "resources", "phases", "train", "duration (s)")
    return float(value) if is_num(value) else None


def _train_energy(result: Mapping) -> float | None:
    block = dig(result, "resources", "phases", "train")
    value, _ = gpu_combined(block, "energy (J)", "sum") if isinstance(block, Mapping) else (None, [])
    return value


def _params(result: Mapping) -> float | None:
    value = dig(result, "model_stats", "params")
    return float(value) if is_num(value) else None


def _flops(result: Mapping) -> float | None:
    value = dig(result, "model_stats", "flops", "forward_per_sample")
    return float(value) if is_num(value) else None


def _seconds(v: float) -> str:
    return f"{sig3(v)} s"


def _joules(v: float) -> str:
    text = format_count(v)
    return f"{text}J" if text[-1:].isalpha() else f"{text} J"


@dataclass(frozen=True)
class CostAxis:
    """One cost a panel puts on its x axis.

    Attributes:
        key: ``"time"``, ``"energy"``, ``"params"`` or ``"flops"``.
        label: the x-axis label, with its unit.
        get: the value of one result (``None`` when not recorded), never raises.
        fmt: the value as text (``"12.3 s"``, ``"1.23 M"``).
        name: the cost in words, for the text alternative (``"training time"``).
        missing: what a model without a value lacks (``"no training time recorded"``).
        spread: whether the value varies between seeds (error bars in x).
    """

    key: str
    label: str
    name: str
    get: Callable[[Mapping], float | None]
    fmt: Callable[[float], str]
    missing: str
    spread: bool


#: The cost axes, in panel order.
COST_AXES: tuple[CostAxis, ...] = (
    CostAxis("time", "Training time (s)", "training time", _train_time, _seconds,
             "no training time recorded", True),
    CostAxis("energy", "GPU energy, training (J)", "GPU energy of training", _train_energy, _joules,
             "no GPU energy recorded", True),
    CostAxis("params", "Parameters", "parameters", _params, format_count, "no parameter count", False),
    CostAxis("flops", "Forward FLOPs / sample", "forward FLOPs per sample", _flops, format_flops,
             "no FLOP count", False),
)


@dataclass
class ModelPoint:
    """One model on one task: its main metric and costs, each a mean over its ok runs there.

    Attributes:
        model: ``model.name`` (the grouping key).
        label: the display name (``"name (key)"`` when two models share one).
        n: ok runs with a value of the metric.
        metric, metric_std: mean and sample standard deviation (``None`` when ``n < 2``).
        costs, cost_std: per :attr:`CostAxis.key`, the mean (absent: no run recorded it) and the
            sample standard deviation (``None`` with fewer than two values).
    """

    model: str
    label: str
    n: int
    metric: float
    metric_std: float | None
    costs: dict[str, float] = field(default_factory=dict)
    cost_std: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Panel:
    """One panel of a task's figure: ``axis`` (the cost), ``log_x``, the labels of the models
    ``drawn`` and of those left out (``missing``: no value for this cost), and the labels on the
    Pareto ``front``, by increasing cost."""

    axis: CostAxis
    log_x: bool
    drawn: list[str]
    missing: list[str]
    front: list[str]


@dataclass
class TaskTradeoff:
    """The accuracy-against-cost figure of one task.

    Attributes:
        task, task_type: the task's name and type.
        metric: the key of its main metric; ``metric_label`` the label with the unit
            (``"MAE (eV/atom)"``); ``direction`` ``"lower"`` or ``"higher"`` (which is better).
        points: one per model with an ok run and a value of the metric.
        baseline: the trivial baseline's mean value of the metric over the same runs (``None``: none
            recorded); ``baseline_predictor`` what it predicts.
        panels: one per cost recorded by at least one model, in :data:`COST_AXES` order.
        svg: the figure (``None`` with a ``note``); ``description`` its text alternative.
        note: why there is no figure, or what is left out of it.
        fmt: the metric's formatter (from the catalogue).
    """

    task: str
    task_type: str
    metric: str
    metric_label: str
    direction: str
    points: list[ModelPoint]
    baseline: float | None = None
    baseline_predictor: str | None = None
    panels: list[Panel] = field(default_factory=list)
    svg: str | None = None
    description: str = ""
    note: str | None = None
    fmt: Callable[[float], str] = field(default=sig3, repr=False)

    @property
    def direction_text(self) -> str:
        """``"lower is better"`` or ``"higher is better"``."""
        return f"{self.direction} is better"

    @property
    def title(self) -> str:
        """One line naming the task, the metric and its direction."""
        return f"{self.task}: {self.metric_label} ({self.direction_text}) against cost"


def pareto_front(points: Sequence[tuple[float, float]], lower_is_better: bool) -> list[int]:
    """Indices of the Pareto-optimal ``(cost, metric)`` points, by increasing cost.

    A point is on the front when no other point costs at most as much and has a metric at least as
    good, one of the two strictly: reading the front by increasing cost gives the best metric
    reached for at most that cost, each step strictly better than the last. Of identical points the
    first is kept; of points with equal cost only the best. Lower cost is always better; the metric
    is better when lower (``lower_is_better``) or higher.

    Args:
        points: ``(cost, metric)`` pairs of finite numbers.
        lower_is_better: the metric's direction (:attr:`metrics.catalogue.MetricEntry.direction`).

    Returns:
        Indices into ``points`` (``[]`` for no points).

    Raises:
        ValueError: a cost or a metric is not a finite number (naming its index).
    """
    for i, (cost, metric) in enumerate(points):
        if not (is_num(cost) and is_num(metric)):
            raise ValueError(f"pareto_front: point {i} is not a pair of finite numbers: {(cost, metric)!r}")
    sign = 1.0 if lower_is_better else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], sign * points[i][1], i))
    front: list[int] = []
    best = math.inf
    for i in order:
        score = sign * points[i][1]
        if score < best:
            front.append(i)
            best = score
    return front


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _label_models(results: Sequence[Mapping]) -> dict[str, str]:
    """``{model.name: label}``: the display name, ``"display (name)"`` when two models share one."""
    labels: dict[str, str] = {}
    for r in results:
        key = model_key(r)
        if key not in labels:
            display = dig(r, "model", "display_name")
            labels[key] = display if isinstance(display, str) and display else key
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {k: (f"{v} ({k})" if counts[v] > 1 and v != k else v) for k, v in labels.items()}


def _task_points(runs: Sequence[Mapping], metric: str, labels: Mapping[str, str]) -> list[ModelPoint]:
    by_model: dict[str, list[Mapping]] = {}
    for r in runs:
        if r.get("status") == "ok" and is_num(dig(r, "metrics", metric)):
            by_model.setdefault(model_key(r), []).append(r)
    points = []
    for key, model_runs in by_model.items():
        mean, std = _mean_std([float(r["metrics"][metric]) for r in model_runs])
        point = ModelPoint(key, labels.get(key, key), len(model_runs), mean, std)
        for axis in COST_AXES:
            values = [v for r in model_runs if (v := axis.get(r)) is not None]
            if values:
                point.costs[axis.key], point.cost_std[axis.key] = _mean_std(values)
        points.append(point)
    return points


def _baseline(runs: Sequence[Mapping], metric: str) -> tuple[float | None, str | None]:
    """The baseline's mean of ``metric`` over the ok runs with a value of it, and its predictor."""
    used = [r for r in runs if r.get("status") == "ok" and is_num(dig(r, "metrics", metric))]
    values = [v for r in used if (v := baseline_view.baseline_metric(r, metric)) is not None]
    predictors = [str(b.get("predictor")) for r in used if (b := baseline_view.baseline_block(r))
                  and b.get("predictor")]
    return (statistics.fmean(values) if values else None), (predictors[0] if predictors else None)


def _panels(points: Sequence[ModelPoint], lower_is_better: bool) -> list[Panel]:
    panels = []
    for axis in COST_AXES:
        drawn = [p for p in points if axis.key in p.costs]
        if not drawn:
            continue
        xs = [p.costs[axis.key] for p in drawn]
        log_x = min(xs) > 0 and max(xs) / min(xs) >= LOG_SPAN
        front = pareto_front([(p.costs[axis.key], p.metric) for p in drawn], lower_is_better)
        panels.append(Panel(axis, log_x, [p.label for p in drawn],
                            [p.label for p in points if axis.key not in p.costs], [drawn[i].label for i in front]))
    return panels


def _describe(t: TaskTradeoff) -> str:
    """The text alternative of the figure: every number it shows."""
    parts = [t.title + "."]
    if t.baseline is not None:
        parts.append(f"Trivial baseline: {t.fmt(t.baseline)}.")
    for p in t.points:
        value = t.fmt(p.metric) + (f" ± {t.fmt(p.metric_std)}" if p.metric_std is not None else "")
        costs = [f"{axis.name} {axis.fmt(p.costs[axis.key])}" for axis in COST_AXES if axis.key in p.costs]
        parts.append(f"{p.label}: {value} over {p.n} ok run{'s' if p.n != 1 else ''}"
                     + (f"; {', '.join(costs)}" if costs else "; no cost recorded") + ".")
    for panel in t.panels:
        parts.append(f"Pareto front by {panel.axis.name}: {', '.join(panel.front)}.")
    return " ".join(parts)


def _with_title(svg: str, title: str, desc: str, anchor: str) -> str:
    """``svg`` with ``<title>``/``<desc>`` as its first children and ``role="img"`` labelled by them."""
    ids = f"{anchor}-title {anchor}-desc"
    svg = re.sub(r"^<svg\b", f'<svg role="img" aria-labelledby="{ids}"', svg, count=1)
    end = svg.index(">") + 1
    return (svg[:end] + f'<title id="{anchor}-title">{html.escape(title)}</title>'
            f'<desc id="{anchor}-desc">{html.escape(desc)}</desc>' + svg[end:])


#: Longest model label drawn next to a marker (longer ones are cut with "…"; the full name is in the
#: figure's caption and text alternative).
MAX_LABEL = 28


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1].rstrip() + "…"


def _draw_panel(ax, panel: Panel, t: TaskTradeoff, colours: Mapping[str, str]) -> None:
    """One cost panel: a marker (with error bars) and a label per model, the front, the baseline."""
    key = panel.axis.key
    drawn = sorted((p for p in t.points if key in p.costs), key=lambda p: (p.costs[key], p.metric))
    for i, p in enumerate(drawn):
        xerr = p.cost_std.get(key) if panel.axis.spread else None
        ax.errorbar([p.costs[key]], [p.metric], yerr=None if p.metric_std is None else [p.metric_std],
                    xerr=None if xerr is None else [xerr], fmt="o", ms=6, color=colours[p.model],
                    mec="black" if p.label in panel.front else colours[p.model], mew=1.2, capsize=3, zorder=3)
        # neighbours by cost alternate above and below their marker, so that close labels do not overlap
        ax.annotate(_short(p.label), (p.costs[key], p.metric), xytext=(5, 5 if i % 2 == 0 else -11),
                    textcoords="offset points", fontsize=7, color="#1d232b", parse_math=False,
                    annotation_clip=False, zorder=4)
    front = sorted((p for p in drawn if p.label in panel.front), key=lambda p: p.costs[key])
    if len(drawn) > 1:  # one model alone is its own front: no line to draw
        right = max(p.costs[key] for p in drawn)
        ax.step([p.costs[key] for p in front] + [right], [p.metric for p in front] + [front[-1].metric],
                where="post", color=_FRONT_COLOUR, lw=1.1, alpha=0.8, zorder=2, label="Pareto front")
    if t.baseline is not None:
        ax.axhline(t.baseline, color=_BASELINE_COLOUR, ls="--", lw=1.1, zorder=1, label="trivial baseline")
    if panel.log_x:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if key != "time":
            ax.xaxis.set_major_formatter(EngFormatter(sep=" "))
    ax.set_xlabel(panel.axis.label)
    ax.margins(x=0.25, y=0.2)


def tradeoff_svg(t: TaskTradeoff, anchor: str) -> str:
    """Draw ``t`` (its :attr:`~TaskTradeoff.panels`, at least one) as one inline ``<svg>``: one
    panel per cost side by side, sharing the metric axis, with ``<title>``/``<desc>`` (ids
    ``<anchor>-title`` / ``<anchor>-desc``).

    Raises:
        ValueError: ``t`` has no panel.
    """
    if not t.panels:
        raise ValueError(f"task {t.task!r}: no cost recorded, nothing to draw")
    lower = t.direction == "lower"
    colours = {p.model: _COLOURS[i % len(_COLOURS)] for i, p in enumerate(t.points)}
    k = len(t.panels)
    with matplotlib.rc_context(_RC):
        fig = _new_figure(width=2.7 * k + 0.6, height=2.9)
        axes = fig.subplots(1, k, sharey=True, squeeze=False)[0]
        for ax, panel in zip(axes, t.panels):
            _draw_panel(ax, panel, t, colours)
        axes[0].set_ylabel(f"{t.metric_label}\n({t.direction_text} {'↓' if lower else '↑'})", parse_math=False)
        if axes[0].get_legend_handles_labels()[0]:  # a front line or a baseline to explain
            axes[0].legend(loc="best", frameon=False, fontsize=7)
        fig.suptitle(t.task, fontsize=10, parse_math=False)
        fig.tight_layout()
    return _with_title(_svg_from_figure(fig), t.title, t.description, anchor)


def _task_tradeoff(task: str, runs: Sequence[Mapping], labels: Mapping[str, str], index: int) -> TaskTradeoff:
    ordered = sorted(runs, key=lambda r: r.get("status") != "ok")
    task_type = next((t for r in ordered if isinstance(t := r.get("task_type"), str) and t), "")
    unit = next((u for r in ordered if isinstance(u := dig(r, "task", "unit"), str) and u), None)
    try:
        metric = catalogue.main_metric(task_type)
    except KeyError:
        return TaskTradeoff(task, task_type, "", "", "lower", [],
                            note=f"Task type {task_type or '?'!r} has no main metric in the metric catalogue.")
    entry = catalogue.entry(task_type, metric)
    label, _, fmt = metric_presentation(task_type, metric, unit)
    points = _task_points(runs, metric, labels)
    base, predictor = _baseline(runs, metric)
    t = TaskTradeoff(task, task_type, metric, label, entry.direction, points, base, predictor, fmt=fmt)
    if not points:
        t.note = f"No ok run of this task has a value of {label}: nothing to draw."
        return t
    t.panels = _panels(points, entry.direction == "lower")
    if not t.panels:
        t.note = NO_COST_NOTE
        t.description = _describe(t)
        return t
    t.description = _describe(t)
    left_out = [f"{label_} ({panel.axis.missing})" for panel in t.panels for label_ in panel.missing]
    if left_out:
        t.note = "Not drawn in every panel: " + "; ".join(dict.fromkeys(left_out)) + "."
    t.svg = tradeoff_svg(t, f"tradeoff-{index}")
    return t


def task_tradeoffs(records: Sequence[RunRecord | Mapping[str, Any]]) -> list[TaskTradeoff]:
    """One :class:`TaskTradeoff` per task of ``records``, in order of first appearance.

    Args:
        records: runs as :func:`orchestrator.reader.read_runs` returns them (unreadable ones are
            skipped), or result dicts.

    Returns:
        The tasks' figures; a task whose figure cannot be drawn carries a ``note`` saying why
        (no main metric, no ok run with a value, no cost recorded, or the drawing's exception).
    """
    results = [r.result if isinstance(r, RunRecord) else r for r in records
               if (r.ok if isinstance(r, RunRecord) else isinstance(r, Mapping))]
    results, _ = deduplicate([r for r in results if isinstance(r, Mapping)])
    labels = _label_models(results)
    by_task: dict[str, list[Mapping]] = {}
    for r in results:
        name = dig(r, "task", "name")
        by_task.setdefault(name if isinstance(name, str) and name else "?", []).append(r)
    out = []
    for i, (task, runs) in enumerate(by_task.items(), start=1):
        try:
            out.append(_task_tradeoff(task, runs, labels, i))
        except Exception as exc:  # noqa: BLE001 - one odd task must not hide the others
            out.append(TaskTradeoff(task, "", "", "", "lower", [],
                                    note=f"The figure could not be drawn: {type(exc).__name__}: {exc}"))
    return out
