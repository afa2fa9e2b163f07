"""Figures for the HTML report, each returned as an inline ``<svg>`` string.

Every function takes plain numbers (never names, ids or other strings from a result) and draws
only fixed text chosen here, so nothing from a result file can end up as markup inside an SVG.
Numbers that do appear as text (MAE, AUC) are formatted by us. On top of that the SVGs are
written with ``svg.fonttype = "none"``: text becomes ``<text>`` elements whose content
matplotlib XML-escapes.

Pyplot is never used: figures are plain :class:`matplotlib.figure.Figure` objects saved with the
SVG canvas (which rasterises dense scatter plots with Agg), so no GUI backend is touched and the
module is safe to use from threads.
"""

from __future__ import annotations

import io
import math
import re
from typing import Iterable, Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "MAX_LINE_POINTS",
    "downsample_indices",
    "timeseries_svg",
    "loss_curves_svg",
    "parity_svg",
    "roc_svg",
    "KNOWN_PHASES",
    "density_histogram_svg",
    "num_elements_histogram_svg",
    "structure_svg",
    "element_rgb",
    "spectrum_svg",
    "per_crystal_histogram_svg",
]

#: Longest line drawn (points per series); longer series are decimated.
MAX_LINE_POINTS = 500
#: Above this many points a scatter is rasterised (one small PNG inside the SVG) instead of one
#: SVG element per point.
MAX_VECTOR_SCATTER = 400

_RC = {
    "svg.fonttype": "none",  # text as escaped <text> elements: small and searchable
    "svg.hashsalt": "mateval-report",  # deterministic ids
    "svg.image_inline": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.usetex": False,
}

# Known telemetry columns -> (label drawn in the figure, axis). Only these are plotted; an unknown
# column name never reaches the SVG.
PERCENT_SERIES: Sequence[tuple[str, str]] = (
    ("host/cpu_percent (%)", "host CPU %"),
    ("host/memory_percent (%)", "host memory %"),
    ("gpu_utilization (%)", "GPU util. %"),
    ("memory_utilization (%)", "GPU mem. util. %"),
    ("memory_percent (%)", "GPU mem. used %"),
)
POWER_SERIES: Sequence[tuple[str, str]] = (("power_usage (W)", "GPU power W"),)

_PHASE_COLOURS = {"setup": "#9e9e9e", "train": "#1f77b4", "predict": "#ff7f0e", "generate": "#2ca02c"}
#: Phases drawn with a shaded band and a label, in their usual order.
KNOWN_PHASES = tuple(_PHASE_COLOURS)
_GPU_COL = re.compile(r"^gpu:(\d+)/(.+)$")
_ID_ATTR = re.compile(r'\bid="([^"]+)"')


class _Counter:
    n = 0


def _svg_from_figure(fig: Figure) -> str:
    """Serialise ``fig`` to an ``<svg>`` element that can be pasted into HTML.

    Drops the XML prolog, DOCTYPE and metadata, lets CSS size the figure (the viewBox is kept),
    and prefixes every id so several figures can share one HTML document.
    """
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.05,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    # Fixed width/height in pt would stop the figure shrinking; CSS handles the size.
    svg = re.sub(r'^(<svg[^>]*?)\s+width="[^"]*"', r"\1", svg, count=1)
    svg = re.sub(r'^(<svg[^>]*?)\s+height="[^"]*"', r"\1", svg, count=1)
    svg = _compact(svg)
    _Counter.n += 1
    prefix = f"f{_Counter.n}-"
    ids = set(_ID_ATTR.findall(svg))
    if ids:
        pattern = re.compile(r'(\bid="|url\(#|href="#)(' + "|".join(map(re.escape, ids)) + r')(?=["\)])')
        svg = pattern.sub(lambda m: m.group(1) + prefix + m.group(2), svg)
    return svg.strip()


_NUMBER = re.compile(r"-?\d+\.\d+")
_PATH_D = re.compile(r'\b(d|x|y)="([^"]*)"')


