"""What the template shows, as plain data: cells, rows and groups of the tables, figures, one
:class:`RunView` per readable run and one :class:`Unreadable` per result that could not be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.reader import RunRecord

__all__ = ["Cell", "Row", "RowGroup", "Figure", "RunView", "Unreadable", "status_cell", "missing_cell",
           "NOT_RECORDED"]

NOT_RECORDED = "not recorded"


@dataclass
class Cell:
    text: str
    title: str | None = None
    css: str = ""
    #: raw numeric value for sorting (``data-sort``), ``None`` for text cells
    sort: str | None = None
    #: in-page link target (``#run-3``), only ever an anchor made by the report
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
    """One readable run as the report shows it.

    ``parts_before`` / ``parts_after``: templates (under ``templates/``) of the run's task-type
    section, included before / after its figures; they read ``section_data``.
    """

    index: int
    anchor: str
    path: str
    record: RunRecord
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
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    parts_before: list[str] = field(default_factory=list)
    parts_after: list[str] = field(default_factory=list)
    section_data: dict[str, Any] = field(default_factory=dict)
    flags: list[dict[str, str]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None


@dataclass
class Unreadable:
    path: str
    error: str


def status_cell(run: RunView, what: str) -> Cell:
    """Cell of a value a run that did not end ok has not got: its status, with the error as tooltip."""
    err = run.error or {}
    detail = ""
    if err.get("type") or err.get("message"):
        detail = f": {err.get('type') or 'error'}: {str(err.get('message') or '')[:200]}"
    return Cell(run.status_label, f"{what} not available, run ended with status {run.status}{detail}",
                f"status-cell st-{run.status_class}")


def missing_cell(what: str = "") -> Cell:
    """An em dash for a value the result does not hold (sorted last by the table script)."""
    return Cell("—", f"{NOT_RECORDED}{what}", "na missing")
