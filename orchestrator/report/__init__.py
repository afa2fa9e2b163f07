"""Self-contained HTML report for mateval runs.

Usage::

    from orchestrator.report import render_report
    render_report([Path("results/run_a"), Path("results/run_b")], Path("report.html"))

The report holds a comparison table (one column per run) and a section per run with metadata,
errors and inline SVG figures; see :mod:`orchestrator.report.render`.
"""

from .render import render_report

__all__ = ["render_report"]
