"""The interface of a task type, and the reading and writing of per-crystal prediction columns.

A task type (regression, classification, generation, spectra, or one a plugin adds) is one module
under ``runner/tasks/`` holding one :class:`TaskType` instance, ``TASK_TYPE``. It answers every
question the stages ask about that kind of task, so that neither the model stage
(:mod:`runner.run`), nor the prepare stage (:mod:`runner.prepare`), nor the scoring stage
(:mod:`runner.score`) branches on the task type:

- prepare (host, mateval's environment): :meth:`TaskType.check_targets`,
  :meth:`TaskType.dataset_record`, :meth:`TaskType.model_task`, :meth:`TaskType.encode_target`;
- model stage (the model's environment or container): :meth:`TaskType.decode_target`,
  :meth:`TaskType.run_model` (calls :attr:`TaskType.adapter_method` of the adapter inside the
  telemetry phase :attr:`TaskType.phase`), :meth:`TaskType.write_output`;
- scoring (host, mateval's environment, another process): :meth:`TaskType.read_output`
  (defensive: the file comes from the model), :meth:`TaskType.score`, :meth:`TaskType.baseline`
  (the trivial predictor's metrics on the same split) and :meth:`TaskType.flags` (what makes the
  model's output degenerate);
- its metrics: the entries of the metric catalogue (:mod:`metrics.catalogue`) with its name.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from runner.contract import Sample, TaskSpec

#: largest model output file the scoring stage reads, bytes
MAX_OUTPUT_BYTES = 512 * 1024 * 1024


class OutputError(ValueError):
    """The model's output file is missing or malformed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ScoringContext:
    """What the scoring stage knows beyond the predictions and the held-out samples.

    Attributes:
        run_dir: the run directory (files are written here).
        dataset: the dataset name (e.g. ``perov_5``; generation picks coverage cutoffs by it).
        cache_dir: where reference-set fingerprints may be cached (``None``: no cache).
        n_jobs: worker processes for fingerprinting (``None``: all cores).
        extra: further task settings (``num_samples`` for generation).
        seed: the run's seed (a baseline that draws at random draws with it).
    """

    run_dir: Path
    dataset: str
    cache_dir: Path | None = None
    n_jobs: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class Scored:
    """What :meth:`TaskType.score` returns: ``metrics`` (name -> float, NaN where undefined),
    ``details`` (``metric_details``) and ``files`` (``{result files key: file name}`` it wrote)."""

    metrics: dict[str, float]
    details: dict[str, Any]
    files: dict[str, str]


@dataclass(frozen=True)
class Baseline:
    """What :meth:`TaskType.baseline` returns: the trivial predictor's scores on the run's test split.

    Attributes:
        predictor: one sentence saying what the trivial predictor predicts (with its value, e.g.
            ``"the training mean of heat_ref, 0.42 eV, for every crystal"``).
        metrics: the same metric names as the model's ``metrics``, computed by the same code (NaN
            where undefined).
        details: what the predictor was built from (e.g. ``n_train``, the predicted value, the
            sample size, scoring ``seconds``); JSON-serializable.
    """

    predictor: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """``result.json``'s ``baseline`` block: ``{"predictor", "metrics", "details"}``."""
        return {"predictor": self.predictor, "metrics": dict(self.metrics), "details": dict(self.details)}


