"""Scoring driver for regression tasks (one real target per crystal)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import metrics


def score(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """MAE, MSE, RMSE, R2 and MaxError of ``y_pred`` against ``y_true`` (both shape ``(n,)``, in the
    task's unit). Returns ``(metrics, metric_details)``.

    Raises:
        ValueError: from :mod:`metrics` on length mismatch, empty input or non-finite values.
    """
    return metrics.regression_metrics(y_true, y_pred), {}


def prediction_rows(ids: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, list]:
    """Columns of ``predictions.csv``: ``id``, ``target``, ``prediction`` (task unit)."""
    return {"id": list(ids), "target": [float(v) for v in y_true], "prediction": [float(v) for v in y_pred]}