def _round_number(m: re.Match) -> str:
    text = f"{float(m.group(0)):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _compact(svg: str) -> str:
    """Shrink path data: coordinates to 0.01 pt and no line breaks inside ``d`` attributes."""

    def fix(m: re.Match) -> str:
        value = _NUMBER.sub(_round_number, m.group(2))
        return f'{m.group(1)}="{" ".join(value.split())}"'

    return _PATH_D.sub(fix, svg)


def _new_figure(width: float = 6.4, height: float = 3.4) -> Figure:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), dpi=100)
    return fig


def downsample_indices(n: int, max_points: int = MAX_LINE_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread samples of ``n``, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def _finite(values: Iterable) -> np.ndarray:
    arr = np.asarray(
        [v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values],
        dtype=float,
    )
    return arr


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"


# --------------------------------------------------------------------------------------------
# resource time series
# --------------------------------------------------------------------------------------------


def _series_columns(columns: Sequence[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split known telemetry columns into (percent axis, power axis) lists of (column, label)."""
    percent: list[tuple[str, str]] = []
    power: list[tuple[str, str]] = []
    gpu_cols: dict[str, list[tuple[int, str]]] = {}
    for col in columns:
        m = _GPU_COL.match(str(col))
        if m:
            gpu_cols.setdefault(m.group(2), []).append((int(m.group(1)), col))
    multi_gpu = len({idx for cols in gpu_cols.values() for idx, _ in cols}) > 1
    for key, label in PERCENT_SERIES:
        if key.startswith("host/"):
            if key in columns:
                percent.append((key, label))
            continue
        for idx, col in sorted(gpu_cols.get(key, [])):
            percent.append((col, label.replace("GPU", f"GPU{idx}") if multi_gpu else label))
    for key, label in POWER_SERIES:
        for idx, col in sorted(gpu_cols.get(key, [])):
            power.append((col, label.replace("GPU", f"GPU{idx}") if multi_gpu else label))
    return percent, power


def phase_spans(elapsed: np.ndarray, phases: Sequence[str]) -> list[tuple[str, float, float]]:
    """Contiguous (phase, start, end) spans, in elapsed seconds, from a per-sample phase column."""
    spans: list[tuple[str, float, float]] = []
    start = 0
    for i in range(1, len(phases) + 1):
        if i == len(phases) or phases[i] != phases[start]:
            end = elapsed[i] if i < len(phases) else elapsed[-1]
            spans.append((phases[start], float(elapsed[start]), float(end)))
            start = i
    return spans


def timeseries_svg(frame) -> str | None:
    """Host and GPU utilisation over the run, phase boundaries marked.

    ``frame`` is the parsed ``timeseries.csv`` (a pandas DataFrame). Returns ``None`` when the
    frame has no elapsed-time column or no known metric column with data.
    """
    import pandas as pd

    if "elapsed (s)" in frame.columns:
        x_all = pd.to_numeric(frame["elapsed (s)"], errors="coerce").to_numpy(dtype=float)
    elif "timestamp" in frame.columns:
        ts = pd.to_numeric(frame["timestamp"], errors="coerce").to_numpy(dtype=float)
        x_all = ts - np.nanmin(ts) if np.isfinite(ts).any() else ts
    else:
        return None
    keep = np.isfinite(x_all)
    frame = frame.loc[keep].reset_index(drop=True)
    x_all = x_all[keep]
    if len(x_all) == 0:
        return None
    order = np.argsort(x_all, kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    x_all = x_all[order]

    columns = [str(c) for c in frame.columns]
    percent, power = _series_columns(columns)

    def values(col: str) -> np.ndarray:
        return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)

    percent = [(c, lbl) for c, lbl in percent if np.isfinite(values(c)).any()]
    power = [(c, lbl) for c, lbl in power if np.isfinite(values(c)).any()]
    if not percent and not power:
        return None

    idx = downsample_indices(len(x_all))
    x = x_all[idx]

    fig = _new_figure(7.2, 3.2)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        lines = []
        for i, (col, label) in enumerate(percent):
            (ln,) = ax.plot(x, values(col)[idx], lw=1.1, color=f"C{i}", label=label)
            lines.append(ln)
        ax.set_ylabel("%")
        ax.set_ylim(0, 105)
        ax.set_xlabel("elapsed (s)")
        if power:
            ax2 = ax.twinx()
            ax2.grid(False)
            for j, (col, label) in enumerate(power):
                (ln,) = ax2.plot(x, values(col)[idx], lw=1.1, ls="--", color=f"C{len(percent) + j}",
                                 label=label)
                lines.append(ln)
            ax2.set_ylabel("W")
            ax2.set_ylim(bottom=0)
            ax2.spines["right"].set_visible(True)

        # Phase boundaries: shaded spans plus a vertical line at every change of phase.
        if "phase" in frame.columns:
            phases = ["" if pd.isna(p) else str(p) for p in frame["phase"].tolist()]
            spans = phase_spans(x_all, phases)
            seen: set[str] = set()
            for k, (name, start, end) in enumerate(spans):
                colour = _PHASE_COLOURS.get(name)
                if colour is not None:
                    ax.axvspan(start, end, color=colour, alpha=0.07, lw=0)
                    if name not in seen:  # fixed label only for known phases
                        seen.add(name)
                        ax.text((start + end) / 2, 101, name, ha="center", va="bottom",
                                fontsize=7, color=colour, clip_on=False)
                if k > 0:
                    ax.axvline(start, color="#555555", lw=0.8, ls=":")
        ax.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(lines), 4),
                  frameon=False)
        fig.subplots_adjust(bottom=0.3)
    return _svg_from_figure(fig)


# --------------------------------------------------------------------------------------------
# loss curves
# --------------------------------------------------------------------------------------------


def loss_curves_svg(epochs: Sequence, train_loss: Sequence, val_loss: Sequence) -> str | None:
    """Train and validation loss per epoch; log y axis when the loss spans > 1.5 decades."""
    ep = _finite(epochs)
    tr = _finite(train_loss)
    va = _finite(val_loss)
    if not (np.isfinite(tr).any() or np.isfinite(va).any()):
        return None
    idx = downsample_indices(len(ep))
    ep, tr, va = ep[idx], tr[idx], va[idx]
    fig = _new_figure(5.0, 3.2)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        marker = "o" if len(ep) <= 40 else None
        if np.isfinite(tr).any():
            m = np.isfinite(tr) & np.isfinite(ep)
            ax.plot(ep[m], tr[m], marker=marker, ms=3, lw=1.3, label="train")
        if np.isfinite(va).any():
            m = np.isfinite(va) & np.isfinite(ep)
            ax.plot(ep[m], va[m], marker=marker, ms=3, lw=1.3, label="validation")
        both = np.concatenate([tr[np.isfinite(tr)], va[np.isfinite(va)]])
        if both.size and both.min() > 0 and both.max() / both.min() > 10 ** 1.5:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
    return _svg_from_figure(fig)


# --------------------------------------------------------------------------------------------
# regression: parity plot
# --------------------------------------------------------------------------------------------


def parity_svg(target: Sequence, prediction: Sequence, mae: float | None = None, *,
               xlabel: str = "target", ylabel: str = "prediction", what: str = "test samples") -> str | None:
    """Prediction against target with the y = x line; MAE (given, or computed here) in the legend.

    ``xlabel``, ``ylabel`` and ``what`` (the legend's name of the points) must be fixed strings
    chosen by the caller, never text taken from a result.
    """
    t = _finite(target)
    p = _finite(prediction)
    m = np.isfinite(t) & np.isfinite(p)
    t, p = t[m], p[m]
    if t.size == 0:
        return None
    if mae is None or not math.isfinite(mae):
        mae = float(np.mean(np.abs(p - t)))
    lo = float(min(t.min(), p.min()))
    hi = float(max(t.max(), p.max()))
    pad = (hi - lo) * 0.04 or 1.0
    lo, hi = lo - pad, hi + pad
    fig = _new_figure(4.2, 4.0)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        dense = t.size > MAX_VECTOR_SCATTER
        ax.scatter(t, p, s=6 if dense else 12, alpha=0.45 if dense else 0.7, lw=0, color="C0",
                   label=f"{what} (n = {t.size}), MAE = {_fmt(mae)}", rasterized=dense)
        ax.plot([lo, hi], [lo, hi], color="#d62728", lw=1, label="y = x")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left", frameon=True, framealpha=0.85)
    return _svg_from_figure(fig)


# --------------------------------------------------------------------------------------------
# classification: ROC curve
# --------------------------------------------------------------------------------------------


def roc_svg(fpr: Sequence, tpr: Sequence, auc: float | None = None,
            threshold_point: tuple[float, float] | None = None,
            threshold: float | None = None) -> str | None:
    """ROC curve with the chance diagonal, the AUC in the legend and the operating point."""
    f = _finite(fpr)
    t = _finite(tpr)
    m = np.isfinite(f) & np.isfinite(t)
    f, t = f[m], t[m]
    if f.size < 2:
        return None
    if auc is None or not math.isfinite(auc):
        order = np.argsort(f, kind="stable")
        auc = float(np.sum(np.diff(f[order]) * (t[order][1:] + t[order][:-1]) / 2))
    idx = downsample_indices(f.size)
    f, t = f[idx], t[idx]
    fig = _new_figure(4.2, 4.0)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(f, t, lw=1.5, color="C0", drawstyle="default", label=f"ROC, AUC = {_fmt(auc)}")
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--", label="chance")
        if threshold_point is not None and all(math.isfinite(v) for v in threshold_point):
            thr_txt = f" {_fmt(threshold)}" if threshold is not None and math.isfinite(threshold) else ""
            ax.plot([threshold_point[0]], [threshold_point[1]], "o", color="#d62728", ms=6,
                    label=f"decision threshold{thr_txt}")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right", frameon=True, framealpha=0.85)
    return _svg_from_figure(fig)


def operating_point_from_curve(fpr: Sequence, tpr: Sequence, thresholds: Sequence,
                               threshold: float) -> tuple[float, float] | None:
    """Operating point read off a stored ROC curve: the last point whose threshold >= ``threshold``.

    ROC thresholds are decreasing; the point with the smallest threshold still >= the decision
    threshold is exactly the rule ``score >= threshold``.
    """
    f, t, th = _finite(fpr), _finite(tpr), _finite(thresholds)
    n = min(f.size, t.size, th.size)
    if n == 0:
        return None
    f, t, th = f[:n], t[:n], th[:n]
    # sklearn's first threshold is +inf (stored as null or a huge number): treat NaN as +inf.
    th = np.where(np.isnan(th), np.inf, th)
    ok = np.where(th >= threshold)[0]
    if ok.size == 0:
        return 0.0, 0.0
    i = ok[np.argmin(th[ok])]
    return float(f[i]), float(t[i])


def mapping_floats(d: Mapping | None, key: str) -> list:
    """``d[key]`` as a list if it is one, else ``[]`` (helper for loosely typed JSON)."""
    if isinstance(d, Mapping) and isinstance(d.get(key), list):
        return d[key]
    return []


# --------------------------------------------------------------------------------------------
# generation: distributions of generated vs reference crystals
# --------------------------------------------------------------------------------------------

_GEN_COLOUR = "#1f77b4"
_REF_COLOUR = "#ff7f0e"


def _overlaid_histogram(gen: np.ndarray, ref: np.ndarray, edges: np.ndarray, xlabel: str, ylabel: str,
                        emd: float | None, integer: bool) -> str:
    fig = _new_figure(4.6, 3.2)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        for values, colour, label in ((ref, _REF_COLOUR, f"reference (n = {ref.size})"),
                                      (gen, _GEN_COLOUR, f"generated, valid (n = {gen.size})")):
            if values.size == 0:
                continue
            weights = np.full(values.size, 1.0 / values.size)
            if not integer:  # probability density: bars of both sets integrate to 1
                weights /= np.diff(edges)[0]
            ax.hist(values, bins=edges, weights=weights, color=colour, alpha=0.45, lw=0, label=label)
            ax.hist(values, bins=edges, weights=weights, color=colour, histtype="step", lw=1.2)
        if integer:
            lo, hi = int(round(edges[0] + 0.5)), int(round(edges[-1] - 0.5))
            step = max(1, math.ceil((hi - lo + 1) / 12))
            ax.set_xticks(list(range(lo, hi + 1, step)))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        handles, labels = ax.get_legend_handles_labels()
        if emd is not None and math.isfinite(emd):
            from matplotlib.patches import Patch

            handles.append(Patch(color="none"))
            labels.append(f"EMD = {_fmt(emd)}")
        # above the axes: never on top of the bars
        ax.legend(handles, labels, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  ncol=len(labels), handlelength=1.2, columnspacing=1.2)
    return _svg_from_figure(fig)


def density_histogram_svg(generated: Sequence, reference: Sequence, emd: float | None = None) -> str | None:
    """Density (g/cm³) of the valid generated crystals overlaid on that of the reference set.

    Both histograms are normalised to unit area so sets of different size compare. ``None`` when
    neither set has a finite value.
    """
    gen = _finite(generated)
    ref = _finite(reference)
    gen, ref = gen[np.isfinite(gen)], ref[np.isfinite(ref)]
    if gen.size == 0 and ref.size == 0:
        return None
    both = np.concatenate([gen, ref])
    lo, hi = float(both.min()), float(both.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 31)
    return _overlaid_histogram(gen, ref, edges, "density (g/cm³)", "probability density", emd, False)


def num_elements_histogram_svg(generated: Sequence, reference: Sequence, emd: float | None = None) -> str | None:
    """Fraction of crystals per number of distinct elements, valid generated vs reference."""
    gen = _finite(generated)
    ref = _finite(reference)
    gen, ref = np.round(gen[np.isfinite(gen)]), np.round(ref[np.isfinite(ref)])
    if gen.size == 0 and ref.size == 0:
        return None
    both = np.concatenate([gen, ref])
    lo, hi = int(both.min()), int(both.max())
    if hi - lo > 200:  # nonsense values: keep the figure bounded
        return None
    edges = np.arange(lo - 0.5, hi + 1.5, 1.0)
    return _overlaid_histogram(gen, ref, edges, "number of elements", "fraction of crystals", emd, True)


# --------------------------------------------------------------------------------------------
# generation: drawings of generated crystals
# --------------------------------------------------------------------------------------------

#: Cells with more sites than this are not drawn (the drawing would be unreadable anyway).
MAX_DRAWN_SITES = 400


def _jmol_colours() -> dict[str, tuple[float, float, float]]:
    """Jmol element colours from pymatgen's ``vis/ElementColorSchemes.yaml`` (``{}`` if absent)."""
    if hasattr(_jmol_colours, "cache"):
        return _jmol_colours.cache  # type: ignore[attr-defined]
    out: dict[str, tuple[float, float, float]] = {}
    try:
        from importlib import resources

        text = (resources.files("pymatgen") / "vis" / "ElementColorSchemes.yaml").read_text(encoding="utf-8")
        section = None
        for line in text.splitlines():
            if line and not line.startswith(" "):
                section = line.strip().rstrip(":")
                continue
            m = re.fullmatch(r"\s+([A-Z][a-z]{0,2}):\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*", line)
            if section == "Jmol" and m:
                out[m.group(1)] = tuple(int(m.group(i)) / 255 for i in (2, 3, 4))  # type: ignore[assignment]
    except Exception:  # noqa: BLE001 - colours are cosmetic: fall back to a palette
        out = {}
    _jmol_colours.cache = out  # type: ignore[attr-defined]
    return out


def element_rgb(symbol: str, z: int) -> tuple[float, float, float]:
    """Display colour of an element: Jmol's, else a palette colour chosen by atomic number ``z``."""
    rgb = _jmol_colours().get(symbol)
    if rgb is not None:
        return rgb
    import matplotlib.colors as mcolors

    palette = matplotlib.colormaps["tab20"].colors
    return tuple(mcolors.to_rgb(palette[int(z) % len(palette)]))  # type: ignore[return-value]


def _with_boundary_images(frac: np.ndarray, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Fractional coordinates wrapped into the cell plus the images of atoms on faces/edges/corners.

    Returns ``(coords, source_index)``: an atom at x = 0 also appears at x = 1, so a cubic
    perovskite shows all eight corners.
    """
    frac = np.mod(frac, 1.0)
    frac[np.abs(frac - 1.0) < tol] = 0.0
    coords, source = [], []
    for i, f in enumerate(frac):
        shifts = [[0.0] if abs(c) > tol else [0.0, 1.0] for c in f]
        for dx in shifts[0]:
            for dy in shifts[1]:
                for dz in shifts[2]:
                    coords.append(f + np.array([dx, dy, dz]))
                    source.append(i)
    return np.asarray(coords, dtype=float).reshape(-1, 3), np.asarray(source, dtype=int)


def structure_svg(lattice: Sequence[Sequence[float]], frac_coords: Sequence[Sequence[float]],
                  colours: Sequence[Sequence[float]], radii: Sequence[float]) -> str | None:
    """A ball drawing of one crystal: the unit cell's 12 edges and the atoms, coloured by element.

    Args:
        lattice: 3 x 3 lattice matrix (rows are the cell vectors, Å).
        frac_coords: n x 3 fractional coordinates.
        colours: n RGB triples in [0, 1] (see :func:`element_rgb`).
        radii: n atomic radii in Å (sets the relative ball sizes).

    Draws no text at all (the formula and element legend belong in the HTML caption). Returns
    ``None`` for an empty, degenerate or oversized cell.
    """
    lat = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float).reshape(-1, 3)
    rgb = np.asarray(colours, dtype=float).reshape(-1, 3)
    rad = _finite(radii)
    if (lat.shape != (3, 3) or not np.isfinite(lat).all() or abs(np.linalg.det(lat)) < 1e-6
            or frac.shape[0] == 0 or frac.shape[0] > MAX_DRAWN_SITES or rgb.shape[0] != frac.shape[0]
            or rad.size != frac.shape[0] or not np.isfinite(frac).all()):
        return None
    rad = np.where(np.isfinite(rad) & (rad > 0), rad, 1.0)
    coords_f, source = _with_boundary_images(frac)
    cart = coords_f @ lat
    corners_f = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    corners = corners_f @ lat
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8)
             if np.abs(corners_f[a] - corners_f[b]).sum() == 1]

    # ball size: relative to the largest cell extent, so every cell fills the same drawing area
    span = np.ptp(corners, axis=0)
    extent = float(span.max())
    scale_pt = 150.0 / (extent * 1.45)  # ~points per Å in a 2.6-inch drawing
    sizes = (2 * 0.32 * rad[source] * scale_pt) ** 2

    fig = _new_figure(2.6, 2.6)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1, projection="3d")
        for a, b in edges:
            ax.plot(*zip(corners[a], corners[b]), color="#444444", lw=0.9)
        order = np.argsort(source, kind="stable")
        ax.scatter(cart[order, 0], cart[order, 1], cart[order, 2], s=sizes[order], c=rgb[source[order]],
                   edgecolors="#222222", linewidths=0.5, alpha=1.0, depthshade=True)
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        pad = 0.08 * extent
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
        ax.set_zlim(lo[2] - pad, hi[2] + pad)
        ax.set_box_aspect(np.maximum(span + 2 * pad, 1e-3))
        ax.view_init(elev=18, azim=-62)
        ax.set_axis_off()
        fig.subplots_adjust(0, 0, 1, 1)
    return _svg_from_figure(fig)


# --------------------------------------------------------------------------------------------
# spectra: predicted vs true spectrum of one crystal, distribution of per-crystal errors
# --------------------------------------------------------------------------------------------

_TRUE_COLOUR = "#333333"
_PRED_COLOUR = "#1f77b4"
#: Colours of the crystals marked in the per-crystal histogram (best, median, worst).
MARK_COLOURS = {"best": "#2ca02c", "median": "#ff7f0e", "worst": "#d62728"}


def spectrum_svg(frequency: Sequence, target: Sequence, prediction: Sequence,
                 xlabel: str = "frequency (cm⁻¹)", ylabel: str = "DOS") -> str | None:
    """True (grey area, dark line) and predicted (blue line) spectrum of one crystal.

    Points are sorted by frequency; a point with a non-finite frequency is dropped, a non-finite
    DOS value leaves a gap in its line. ``xlabel``/``ylabel`` must be fixed strings chosen by the
    caller. Returns ``None`` when fewer than two points have a finite frequency and a finite value.
    """
    f = _finite(frequency)
    t = _finite(target)
    p = _finite(prediction)
    n = min(f.size, t.size, p.size)
    f, t, p = f[:n], t[:n], p[:n]
    keep = np.isfinite(f)
    f, t, p = f[keep], t[keep], p[keep]
    order = np.argsort(f, kind="stable")
    f, t, p = f[order], t[order], p[order]
    if (np.isfinite(t).sum() < 2 and np.isfinite(p).sum() < 2) or f.size < 2:
        return None
    idx = downsample_indices(f.size)
    f, t, p = f[idx], t[idx], p[idx]
    values = np.concatenate([t[np.isfinite(t)], p[np.isfinite(p)]])
    lo, hi = min(0.0, float(values.min())), float(values.max())
    fig = _new_figure(3.5, 2.5)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        mt = np.isfinite(t)
        ax.fill_between(f, np.where(mt, t, 0.0), 0.0, where=mt, color=_TRUE_COLOUR, alpha=0.12, lw=0)
        ax.plot(f, t, color=_TRUE_COLOUR, lw=1.3, label="true")
        ax.plot(f, p, color=_PRED_COLOUR, lw=1.3, ls="--", label="predicted")
        ax.set_xlim(float(f[0]), float(f[-1]))
        ax.set_ylim(lo, hi + 0.1 * ((hi - lo) or 1.0))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        # above the axes: never on top of a peak
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, handlelength=1.8)
    return _svg_from_figure(fig)


def per_crystal_histogram_svg(values: Sequence, xlabel: str = "per-crystal MSE",
                              marks: Mapping[str, float] | None = None,
                              mean: float | None = None) -> str | None:
    """Histogram of a per-crystal error over the test set.

    Log-spaced bins on a log axis when all values are positive and span more than two decades.
    ``marks`` maps the fixed names ``"best"``, ``"median"``, ``"worst"`` to values drawn as
    vertical lines (other names are ignored); ``mean`` is drawn dashed. ``None`` when no value is
    finite.
    """
    v = _finite(values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    log = lo > 0 and hi / lo > 100
    n_bins = int(min(40, max(6, math.ceil(math.sqrt(v.size) * 1.5))))
    # a margin around the data so the lines of the extreme crystals are not on the axis border
    if log:
        margin = (hi / lo) ** 0.04
        edges = np.geomspace(lo / margin, hi * margin, n_bins + 1)
    else:
        pad = (hi - lo) * 0.04
        if pad < 1e-12 * max(1.0, abs(hi)):
            pad = abs(hi) * 0.05 or 0.5
        edges = np.linspace(lo - pad, hi + pad, n_bins + 1)
    fig = _new_figure(4.4, 3.0)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        ax.hist(v, bins=edges, color=_PRED_COLOUR, alpha=0.55, lw=0, label=f"test crystals (n = {v.size})")
        ax.hist(v, bins=edges, color=_PRED_COLOUR, histtype="step", lw=1.0)
        if log:
            ax.set_xscale("log")
        for name in ("best", "median", "worst"):
            x = (marks or {}).get(name)
            if x is not None and math.isfinite(x) and (x > 0 or not log):
                ax.axvline(x, color=MARK_COLOURS[name], lw=1.4, label=f"{name} ({_fmt(x)})")
        if mean is not None and math.isfinite(mean) and (mean > 0 or not log):
            ax.axvline(mean, color="#555555", lw=1.0, ls="--", label=f"mean ({_fmt(mean)})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("crystals")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(bottom=0)
        ax.set_xlim(edges[0], edges[-1])
        # below the axes: never on top of the bars
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return _svg_from_figure(fig)
