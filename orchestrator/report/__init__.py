"""Self-contained HTML report and per-model summary of mateval runs.

Usage::

    from orchestrator.report import render_report
    render_report([Path("results/run_a"), Path("results/run_b")], Path("report.html"))

Modules (one concern each):

- :mod:`~orchestrator.report.render`: reading the runs (:mod:`orchestrator.reader`), building the
  template's context, writing the HTML file; the table script ``templates/table.js``;
- :mod:`~orchestrator.report.summary`: the per-model comparison (mean ± std over seeds), ``summary.md``
  and ``summary.csv``;
- :mod:`~orchestrator.report.run_view`: a run's section (metadata, environment, resources, error);
- :mod:`~orchestrator.report.sections`: one section per task type (its figures and details), a
  registry plugins add to;
- :mod:`~orchestrator.report.comparison`: the per-run comparison table;
- :mod:`~orchestrator.report.tables`: the runs and environment tables;
- :mod:`~orchestrator.report.pages`: the per-model pages;
- :mod:`~orchestrator.report.views`, :mod:`~orchestrator.report.figures`: view data and shared figures;
- :mod:`~orchestrator.report.formatting`, :mod:`~orchestrator.report.resources`: numbers, metric
  labels/units/formats from :mod:`metrics.catalogue`, resource figures;
- :mod:`~orchestrator.report.plots`: the SVG figures;
- :mod:`~orchestrator.report.tradeoff`: accuracy against cost per task (the figures the report opens with).
"""

from .render import build_context, render_report

__all__ = ["render_report", "build_context"]
