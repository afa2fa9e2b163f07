"""Report section of interatomic-potential runs (task type ``potential``): parity plots of the
energy per atom (``predictions.csv``) and of the force components (``predictions.extxyz``, read
with ASE), the errors per configuration type (``metric_details.per_config_type``), and, once for
all potential runs, the energy/force table (:func:`energy_force_table`): rows dataset × energy /
forces, columns models, the best value of each row in bold, a failed model's status (OOM,
TIMEOUT) in its cells, and the trainable and total parameter counts (fine-tuning modes side by
side)."""

from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import Mapping, Sequence

from metrics import catalogue

import orchestrator.report.plots as plots
from ..figures import read_csv, run_file, safe_plot
from ..formatting import as_dict, dig, format_count, is_num, metric_formatter
from ..grouping import setting_columns
from ..views import Cell, Figure, Row, RunView, missing_cell
from .base import Overview, Section

#: columns of the per-configuration-type table: (metric name, heading)
CONFIG_TYPE_COLUMNS = ("energy_RMSE", "energy_MAE", "force_RMSE", "force_MAE", "force_cos", "EFwT")


def _mae_in_base_units(run: RunView, name: str) -> float | None:
    """A stored meV metric in eV (the unit of the parity axes), or ``None``."""
    value = as_dict(run.result.get("metrics")).get(name)
    return float(value) / 1000.0 if is_num(value) else None


def energy_parity_figure(run: RunView) -> Figure:
    """Predicted against DFT energy per atom (eV/atom) of the test structures."""
    fig = Figure("parity", "Energy per atom (test set)", caption="Predicted against reference energy per atom "
                 "[eV/atom]; the red line is y = x.", size="small")
    frame, note = read_csv(run_file(Path(run.path), run.result, "predictions", "predictions.csv"),
                           ["ref_energy_per_atom", "pred_energy_per_atom"])
    if frame is None:
        fig.note = note
        return fig
    mae = _mae_in_base_units(run, "energy_MAE")
    safe_plot(fig, lambda: plots.parity_svg(frame["ref_energy_per_atom"].tolist(), frame["pred_energy_per_atom"].tolist(),
                                            mae, xlabel="reference (eV/atom)", ylabel="predicted (eV/atom)",
                                            what="test structures"),
              "predictions.csv has no finite energies — figure skipped.")
    return fig


def read_forces(path: Path) -> tuple[list[float], list[float]] | str:
    """``(reference, predicted)`` force components (eV/Å) of ``predictions.extxyz``, or a note
    saying why they could not be read (the file is read through :mod:`runner.safefiles`)."""
    import ase.io

    from runner import safefiles

    try:
        text = safefiles.read_text(path, safefiles.MAX_CSV_BYTES, root=path.parent)
        frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
    except FileNotFoundError:
        return f"{path.name} not found — figure skipped."
    except safefiles.RefusedFile as exc:
        return f"{exc.name} {exc.reason}; not read — figure skipped."
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a note, never a broken report
        return f"{path.name} could not be read ({type(exc).__name__}) — figure skipped."
    ref: list[float] = []
    pred: list[float] = []
    for frame in frames:
        if "ref_forces" not in frame.arrays or "pred_forces" not in frame.arrays:
            return f"{path.name} lacks ref_forces / pred_forces — figure skipped."
        ref += frame.arrays["ref_forces"].ravel().tolist()
        pred += frame.arrays["pred_forces"].ravel().tolist()
    return ref, pred


def force_parity_figure(run: RunView) -> Figure:
    """Predicted against DFT force components (eV/Å) of every atom of the test structures."""
    fig = Figure("force_parity", "Force components (test set)", caption="Predicted against reference force "
                 "components (x, y, z of every atom) [eV/Å]; the red line is y = x.", size="small")
    forces = read_forces(run_file(Path(run.path), run.result, "predictions_extxyz", "predictions.extxyz"))
    if isinstance(forces, str):
        fig.note = forces
        return fig
    mae = _mae_in_base_units(run, "force_MAE")
    safe_plot(fig, lambda: plots.parity_svg(forces[0], forces[1], mae, xlabel="reference (eV/Å)",
                                            ylabel="predicted (eV/Å)", what="force components"),
              "predictions.extxyz has no finite forces — figure skipped.")
    return fig


