"""Regression metrics: pure functions of ``(y_true, y_pred)``.

All functions accept array-likes of shape (n_samples,), validate them with
:func:`metrics._validation.check_regression_arrays` (1-D, same non-zero
length, finite values; otherwise ``ValueError`` naming the argument) and
return a Python ``float``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as _skm

from ._validation import check_regression_arrays

__all__ = [
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "r2_score",
    "max_error",
    "regression_metrics",
]


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, ``mean(|y_true - y_pred|)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit (e.g. eV/atom).
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    float
        Non-negative, in the target's unit. 0 for a perfect prediction.

    Raises
    ------
    ValueError
        If an argument is not 1-D, the lengths differ, the input is empty,
        or an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Wraps :func:`sklearn.metrics.mean_absolute_error`.

    Examples
    --------
    >>> mean_absolute_error([1, 2, 3], [2, 2, 5])
    1.0
    """
    t, p = check_regression_arrays(y_true, y_pred)
    return float(_skm.mean_absolute_error(t, p))


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error, ``mean((y_true - y_pred) ** 2)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit.
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    float
        Non-negative, in the *square* of the target's unit (e.g. (eV/atom)^2).

    Raises
    ------
    ValueError
        If an argument is not 1-D, the lengths differ, the input is empty,
        or an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Wraps :func:`sklearn.metrics.mean_squared_error`.

    Examples
    --------
    >>> mean_squared_error([1, 2, 3], [2, 2, 4])
    0.6666666666666666
    """
    t, p = check_regression_arrays(y_true, y_pred)
    return float(_skm.mean_squared_error(t, p))


def root_mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mean((y_true - y_pred) ** 2))``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit.
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    float
        Non-negative, in the target's unit.

    Raises
    ------
    ValueError
        If an argument is not 1-D, the lengths differ, the input is empty,
        or an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Square root of :func:`sklearn.metrics.mean_squared_error`; the same value
    as :func:`sklearn.metrics.root_mean_squared_error` (scikit-learn >= 1.4),
    computed this way so scikit-learn 1.3 is still supported.

    Examples
    --------
    >>> root_mean_squared_error([0, 0], [3, -3])
    3.0
    """
    t, p = check_regression_arrays(y_true, y_pred)
    return math.sqrt(float(_skm.mean_squared_error(t, p)))


def r2_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination, ``R^2 = 1 - SS_res / SS_tot``.

    ``SS_res = sum((y_true - y_pred) ** 2)`` and
    ``SS_tot = sum((y_true - mean(y_true)) ** 2)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit.
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    float
        Dimensionless; at most 1, 1 for a perfect prediction, 0 for predicting
        the mean of ``y_true``, unbounded below. **NaN when y_true is constant**
        (including a single sample): ``SS_tot = 0`` and R^2 is undefined.
        This deliberately differs from scikit-learn's default, which returns
        1.0 (perfect prediction) or 0.0 (otherwise) in that case
        (``force_finite=True``).

    Raises
    ------
    ValueError
        If an argument is not 1-D, the lengths differ, the input is empty,
        or an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Wraps :func:`sklearn.metrics.r2_score` for non-constant ``y_true``.

    Examples
    --------
    >>> r2_score([1, 2, 3], [1, 2, 4])
    0.5
    >>> r2_score([2, 2, 2], [2, 2, 2])
    nan
    """
    t, p = check_regression_arrays(y_true, y_pred)
    if np.all(t == t[0]):
        return math.nan
    return float(_skm.r2_score(t, p))


def max_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Largest absolute error, ``max(|y_true - y_pred|)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit.
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    float
        Non-negative, in the target's unit.

    Raises
    ------
    ValueError
        If an argument is not 1-D, the lengths differ, the input is empty,
        or an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Wraps :func:`sklearn.metrics.max_error`.

    Examples
    --------
    >>> max_error([1, 2, 3], [2, 2, 5])
    2.0
    """
    t, p = check_regression_arrays(y_true, y_pred)
    return float(_skm.max_error(t, p))


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All regression metrics at once.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth target values, in the target's unit.
    y_pred : array-like of shape (n_samples,)
        Predicted target values, in the same unit.

    Returns
    -------
    dict of str to float
        Exactly the keys ``"MAE"``, ``"MSE"``, ``"RMSE"``, ``"R2"``,
        ``"MaxError"``, computed by :func:`mean_absolute_error`,
        :func:`mean_squared_error`, :func:`root_mean_squared_error`,
        :func:`r2_score` (NaN when ``y_true`` is constant) and
        :func:`max_error`.

    Raises
    ------
    ValueError
        Same conditions as the individual metrics.

    References
    ----------
    See the individual functions.

    Examples
    --------
    >>> out = regression_metrics([1, 2, 3], [1, 2, 4])
    >>> list(out)
    ['MAE', 'MSE', 'RMSE', 'R2', 'MaxError']
    >>> out["MAE"], out["R2"], out["MaxError"]
    (0.3333333333333333, 0.5, 1.0)
    """
    t, p = check_regression_arrays(y_true, y_pred)
    return {
        "MAE": mean_absolute_error(t, p),
        "MSE": mean_squared_error(t, p),
        "RMSE": root_mean_squared_error(t, p),
        "R2": r2_score(t, p),
        "MaxError": max_error(t, p),
    }
