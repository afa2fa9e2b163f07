"""The per-model summary's data: :class:`SuiteTable` (columns by rows, grouped), its
:class:`ModelColumn` (one per model and setting), :class:`SummaryGroup`, :class:`SummaryRow` and
:class:`SummaryCell`.

Built by :func:`orchestrator.report.summary.aggregate` (see its module docstring for what a cell
means); shown by the HTML report, ``summary.md`` and the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .baseline import FlaggedRun

__all__ = ["SummaryCell", "SummaryRow", "SummaryGroup", "ModelColumn", "SuiteTable", "plural"]


def plural(n: int, word: str) -> str:
    """``"1 run"``, ``"2 runs"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class SummaryCell:
    """One column's value in one row.

    Attributes:
        text: the formatted cell, e.g. ``"0.4310 ± 0.0120 (2/3 ok)"``, ``"OOM"``, ``"n/a"``, ``"—"``.
        kind: ``"value"`` (mean ± std), ``"range"`` (params/FLOPs that differ between runs),
            ``"status"`` (no ok run), ``"na"`` (ok runs, no value) or ``"absent"`` (no run).
        mean: mean of ``values`` (``None`` without values).
        std: sample standard deviation (ddof=1) of ``values``; ``None`` with fewer than two.
        low, high: smallest and largest value (``None`` without values).
        values: the numbers aggregated, one per ok run that has one, in run order.
        n_ok: ok runs of the model (on the task for metric rows, overall otherwise).
        n_total: all runs of the model (on the task for metric rows, overall otherwise).
        status: ``kind == "status"``: the status shown (most frequent failure, lower case).
        status_counts: ``{status: count}`` over the ``n_total`` runs.
        title: a longer explanation (HTML tooltip, Markdown footnote for ``n/a``).
        css: CSS classes of the HTML cell (``num``, ``na``, ``dim``, ``status-cell st-oom``, ...).
    """

    text: str
    kind: str
    mean: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None
    values: list[float] = field(default_factory=list)
    n_ok: int = 0
    n_total: int = 0
    status: str | None = None
    status_counts: dict[str, int] = field(default_factory=dict)
    title: str | None = None
    css: str = ""
    ratio: float | None = None


@dataclass
class SummaryRow:
    """One row: ``label`` (e.g. ``"perov5_heat_ref · MAE (eV/atom)"``) and one cell per model column.

    Attributes:
        key: the metric key (``"MAE"``), the resource label or ``"params"`` / ``"flops"``; the
            metric key of a baseline row, ``"flags"`` for a flags row.
        task: the task of a metric or resource row, ``None`` for the model rows (params, FLOPs).
        title: definition of the row (HTML tooltip).
        kind: ``"baseline"`` (the trivial baseline under a metric row; cells carry the ``ratio``),
            ``"flags"`` (degenerate results of the task's runs), else ``""`` (a metric or a resource
            figure).
    """

    label: str
    key: str
    cells: list[SummaryCell]
    task: str | None = None
    title: str | None = None
    kind: str = ""


@dataclass
class SummaryGroup:
    """Rows under one heading: ``"Model"`` or one group per task."""

    name: str
    rows: list[SummaryRow]


@dataclass
class ModelColumn:
    """One model with one setting: ``name`` (``model.name``), ``label`` (heading, unique in the
    table: display name, what tells the setting from the model's others, and the settings marker),
    its tasks in order of first appearance and ``{status: count}`` over its runs.

    Attributes:
        key: unique id of the column (``name`` when the model has one setting).
        model_label: the model's display name (unique in the table).
        setting: what tells this column from the model's other ones (``"epochs=3"``), else ``""``.
        notes: how its settings differ from the paper's (``"bench settings (epochs 10 vs paper 500)"``).
        marker: the marker of ``notes`` in ``label`` and in the table's notes (``"†1"``), else ``""``.
    """

    name: str
    label: str
    tasks: list[str]
    n_runs: int
    status_counts: dict[str, int]
    key: str = ""
    model_label: str = ""
    setting: str = ""
    notes: list[str] = field(default_factory=list)
    marker: str = ""

    @property
    def n_ok(self) -> int:
        """Runs of the model that ended ok."""
        return self.status_counts.get("ok", 0)


@dataclass
class SuiteTable:
    """The per-model comparison: ``columns`` (models) by rows (grouped in ``groups``).

    Attributes:
        columns: the models (one column per setting) in order of first appearance.
        groups: model size, then one group per task (order of first appearance): its metrics, baseline and
            flags rows, then its resource rows.
        n_runs: readable runs aggregated.
        status_counts: ``{status: count}`` over those runs, ok first.
        unreadable: ``(directory, error)`` of the entries without a readable result (not aggregated).
        notes: what the cells mean (shown under the table).
    """

    columns: list[ModelColumn]
    groups: list[SummaryGroup]
    n_runs: int
    status_counts: dict[str, int]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, list[str]]] = field(default_factory=list)
    flagged: list[FlaggedRun] = field(default_factory=list)

    @property
    def rows(self) -> list[SummaryRow]:
        """All rows, in display order."""
        return [row for group in self.groups for row in group.rows]

    @property
    def header(self) -> str:
        """One line: runs, models, tasks and statuses, e.g. ``"6 runs of 2 models on 1 task: 5 ok, 1 oom"``."""
        tasks = {t for c in self.columns for t in c.tasks}
        models = len({c.name for c in self.columns})
        line = (f"{plural(self.n_runs, 'run')} of {plural(models, 'model')} on "
                f"{plural(len(tasks), 'task')}")
        if len(self.columns) > models:
            line += f" ({len(self.columns)} columns: runs with other settings are not averaged together)"
        if self.status_counts:
            line += ": " + ", ".join(f"{n} {st}" for st, n in self.status_counts.items())
        if self.unreadable:
            line += f"; {plural(len(self.unreadable), 'unreadable result')} not included"
        if self.duplicates:
            repeated = sum(len(left) for _, left in self.duplicates)
            line += f"; {plural(repeated, 'repeated run')} of the same computation counted once"
        return line