def config_type_table(details: dict) -> dict | None:
    """``{"columns": [heading, ...], "rows": [[config type, n, value, ...], ...]}`` of
    ``metric_details.per_config_type`` (numbers formatted as the catalogue says), or ``None``."""
    groups = as_dict(details.get("per_config_type"))
    if not groups:
        return None
    columns = ["configuration type", "structures"]
    formatters = []
    for name in CONFIG_TYPE_COLUMNS:
        entry = catalogue.entry("potential", name)
        columns.append(f"{entry.label} [{entry.unit}]" if entry.unit else entry.label)
        formatters.append(metric_formatter(entry))
    rows = []
    for label, values in sorted(groups.items()):
        values = as_dict(values)
        count = values.get("n_structures")
        row = [str(label), str(int(count)) if is_num(count) else "–"]
        row += [fmt(float(values[n])) if is_num(values.get(n)) else "–" for n, fmt in zip(CONFIG_TYPE_COLUMNS, formatters)]
        rows.append(row)
    return {"columns": columns, "rows": rows}


#: rows of the energy/force table per dataset: (metric name, row label)
ENERGY_FORCE_ROWS = (("energy_RMSE", "E"), ("force_RMSE", "F"))
#: order in which a column's failure statuses are named when no run of it ended ok
_FAILURES = ("oom", "timeout", "failed", "cancelled")


