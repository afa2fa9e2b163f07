"""Task type ``regression``: one real target per crystal, in the task's unit.

The model's ``predict`` returns one number per test crystal; the scoring stage writes
``predictions.csv`` (``id``, ``target``, ``prediction``) and scores MAE, MSE, RMSE, R2 and MaxError
(:func:`metrics.regression_metrics`; definitions and sources in ``metrics/catalogue.yaml``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import metrics
from runner.tasks.base import TaskType


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


class Regression(TaskType):
    """See the module docstring."""

    name = "regression"

    def metrics_of(self, y_true: np.ndarray, output: Any) -> tuple[dict[str, float], dict[str, Any]]:
        return score(y_true, output)

    def prediction_columns(self, ids: Sequence[str], y_true: np.ndarray, output: Any) -> dict[str, list]:
        return prediction_rows(ids, y_true, output)


TASK_TYPE = Regression()
