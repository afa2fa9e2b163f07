"""Spectrum metrics: pure functions of spectra on a shared grid.

A batch of spectra is an array of shape (n_crystals, n_grid): one spectrum per
row, all on the same 1-D ``grid`` of n_grid strictly increasing points (for
the phonon density of states: frequencies in cm^-1, e.g. 51 points from 0 to
1000 cm^-1 in steps of 20, each spectrum max-normalized to 1).

Inputs are validated with :func:`check_spectra_arrays`: 2-D, the same shape,
at least one crystal and one grid point, finite values; ``grid`` 1-D, finite,
strictly increasing, of length n_grid. Metrics that treat a spectrum as a
distribution (:func:`wasserstein`, :func:`heat_capacity`) also require
non-negative values. Every ``ValueError`` names the offending argument.

Metrics that are undefined for the data are NaN (documented per function):
R^2 for constant truth, the Wasserstein distance and the heat capacity for an
all-zero spectrum.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.constants as _const
from numpy.typing import ArrayLike
from scipy.stats import wasserstein_distance as _wasserstein_distance
from sklearn import metrics as _skm
from ._validation import _to_float64

__all__ = [
    "HC_OVER_KB",
    "DULONG_PETIT",
    "spectrum_mae",
    "spectrum_mse",
    "spectrum_rmse",
    "spectrum_r2",
    "wasserstein",
    "mean_wasserstein",
    "heat_capacity",
    "heat_capacity_mae",
    "spectra_metrics",
]

#: h c / k_B in cm K (the second radiation constant, 1.4387768775... cm K): x = HC_OVER_KB * nu / T
#: for a wavenumber nu in cm^-1 and a temperature T in K. From scipy.constants: Planck constant h
#: (J s), speed of light c (m/s, times 100 for cm/s), Boltzmann constant k (J/K); all exact in SI.
HC_OVER_KB: float = _const.h * (_const.c * 100.0) / _const.k

#: Dulong-Petit limit 3 R in J/(K mol), R = scipy.constants.R (molar gas constant, 8.314462618...).
DULONG_PETIT: float = 3.0 * _const.R

# Below this x the Einstein function is evaluated from its Taylor series 1 - x^2/12 + x^4/240
# (truncation error ~ x^6/6048 < 1e-27), avoiding 0/0 at x = 0.
_X_SERIES = 1e-4


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _as_2d_float(x: ArrayLike, name: str) -> np.ndarray:
    """Convert ``x`` to a non-empty, finite 2-D float64 array, or raise naming ``name``."""
    arr = _to_float64(x, name)
    if arr.ndim != 2:
        hint = " (a single spectrum: pass it as one row, x[np.newaxis, :])" if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D of shape (n_crystals, n_grid), one spectrum per row; "
            f"got an array with ndim={arr.ndim} and shape {arr.shape}{hint}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); at least one crystal and one grid point are required"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at [{row}, {col}]: {arr[row, col]!r}"
        )
    return arr


def _check_grid(grid: ArrayLike, n_grid: int, name: str = "grid") -> np.ndarray:
    """1-D, finite, strictly increasing, length ``n_grid`` (at least 2)."""
    g = _to_float64(grid, name)
    if g.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array with ndim={g.ndim} and shape {g.shape}")
    if g.size != n_grid:
        raise ValueError(
            f"{name} has {g.size} points but the spectra have n_grid={n_grid} columns; "
            f"len({name}) must equal the number of columns"
        )
    if g.size < 2:
        raise ValueError(f"{name} must have at least 2 points; got {g.size}")
    bad = ~np.isfinite(g)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at index {first}: {g[first]!r}"
        )
    steps = np.diff(g)
    if np.any(steps <= 0):
        first = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            f"{name} must be strictly increasing; {name}[{first + 1}]={g[first + 1]!r} "
            f"is not greater than {name}[{first}]={g[first]!r}"
        )
    return g


def _check_nonnegative(arr: np.ndarray, name: str) -> None:
    neg = arr < 0
    if neg.any():
        row, col = (int(i) for i in np.argwhere(neg)[0])
        raise ValueError(
            f"{name} must be non-negative (a spectrum is treated as a distribution); found "
            f"{int(neg.sum())} negative value(s), first at [{row}, {col}]: {arr[row, col]!r} "
            f"(clip predictions with np.clip(y_pred, 0, None) if that is intended)"
        )


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a real number (K); got {temperature!r}")
    value = float(temperature)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"temperature must be finite and > 0 K; got {value!r}")
    return value


def check_spectra_arrays(
    y_true: ArrayLike, y_pred: ArrayLike, grid: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a pair of spectrum batches and, optionally, their grid.

    Returns
    -------
    y_true, y_pred : ndarray of shape (n_crystals, n_grid), dtype float64
    grid : ndarray of shape (n_grid,), dtype float64, or None when ``grid`` is None

    Raises
    ------
    ValueError
        An argument is not 2-D (``grid``: 1-D), is empty, contains NaN or
        inf, the shapes of ``y_true`` and ``y_pred`` differ, ``len(grid)`` is
        not n_grid, or ``grid`` is not strictly increasing. The message names
        the argument.
    """
    t = _as_2d_float(y_true, "y_true")
    p = _as_2d_float(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred have different shapes: y_true {t.shape}, y_pred {p.shape}; "
            "both must be (n_crystals, n_grid)"
        )
    g = None if grid is None else _check_grid(grid, t.shape[1])
    return t, p, g


