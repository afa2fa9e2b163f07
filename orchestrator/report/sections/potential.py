"""Report section of interatomic-potential runs (task type ``potential``): parity plots of the
energy per atom (``predictions.csv``) and of the force components (``predictions.extxyz``, read
with ASE), and the errors per configuration type (``metric_details.per_config_type``)."""

from __future__ import annotations

import io
from pathlib import Path

from metrics import catalogue

import orchestrator.report.plots as plots
from ..figures import read_csv, run_file, safe_plot
from ..formatting import as_dict, is_num, metric_formatter
from ..views import Figure, RunView
from .base import Section

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


class PotentialSection(Section):
    task_type = "potential"
    metric_group = "Energy and forces (test set)"
    metric_group_order = 3
    show_all_metrics = True

    def figures(self, run: RunView) -> list[Figure]:
        return [energy_parity_figure(run), force_parity_figure(run)]

    def details(self, run: RunView) -> None:
        table = config_type_table(as_dict(run.result.get("metric_details")))
        if table is not None:
            run.section_data["potential"] = table
            run.parts_after.append("sections/potential.html.j2")
