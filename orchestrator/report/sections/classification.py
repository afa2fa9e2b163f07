"""Report section of binary classification runs: the ROC curve and the confusion matrix, both as
the runner stored them in ``metric_details`` (nothing is recomputed from ``predictions.csv``)."""

from __future__ import annotations

from typing import Any, Mapping

import orchestrator.report.plots as plots
from ..figures import safe_plot
from ..formatting import as_dict, is_num, short_json
from ..views import Figure, RunView
from .base import Section


def _confusion(cm: Any) -> dict:
    """Normalise a confusion matrix to ``{"grid": [[tn, fp], [fn, tp]]}`` or ``{"text": ...}``."""
    if isinstance(cm, Mapping):
        low = {str(k).lower(): v for k, v in cm.items()}
        if all(k in low for k in ("tn", "fp", "fn", "tp")):
            return {"grid": [[short_json(low["tn"]), short_json(low["fp"])],
                             [short_json(low["fn"]), short_json(low["tp"])]], "text": None}
        mat = low.get("matrix")
        if isinstance(mat, list) and len(mat) == 2 and all(isinstance(r, list) and len(r) == 2 for r in mat):
            return {"grid": [[short_json(v) for v in r] for r in mat], "text": None}
    if isinstance(cm, list) and len(cm) == 2 and all(isinstance(r, list) and len(r) == 2 for r in cm):
        return {"grid": [[short_json(v) for v in r] for r in cm], "text": None}
    return {"grid": None, "text": short_json(cm, 1000)}


def _operating_point(cm: Any) -> tuple[float, float] | None:
    """``(FPR, TPR)`` at the decision threshold from the stored confusion matrix ``{tn, fp, fn, tp}``."""
    if not isinstance(cm, Mapping):
        return None
    tn, fp, fn, tp = (cm.get(k) for k in ("tn", "fp", "fn", "tp"))
    if not all(is_num(v) for v in (tn, fp, fn, tp)) or tn + fp <= 0 or tp + fn <= 0:
        return None
    return fp / (tn + fp), tp / (tp + fn)


def roc_figure(run: RunView) -> Figure:
    """ROC curve of ``metric_details.roc_curve`` with the decision threshold's operating point."""
    details = as_dict(run.result.get("metric_details"))
    thr = details.get("threshold")
    thr = float(thr) if is_num(thr) else None
    fig = Figure("roc", "ROC curve (test set)",
                 caption="ROC of the positive-class score; the red dot is the decision threshold"
                         + (f" ({thr:g})" if thr is not None else "") + ".")
    curve = details.get("roc_curve")
    fpr = plots.mapping_floats(curve, "fpr")
    tpr = plots.mapping_floats(curve, "tpr")
    if len(fpr) < 2 or len(fpr) != len(tpr):
        if "roc_curve" not in details:
            why = "result.json has no metric_details.roc_curve"
        elif curve is None:
            why = "metric_details.roc_curve is null (the test set holds a single class)"
        else:
            why = "metric_details.roc_curve has fewer than two points"
        fig.note = f"No ROC curve: {why}."
        return fig
    auc = as_dict(run.result.get("metrics")).get("ROC-AUC")
    auc = float(auc) if is_num(auc) else None
    point = None
    if thr is not None:
        point = _operating_point(details.get("confusion_matrix"))
        if point is None:
            ths = plots.mapping_floats(curve, "thresholds")
            if ths:
                point = plots.operating_point_from_curve(fpr, tpr, ths, thr)
    safe_plot(fig, lambda: plots.roc_svg(fpr, tpr, auc, point, thr), "ROC curve has no finite points.")
    return fig


class ClassificationSection(Section):
    task_type = "classification"

    def figures(self, run: RunView) -> list[Figure]:
        return [roc_figure(run)]

    def details(self, run: RunView) -> None:
        cm = as_dict(run.result.get("metric_details")).get("confusion_matrix")
        if cm is not None:
            run.section_data["confusion"] = _confusion(cm)
            run.parts_before.append("sections/classification.html.j2")
