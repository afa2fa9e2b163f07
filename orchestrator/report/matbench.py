"""The Matbench table of the report: the runs of ``mateval bench --protocol matbench``
(:mod:`runner.protocols.matbench`) as the Matbench leaderboard shows them (Dunn et al., npj
Comput. Mater. 6, 138 (2020); https://matbench.materialsproject.org): one row per task with its
headline metric (regression: MAE in the task's unit; classification: ROC-AUC), one column per
model (and setting, :func:`orchestrator.report.grouping.setting_columns`), each cell the mean ±
sample standard deviation over the folds (over the folds of every seed when there are several),
the best of each row in bold.

Rendered only when the report holds ``--protocol matbench`` runs (:func:`matbench_table` returns
``None`` otherwise); runs on the task's own split never enter it.
"""

from __future__ import annotations

import statistics
from typing import Mapping, Sequence

from metrics import catalogue

from .formatting import as_dict, dig, is_num, metric_formatter
from .grouping import fold_of, protocol_of, setting_columns
from .sections.base import Overview
from .views import Cell, Row, missing_cell

#: the leaderboard's headline metric per task type (catalogue names)
HEADLINE = {"regression": "MAE", "classification": "ROC-AUC"}
N_FOLDS = 5


def _task(result: Mapping) -> str:
    return str(dig(result, "task", "name") or "?")


def matbench_table(results: Sequence[Mapping]) -> Overview | None:
    """The Matbench table of ``results`` (``result.json`` contents of any task type and status;
    those without ``dataset.protocol.name == "matbench"`` are ignored). ``None`` without such runs.

    A cell: mean ± std of the headline metric over the column's ok fold runs on the task, with
    ``(k/n folds ok)`` when some fold runs did not end ok, and ``(seeds a, b)`` in the tooltip; the
    failure status in capitals when none ended ok; ``—`` without a run. Bold: the lowest MAE, the
    highest ROC-AUC of the row (the metric's catalogue direction). Never raises on odd content.
    """
    runs = [r for r in results if protocol_of(r) == "matbench" and r.get("task_type") in HEADLINE]
    if not runs:
        return None
    columns = setting_columns(runs)
    headings = []
    for column in columns:
        display = next((dig(r, "model", "display_name") for r in column.runs
                        if isinstance(dig(r, "model", "display_name"), str)), column.model)
        headings.append(f"{display} ({column.label})" if column.label else str(display))
    rows: list[Row] = []
    for task in dict.fromkeys(_task(r) for r in runs):
        task_type = next(str(r.get("task_type")) for r in runs if _task(r) == task)
        name = HEADLINE[task_type]
        entry = catalogue.entry(task_type, name)
        fmt = metric_formatter(entry)
        unit = next((dig(r, "task", "unit") for r in runs if _task(r) == task and dig(r, "task", "unit")), None)
        cells: list[Cell] = []
        means: list[float | None] = []
        for column in columns:
            task_runs = [r for r in column.runs if _task(r) == task]
            ok = [r for r in task_runs if r.get("status") == "ok"]
            values = [float(v) for r in ok if is_num(v := as_dict(r.get("metrics")).get(name))]
            if not task_runs:
                cells.append(missing_cell(f": no --protocol matbench run of this model on {task}"))
                means.append(None)
            elif not ok:
                status = str(task_runs[0].get("status") or "failed").upper()
                cells.append(Cell(status, "no fold run ended ok", f"status-cell st-{status.lower()}"))
                means.append(None)
            elif not values:
                cells.append(missing_cell(f": {name} not in the results"))
                means.append(None)
            else:
                mean = statistics.fmean(values)
                std = statistics.stdev(values) if len(values) > 1 else None
                text = fmt(mean) + (f" ± {fmt(std)}" if std is not None else "")
                if len(ok) < len(task_runs):
                    text += f" ({len(ok)}/{len(task_runs)} folds ok)"
                folds = sorted({f for r in ok if (f := fold_of(r)) is not None})
                seeds = sorted({r.get("seed") for r in ok if isinstance(r.get("seed"), int)})
                title = (f"mean ± std over {len(values)} fold run(s): folds {', '.join(map(str, folds))}; "
                         f"seed(s) {', '.join(map(str, seeds))}")
                if len(folds) < N_FOLDS:
                    title += f"; only {len(folds)} of the {N_FOLDS} folds"
                cells.append(Cell(text, title, "", sort=repr(mean)))
                means.append(mean)
        finite = [m for m in means if m is not None]
        if finite:
            best = max(finite) if entry.direction == "higher" else min(finite)
            for cell, mean in zip(cells, means):
                if mean is not None and mean == best:
                    cell.css = "best"
        shown_unit = f" [{unit}]" if unit and entry.unit == "target" else ""
        rows.append(Row(f"{task} · {entry.label}{shown_unit}", cells, title=entry.definition))
    notes = ["Matbench protocol (mateval bench --protocol matbench): 5-fold cross-validation with Matbench's "
             "KFold (StratifiedKFold for classification; shuffle, random_state 18012019); each fold a run of its own. "
             "Cells: mean ± sample standard deviation over the folds that ended ok (over the folds of every seed "
             "when there are several); bold: best of the row (lowest MAE, highest ROC-AUC).",
             "Unless a run read Matbench's own dataset file ($MATEVAL_DATA/matbench/), the folds are over mateval's "
             "pooled rows of the task's dataset, so the numbers are not comparable with the Matbench leaderboard."]
    return Overview("matbench", "Matbench protocol: mean ± std over the 5 folds", headings, rows, notes)