def _trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trapezoidal rule along the last axis (explicit, independent of the numpy version)."""
    dx = np.diff(x)
    return np.sum(dx * (y[..., 1:] + y[..., :-1]) / 2.0, axis=-1)


# --------------------------------------------------------------------------
# Point-wise errors over the flattened arrays
# --------------------------------------------------------------------------


def spectrum_mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error over all grid points of all crystals.

    ``mean(|y_true - y_pred|)`` over the flattened (n_crystals * n_grid)
    arrays, which equals the mean over crystals of the per-crystal MAE.

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra (for the phonon DOS: max-normalized, unitless).
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, in the same unit.

    Returns
    -------
    float
        Non-negative, in the spectrum's unit. 0 for a perfect prediction.

    Raises
    ------
    ValueError
        If an argument is not 2-D, the shapes differ, the input is empty, or
        an argument contains NaN or inf. The message names the argument.

    References
    ----------
    The spectrum MAE of Mat2Spec: Kong et al., "Density of states prediction
    for materials discovery via contrastive learning from probabilistic
    embeddings", Nat. Commun. 13, 949 (2022) (``np.mean(np.abs(pred - gt))``
    over the test set in its evaluation script).

    Examples
    --------
    >>> spectrum_mae([[0, 1, 0], [0, 1, 1]], [[0, 0.5, 0], [0, 1, 0]])
    0.25
    """
    t, p, _ = check_spectra_arrays(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def spectrum_mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error over all grid points of all crystals.

    ``mean((y_true - y_pred) ** 2)`` over the flattened arrays.

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, in the same unit.

    Returns
    -------
    float
        Non-negative, in the square of the spectrum's unit.

    Raises
    ------
    ValueError
        If an argument is not 2-D, the shapes differ, the input is empty, or
        an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Mean squared error over the flattened arrays, the counterpart of
    :func:`spectrum_mae` (Mat2Spec, Kong et al., Nat. Commun. 13, 949 (2022),
    offers it as loss type ``MSE``).

    Examples
    --------
    >>> spectrum_mse([[0, 1, 0], [0, 1, 1]], [[0, 0.5, 0], [0, 1, 0]])
    0.20833333333333334
    """
    t, p, _ = check_spectra_arrays(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def spectrum_rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error over all grid points of all crystals.

    ``sqrt(mean((y_true - y_pred) ** 2))`` over the flattened arrays.

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, in the same unit.

    Returns
    -------
    float
        Non-negative, in the spectrum's unit.

    Raises
    ------
    ValueError
        If an argument is not 2-D, the shapes differ, the input is empty, or
        an argument contains NaN or inf. The message names the argument.

    References
    ----------
    Square root of :func:`spectrum_mse`.

    Examples
    --------
    >>> spectrum_rmse([[0, 0], [0, 0]], [[3, -3], [3, -3]])
    3.0
    """
    return math.sqrt(spectrum_mse(y_true, y_pred))


def spectrum_r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination over the flattened arrays.

    ``R^2 = 1 - SS_res / SS_tot`` with ``SS_res = sum((y_true - y_pred)**2)``
    and ``SS_tot = sum((y_true - mean(y_true))**2)``, all sums and the mean
    over every grid point of every crystal (one pooled R^2, not an average of
    per-crystal or per-grid-point R^2 values).

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, in the same unit.

    Returns
    -------
    float
        Dimensionless; at most 1, 1 for a perfect prediction, unbounded below.
        **NaN when y_true is constant** (every value the same, e.g. a single
        grid point of a single crystal): ``SS_tot = 0`` and R^2 is undefined.

    Raises
    ------
    ValueError
        If an argument is not 2-D, the shapes differ, the input is empty, or
        an argument contains NaN or inf. The message names the argument.

    References
    ----------
    R^2 of the predicted spectra as reported by Mat2Spec (Kong et al., Nat.
    Commun. 13, 949 (2022)), computed over the flattened arrays with
    :func:`sklearn.metrics.r2_score` for non-constant ``y_true``.

    Examples
    --------
    >>> spectrum_r2([[0, 1], [1, 2]], [[0, 1], [1, 3]])
    0.5
    >>> spectrum_r2([[1, 1]], [[1, 1]])
    nan
    """
    t, p, _ = check_spectra_arrays(y_true, y_pred)
    t, p = t.ravel(), p.ravel()
    if np.all(t == t[0]):
        return math.nan
    return float(_skm.r2_score(t, p))


# --------------------------------------------------------------------------
# Distribution metrics
# --------------------------------------------------------------------------


def wasserstein(y_true: ArrayLike, y_pred: ArrayLike, grid: ArrayLike) -> np.ndarray:
    """Per-crystal 1-D Wasserstein distance (earth mover's distance) on the grid.

    Each spectrum is treated as a discrete distribution on the points of
    ``grid`` with weights equal to the spectrum values normalized to unit
    sum; the distance is ``W1 = integral |F_true(w) - F_pred(w)| dw`` with F
    the cumulative distributions, i.e. how far (in grid units) spectral
    weight has to move. Insensitive to the overall scale of a spectrum.

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra, non-negative.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, non-negative.
    grid : array-like of shape (n_grid,)
        The grid points, strictly increasing (for the phonon DOS: frequencies
        in cm^-1).

    Returns
    -------
    ndarray of shape (n_crystals,), dtype float64
        Non-negative, in the grid's unit (cm^-1). 0 for identical spectra (or
        spectra equal up to a positive factor). **NaN for a crystal whose true
        or predicted spectrum is all zeros** (it has no distribution).

    Raises
    ------
    ValueError
        Everything :func:`check_spectra_arrays` rejects, or a negative value
        in ``y_true`` or ``y_pred``. The message names the argument.

    References
    ----------
    :func:`scipy.stats.wasserstein_distance` with ``u_values = v_values =
    grid`` and the spectra as ``u_weights``/``v_weights``. The Wasserstein
    distance between spectra is one of the training losses of Mat2Spec (Kong
    et al., Nat. Commun. 13, 949 (2022); loss type ``WD``).

    Examples
    --------
    >>> grid = [0.0, 20.0, 40.0, 60.0]
    >>> wasserstein([[0, 1, 0, 0], [1, 1, 0, 0]],
    ...             [[0, 0, 0, 1], [0, 0, 0, 0]], grid).tolist()
    [40.0, nan]
    """
    t, p, g = check_spectra_arrays(y_true, y_pred, grid)
    _check_nonnegative(t, "y_true")
    _check_nonnegative(p, "y_pred")
    out = np.full(t.shape[0], np.nan)
    for i in range(t.shape[0]):
        if t[i].sum() > 0 and p[i].sum() > 0:
            out[i] = _wasserstein_distance(g, g, u_weights=t[i], v_weights=p[i])
    return out


def mean_wasserstein(y_true: ArrayLike, y_pred: ArrayLike, grid: ArrayLike) -> float:
    """Mean over crystals of :func:`wasserstein`, **ignoring NaN** (all-zero spectra).

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra, non-negative.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, non-negative.
    grid : array-like of shape (n_grid,)
        The grid points, strictly increasing (cm^-1 for the phonon DOS).

    Returns
    -------
    float
        Non-negative, in the grid's unit (cm^-1). The mean over the crystals
        where both spectra have non-zero sum; NaN if there is no such crystal.

    Raises
    ------
    ValueError
        Same conditions as :func:`wasserstein`.

    References
    ----------
    See :func:`wasserstein`.

    Examples
    --------
    >>> grid = [0.0, 20.0, 40.0, 60.0]
    >>> mean_wasserstein([[0, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]],
    ...                  [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], grid)
    20.0
    """
    d = wasserstein(y_true, y_pred, grid)
    d = d[~np.isnan(d)]
    return float(np.mean(d)) if d.size else math.nan


# --------------------------------------------------------------------------
# Heat capacity from the phonon DOS
# --------------------------------------------------------------------------


def _einstein_function(x: np.ndarray) -> np.ndarray:
    """E(x) = x^2 e^x / (e^x - 1)^2 for x >= 0, with E(0) = 1 (no 0/0, no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x < _X_SERIES
    xs = x[small]
    out[small] = 1.0 - xs**2 / 12.0 + xs**4 / 240.0
    xl = x[~small]
    # x^2 e^x / (e^x - 1)^2 = x^2 e^-x / (1 - e^-x)^2: e^-x underflows harmlessly to 0 for large x.
    # (x e^{-x/2})^2 rather than x^2 e^-x: x^2 alone overflows for x > ~1e154 (T -> 0) and inf * 0 is NaN.
    # Beyond x = 1500, E(x) < 1e-645: exactly 0 in float64 (also for x = inf when T is denormal).
    with np.errstate(over="ignore", invalid="ignore"):
        large = (xl * np.exp(-xl / 2.0)) ** 2 / np.expm1(-xl) ** 2
    out[~small] = np.where(xl > 1500.0, 0.0, large)
    return out


def heat_capacity(dos: ArrayLike, grid: ArrayLike, temperature: float = 300.0) -> np.ndarray:
    """Harmonic constant-volume heat capacity per mole of atoms from a phonon DOS.

    ``C_V(T) = 3 R * integral g(w) E(x) dw / integral g(w) dw`` with the
    Einstein function ``E(x) = x^2 e^x / (e^x - 1)^2`` and
    ``x = h c w / (k_B T)`` for the wavenumber ``w`` in cm^-1. The DOS is
    normalized to 3 modes per atom, so C_V rises from 0 at T -> 0 to the
    Dulong-Petit limit 3 R = 24.943 J/(K mol) at high T. Integrals use the
    trapezoidal rule on ``grid``; at w = 0 (x = 0) E takes its limit 1 (a
    Taylor series is used for x < 1e-4, so there is no division by zero).

    Constants (scipy.constants, exact SI values): h = 6.62607015e-34 J s,
    c = 2.99792458e10 cm/s, k_B = 1.380649e-23 J/K (so h c / k_B =
    1.4387768775 cm K, :data:`HC_OVER_KB`), R = 8.314462618 J/(K mol).

    Parameters
    ----------
    dos : array-like of shape (n_crystals, n_grid)
        Phonon densities of states, non-negative, any normalization (e.g.
        max-normalized): only the shape of g(w) matters.
    grid : array-like of shape (n_grid,)
        Wavenumbers in cm^-1, strictly increasing and non-negative.
    temperature : float, default 300.0
        Temperature in K, finite and > 0.

    Returns
    -------
    ndarray of shape (n_crystals,), dtype float64
        C_V in J/(K mol) per mole of atoms, in [0, 3 R]. **NaN for an all-zero
        DOS** (integral g(w) dw = 0).

    Raises
    ------
    ValueError
        If ``dos`` is not 2-D, is empty, or contains NaN, inf or negative
        values; if ``grid`` is not 1-D, not of length n_grid, not finite, not
        strictly increasing, or has a negative point; if ``temperature`` is not
        a finite number > 0. The message names the argument.

    References
    ----------
    The textbook harmonic-crystal formula (a sum of Einstein terms weighted by
    the DOS), e.g. N. W. Ashcroft and N. D. Mermin, "Solid State Physics"
    (1976), ch. 23. C_V from a predicted phonon DOS is the derived property
    evaluated by Z. Chen et al., "Direct Prediction of Phonon Density of
    States With Euclidean Neural Networks", Adv. Sci. 8, 2004214 (2021).

    Examples
    --------
    A single peak at 0 cm^-1 (E = 1 there) gives the Dulong-Petit value at any
    temperature; a peak at 1000 cm^-1 is almost frozen out at 30 K:

    >>> grid = [0.0, 500.0, 1000.0]
    >>> round(float(heat_capacity([[1, 0, 0]], grid)[0]), 3)
    24.943
    >>> float(heat_capacity([[0, 0, 1]], grid, temperature=30.0)[0]) < 1e-15
    True
    >>> heat_capacity([[0, 0, 0]], grid).tolist()
    [nan]
    """
    d = _as_2d_float(dos, "dos")
    _check_nonnegative(d, "dos")
    g = _check_grid(grid, d.shape[1])
    if g[0] < 0:
        raise ValueError(f"grid must be non-negative wavenumbers (cm^-1); grid[0]={g[0]!r}")
    t = _check_temperature(temperature)
    with np.errstate(over="ignore"):  # denormal T: x = inf, and E(inf) = 0 as documented
        e = _einstein_function(HC_OVER_KB * g / t)
    # only the shape of g(w) matters: scale each DOS to a maximum of 1 first, so that a DOS of
    # subnormal magnitude (e.g. 5e-324 in one bin) keeps full precision and C_V stays <= 3 R
    peak = d.max(axis=1, keepdims=True)
    d = np.divide(d, peak, out=np.zeros_like(d), where=peak > 0)
    num = _trapezoid(d * e, g)
    den = _trapezoid(d, g)
    out = np.full(d.shape[0], np.nan)
    ok = den > 0
    out[ok] = DULONG_PETIT * num[ok] / den[ok]
    return out


def heat_capacity_mae(
    y_true: ArrayLike, y_pred: ArrayLike, grid: ArrayLike, temperature: float = 300.0
) -> float:
    """Mean absolute error of :func:`heat_capacity` of predicted vs. true DOS.

    ``mean_i |C_V(y_pred[i]) - C_V(y_true[i])|`` over the crystals where both
    heat capacities are defined (**NaN pairs, from all-zero spectra, are
    ignored**).

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth phonon DOS, non-negative.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted phonon DOS on the same grid, non-negative.
    grid : array-like of shape (n_grid,)
        Wavenumbers in cm^-1, strictly increasing and non-negative.
    temperature : float, default 300.0
        Temperature in K, finite and > 0.

    Returns
    -------
    float
        Non-negative, in J/(K mol) per mole of atoms; NaN if no crystal has
        both heat capacities defined.

    Raises
    ------
    ValueError
        Everything :func:`check_spectra_arrays` and :func:`heat_capacity`
        reject, naming the argument (``y_true`` / ``y_pred`` for the spectra).

    References
    ----------
    See :func:`heat_capacity`.

    Examples
    --------
    >>> grid = [0.0, 500.0, 1000.0]
    >>> heat_capacity_mae([[1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0]], grid)
    0.0
    """
    t, p, g = check_spectra_arrays(y_true, y_pred, grid)
    _check_nonnegative(t, "y_true")
    _check_nonnegative(p, "y_pred")
    diff = np.abs(heat_capacity(p, g, temperature) - heat_capacity(t, g, temperature))
    diff = diff[~np.isnan(diff)]
    return float(np.mean(diff)) if diff.size else math.nan


def spectra_metrics(y_true: ArrayLike, y_pred: ArrayLike, grid: ArrayLike) -> dict[str, float]:
    """All spectrum metrics at once.

    Parameters
    ----------
    y_true : array-like of shape (n_crystals, n_grid)
        Ground-truth spectra (phonon DOS), non-negative.
    y_pred : array-like of shape (n_crystals, n_grid)
        Predicted spectra on the same grid, non-negative.
    grid : array-like of shape (n_grid,)
        Wavenumbers in cm^-1, strictly increasing and non-negative.

    Returns
    -------
    dict of str to float
        Exactly the keys ``"MAE"``, ``"MSE"``, ``"RMSE"``, ``"R2"`` (over the
        flattened arrays, spectrum units; R2 NaN for constant truth),
        ``"Wasserstein"`` (:func:`mean_wasserstein`, cm^-1, NaN crystals
        ignored) and ``"Cv_300K_MAE"`` (:func:`heat_capacity_mae` at 300 K,
        J/(K mol), NaN crystals ignored).

    Raises
    ------
    ValueError
        Same conditions as the individual metrics (including negative values).

    References
    ----------
    See the individual functions.

    Examples
    --------
    >>> grid = [0.0, 20.0, 40.0, 60.0]
    >>> out = spectra_metrics([[0, 1, 0, 0]], [[0, 0, 1, 0]], grid)
    >>> list(out)
    ['MAE', 'MSE', 'RMSE', 'R2', 'Wasserstein', 'Cv_300K_MAE']
    >>> out["MAE"], out["Wasserstein"]
    (0.5, 20.0)
    """
    t, p, g = check_spectra_arrays(y_true, y_pred, grid)
    return {
        "MAE": spectrum_mae(t, p),
        "MSE": spectrum_mse(t, p),
        "RMSE": spectrum_rmse(t, p),
        "R2": spectrum_r2(t, p),
        "Wasserstein": mean_wasserstein(t, p, g),
        "Cv_300K_MAE": heat_capacity_mae(t, p, g, temperature=300.0),
    }
