"""Pure scoring functions for mateval benchmarks.

Plain functions of array-likes: no I/O, no torch, nothing else of ours
imported. Invalid input raises ``ValueError`` naming the argument; metrics
that are undefined for the data are returned as NaN (see each docstring).

Regression (:mod:`metrics.regression`), ``(y_true, y_pred)``:

- :func:`mean_absolute_error`, :func:`mean_squared_error`,
  :func:`root_mean_squared_error`, :func:`r2_score`, :func:`max_error`
- :func:`regression_metrics` -> ``{"MAE", "MSE", "RMSE", "R2", "MaxError"}``

Binary classification (:mod:`metrics.classification`), ``(y_true, scores)``
with labels 0/1 (positive class 1) and scores = probability of class 1:

- :func:`roc_curve_points`, :func:`roc_auc`
- :func:`accuracy`, :func:`precision`, :func:`recall`, :func:`f1`
  (``threshold=0.5``; predicted positive when ``score >= threshold``)
- :func:`classification_metrics` ->
  ``{"ROC-AUC", "Accuracy", "Precision", "Recall", "F1"}``
- :func:`classification_details` -> threshold, ROC curve, confusion matrix,
  class counts
"""

from .classification import (
    accuracy,
    classification_details,
    classification_metrics,
    f1,
    precision,
    recall,
    roc_auc,
    roc_curve_points,
)
from .generation import (
    CDVAE_COMP_SCALER_MEANS,
    CDVAE_COMP_SCALER_STDS,
    COVERAGE_CUTOFFS,
    CRYSTALNN_FINGERPRINT_LENGTH,
    MAGPIE_FINGERPRINT_LENGTH,
    composition_validity,
    coverage,
    crystal_density,
    crystalnn_fingerprint,
    emd,
    emd_density,
    emd_num_elements,
    magpie_fingerprint,
    min_interatomic_distance,
    num_distinct_elements,
    optimization_success_rates,
    standardize_composition,
    structure_validity,
    success_rate,
    validity,
    validity_composition,
    validity_structure,
)
from .regression import (
    max_error,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    regression_metrics,
    root_mean_squared_error,
)
from .spectra import (
    DULONG_PETIT,
    HC_OVER_KB,
    heat_capacity,
    heat_capacity_mae,
    mean_wasserstein,
    spectra_metrics,
    spectrum_mae,
    spectrum_mse,
    spectrum_r2,
    spectrum_rmse,
    wasserstein,
)

__all__ = [
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "r2_score",
    "max_error",
    "regression_metrics",
    "roc_curve_points",
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "classification_metrics",
    "classification_details",
    "CDVAE_COMP_SCALER_MEANS",
    "CDVAE_COMP_SCALER_STDS",
    "COVERAGE_CUTOFFS",
    "CRYSTALNN_FINGERPRINT_LENGTH",
    "MAGPIE_FINGERPRINT_LENGTH",
    "min_interatomic_distance",
    "crystal_density",
    "num_distinct_elements",
    "structure_validity",
    "validity_structure",
    "composition_validity",
    "validity_composition",
    "validity",
    "crystalnn_fingerprint",
    "magpie_fingerprint",
    "standardize_composition",
    "coverage",
    "emd",
    "emd_density",
    "emd_num_elements",
    "success_rate",
    "optimization_success_rates",
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
