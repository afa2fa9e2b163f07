"""Report section of spectrum-prediction runs (one spectrum per crystal on a shared grid, e.g. the
phonon DOS): the predicted and true spectra of the best, the median and the worst test crystal by
per-crystal MSE, a histogram of the per-crystal MSE and a parity plot of C_V(300 K).

The per-crystal values come from ``metric_details.per_crystal`` as the runner stored them; the
spectra themselves are read from the long-format ``predictions.csv`` (``id, frequency, target,
prediction``). Only a per-crystal MSE the runner did not store (an old result, a null entry, a
list of another length than the file's crystals) is computed here from that file, and the
histogram's caption says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from metrics import catalogue

import orchestrator.report.plots as plots
from ..figures import read_csv, run_file, safe_plot
from ..formatting import as_dict, as_list, dig, format_metric, is_num, short_json, sig3
from ..views import Figure, RunView
from .base import Section

_SPECTRA_COLUMNS = ("id", "frequency", "target", "prediction")
_CM1_UNITS = {"cm^-1", "cm-1", "1/cm", "cm⁻¹", "cm**-1", "cm^{-1}"}
#: Spectra of at most this many crystals are read from predictions.csv (bounds time and memory).
MAX_SPECTRA_CRYSTALS = 200_000
_PICK_HEADINGS = {"best": "Best test crystal (lowest MSE)", "median": "Median test crystal (by MSE)",
                  "worst": "Worst test crystal (highest MSE)", "only": "The only test crystal with an MSE"}


@dataclass
class _Spectra:
    """Long-format predictions.csv grouped by crystal, in the order of first appearance."""

    ids: list[str]
    frequency: list[Any]
    target: list[Any]
    prediction: list[Any]

    def mse(self) -> list[float]:
        """Per-crystal MSE computed from the file (NaN where no finite pair): only for crystals
        whose MSE the runner did not store."""
        import numpy as np

        out = []
        for t, p in zip(self.target, self.prediction):
            both = np.isfinite(t) & np.isfinite(p)
            out.append(float(np.mean((p[both] - t[both]) ** 2)) if both.any() else math.nan)
        return out


def _load_spectra(path: Path) -> tuple[_Spectra | None, str | None]:
    import pandas as pd

    frame, note = read_csv(path, _SPECTRA_COLUMNS, dtype={"id": str})
    if frame is None:
        return None, note
    freq = pd.to_numeric(frame["frequency"], errors="coerce")
    keep = freq.notna() & frame["id"].notna()
    if not keep.any():
        return None, f"{path.name} has no row with a crystal id and a numeric frequency — figure skipped."
    sub = pd.DataFrame({"id": frame.loc[keep, "id"].astype(str), "f": freq[keep],
                        "t": pd.to_numeric(frame.loc[keep, "target"], errors="coerce"),
                        "p": pd.to_numeric(frame.loc[keep, "prediction"], errors="coerce")})
    if sub["id"].nunique() > MAX_SPECTRA_CRYSTALS:
        return None, f"{path.name} holds more than {MAX_SPECTRA_CRYSTALS:,} crystals — figure skipped."
    out = _Spectra([], [], [], [])
    for cid, g in sub.groupby("id", sort=False):
        g = g.sort_values("f", kind="stable")
        out.ids.append(str(cid))
        out.frequency.append(g["f"].to_numpy(dtype=float))
        out.target.append(g["t"].to_numpy(dtype=float))
        out.prediction.append(g["p"].to_numpy(dtype=float))
    return out, None


def _aligned(details: Mapping, key: str, n: int | None) -> list[float | None] | None:
    """``metric_details.per_crystal[key]`` as floats/None, or ``None`` if absent or of another length."""
    values = dig(details, "per_crystal", key)
    if not isinstance(values, list) or (n is not None and len(values) != n):
        return None
    return [float(v) if is_num(v) else None for v in values]


def _rank_picks(mse: Sequence[float]) -> list[tuple[str, int]]:
    """``[(which, index)]``: best, median and worst crystal by MSE (fewer when < 3 are finite)."""
    order = sorted((i for i, v in enumerate(mse) if is_num(v)), key=lambda i: (mse[i], i))
    if not order:
        return []
    if len(order) == 1:
        return [("only", order[0])]
    if len(order) == 2:
        return [("best", order[0]), ("worst", order[1])]
    return [("best", order[0]), ("median", order[(len(order) - 1) // 2]), ("worst", order[-1])]


def _per_crystal_mse(details: Mapping, spectra: _Spectra | None, pred_name: str) -> tuple[list[float], str | None]:
    """Per-crystal MSE as stored (aligned with the crystals of predictions.csv), completed from the
    file only where the runner stored none; and where the values come from (for the caption)."""
    n = len(spectra.ids) if spectra is not None else None
    stored = _aligned(details, "MSE", n)
    raw = dig(details, "per_crystal", "MSE")
    if spectra is None:
        if stored is None:
            return [], None
        return ([v if v is not None else math.nan for v in stored],
                f"as reported in metric_details.per_crystal.MSE ({pred_name} unusable)")
    if stored is not None:
        if all(v is not None for v in stored):
            return list(stored), "as reported in metric_details.per_crystal.MSE"
        computed = spectra.mse()
        mse = [v if v is not None else r for v, r in zip(stored, computed)]
        filled = sum(v is None and is_num(r) for v, r in zip(stored, computed))
        source = "as reported in metric_details.per_crystal.MSE"
        if filled:
            source += f"; {filled} null value(s) recomputed from {pred_name}"
        return mse, source
    source = f"recomputed from {pred_name}"
    if isinstance(raw, list):
        source += f" (metric_details.per_crystal.MSE has {len(raw):,} entries for {n:,} crystals: not aligned)"
    return spectra.mse(), source


class SpectraSection(Section):
    task_type = "spectra"
    metric_group = "Spectrum metrics (test set)"
    metric_group_order = 1
    show_all_metrics = True
    see_also = "the spectrum metrics"

    def layout(self, common: list[Figure], own: list[Figure]) -> list[Figure]:
        # the spectra on their own row under the resource plot, then loss, histogram and C_V parity
        trio = [f for f in own if f.key.startswith("spectr")]
        return common[:1] + trio + common[1:] + [f for f in own if f not in trio]

    def details(self, run: RunView) -> None:
        run.parts_before.append("sections/spectra.html.j2")

    def figures(self, run: RunView) -> list[Figure]:
        """Figures of a spectra run: best/median/worst spectra, MSE histogram, C_V parity; the facts
        of the section go to ``run.section_data["spectra"]``."""
        result = run.result
        pred_path = run_file(Path(run.path), result, "predictions", "predictions.csv")
        details = as_dict(result.get("metric_details"))
        metrics = as_dict(result.get("metrics"))
        spectra, note = _load_spectra(pred_path)
        n = len(spectra.ids) if spectra is not None else None
        grid_unit = details.get("grid_unit")
        cm1 = grid_unit is None or str(grid_unit).strip() in _CM1_UNITS
        xlabel = "frequency (cm⁻¹)" if cm1 else "frequency"
        unit_txt = "cm⁻¹" if cm1 else str(grid_unit)
        temp = details.get("temperature_K")
        temp_txt = f"{temp:g} K" if is_num(temp) else "300 K"

        mse, source = _per_crystal_mse(details, spectra, pred_path.name)
        picks = _rank_picks(mse)
        wass = _aligned(details, "Wasserstein", n)

        figs: list[Figure] = []
        if spectra is None:
            figs.append(Figure("spectra", "Predicted vs true spectra (test set)", note=note, break_after=True))
        elif not picks:
            figs.append(Figure("spectra", "Predicted vs true spectra (test set)", break_after=True,
                               note=f"{pred_path.name} has no crystal with finite target and prediction values "
                                    "— figure skipped."))
        else:
            finite = sum(is_num(v) for v in mse)
            ranked = sorted(v for v in mse if is_num(v))
            for k, (which, i) in enumerate(picks):
                fig = Figure(f"spectrum-{which}", _PICK_HEADINGS[which], size="small", crystal=spectra.ids[i],
                             break_after=k == len(picks) - 1)
                caption = f"MSE = {format_metric(mse[i])}"
                if wass is not None and wass[i] is not None:
                    caption += f" · Wasserstein = {format_metric(wass[i])} {unit_txt}"
                rank = ranked.index(mse[i]) + 1 if which != "only" else 1
                caption += f" (rank {rank:,} of {finite:,} by MSE; {spectra.frequency[i].size} grid points)"
                fig.caption = caption
                safe_plot(fig, lambda i=i: plots.spectrum_svg(spectra.frequency[i], spectra.target[i],
                                                              spectra.prediction[i], xlabel=xlabel),
                          f"Crystal has fewer than two finite points in {pred_path.name} — figure skipped.")
                figs.append(fig)

        # histogram of per-crystal MSE
        fig = Figure("hist-mse", "Per-crystal MSE (test set)", size="medium")
        finite_mse = [v for v in mse if is_num(v)]
        if not finite_mse:
            why = note.replace(" — figure skipped.", "") if note else f"{pred_path.name} has no finite values"
            fig.note = f"No per-crystal MSE: {why} and metric_details.per_crystal.MSE is not usable — figure skipped."
        else:
            marks = {w: mse[i] for w, i in picks if w != "only"}
            mean = sum(finite_mse) / len(finite_mse)
            fig.caption = (f"Per-crystal MSE of the {len(finite_mse):,} test crystals ({source}); coloured lines "
                           "mark the crystals drawn above, the dashed line the mean.")
            safe_plot(fig, lambda: plots.per_crystal_histogram_svg(finite_mse, "per-crystal MSE", marks, mean),
                      "No finite per-crystal MSE — figure skipped.")
        figs.append(fig)

        figs.append(self._cv_parity(details, metrics, temp_txt))
        run.section_data["spectra"] = self._facts(run, details, spectra, pred_path.name, unit_txt, temp,
                                                  temp_txt, source)
        return figs

    @staticmethod
    def _cv_parity(details: Mapping, metrics: Mapping, temp_txt: str) -> Figure:
        fig = Figure("parity-cv", f"C_V({temp_txt}): predicted vs true", size="medium")
        cv_t = _aligned(details, "Cv_300K_true", None)
        cv_p = _aligned(details, "Cv_300K_pred", None)
        if cv_t is None or cv_p is None:
            fig.note = "metric_details.per_crystal has no Cv_300K_true / Cv_300K_pred lists — figure skipped."
            return fig
        if len(cv_t) != len(cv_p):
            fig.note = (f"metric_details.per_crystal.Cv_300K_true ({len(cv_t):,}) and Cv_300K_pred "
                        f"({len(cv_p):,}) differ in length — figure skipped.")
            return fig
        pairs = [(a, b) for a, b in zip(cv_t, cv_p) if a is not None and b is not None]
        left_out = len(cv_t) - len(pairs)
        entry = catalogue.entry("spectra", "Cv_300K_MAE")
        mae = metrics.get(entry.name)
        fig.caption = (f"Heat capacity at {temp_txt} from the predicted against that from the true DOS, per test "
                       f"crystal, in {entry.unit}; the red line is y = x; "
                       + (f"MAE as reported in result.json ({entry.name})." if is_num(mae) else "MAE computed here.")
                       + (f" {left_out:,} crystal(s) without a C_V value left out." if left_out else ""))
        safe_plot(fig, lambda: plots.parity_svg([a for a, _ in pairs], [b for _, b in pairs],
                                                mae if is_num(mae) else None,
                                                xlabel=f"C_V true ({entry.unit})",
                                                ylabel=f"C_V predicted ({entry.unit})", what="test crystals"),
                  "No crystal has both a true and a predicted C_V value — figure skipped.")
        return fig

    def _facts(self, run: RunView, details: Mapping, spectra: _Spectra | None, pred_name: str, unit_txt: str,
               temp: Any, temp_txt: str, source: str | None) -> dict:
        facts: list[tuple[str, str]] = []
        if spectra is not None:
            facts.append(("Test crystals", f"{len(spectra.ids):,} (in {pred_name})"))
        elif is_num(dig(run.result, "dataset", "sizes", "test")):
            facts.append(("Test crystals", f"{dig(run.result, 'dataset', 'sizes', 'test'):,} (size of the test split)"))
        grid = [v for v in as_list(details.get("grid")) if is_num(v)]
        if grid:
            facts.append(("Frequency grid", f"{len(grid):,} points, {sig3(min(grid))}–{sig3(max(grid))} {unit_txt}"))
        if run.unit:
            facts.append(("Spectrum normalisation", run.unit))
        if is_num(temp):
            facts.append(("C_V temperature", temp_txt))
        if source:
            facts.append(("Per-crystal MSE", source))
        labels = {e.definition_key: e.label + (f" ({e.unit})" if e.unit else "")
                  for e in catalogue.entries(self.task_type)}
        definitions = [(labels.get(str(k), str(k)), short_json(v, 1000))
                       for k, v in as_dict(details.get("definition")).items() if v not in (None, "")]
        return {"facts": facts, "definitions": definitions}
