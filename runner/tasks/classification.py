"""Task type ``classification``: a binary label per crystal (1 = the task's positive class).

The model's ``predict`` returns the positive-class probability of each test crystal (in [0, 1]);
the model stage writes it as ``score``. The scoring stage writes ``predictions.csv`` (``id``,
``target``, ``prediction`` at :data:`THRESHOLD`, ``score``) and scores ROC-AUC, Accuracy, Precision,
Recall and F1 (:func:`metrics.classification_metrics`), with the ROC curve points and the confusion
matrix in ``metric_details`` (:func:`metrics.classification_details`).

Baseline (:meth:`Classification.baseline`): the training prior (the positive-class frequency of
the training split) as every test crystal's score, so the predicted label is the training majority
class (positive when the prior is at least :data:`THRESHOLD`) and ROC-AUC is 0.5; scored by the
same :func:`score`. Flags (:meth:`Classification.flags`): ``no_positive_predicted`` and
``no_negative_predicted`` (every label the same class at the threshold) and ``constant_score``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import metrics
from runner.contract import Sample, TaskSpec
from runner.tasks.base import (Baseline, Flag, OutputError, Scored, ScoringContext, TaskType, align, check_vector,
                               is_constant, read_columns, write_columns)

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


def baseline(y_train: np.ndarray, y_true: np.ndarray) -> tuple[float, dict[str, float]]:
    """The trivial classifier: ``(prior, metrics)`` where ``prior`` is the positive-class frequency
    of ``y_train`` (0/1 labels, shape ``(n_train,)``), given as the score of every entry of ``y_true``;
    its label at :data:`THRESHOLD` is the training majority class (positive on a tie) and its ROC-AUC
    is 0.5 when ``y_true`` holds both classes.

    Raises:
        ValueError: an empty training split, or from :mod:`metrics` on bad labels.
    """
    y_train = np.asarray(y_train, dtype=np.float64)
    if y_train.size == 0:
        raise ValueError("the training split is empty: no class prior")
    prior = float(np.mean(y_train))
    return prior, score(y_true, np.full(np.shape(y_true), prior))[0]


def flags(scores: np.ndarray) -> list[Flag]:
    """``no_positive_predicted`` (no score reaches :data:`THRESHOLD`), ``no_negative_predicted``
    (every score does) and ``constant_score`` (every score the same number: ROC-AUC is 0.5)."""
    scores = np.asarray(scores, dtype=np.float64)
    found = []
    if scores.size:
        positive = int(np.sum(scores >= THRESHOLD))
        if positive == 0:
            found.append(Flag("no_positive_predicted", f"no test crystal is predicted positive (every score < "
                                                       f"{THRESHOLD:g}; the largest is {scores.max():.4g}): "
                                                       "precision is undefined"))
        elif positive == scores.size:
            found.append(Flag("no_negative_predicted", f"every one of the {scores.size} test crystals is "
                                                       f"predicted positive (every score >= {THRESHOLD:g})"))
    if is_constant(scores):
        found.append(Flag("constant_score", f"every test score is {float(scores[0]):.6g}: the scores rank "
                                            "nothing (ROC-AUC 0.5 when both classes are present)"))
    return found


class Classification(TaskType):
    """See the module docstring."""

    name = "classification"

    def check_targets(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> None:
        for split, rows in samples.items():
            for sample in rows:
                if sample.target not in (0, 1):
                    raise ValueError(f"{split} sample {sample.id}: label {sample.target!r} is not 0 or 1")

    def dataset_record(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        return {"class_balance": {split: int(sum(s.target for s in rows)) for split, rows in samples.items()}}

    def encode_target(self, value: Any) -> Any:
        return None if value is None else int(value)

    def decode_target(self, value: Any) -> Any:
        return None if value is None else int(value)

    def write_output(self, run_dir: Path, raw: Any, test: Sequence[Sample], task: TaskSpec,
                     settings: Mapping[str, Any]) -> dict[str, str]:
        values = check_vector(raw, len(test))
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ValueError("classification predictions must be positive-class probabilities in [0, 1]")
        write_columns(Path(run_dir) / self.output_file, {"id": [s.id for s in test], "score": list(values)})
        return {"model_predictions": self.output_file}

    def read_output(self, run_dir: Path, test: Sequence[Sample], task: TaskSpec) -> Any:
        path = Path(run_dir) / self.output_file
        scores = align(read_columns(path, ("id", "score")), [s.id for s in test], ("score",), path)["score"]
        if scores.size and (scores.min() < 0 or scores.max() > 1):
            raise OutputError(f"{path}: column score: values outside [0, 1]")
        return scores

    def metrics_of(self, y_true: np.ndarray, output: Any) -> tuple[dict[str, float], dict[str, Any]]:
        return score(y_true, output)

    def prediction_columns(self, ids: Sequence[str], y_true: np.ndarray, output: Any) -> dict[str, list]:
        return prediction_rows(ids, y_true, output)

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline:
        y_train = np.asarray([s.target for s in train], dtype=np.float64)
        prior, values = baseline(y_train, np.asarray([s.target for s in test], dtype=np.float64))
        majority = int(prior >= THRESHOLD)
        positive = task.positive_class or "positive"
        return Baseline(f"the training majority class ({'positive' if majority else 'negative'}) as every label "
                        f"and the training prior P({positive}) = {prior:.4g} as every score", values,
                        {"prior": prior, "majority_class": majority, "n_train": int(y_train.size)})

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        return flags(output)


TASK_TYPE = Classification()
