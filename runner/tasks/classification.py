"""Scoring driver for binary classification tasks (label 1 = the task's positive class)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import metrics

#: Decision threshold on the positive-class probability: predicted positive when score >= 0.5.
THRESHOLD = 0.5


def score(y_true: np.ndarray, scores: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """ROC-AUC, Accuracy, Precision, Recall and F1 of positive-class probabilities ``scores`` (shape
    ``(n,)``, in [0, 1]) against labels ``y_true`` (0/1), at threshold :data:`THRESHOLD`.
    Returns ``(metrics, metric_details)`` where the details hold the threshold, ROC curve points and
    confusion matrix.

    Raises:
        ValueError: from :mod:`metrics` on bad labels, scores outside [0, 1] or NaN.
    """
    return (metrics.classification_metrics(y_true, scores, threshold=THRESHOLD),
            metrics.classification_details(y_true, scores, threshold=THRESHOLD))


def prediction_rows(ids: Sequence[str], y_true: np.ndarray, scores: np.ndarray) -> dict[str, list]:
    """Columns of ``predictions.csv``: ``id``, ``target`` (0/1), ``prediction`` (0/1 at the
    threshold) and ``score`` (positive-class probability)."""
    return {
        "id": list(ids),
        "target": [int(v) for v in y_true],
        "prediction": [int(s >= THRESHOLD) for s in scores],
        "score": [float(s) for s in scores],
    }