def _status_text(runs: Sequence[Mapping]) -> tuple[str, str]:
    """``(text, tooltip)`` of a cell none of whose ``runs`` ended ok: the most serious status in
    capitals (``OOM``, ``TIMEOUT``), the errors as tooltip."""
    statuses = [str(r.get("status") or "unknown") for r in runs]
    status = min(statuses, key=lambda s: _FAILURES.index(s) if s in _FAILURES else len(_FAILURES))
    details = []
    for r in runs:
        err = as_dict(r.get("error"))
        text = f"seed {r.get('seed', '?')}: {r.get('status', '?')}"
        if err.get("type") or err.get("message"):
            text += f" ({err.get('type') or 'error'}: {str(err.get('message') or '')[:160]})"
        details.append(text)
    return status.upper(), "no run ended ok — " + "; ".join(details)


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def energy_force_table(results: Sequence[Mapping]) -> Overview | None:
    """The energy/force table of potential runs, in the shape of the interatomic-potential
    comparisons of the literature (e.g. the MACE and Allegro papers' per-dataset tables).

    Rows: for each task (dataset), in order of first appearance, ``E`` = energy RMSE (meV/atom)
    and ``F`` = force RMSE per component (meV/Å), both on the test set
    (:func:`metrics.potential.energy_rmse_per_atom`, :func:`metrics.potential.force_rmse`); then
    the trainable and total parameter counts of each column. Columns: one per model and setting
    (:func:`orchestrator.report.grouping.setting_columns`, so MACE trained from scratch, fully
    fine-tuned and LoRA-fine-tuned are separate columns labelled by what differs), then the
    trivial baseline (per-element linear energy, zero forces). A cell is the mean over the
    column's runs that ended ok (± sample standard deviation over seeds, with ``k/n ok`` when some
    failed); when none ended ok it shows the status in capitals (``OOM``, ``TIMEOUT``,
    ``FAILED``) with the errors as tooltip; ``—`` when the column has no run of that task. The
    lowest mean of each row among the models is bold (``css="best"``); the baseline never is.

    ``results`` are ``result.json`` contents of any status (other task types are ignored).
    Returns ``None`` without potential runs. Never raises on odd content.
    """
    runs = [r for r in results if r.get("task_type") == "potential"]
    if not runs:
        return None
    columns = setting_columns(runs)
    tasks = list(dict.fromkeys(str(dig(r, "task", "name") or "?") for r in runs))
    entries = {name: catalogue.entry("potential", name) for name, _ in ENERGY_FORCE_ROWS}
    headings = []
    for column in columns:
        display = next((dig(r, "model", "display_name") for r in column.runs
                        if isinstance(dig(r, "model", "display_name"), str)), column.model)
        headings.append(f"{display} ({column.label})" if column.label else str(display))
    headings.append("baseline")
    rows: list[Row] = []
    for task in tasks:
        for name, short in ENERGY_FORCE_ROWS:
            entry = entries[name]
            fmt = metric_formatter(entry)
            cells: list[Cell] = []
            means: list[float | None] = []
            for column in columns:
                task_runs = [r for r in column.runs if str(dig(r, "task", "name") or "?") == task]
                ok = [r for r in task_runs if r.get("status") == "ok"]
                values = [float(v) for r in ok if is_num(v := as_dict(r.get("metrics")).get(name))]
                if not task_runs:
                    cells.append(missing_cell(f": no run of this model on {task}"))
                    means.append(None)
                elif not ok:
                    text, title = _status_text(task_runs)
                    cells.append(Cell(text, title, f"status-cell st-{text.lower()}"))
                    means.append(None)
                elif not values:
                    cells.append(missing_cell(f": {name} not in the results"))
                    means.append(None)
                else:
                    mean, std = _mean_std(values)
                    text = fmt(mean) + (f" ± {fmt(std)}" if std is not None else "")
                    if len(ok) < len(task_runs):
                        text += f" ({len(ok)}/{len(task_runs)} ok)"
                    cells.append(Cell(text, f"mean over {len(values)} run(s)", "", sort=repr(mean)))
                    means.append(mean)
            finite = [m for m in means if m is not None]
            if finite:
                best = min(finite)
                for cell, mean in zip(cells, means):
                    if mean is not None and mean == best:
                        cell.css = "best"
            baseline = [float(v) for r in runs if str(dig(r, "task", "name") or "?") == task
                        and is_num(v := dig(r, "baseline", "metrics", name))]
            cells.append(Cell(fmt(baseline[0]), "per-element linear energy fitted on the training set, zero forces",
                              "dim", sort=repr(baseline[0])) if baseline else missing_cell(": no baseline recorded"))
            rows.append(Row(f"{task} · {short} [{entry.unit}]", cells, title=entry.label))
    for key, label in (("trainable_params", "trainable parameters"), ("params", "parameters")):
        cells = []
        for column in columns:
            counts = [dig(r, "model_stats", key) for r in column.runs]
            counts = [int(c) for c in counts if is_num(c)]
            cells.append(Cell(format_count(counts[0]), f"{counts[0]:,} ({label})", "", sort=str(counts[0]))
                         if counts else missing_cell(""))
        cells.append(Cell("0", "the baseline has no trainable parameters", "dim"))
        rows.append(Row(label, cells))
    notes = [f"E: {entries['energy_RMSE'].label} [{entries['energy_RMSE'].unit}], F: "
             f"{entries['force_RMSE'].label} [{entries['force_RMSE'].unit}], test set; mean over the runs "
             "that ended ok (± standard deviation over seeds); bold: lowest of the row among the models.",
             "OOM / TIMEOUT / FAILED: no run of that model on that dataset ended ok (tooltip: the error)."]
    return Overview("energy-forces", "Interatomic potentials: energy and force errors", headings, rows, notes)


class PotentialSection(Section):
    task_type = "potential"
    metric_group = "Energy and forces (test set)"
    metric_group_order = 3
    show_all_metrics = True

    def figures(self, run: RunView) -> list[Figure]:
        return [energy_parity_figure(run), force_parity_figure(run)]

    def overviews(self, results: Sequence[Mapping]) -> list[Overview]:
        table = energy_force_table(results)
        return [table] if table is not None else []

    def details(self, run: RunView) -> None:
        table = config_type_table(as_dict(run.result.get("metric_details")))
        if table is not None:
            run.section_data["potential"] = table
            run.parts_after.append("sections/potential.html.j2")
