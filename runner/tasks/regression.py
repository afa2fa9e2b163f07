"""Task type ``regression``: one real target per crystal, in the task's unit.

The model's ``predict`` returns one number per test crystal; the scoring stage writes
``predictions.csv`` (``id``, ``target``, ``prediction``) and scores MAE, MSE, RMSE, R2 and MaxError
(:func:`metrics.regression_metrics`; definitions and sources in ``metrics/catalogue.yaml``).

Baseline (:meth:`Regression.baseline`): the training mean predicted for every test crystal, scored
by the same :func:`score`; for an extensive target (``TaskSpec.extensive``, a total energy such as
QM9's U0) the per-element linear fit of the target on the training compositions instead
(:func:`composition_baseline`), since a mean of totals over structures of different sizes says
nothing. Flags (:meth:`Regression.flags`): ``constant_prediction`` (every test
prediction the same number) and ``r2_negative`` (R² below 0: worse than predicting the test mean).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import metrics
from runner.contract import Sample, TaskSpec
from runner.tasks.base import Baseline, Flag, Scored, ScoringContext, TaskType, is_constant


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


def baseline(y_train: np.ndarray, y_true: np.ndarray) -> tuple[float, dict[str, float]]:
    """The trivial regressor: ``(mean of y_train, metrics of predicting it for every entry of
    y_true)`` (both shape ``(n,)``, task unit). Its R² is at most 0 (0 when the training mean equals
    the test mean).

    Raises:
        ValueError: from :mod:`metrics` on empty or non-finite input.
    """
    y_train = np.asarray(y_train, dtype=np.float64)
    if y_train.size == 0:
        raise ValueError("the training split is empty: no training mean to predict")
    mean = float(np.mean(y_train))
    return mean, score(y_true, np.full(np.shape(y_true), mean))[0]


def composition_baseline(train: Sequence[Sample], test: Sequence[Sample]) -> tuple[dict[str, float], np.ndarray]:
    """The per-element linear fit of an extensive target: ``y ~ sum_e n_e * r_e`` with one
    reference ``r_e`` per element fitted by least squares on ``train``
    (:func:`metrics.potential.linear_reference_energies`, the "atom reference" fit of QM9 and of
    interatomic potentials), predicted for ``test``.

    Returns:
        ``({element: r_e in the task's unit per atom}, predictions of shape (len(test),))``.

    Raises:
        ValueError: an empty training split, or a test structure with an element absent from the
            training structures (structure and element named).
    """
    from pymatgen.core import Element

    from metrics import potential as pm

    if not train:
        raise ValueError("the training split is empty: no per-element fit")
    species = lambda samples: [[site.specie.symbol for site in s.structure] for s in samples]  # noqa: E731
    elements = sorted({el for atoms in species(train) for el in atoms}, key=lambda el: Element(el).Z)
    reference = pm.linear_reference_energies(pm.element_counts(species(train), elements),
                                             [float(s.target) for s in train])
    predicted = pm.linear_reference_predict(pm.element_counts(species(test), elements), reference)
    return {el: float(r) for el, r in zip(elements, reference)}, predicted


def flags(y_pred: np.ndarray, values: dict[str, float]) -> list[Flag]:
    """``constant_prediction`` when every entry of ``y_pred`` is the same number
    (:func:`runner.tasks.base.is_constant`), ``r2_negative`` when ``values["R2"]`` is below 0."""
    found = []
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if is_constant(y_pred):
        found.append(Flag("constant_prediction", f"every one of the {y_pred.size} test predictions is "
                                                 f"{float(y_pred[0]):.6g}: the model predicts a constant"))
    r2 = values.get("R2", math.nan)
    if math.isfinite(r2) and r2 < 0:
        found.append(Flag("r2_negative", f"R² = {r2:.4g} < 0: worse than predicting the test set's mean"))
    return found


class Regression(TaskType):
    """See the module docstring."""

    name = "regression"

    def metrics_of(self, y_true: np.ndarray, output: Any) -> tuple[dict[str, float], dict[str, Any]]:
        return score(y_true, output)

    def prediction_columns(self, ids: Sequence[str], y_true: np.ndarray, output: Any) -> dict[str, list]:
        return prediction_rows(ids, y_true, output)

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline:
        y_train = np.asarray([s.target for s in train], dtype=np.float64)
        y_true = np.asarray([s.target for s in test], dtype=np.float64)
        unit = f" {task.unit}" if task.unit else ""
        if task.extensive:
            references, predicted = composition_baseline(train, test)
            return Baseline(f"a per-element linear fit of {task.target} on the training compositions "
                            f"({', '.join(f'{el} {r:.6g}' for el, r in references.items())}{unit} per atom)",
                            score(y_true, predicted)[0], {"references": references, "n_train": int(y_train.size)})
        mean, values = baseline(y_train, y_true)
        return Baseline(f"the training mean of {task.target} ({mean:.6g}{unit}) for every crystal", values,
                        {"value": mean, "n_train": int(y_train.size)})

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        return flags(output, scored.metrics)


TASK_TYPE = Regression()
