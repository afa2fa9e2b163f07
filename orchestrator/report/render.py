"""Render a set of run directories (``results/<run_id>/``) into one self-contained HTML report.

The page is a single file with inline CSS, inline SVG figures and one small inline script
(``templates/table.js``, read into :data:`TABLE_SCRIPT`: sorting and filtering of tables; the page
reads completely without it): it opens offline. Every string taken from a result (names, ids,
messages, log tails, hyperparameters) goes through Jinja2 autoescaping; only the SVGs made by
:mod:`orchestrator.report.plots` and :data:`TABLE_SCRIPT` are inserted with ``|safe``, and those
contain no text taken from a result, and the accuracy-against-cost SVGs of
:mod:`orchestrator.report.tradeoff`, whose model and task names are XML-escaped (matplotlib's
``<text>``, :func:`html.escape` in ``<title>``/``<desc>``).

Results are read with :func:`orchestrator.reader.read_runs` (checked against the result schema
once). A broken input never stops the report: a run directory whose ``result.json`` is missing, not
valid JSON or fails the schema is listed under "Unreadable results" with the reason (file and field
named), and a missing or unreadable ``timeseries.csv`` / ``predictions.csv`` / ``generated.*``
replaces the figure with a note.

Layout: a navigation bar, the accuracy-against-cost figures (:mod:`orchestrator.report.tradeoff`,
one per task, before any table), the task-type sections' overview tables (:func:`overviews`, e.g.
the energy/force table of interatomic potentials), the per-model summary (:mod:`orchestrator.report.summary`, mean ± std over
seeds), a compact table of the runs (:mod:`~orchestrator.report.tables`), the per-run comparison
(:mod:`~orchestrator.report.comparison`, runs as columns), one page per model
(:mod:`~orchestrator.report.pages`) holding the sections of its runs
(:mod:`~orchestrator.report.run_view`, with the figures and details of the run's task type from
:mod:`orchestrator.report.sections`), and the environment page.

Interactivity: :data:`TABLE_SCRIPT` holds no data and reads the DOM only through
``textContent``/attributes; it makes every ``table.sortable`` sortable by a click on a header
(numerically on the ``data-sort`` values of numeric cells, else by text) and puts a filter box above
every ``table.filterable`` and every table with a ``data-filter`` attribute. A
Content-Security-Policy ``<meta>`` allows that one script by the SHA-256 hash of its exact inlined
text and nothing else (no other script, handler attribute or external resource), as a second line
of defence behind the escaping.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Sequence

import jinja2

from orchestrator.reader import RunRecord, read_runs

from .comparison import comparison_groups
from .formatting import DEFAULT_FLOPS_NOTE, THOP_NOTE, dig, short_json
from .grouping import deduplicate
from .pages import ModelPage, model_pages
from .run_view import describe
from .sections import SECTIONS, Overview, load_plugins, section_for
from .summary import aggregate
from .tradeoff import TRADEOFF_NOTE, task_tradeoffs
from .tables import ENVIRONMENT_COLUMNS, RUNS_COLUMNS, environment_table, runs_table
from .views import RunView, Unreadable

__all__ = ["render_report", "build_context", "context_from_records", "TABLE_SCRIPT", "TEMPLATES",
           "DEFAULT_FLOPS_NOTE", "THOP_NOTE", "ModelPage", "RUNS_COLUMNS", "ENVIRONMENT_COLUMNS"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The inline script of the report, exactly as inlined (the CSP hash is computed over this text).
TABLE_SCRIPT = (TEMPLATES / "table.js").read_text(encoding="utf-8")

def _csp(script: str) -> str:
    """Content-Security-Policy of the report: inline styles, and ``script`` (by its hash) as the only script."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def _environment() -> jinja2.Environment:
    folders = [TEMPLATES, *(s.templates for s in SECTIONS.values() if s.templates is not None)]
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in dict.fromkeys(folders)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _footnotes(runs: Sequence[RunView]) -> list[str]:
    notes: list[str] = []
    for r in runs:
        nc = dig(r.result, "model_stats", "flops", "not_counted")
        items = nc if isinstance(nc, list) else [nc] if nc else []
        for item in items:
            text = short_json(item, 1000)
            if text and text not in notes:
                notes.append(text)
    if notes:
        notes = ["FLOPs (FlopCounterMode, as the runs record it): " + "; ".join(notes)]
    else:
        notes = [DEFAULT_FLOPS_NOTE]
    return notes + [THOP_NOTE]


