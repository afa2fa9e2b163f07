"""Task type ``spectra``: one spectrum per crystal on the task's grid (e.g. a phonon DOS).

The model's ``predict`` returns an array of shape ``(n_crystals, len(TaskSpec.grid))``; the model
stage writes it in long format (``id``, ``frequency``, ``prediction``). The scoring stage writes
``predictions.csv`` (``id``, ``frequency``, ``target``, ``prediction``) and scores the spectrum
metrics of :func:`score` (definitions in ``metrics/catalogue.yaml``).

Baseline (:meth:`Spectra.baseline`): the mean training spectrum predicted for every test crystal,
scored by the same :func:`score`. Flags (:meth:`Spectra.flags`): ``constant_prediction`` (one
spectrum for every crystal) and ``r2_negative`` (R² below 0).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import metrics
from metrics.spectra import check_spectra_arrays
from runner.contract import Sample, TaskSpec
from runner.tasks.base import (Baseline, Flag, OutputError, Scored, ScoringContext, TaskType, align, check_vector,
                               definitions, is_constant, read_columns, write_columns)
from runner.wire import PREDICTIONS_FILE

#: Unit of the grid (phonon frequencies as wavenumbers).
GRID_UNIT = "cm^-1"
#: Temperature of the heat-capacity comparison, K.
TEMPERATURE_K = 300.0


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
        "definition": definitions("spectra", ("MAE", "Wasserstein", "Cv_300K_MAE")),
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


def baseline(train_spectra: np.ndarray, y_true: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The trivial predictor: ``(mean training spectrum of shape (n_grid,), metrics of predicting
    it for every row of y_true)`` (spectra of shape ``(n, n_grid)`` on ``grid``, cm⁻¹), by
    :func:`score`.

    Raises:
        ValueError: an empty training split, or from :func:`score`.
    """
    train_spectra = np.asarray(train_spectra, dtype=np.float64)
    if train_spectra.ndim != 2 or train_spectra.shape[0] == 0:
        raise ValueError(f"training spectra of shape {train_spectra.shape}: expected (n_train >= 1, n_grid)")
    mean = train_spectra.mean(axis=0)
    y_true = np.asarray(y_true, dtype=np.float64)
    return mean, score(y_true, np.tile(mean, (y_true.shape[0], 1)), grid)[0]


def flags(y_pred: np.ndarray, values: dict[str, float]) -> list[Flag]:
    """``constant_prediction`` when every row of ``y_pred`` (shape ``(n, n_grid)``) is the same
    spectrum, ``r2_negative`` when ``values["R2"]`` is below 0."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    found = []
    if y_pred.shape[0] > 1 and is_constant(y_pred, axis=0):
        found.append(Flag("constant_prediction", f"the model predicts one spectrum for all {y_pred.shape[0]} "
                                                 "test crystals"))
    r2 = values.get("R2", math.nan)
    if math.isfinite(r2) and r2 < 0:
        found.append(Flag("r2_negative", f"R² = {r2:.4g} < 0: worse than predicting the test set's mean spectrum"))
    return found


class Spectra(TaskType):
    """See the module docstring."""

    name = "spectra"

    def check_targets(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> None:
        width = len(task.grid or ())
        for split, rows in samples.items():
            for sample in rows:
                target = np.asarray(sample.target, dtype=np.float64)
                if target.shape != (width,) or not np.all(np.isfinite(target)):
                    raise ValueError(f"{split} sample {sample.id}: spectrum of shape {target.shape} (finite: "
                                     f"{bool(np.all(np.isfinite(target)))}), expected {width} finite values")

    def encode_target(self, value: Any) -> Any:
        return None if value is None else [float(v) for v in np.asarray(value, dtype=np.float64)]

    def decode_target(self, value: Any) -> Any:
        return None if value is None else np.asarray(value, dtype=np.float64)

    def write_output(self, run_dir: Path, raw: Any, test: Sequence[Sample], task: TaskSpec,
                     settings: Mapping[str, Any]) -> dict[str, str]:
        grid = np.asarray(task.grid, dtype=np.float64)
        values = check_vector(raw, len(test), width=grid.size)
        write_columns(Path(run_dir) / self.output_file, {
            "id": [s.id for s in test for _ in range(grid.size)],
            "frequency": [float(v) for v in np.tile(grid, len(test))],
            "prediction": [float(v) for v in values.ravel()]})
        return {"model_predictions": self.output_file}

    def read_output(self, run_dir: Path, test: Sequence[Sample], task: TaskSpec) -> Any:
        path = Path(run_dir) / self.output_file
        grid = np.asarray(task.grid, dtype=np.float64)
        aligned = align(read_columns(path, ("id", "frequency", "prediction")), [s.id for s in test],
                        ("frequency", "prediction"), path, per_id=grid.size)
        if len(test) and not np.array_equal(aligned["frequency"], np.tile(grid, (len(test), 1))):
            raise OutputError(f"{path}: column frequency: rows are not the task's grid in ascending order per id")
        return aligned["prediction"]

    def score(self, output: Any, test: Sequence[Sample], task: TaskSpec, context: ScoringContext) -> Scored:
        grid = np.asarray(task.grid, dtype=np.float64)
        y_true = np.stack([np.asarray(s.target, dtype=np.float64) for s in test])
        values, details = score(y_true, output, grid)
        write_columns(Path(context.run_dir) / PREDICTIONS_FILE,
                      prediction_rows([s.id for s in test], y_true, output, grid))
        return Scored(values, details, {"predictions": PREDICTIONS_FILE})

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline:
        grid = np.asarray(task.grid, dtype=np.float64)
        train_spectra = np.stack([np.asarray(s.target, dtype=np.float64) for s in train]) if train else np.empty((0,))
        y_true = np.stack([np.asarray(s.target, dtype=np.float64) for s in test])
        _, values = baseline(train_spectra, y_true, grid)
        return Baseline(f"the mean training {task.target} spectrum (over {len(train)} crystals) for every crystal",
                        values, {"n_train": len(train)})

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        return flags(output, scored.metrics)


TASK_TYPE = Spectra()