@dataclass(frozen=True)
class Flag:
    """A degenerate result, as ``result.json``'s ``flags`` list records it and the summary, the
    terminal table and the report show it.

    Attributes:
        code: a stable identifier in snake case, e.g. ``no_positive_predicted``,
            ``constant_prediction``, ``r2_negative``, ``all_invalid``, ``loss_not_finite``.
        message: one sentence for a person, with the numbers that triggered it.
    """

    code: str
    message: str

    def as_record(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


def is_constant(values: np.ndarray, axis: int | None = None) -> bool:
    """``True`` when every entry of ``values`` (along ``axis``: every row, for spectra) is the same
    number, to a relative tolerance of 1e-9 of the largest magnitude (float32 round-off of one
    constant is still constant). An empty array is not constant."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return False
    spread = np.ptp(values, axis=axis)
    scale = max(1.0, float(np.max(np.abs(values))))
    return bool(np.all(spread <= 1e-9 * scale))


class TaskType:
    """Base class of a task type (see the module docstring). Subclasses set :attr:`name` and
    override what differs; the defaults fit a task with one number per crystal."""

    #: the task type's name, as in ``result.json``'s ``task_type`` and the metric catalogue
    name: str = ""
    #: the :class:`runner.contract.ModelAdapter` method the model stage calls after ``fit``
    adapter_method: str = "predict"
    #: the telemetry phase of that call
    phase: str = "predict"
    #: the file the model stage writes its output to (in the run directory)
    output_file: str = "model_predictions.csv"

    # -- prepare (host) ------------------------------------------------------------------------
    def check_targets(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> None:
        """Check the dataset's targets of every split. Raises ``ValueError`` naming the sample."""
        for split, rows in samples.items():
            for sample in rows:
                value = sample.target
                if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(float(value)):
                    raise ValueError(f"{split} sample {sample.id}: target {task.target} is {value!r}, "
                                     "expected a finite number")

    def dataset_record(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
        """Extra fields of ``result.json``'s ``dataset`` block (e.g. class balance)."""
        return {}

    def model_task(self, task: TaskSpec, train: Sequence[Sample]) -> TaskSpec:
        """The task as the model sees it (a generation task adds what the training set holds)."""
        return task

    def encode_target(self, value: Any) -> Any:
        """A target as JSON (``inputs/*.jsonl``)."""
        return None if value is None else float(value)

    def decode_target(self, value: Any) -> Any:
        """The inverse of :meth:`encode_target`, in the model stage."""
        return None if value is None else float(value)

    # -- model stage ---------------------------------------------------------------------------
    def run_model(self, adapter: Any, test: Sequence[Sample], task: TaskSpec, settings: Mapping[str, Any]) -> Any:
        """Call the adapter after ``fit``: ``adapter.predict(test)`` (the samples have no target)."""
        return adapter.predict(list(test))

    def write_output(self, run_dir: Path, raw: Any, test: Sequence[Sample], task: TaskSpec,
                     settings: Mapping[str, Any]) -> dict[str, str]:
        """Check the adapter's return value and write it; returns ``{files key: name}``.

        Raises:
            ValueError: the return value has the wrong shape or non-finite values.
        """
        values = check_vector(raw, len(test))
        write_columns(Path(run_dir) / self.output_file, {"id": [s.id for s in test], "prediction": list(values)})
        return {"model_predictions": self.output_file}

    # -- scoring (host) ------------------------------------------------------------------------
    def read_output(self, run_dir: Path, test: Sequence[Sample], task: TaskSpec) -> Any:
        """Read the model's output back for ``test`` (in that order).

        Raises:
            OutputError: missing file, wrong columns, unknown or missing ids, non-numbers.
        """
        columns = read_columns(Path(run_dir) / self.output_file, ("id", "prediction"))
        return align(columns, [s.id for s in test], ("prediction",), Path(run_dir) / self.output_file)["prediction"]

    def score(self, output: Any, test: Sequence[Sample], task: TaskSpec, context: ScoringContext) -> Scored:
        """Metrics of ``output`` against the held-out ``test`` samples; writes ``predictions.csv``.

        The default, for one number per crystal: ``(metrics, details) = self.metrics_of(y_true,
        output)`` and the rows of ``self.prediction_columns(ids, y_true, output)``."""
        from runner.wire import PREDICTIONS_FILE

        y_true = np.asarray([s.target for s in test], dtype=np.float64)
        values, details = self.metrics_of(y_true, output)
        write_columns(Path(context.run_dir) / PREDICTIONS_FILE,
                      self.prediction_columns([s.id for s in test], y_true, output))
        return Scored(values, details, {"predictions": PREDICTIONS_FILE})

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline | None:
        """The trivial predictor's metrics on ``test`` (the same names and code as :meth:`score`),
        built from the ``train`` split only; ``output`` is the model's (a generation baseline takes
        its size). Writes no file. The default: ``None`` (the task type defines no baseline)."""
        return None

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        """What makes the model's ``output`` degenerate (e.g. constant predictions), from the output
        and its ``scored`` metrics. The default: none."""
        return []

    def metrics_of(self, y_true: np.ndarray, output: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """``(metrics, metric_details)`` of ``output`` against ``y_true`` (for the default :meth:`score`)."""
        raise NotImplementedError(f"task type {self.name!r} implements neither score() nor metrics_of()")

    def prediction_columns(self, ids: Sequence[str], y_true: np.ndarray, output: Any) -> dict[str, list]:
        """Columns of ``predictions.csv`` (for the default :meth:`score`)."""
        return {"id": list(ids), "target": [float(v) for v in y_true], "prediction": [float(v) for v in output]}

    def metric_names(self) -> tuple[str, ...]:
        """The task type's metric names, in catalogue order."""
        from metrics import catalogue

        return catalogue.names(self.name)


def check_vector(values: Any, n: int, width: int | None = None) -> np.ndarray:
    """``values`` as float64 of shape ``(n,)`` (or ``(n, width)``), all finite.

    Raises:
        ValueError: other shape, not numbers, or non-finite entries.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model returned predictions that are not numbers: {exc}") from None
    expected = (n,) if width is None else (n, width)
    if array.shape != expected:
        raise ValueError(f"model returned predictions of shape {array.shape}, expected {expected}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"model returned {int((~np.isfinite(array)).sum())} non-finite predictions")
    return array


def write_columns(path: Path, columns: Mapping[str, Sequence[Any]]) -> None:
    """Atomically write equal-length ``columns`` as CSV (floats as ``repr``: they read back exactly)."""
    from runner.result import write_csv

    write_csv(Path(path), {k: list(v) for k, v in columns.items()})


def read_columns(path: Path, required: Sequence[str], max_bytes: int = MAX_OUTPUT_BYTES) -> dict[str, list[str]]:
    """The columns of a CSV the model wrote, as strings, checking size and header.

    Raises:
        OutputError: missing, not a regular file, larger than ``max_bytes``, a missing column or a
            ragged row (file and line named).
    """
    import io

    from runner import safefiles

    path = Path(path)
    try:
        data = safefiles.read_bytes(path, max_bytes)
    except FileNotFoundError:
        raise OutputError(f"{path}: the model output is missing") from None
    except OSError as exc:  # RefusedFile: a link, not a regular file, too large
        raise OutputError(f"{path}: {safefiles.describe(exc)}") from None
    with io.StringIO(data.decode("utf-8", "replace"), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise OutputError(f"{path}: empty file, expected a header with {', '.join(required)}")
        missing = [c for c in required if c not in header]
        if missing:
            raise OutputError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
        columns: dict[str, list[str]] = {name: [] for name in header}
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise OutputError(f"{path}: line {line}: {len(row)} fields, expected {len(header)}")
            for name, value in zip(header, row):
                columns[name].append(value)
    return columns


def _float(text: str, path: Path, name: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OutputError(f"{path}: line {line}: column {name}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise OutputError(f"{path}: line {line}: column {name}: {text!r} is not finite")
    return value


def align(columns: Mapping[str, list[str]], ids: Sequence[str], value_columns: Sequence[str], path: Path,
          per_id: int = 1) -> dict[str, np.ndarray]:
    """Numeric ``value_columns`` reordered to ``ids`` (each id ``per_id`` consecutive rows).

    Returns ``{column: float64 array of shape (len(ids),) or (len(ids), per_id)}``.

    Raises:
        OutputError: an id the test split does not have, a missing or repeated id, or a non-number.
    """
    rows_of: dict[str, list[int]] = {}
    for index, identifier in enumerate(columns["id"]):
        rows_of.setdefault(identifier, []).append(index)
    wanted = set(ids)
    unknown = [i for i in rows_of if i not in wanted]
    if unknown:
        raise OutputError(f"{path}: {len(unknown)} id(s) not in the test split, e.g. {unknown[0][:60]!r}")
    bad = [i for i in ids if len(rows_of.get(i, ())) != per_id]
    if bad:
        found = len(rows_of.get(bad[0], ()))
        raise OutputError(f"{path}: {len(bad)} test id(s) without exactly {per_id} row(s), e.g. {bad[0]!r} "
                          f"has {found}")
    out = {}
    for name in value_columns:
        values = columns[name]
        array = np.array([[_float(values[r], path, name, r + 2) for r in rows_of[i]] for i in ids], dtype=np.float64)
        out[name] = array[:, 0] if per_id == 1 else array
    return out


def definitions(task_type: str, keys: Sequence[str] | Mapping[str, str], **values: Any) -> dict[str, str]:
    """Catalogue definitions for ``metric_details["definition"]``: ``{key: definition}`` where
    ``keys`` names metrics of ``task_type`` (or maps a key to a metric name), with ``{placeholders}``
    filled from ``values`` (e.g. the coverage thresholds of the run's dataset)."""
    from metrics import catalogue

    pairs = keys.items() if isinstance(keys, Mapping) else ((k, k) for k in keys)
    return {key: catalogue.entry(task_type, name).describe(values) for key, name in pairs}