def overviews(records: Sequence[RunRecord]) -> tuple[list[Overview], list[str]]:
    """The task-type sections' tables of all their runs (:meth:`Section.overviews`, e.g. the
    energy/force table of potentials), in order of the task types' first appearance, then the
    Matbench table of ``--protocol matbench`` runs (:mod:`orchestrator.report.matbench`), and a note
    per section whose table could not be made (the rest of the report never depends on them)."""
    results, _ = deduplicate([r.result for r in records if r.ok])
    tables: list[Overview] = []
    errors: list[str] = []
    for task_type in dict.fromkeys(str(r.get("task_type")) for r in results):
        section = section_for(task_type)
        try:
            tables += section.overviews([r for r in results if str(r.get("task_type")) == task_type])
        except Exception as exc:  # noqa: BLE001 - one section's table never breaks the report
            errors.append(f"the {task_type} overview could not be made: {type(exc).__name__}: {exc}")
    try:  # the runs of --protocol matbench span task types: a table of their own
        from .matbench import matbench_table

        table = matbench_table(results)
        if table is not None:
            tables.append(table)
    except Exception as exc:  # noqa: BLE001 - never breaks the report
        errors.append(f"the Matbench table could not be made: {type(exc).__name__}: {exc}")
    return tables, errors


def context_from_records(records: Sequence[RunRecord], title: str = "mateval report",
                         now: _dt.datetime | None = None) -> dict:
    """Everything the template needs, computed from runs already read (see :func:`build_context`)."""
    load_plugins()  # plugin task types: their sections and catalogue entries
    runs: list[RunView] = []
    unreadable: list[Unreadable] = []
    for record in records:
        if not record.ok:
            unreadable.append(Unreadable(str(record.path), record.error or "unknown error"))
            continue
        try:
            runs.append(describe(record, len(runs) + 1))
        except Exception as exc:  # noqa: BLE001 - last line of defence for one odd result
            unreadable.append(Unreadable(str(record.path), f"could not be rendered: {type(exc).__name__}: {exc}"))
    suite, suite_error = None, None
    try:
        suite = aggregate(records) if runs else None
    except Exception as exc:  # noqa: BLE001 - the per-run table below still shows everything
        suite_error = f"the per-model summary could not be computed: {type(exc).__name__}: {exc}"
    tradeoffs, tradeoff_error = [], None
    try:
        tradeoffs = task_tradeoffs(records) if runs else []
    except Exception as exc:  # noqa: BLE001 - the tables below still show everything
        tradeoff_error = f"the accuracy-against-cost figures could not be drawn: {type(exc).__name__}: {exc}"
    overview_tables, overview_errors = overviews(records) if runs else ([], [])
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
        "groups": comparison_groups(runs) if runs else [],
        "footnotes": _footnotes(runs),
        "suite": suite,
        "suite_error": suite_error,
        "tradeoffs": tradeoffs,
        "tradeoff_error": tradeoff_error,
        "tradeoff_note": TRADEOFF_NOTE,
        "overviews": overview_tables,
        "overview_errors": overview_errors,
        "models": model_pages(runs, suite),
        "runs_columns": RUNS_COLUMNS,
        "runs_table": runs_table(runs),
        "environment_columns": ENVIRONMENT_COLUMNS,
        "environment_table": environment_table(runs),
        "table_script": TABLE_SCRIPT,
        "csp": _csp(TABLE_SCRIPT),
    }


def build_context(run_dirs: Sequence[Path], title: str = "mateval report",
                  now: _dt.datetime | None = None) -> dict:
    """Everything the template needs, computed from the run directories (read with
    :func:`orchestrator.reader.read_runs`; a path to a ``result.json`` is accepted too).

    ``suite`` is the per-model comparison (:class:`orchestrator.report.summary.SuiteTable`, mean ±
    std over seeds) of the readable runs, ``None`` without runs or when it could not be computed
    (``suite_error`` then says why). ``tradeoffs`` are the accuracy-against-cost figures
    (:class:`orchestrator.report.tradeoff.TaskTradeoff`, one per task; ``tradeoff_error`` says why
    there are none when drawing them failed). ``unreadable`` lists the results that could not be read or
    fail the schema, with the reason. ``models`` are the per-model pages (:class:`ModelPage`),
    ``runs_table`` / ``environment_table`` the rows (lists of cells) of the runs and the environment
    tables under the headings ``runs_columns`` / ``environment_columns``; ``table_script`` is
    :data:`TABLE_SCRIPT` and ``csp`` the Content-Security-Policy that allows only it.
    """
    return context_from_records(read_runs(Path(d) for d in run_dirs), title, now)


def render_html(context: dict) -> str:
    """The HTML page of a context made by :func:`build_context` / :func:`context_from_records`."""
    return _environment().get_template("report.html.j2").render(**context)


def write_html(html: str, out_path: Path) -> Path:
    """Write ``html`` to ``out_path`` atomically (parent directories created); returns ``out_path``."""
    out_path = Path(out_path)
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


def render_report(run_dirs: Sequence[Path], out_path: Path, title: str = "mateval report") -> Path:
    """Write the HTML report for ``run_dirs`` to ``out_path`` and return ``out_path``.

    ``run_dirs`` are ``results/<run_id>/`` directories (a path to a ``result.json`` is accepted
    too). The file is written atomically; parent directories are created.
    """
    return write_html(render_html(build_context(list(run_dirs), title)), out_path)
