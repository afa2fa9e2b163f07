"""Binary classification metrics: pure functions of ``(y_true, scores)``.

Conventions shared by every function here:

* ``y_true`` holds the labels 0 and 1; the positive class is 1.
* ``scores`` holds the predicted probability of class 1, in ``[0, 1]``.
* Where a hard prediction is needed, a sample is predicted positive when
  ``score >= threshold`` (a score equal to the threshold counts as positive).
* Inputs are validated by :func:`metrics._validation.check_binary_arrays`;
  invalid input raises ``ValueError`` naming the argument.
* A metric that is undefined for the given data (division by zero, ROC-AUC
  with one class) is returned as NaN, never as a silent 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as _skm

from ._validation import check_binary_arrays, check_threshold

__all__ = [
    "roc_curve_points",
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "classification_metrics",
    "classification_details",
]


def _predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Hard labels: 1 where ``score >= threshold``, else 0."""
    return (scores >= threshold).astype(np.int64)


def _has_both_classes(y: np.ndarray) -> bool:
    return bool(y.min() == 0 and y.max() == 1)


def roc_curve_points(y_true: ArrayLike, scores: ArrayLike) -> dict[str, list[float]]:
    """Points of the receiver operating characteristic (ROC) curve.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.

    Returns
    -------
    dict
        ``{"fpr": [...], "tpr": [...], "thresholds": [...]}``, three lists of
        Python floats of equal length, ordered by decreasing threshold.
        ``fpr[i]`` and ``tpr[i]`` (dimensionless, in ``[0, 1]``) are the
        rates obtained by predicting positive when ``score >= thresholds[i]``.
        The first point is always ``(0, 0)``; scikit-learn stores ``inf`` as
        its threshold, which is not valid JSON, so it is replaced by the
        smallest float64 strictly greater than ``max(scores)``
        (``numpy.nextafter(max(scores), inf)``), a threshold at which no
        sample is predicted positive. All values are finite, and the dict is
        JSON-serializable. Collinear intermediate points are dropped
        (scikit-learn's ``drop_intermediate=True``); the curve is unchanged.

    Raises
    ------
    ValueError
        If ``y_true`` contains only one class (the ROC curve is undefined),
        or on invalid input (see :mod:`metrics._validation`).

    References
    ----------
    Wraps :func:`sklearn.metrics.roc_curve`.
    T. Fawcett, "An introduction to ROC analysis", Pattern Recognition
    Letters 27 (2006) 861-874, Algorithm 1.

    Examples
    --------
    >>> pts = roc_curve_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> pts["fpr"], pts["tpr"]
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    >>> pts["thresholds"][1:]
    [0.8, 0.4, 0.35, 0.1]
    """
    y, s = check_binary_arrays(y_true, scores)
    if not _has_both_classes(y):
        raise ValueError(
            f"y_true contains only one class ({int(y[0])}); the ROC curve needs "
            "both positive (1) and negative (0) samples"
        )
    fpr, tpr, thresholds = _skm.roc_curve(y, s, pos_label=1)
    thresholds = thresholds.astype(np.float64)
    thresholds[0] = np.nextafter(s.max(), np.inf)
    return {
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "thresholds": [float(v) for v in thresholds],
    }


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve.

    Equals the probability that a randomly chosen positive sample gets a
    higher score than a randomly chosen negative one, ties counting 1/2.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.

    Returns
    -------
    float
        Dimensionless, in ``[0, 1]``; 0.5 for uninformative scores.
        **NaN when y_true contains only one class** (AUC undefined). This
        does not raise, so an evaluation on an unlucky subset still reports
        the other metrics.

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`).

    References
    ----------
    Wraps :func:`sklearn.metrics.roc_auc_score`.
    J. A. Hanley and B. J. McNeil, Radiology 143 (1982) 29-36 (AUC as the
    Mann-Whitney probability).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([1, 1], [0.2, 0.9])
    nan
    """
    y, s = check_binary_arrays(y_true, scores)
    if not _has_both_classes(y):
        return math.nan
    return float(_skm.roc_auc_score(y, s))


def accuracy(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of samples classified correctly, ``(TP + TN) / n``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``.

    Returns
    -------
    float
        Dimensionless, in ``[0, 1]``. Always defined (input is non-empty).

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    Wraps :func:`sklearn.metrics.accuracy_score`.

    Examples
    --------
    >>> accuracy([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = check_binary_arrays(y_true, scores)
    pred = _predict(s, check_threshold(threshold))
    return float(_skm.accuracy_score(y, pred))


def precision(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """Precision of the positive class, ``TP / (TP + FP)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``.

    Returns
    -------
    float
        Dimensionless, in ``[0, 1]``. **NaN when no sample is predicted
        positive** (``TP + FP = 0``), rather than a silent 0.

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    Wraps :func:`sklearn.metrics.precision_score` with ``pos_label=1`` and
    ``zero_division=np.nan``.

    Examples
    --------
    >>> precision([0, 0, 1, 1], [0.1, 0.6, 0.35, 0.8])
    0.5
    >>> precision([0, 1], [0.1, 0.2])
    nan
    """
    y, s = check_binary_arrays(y_true, scores)
    pred = _predict(s, check_threshold(threshold))
    return float(_skm.precision_score(y, pred, pos_label=1, zero_division=np.nan))


def recall(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """Recall (sensitivity, true positive rate), ``TP / (TP + FN)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``.

    Returns
    -------
    float
        Dimensionless, in ``[0, 1]``. **NaN when y_true has no positive
        sample** (``TP + FN = 0``), rather than a silent 0.

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    Wraps :func:`sklearn.metrics.recall_score` with ``pos_label=1`` and
    ``zero_division=np.nan``.

    Examples
    --------
    >>> recall([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    >>> recall([0, 0], [0.1, 0.9])
    nan
    """
    y, s = check_binary_arrays(y_true, scores)
    pred = _predict(s, check_threshold(threshold))
    return float(_skm.recall_score(y, pred, pos_label=1, zero_division=np.nan))


def f1(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """F1 score of the positive class, ``2 TP / (2 TP + FP + FN)``.

    The harmonic mean of precision and recall where both are defined.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``.

    Returns
    -------
    float
        Dimensionless, in ``[0, 1]``. **NaN when precision and recall are
        both undefined**, i.e. no positive in ``y_true`` and none predicted
        (``2 TP + FP + FN = 0``). When ``TP = 0`` but ``FP + FN > 0``
        (e.g. positives exist and none is predicted, so precision is NaN and
        recall is 0), the formula is well defined and gives 0.0: the
        classifier found none of the positives.

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    Wraps :func:`sklearn.metrics.f1_score` with ``pos_label=1`` and
    ``zero_division=np.nan``.

    Examples
    --------
    >>> f1([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.6666666666666666
    >>> f1([0, 0], [0.1, 0.2])
    nan
    """
    y, s = check_binary_arrays(y_true, scores)
    pred = _predict(s, check_threshold(threshold))
    return float(_skm.f1_score(y, pred, pos_label=1, zero_division=np.nan))


def classification_metrics(
    y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """All binary classification metrics at once.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``
        (ROC-AUC does not use it).

    Returns
    -------
    dict of str to float
        Exactly the keys ``"ROC-AUC"``, ``"Accuracy"``, ``"Precision"``,
        ``"Recall"``, ``"F1"``, from :func:`roc_auc`, :func:`accuracy`,
        :func:`precision`, :func:`recall`, :func:`f1`; each may be NaN
        under the conditions documented there (never raises for one class).

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    See the individual functions.

    Examples
    --------
    >>> classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    {'ROC-AUC': 0.75, 'Accuracy': 0.75, 'Precision': 1.0, 'Recall': 0.5, 'F1': 0.6666666666666666}
    """
    y, s = check_binary_arrays(y_true, scores)
    thr = check_threshold(threshold)
    return {
        "ROC-AUC": roc_auc(y, s),
        "Accuracy": accuracy(y, s, thr),
        "Precision": precision(y, s, thr),
        "Recall": recall(y, s, thr),
        "F1": f1(y, s, thr),
    }


def classification_details(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> dict:
    """ROC curve, confusion matrix and class counts, for reports.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, 0 or 1 (positive class = 1).
    scores : array-like of shape (n_samples,)
        Predicted probability of class 1, in ``[0, 1]``.
    threshold : float, default=0.5
        A sample is predicted positive when ``score >= threshold``.

    Returns
    -------
    dict
        JSON-serializable, with keys

        - ``"threshold"`` (float): the threshold used;
        - ``"roc_curve"``: the dict of :func:`roc_curve_points`, or ``None``
          when ``y_true`` contains only one class (does not raise);
        - ``"confusion_matrix"``: ``{"tn", "fp", "fn", "tp"}``, ints, at
          ``threshold``;
        - ``"n_positive"``, ``"n_negative"`` (int): samples with label 1
          and 0 in ``y_true``.

    Raises
    ------
    ValueError
        On invalid input (see :mod:`metrics._validation`) or a non-finite
        ``threshold``.

    References
    ----------
    Confusion matrix from :func:`sklearn.metrics.confusion_matrix` with
    ``labels=[0, 1]``.

    Examples
    --------
    >>> d = classification_details([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> d["confusion_matrix"], d["n_positive"], d["n_negative"]
    ({'tn': 2, 'fp': 0, 'fn': 1, 'tp': 1}, 2, 2)
    >>> classification_details([0, 0], [0.1, 0.7])["roc_curve"] is None
    True
    """
    y, s = check_binary_arrays(y_true, scores)
    thr = check_threshold(threshold)
    tn, fp, fn, tp = _skm.confusion_matrix(y, _predict(s, thr), labels=[0, 1]).ravel()
    n_positive = int(y.sum())
    return {
        "threshold": thr,
        "roc_curve": roc_curve_points(y, s) if _has_both_classes(y) else None,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "n_positive": n_positive,
        "n_negative": int(y.size - n_positive),
    }
