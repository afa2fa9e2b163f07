"""Figures every run gets (resource usage over time, loss curves) and the helpers the task-type
sections draw theirs with: run files named in ``result['files']``, CSV reading with notes instead
of errors, and drawing that turns any exception into a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import orchestrator.report.plots as plots
from .formatting import as_list, dig
from .views import Figure, RunView

__all__ = ["run_file", "read_csv", "safe_plot", "timeseries_figure", "loss_figure"]


def run_file(run_dir: Path, result: Mapping, key: str, default: str) -> Path:
    """Path of a run file named in ``result['files'][key]``, kept inside the run directory
    (``run_dir / default`` when not named, absolute, climbing out with ``..`` or through a
    directory that is a symbolic link). No link is resolved here: the readers
    (:mod:`runner.safefiles`) refuse a file that is one."""
    name = dig(result, "files", key)
    if isinstance(name, str) and name and not Path(name).is_absolute() and ".." not in Path(name).parts:
        parts = Path(name).parts
        if not any((Path(run_dir).joinpath(*parts[:i])).is_symlink() for i in range(1, len(parts))):
            return Path(run_dir) / name
    return Path(run_dir) / default


def safe_plot(fig: Figure, make: Callable[[], str | None], empty_note: str) -> Figure:
    """Put ``make()``'s SVG into ``fig``; ``empty_note`` when it returns ``None``; a note naming the
    exception when it raises (a broken figure never breaks the report)."""
    try:
        svg = make()
    except Exception as exc:  # noqa: BLE001 - a broken figure must not break the report
        fig.note = f"Figure could not be drawn: {type(exc).__name__}: {exc}"
        return fig
    if svg is None:
        fig.note = empty_note
    else:
        fig.svg = svg
    return fig


def read_csv(path: Path, required: Sequence[str], dtype: Mapping[str, Any] | None = None):
    """``(frame, None)`` or ``(None, note)`` for a CSV that must contain ``required`` columns."""
    import io

    import pandas as pd

    from runner import safefiles

    try:
        data = safefiles.read_bytes(path, safefiles.MAX_CSV_BYTES, root=path.parent)
    except FileNotFoundError:
        return None, f"{path.name} not found — figure skipped."
    except safefiles.RefusedFile as exc:
        return None, f"{exc.name} {exc.reason}; not read — figure skipped."
    except OSError as exc:
        return None, f"{path.name} could not be read ({type(exc).__name__}: {exc}) — figure skipped."
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=dtype) if dtype else pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        return None, f"{path.name} could not be read ({type(exc).__name__}: {exc}) — figure skipped."
    missing = [c for c in required if c not in frame.columns]
    if missing:
        return None, f"{path.name} lacks column(s) {', '.join(missing)} — figure skipped."
    if frame.empty:
        return None, f"{path.name} has no rows — figure skipped."
    return frame, None


def timeseries_figure(run: RunView, default_phases: Sequence[str]) -> Figure:
    """Host CPU/memory and GPU series of ``timeseries.csv`` over time, phases shaded."""
    run_dir = Path(run.path)
    fig = Figure("timeseries", "Resource usage over time")
    frame, note = read_csv(run_file(run_dir, run.result, "timeseries", "timeseries.csv"), [])
    phase_names = list(default_phases)
    if frame is not None and "phase" in frame.columns:
        present = {str(p) for p in frame["phase"].dropna().unique()}
        phase_names = [p for p in plots.KNOWN_PHASES if p in present] or phase_names
    fig.caption = ("Host CPU/memory and GPU series present in timeseries.csv; shaded bands and dotted lines mark "
                   f"the phases ({', '.join(phase_names)}); GPU power, if recorded, on the right axis.")
    if frame is None:
        fig.note = note
    elif "elapsed (s)" not in frame.columns and "timestamp" not in frame.columns:
        fig.note = "timeseries.csv has neither an 'elapsed (s)' nor a 'timestamp' column — figure skipped."
    else:
        safe_plot(fig, lambda: plots.timeseries_svg(frame),
                  "timeseries.csv has no host or GPU metric column with data — figure skipped.")
        if fig.svg and len(frame) > plots.MAX_LINE_POINTS:
            fig.caption += f" {len(frame):,} samples, drawn decimated to {plots.MAX_LINE_POINTS}."
    return fig


def loss_figure(run: RunView) -> Figure:
    """Training and validation loss per epoch from ``history``."""
    history = [h for h in as_list(run.result.get("history")) if isinstance(h, Mapping)]
    loss_names = sorted({str(h["loss_name"]) for h in history if h.get("loss_name")})
    fig = Figure("loss", "Loss curves",
                 caption=f"Loss per epoch ({', '.join(loss_names)})." if loss_names else "Loss per epoch.")
    if not history:
        fig.note = "No training history recorded."
    else:
        safe_plot(fig, lambda: plots.loss_curves_svg([h.get("epoch") for h in history],
                                                     [h.get("train_loss") for h in history],
                                                     [h.get("val_loss") for h in history]),
                  "The history has no finite loss values.")
    return fig
