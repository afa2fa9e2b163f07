"""Shared input checks for the :mod:`metrics` package (private).

Every public metric validates its inputs through the helpers here, so the
rules and error messages are the same everywhere:

* inputs are converted to 1-D ``float64`` arrays (one value per sample);
* both arrays must have the same, non-zero length;
* NaN and inf are rejected;
* for binary classification, ``y_true`` must only hold the labels 0 and 1
  and ``scores`` must be probabilities of class 1 in ``[0, 1]``.

Every ``ValueError`` names the offending argument.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

_MAX_SHOWN = 10  # unique offending values quoted in an error message


def _to_float64(x: ArrayLike, name: str) -> np.ndarray:
    """``np.asarray(x, float64)``, or a ValueError naming ``name`` when ``x`` is not numeric."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must contain real numbers; could not convert it to float64: {exc}"
        ) from None


def _as_1d_float(x: ArrayLike, name: str) -> np.ndarray:
    """Convert ``x`` to a 1-D float64 array, or raise naming ``name``."""
    arr = _to_float64(x, name)
    if arr.ndim != 1:
        hint = ""
        if arr.ndim == 2 and arr.shape[1] == 1:
            hint = " (a column vector: flatten it with .ravel())"
        elif arr.ndim == 2 and arr.shape[1] == 2 and name == "scores":
            hint = " (looks like predict_proba output: pass the class-1 column, proba[:, 1])"
        raise ValueError(
            f"{name} must be 1-D with one value per sample; "
            f"got an array with ndim={arr.ndim} and shape {arr.shape}{hint}"
        )
    return arr


def _check_pair(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Same length, non-empty, all finite."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} have different lengths: "
            f"len({name_a})={a.shape[0]}, len({name_b})={b.shape[0]}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name_a} and {name_b} are empty; at least one sample is required")
    for arr, name in ((a, name_a), (b, name_b)):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
                f"first at index {first}: {arr[first]!r}"
            )


def _shown(values: np.ndarray) -> str:
    """Format up to ``_MAX_SHOWN`` unique values for an error message."""
    uniq = np.unique(values)
    text = ", ".join(f"{v:g}" for v in uniq[:_MAX_SHOWN])
    if uniq.size > _MAX_SHOWN:
        text += f", ... ({uniq.size} distinct)"
    return f"[{text}]"


def check_regression_arrays(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate regression targets and predictions.

    Returns
    -------
    y_true, y_pred : ndarray of shape (n_samples,), dtype float64

    Raises
    ------
    ValueError
        Wrong ndim, non-numeric values, different lengths, empty input, or
        NaN/inf in either argument. The message names the argument.
    """
    t = _as_1d_float(y_true, "y_true")
    p = _as_1d_float(y_pred, "y_pred")
    _check_pair(t, p, "y_true", "y_pred")
    return t, p


def check_binary_arrays(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and class-1 probabilities.

    Returns
    -------
    y_true : ndarray of shape (n_samples,), dtype int64
        Labels, each 0 or 1.
    scores : ndarray of shape (n_samples,), dtype float64
        Probabilities of class 1, each in ``[0, 1]``.

    Raises
    ------
    ValueError
        Everything :func:`check_regression_arrays` rejects, plus labels other
        than 0 and 1 (the message lists the values found) and scores outside
        ``[0, 1]`` (the message gives the range found).
    """
    t = _as_1d_float(y_true, "y_true")
    s = _as_1d_float(scores, "scores")
    _check_pair(t, s, "y_true", "scores")

    bad_labels = (t != 0.0) & (t != 1.0)
    if bad_labels.any():
        raise ValueError(
            "y_true must contain only the binary labels 0 and 1 (positive class = 1); "
            f"found label values {_shown(t)}, of which {_shown(t[bad_labels])} are invalid"
        )
    outside = (s < 0.0) | (s > 1.0)
    if outside.any():
        raise ValueError(
            "scores must be predicted probabilities of class 1, within [0, 1]; "
            f"found values in [{s.min():g}, {s.max():g}], {int(outside.sum())} of them "
            "outside [0, 1] (apply a sigmoid/softmax to logits first)"
        )
    return t.astype(np.int64), s


def check_threshold(threshold: float) -> float:
    """Validate a decision threshold: a finite real number, returned as float.

    Raises
    ------
    ValueError
        If ``threshold`` is not a real number or is NaN/inf.
    """
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a real number; got {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"threshold must be finite; got {value!r}")
    return value
