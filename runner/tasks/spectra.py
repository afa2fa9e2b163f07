"""Scoring driver for spectra tasks (one spectrum per crystal on a shared grid, e.g. a phonon DOS)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import metrics
from metrics.spectra import check_spectra_arrays

#: Unit of the grid (phonon frequencies as wavenumbers).
GRID_UNIT = "cm^-1"
#: Temperature of the heat-capacity comparison, K.
TEMPERATURE_K = 300.0

DEFINITION = {
    "MAE": "mean |prediction - target| over all grid points of all test crystals (flattened arrays), in the "
           "spectrum's unit (max-normalized DOS); MSE and RMSE likewise, R2 = 1 - SS_res/SS_tot over the "
           "flattened arrays (null for constant targets)",
    "Wasserstein": "per crystal, the 1-D Wasserstein (earth mover's) distance between target and prediction as "
                   "distributions on the frequency grid (values normalized to unit sum; "
                   "scipy.stats.wasserstein_distance), in cm^-1; the metric is the mean over crystals, ignoring "
                   "crystals with an all-zero spectrum (null per crystal); negative predicted values are clipped "
                   "to 0 for this metric only",
    "Cv_300K_MAE": "mean over crystals of |C_V(prediction) - C_V(target)| at 300 K, with C_V = 3R * "
                   "int g(w) E(x) dw / int g(w) dw, E(x) = x^2 e^x/(e^x-1)^2, x = h c w/(k_B T) (harmonic "
                   "heat capacity per mole of atoms, trapezoidal rule on the grid), in J/(K mol); crystals "
                   "with an all-zero spectrum (null C_V) are ignored; negative predicted values are clipped to "
                   "0 for this metric only",
}


def score(y_true: np.ndarray, y_pred: np.ndarray, grid: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """Spectrum metrics of ``y_pred`` against ``y_true`` (both shape ``(n_crystals, n_grid)``) on
    ``grid`` (shape ``(n_grid,)``, cm⁻¹). Returns ``(metrics, metric_details)``.

    ``metrics`` has the keys of :func:`metrics.spectra_metrics` (MAE, MSE, RMSE, R2, Wasserstein
    in cm⁻¹, Cv_300K_MAE in J/(K·mol)). MAE, MSE, RMSE and R2 use the predictions as given; the
    distribution metrics (Wasserstein, heat capacity) need non-negative spectra, so for those the
    predictions are clipped at 0 (without negative predictions the result equals
    ``metrics.spectra_metrics(y_true, y_pred, grid)``). ``metric_details`` holds the grid, its unit,
    the temperature, per-crystal MSE, Wasserstein distance and true/predicted C_V (in the order of
    the test crystals; NaN where undefined) and the definitions.

    Raises:
        ValueError: from :mod:`metrics` on shape mismatch, empty input, non-finite values, a bad grid
            or negative target values.
    """
    t, p, g = check_spectra_arrays(y_true, y_pred, grid)
    p_dist = np.clip(p, 0.0, None)
    scores = {
        "MAE": metrics.spectrum_mae(t, p),
        "MSE": metrics.spectrum_mse(t, p),
        "RMSE": metrics.spectrum_rmse(t, p),
        "R2": metrics.spectrum_r2(t, p),
        "Wasserstein": metrics.mean_wasserstein(t, p_dist, g),
        "Cv_300K_MAE": metrics.heat_capacity_mae(t, p_dist, g, temperature=TEMPERATURE_K),
    }
    details = {
        "grid": [float(v) for v in g],
        "grid_unit": GRID_UNIT,
        "temperature_K": TEMPERATURE_K,
        "per_crystal": {
            "MSE": [float(v) for v in np.mean((t - p) ** 2, axis=1)],
            "Wasserstein": [float(v) for v in metrics.wasserstein(t, p_dist, g)],
            "Cv_300K_true": [float(v) for v in metrics.heat_capacity(t, g, TEMPERATURE_K)],
            "Cv_300K_pred": [float(v) for v in metrics.heat_capacity(p_dist, g, TEMPERATURE_K)],
        },
        "definition": dict(DEFINITION),
    }
    return scores, details


def prediction_rows(ids: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray,
                    grid: np.ndarray) -> dict[str, list]:
    """Columns of ``predictions.csv`` in long format, one row per crystal and grid point
    (``n_crystals * n_grid`` rows, crystal by crystal, frequencies ascending): ``id``,
    ``frequency`` (cm⁻¹), ``target``, ``prediction``.

    Raises:
        ValueError: on the conditions of :func:`metrics.spectra.check_spectra_arrays`, or if
            ``len(ids)`` is not ``n_crystals``.
    """
    t, p, g = check_spectra_arrays(y_true, y_pred, grid)
    ids = list(ids)
    if len(ids) != t.shape[0]:
        raise ValueError(f"ids has {len(ids)} entries but y_true has {t.shape[0]} spectra (rows)")
    n_grid = g.size
    return {
        "id": [i for i in ids for _ in range(n_grid)],
        "frequency": [float(v) for v in np.tile(g, len(ids))],
        "target": [float(v) for v in t.ravel()],
        "prediction": [float(v) for v in p.ravel()],
    }
