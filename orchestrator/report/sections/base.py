"""The interface of a report section: how the report shows the runs of one task type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..figures import read_csv, run_file, safe_plot
from ..formatting import as_dict, is_num
from ..views import Figure, Row, RunView
import orchestrator.report.plots as plots

__all__ = ["Section", "FallbackSection", "Overview", "parity_figure"]


@dataclass
class Overview:
    """A table a section shows once for all runs of its task type, near the top of the report
    (e.g. the energy/force table of interatomic potentials).

    Attributes:
        key: element id suffix, unique in the report (``overview-<key>``).
        title: the heading.
        columns: column headings after the row label.
        rows: the rows (:class:`~orchestrator.report.views.Row` of
            :class:`~orchestrator.report.views.Cell`; ``css="best"`` makes a cell bold).
        notes: lines under the table (what the cells are, which runs they hold).
    """

    key: str
    title: str
    columns: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


class Section:
    """How the report shows runs of one task type; subclass it and :func:`register` an instance.

    Attributes:
        task_type: the task type (``result.json`` ``task_type``) shown.
        metric_group: heading of the comparison-table group holding the task type's metrics; task
            types with the same heading share a group (regression and classification do).
        metric_group_order: groups are shown by this number (then by heading).
        show_all_metrics: the group lists every catalogue metric of the task type whenever a run of
            it is shown (else only the metrics some run reports).
        see_also: for runs of this type in another group's rows whose metric names collide with its
            own (a spectrum MAE is not a regression MAE): where their values are, e.g.
            ``"the spectrum metrics"``.
        phases: the phases of a run of this type, in order (captions of the resource figure when
            ``timeseries.csv`` does not name them).
        templates: a folder of the section's own templates (named in ``parts_before`` /
            ``parts_after``), searched after ``orchestrator/report/templates/``; ``None``: none.
    """

    task_type: str = ""
    metric_group: str = "Metrics (test set)"
    metric_group_order: int = 0
    show_all_metrics: bool = False
    see_also: str | None = None
    phases: tuple[str, ...] = ("setup", "train", "predict")
    templates: Path | None = None

    def figures(self, run: RunView) -> list[Figure]:
        """The task type's figures of ``run`` (may also fill ``run.section_data``)."""
        return []

    def overviews(self, results: Sequence[Mapping]) -> list[Overview]:
        """Tables of all ``results`` (``result.json`` contents of this task type, deduplicated,
        every status) shown once near the top of the report; none by default."""
        return []

    def layout(self, common: list[Figure], own: list[Figure]) -> list[Figure]:
        """Order of the figures: by default the common ones (resources, loss) then the task's."""
        return [*common, *own]

    def details(self, run: RunView) -> None:
        """Fill ``run.section_data`` and name the templates that show it in ``run.parts_before`` /
        ``run.parts_after`` (relative to ``orchestrator/report/templates/``)."""


def parity_figure(run: RunView, what: str = "Prediction against target") -> Figure:
    """Parity plot of ``predictions.csv`` (columns ``target``, ``prediction``), annotated with the
    task type's main metric as stored in ``result.json``."""
    from metrics import catalogue

    unit = f" [{run.unit}]" if run.unit else ""
    fig = Figure("parity", "Parity plot (test set)", caption=f"{what}{unit}; the red line is y = x.")
    frame, note = read_csv(run_file(Path(run.path), run.result, "predictions", "predictions.csv"),
                           ["target", "prediction"])
    if frame is None:
        fig.note = note
        return fig
    try:
        value = as_dict(run.result.get("metrics")).get(catalogue.main_metric(run.task_type))
    except KeyError:  # a task type without catalogue entries: no annotation
        value = None
    safe_plot(fig, lambda: plots.parity_svg(frame["target"].tolist(), frame["prediction"].tolist(),
                                            value if is_num(value) else None),
              "predictions.csv has no finite target/prediction pairs — figure skipped.")
    return fig


class FallbackSection(Section):
    """A task type without a registered section: its metrics in the common group, and a parity plot
    when its ``predictions.csv`` has ``target`` and ``prediction`` columns."""

    def figures(self, run: RunView) -> list[Figure]:
        path = run_file(Path(run.path), run.result, "predictions", "predictions.csv")
        frame, _ = read_csv(path, ["target", "prediction"])
        return [parity_figure(run)] if frame is not None else []
