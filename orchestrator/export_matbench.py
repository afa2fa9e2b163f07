"""``mateval export --format matbench``: the folds of ``--protocol matbench`` runs as a Matbench
results file (``results.json.gz``), the format of ``matbench.bench.MatbenchBenchmark.as_dict``
(matbench 0.6, Dunn et al., npj Comput. Mater. 6, 138 (2020); https://matbench.materialsproject.org):

    {"@module": "matbench.bench", "@class": "MatbenchBenchmark", "version": "0.6",
     "benchmark_name": "matbench_v0.1", "user_metadata": {...}, "datestamp": "%Y.%m.%d %H:%M.%S",
     "tasks": {<task>: {"@module": "matbench.task", "@class": "MatbenchTask",
                        "benchmark_name": "matbench_v0.1", "dataset_name": <task>,
                        "results": {"fold_0": {"data": {<id>: prediction}, "parameters": {...},
                                               "scores": {...}, "uncertainty": null}, ...}}},
     "hash": sha256 of the rest (matbench.util.hash_dictionary)}

Predictions come from each run's ``predictions.csv`` (written by the scoring stage): the
regression prediction (task unit), or the classification score (probability of the positive
class, in [0, 1]; Matbench accepts probabilities). Per-fold ``scores`` follow
``matbench.data_ops.score_array`` (regression: mae, rmse, mape (entries with |y| below 1e-5 masked),
max_error; classification: accuracy, balanced_accuracy, f1 and rocauc, labels at 0.5).

The file is gzip-compressed JSON. matbench 0.6's ``MatbenchBenchmark.from_file`` opens files as
plain text, so load it with ``MatbenchBenchmark.from_dict(json.load(gzip.open(path, "rt")))``
(or from_file on the decompressed copy).

It is an official Matbench submission only when every task's rows are Matbench's own dataset
(``$MATEVAL_DATA/matbench/<task>.json.gz``, see :mod:`runner.protocols.matbench`) and no test
split was truncated; otherwise the task is named ``mateval_<task>``, the ids are mateval's sample
ids of the pooled rows and the file says so (``user_metadata.mateval.official_submission``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from orchestrator.integrity import file_sha256
from orchestrator.reader import RunRecord
from runner.wire import PREDICTIONS_FILE, RESULT_FILE

#: what matbench 0.6 writes (matbench.constants.VERSION, MBV01_KEY)
MATBENCH_VERSION = "0.6"
BENCHMARK_NAME = "matbench_v0.1"
DATESTAMP_FORMAT = "%Y.%m.%d %H:%M.%S"
N_FOLDS = 5
#: matbench.constants.CLF_THRESH
CLASSIFICATION_THRESHOLD = 0.5
#: matbench.data_ops.mean_absolute_percentage_error's default threshold
MAPE_THRESHOLD = 1e-5


class ExportError(ValueError):
    """Runs that cannot be exported (not ``--protocol matbench``, a missing or failed fold,
    several models or seeds to choose from, an unreadable predictions file); the message names the
    run or file."""


def immutify(d: Mapping) -> dict:
    """``matbench.util.immutify_dictionary``: nested dicts with their keys sorted, lists kept,
    numpy scalars as Python numbers."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, Mapping):
            value = immutify(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif hasattr(value, "dtype"):
            value = value.item()
        out[key] = value
    return dict(sorted(out.items(), key=lambda item: item[0]))


def hash_dictionary(d: Mapping) -> str:
    """``matbench.util.hash_dictionary``: hex sha256 of ``json.dumps(immutify(d))``."""
    return hashlib.sha256(json.dumps(immutify(d)).encode("utf-8")).hexdigest()


def regression_scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """Matbench's regression scores of one fold (``matbench.data_ops.score_array``): ``mae``,
    ``rmse``, ``mape`` (mean |(y - ŷ)/y| over the entries with |y| >= 1e-5, a fraction, not %) and
    ``max_error``; shapes ``(n,)``, units of the target (mape: dimensionless)."""
    from sklearn.metrics import max_error, mean_absolute_error, mean_squared_error

    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    mask = np.abs(y) >= MAPE_THRESHOLD
    mape = float(np.mean(np.abs((y[mask] - p[mask]) / y[mask]))) if mask.any() else float("nan")
    return {"mae": float(mean_absolute_error(y, p)), "rmse": float(np.sqrt(mean_squared_error(y, p))),
            "mape": mape, "max_error": float(max_error(y, p))}


def classification_scores(y_true: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """Matbench's classification scores of one fold from probabilities of the positive class:
    ``accuracy``, ``balanced_accuracy``, ``f1`` (labels at 0.5) and ``rocauc`` (from the
    probabilities); shapes ``(n,)``. ``rocauc`` is NaN when the fold holds one class only."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    y, s = np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float)
    labels = (s >= CLASSIFICATION_THRESHOLD).astype(int)
    auc = float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else float("nan")
    return {"accuracy": float(accuracy_score(y, labels)), "balanced_accuracy": float(balanced_accuracy_score(y, labels)),
            "f1": float(f1_score(y, labels)), "rocauc": auc}


def _predictions(record: RunRecord) -> tuple[list[str], list[float], list[float]]:
    """``(ids, targets, predictions)`` of a run's ``predictions.csv`` (classification: the score).

    Raises:
        ExportError: the file is missing or lacks a column (file named).
    """
    path = record.directory / (record.files.get("predictions") or PREDICTIONS_FILE)
    column = "score" if record.task_type == "classification" else "prediction"
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        ids = [row["id"] for row in rows]
        targets = [float(row["target"]) for row in rows]
        values = [float(row[column]) for row in rows]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ExportError(f"{path}: cannot read the predictions ({column!r} column): {type(exc).__name__}: {exc}") from None
    return ids, targets, values


def select(records: Sequence[RunRecord], explicit: bool = False, model: str | None = None,
           seed: int | None = None) -> tuple[dict[str, dict[int, RunRecord]], list[str]]:
    """The runs to export: ``{task: {fold: record}}`` of one model, seed and configuration, and
    lines saying what was left out. Of repeated runs of one fold the last ok one (by run id) counts.

    Raises:
        ExportError: no ``--protocol matbench`` run; with ``explicit``, a given run that is
            unreadable or of another protocol (named); a fold that is missing or did not end ok
            (task and fold named); several models, seeds or configurations (listed) unless
            ``model``/``seed`` choose one.
    """
    lines = []
    chosen: list[RunRecord] = []
    other = 0
    for record in records:
        if not record.ok or record.protocol != "matbench":
            if explicit:
                why = record.error if not record.ok else f"protocol {record.protocol!r}, not matbench"
                raise ExportError(f"{record.directory}: only folds of --protocol matbench runs can be exported ({why})")
            other += 1
            continue
        if model is not None and model not in (record.model, record.display_name):
            continue
        if seed is not None and record.seed != seed:
            continue
        chosen.append(record)
    if other:
        lines.append(f"{other} run(s) not of --protocol matbench (or unreadable) left out")
    if not chosen:
        raise ExportError("no --protocol matbench run" + (" of the chosen model/seed" if model is not None or
                                                          seed is not None else "")
                          + " to export: run 'mateval bench --protocol matbench ...' first")
    configurations = sorted({(r.model, r.seed, r.config_sha256 or "") for r in chosen}, key=str)
    if len(configurations) > 1:
        listed = "; ".join(f"model {m} seed {s} config {(c or '?')[:8]}" for m, s, c in configurations)
        raise ExportError(f"the runs hold {len(configurations)} models/seeds/configurations ({listed}): a Matbench file "
                          "holds one; choose with --model and --seed, or name the run directories")
    by_task: dict[str, dict[int, list[RunRecord]]] = {}
    for record in chosen:
        by_task.setdefault(record.task, {}).setdefault(record.fold, []).append(record)
    selected: dict[str, dict[int, RunRecord]] = {}
    for task, by_fold in by_task.items():
        missing = [k for k in range(N_FOLDS) if k not in by_fold]
        if missing:
            raise ExportError(f"task {task}: fold(s) {', '.join(map(str, missing))} of 5 have no run")
        selected[task] = {}
        for fold in range(N_FOLDS):
            runs = sorted(by_fold[fold], key=lambda r: r.run_id)
            ok = [r for r in runs if r.status == "ok"]
            if not ok:
                raise ExportError(f"task {task}: fold {fold} did not end ok ({runs[-1].status}: {runs[-1].directory})")
            selected[task][fold] = ok[-1]
            if len(runs) > 1:
                lines.append(f"task {task} fold {fold}: {len(runs)} runs, exported {ok[-1].run_id}")
    return selected, lines


def build_document(selected: Mapping[str, Mapping[int, RunRecord]], git_sha: str | None = None,
                   now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """The Matbench results document of :func:`select`'s runs, hash included, and whether it is an
    official submission (Matbench's own rows for every task, no truncated test split).

    Raises:
        ExportError: a run's predictions cannot be read, or a classification score outside [0, 1].
    """
    tasks: dict[str, Any] = {}
    runs_meta: dict[str, Any] = {}
    official_all = True
    reasons: list[str] = []
    first = next(iter(next(iter(selected.values())).values()))
    for task, by_fold in selected.items():
        protocol = (by_fold[0].result.get("dataset") or {}).get("protocol") or {}
        official = bool(protocol.get("official_rows")) and all(
            "test" not in ((r.result.get("dataset") or {}).get("max_samples") or {}) for r in by_fold.values())
        official_all &= official
        if not protocol.get("official_rows"):
            reasons.append(f"{task}: the folds are Matbench's {'Stratified' if by_fold[0].task_type == 'classification' else ''}"
                           f"KFold over mateval's pooled rows (train+val+test of "
                           f"{(by_fold[0].result.get('dataset') or {}).get('name')}) and the ids are mateval's sample "
                           "ids, not Matbench's dataset")
        elif not official:
            reasons.append(f"{task}: a test split was truncated (--max-samples test=...)")
        name = protocol.get("matbench_task") if official else f"mateval_{task}"
        results: dict[str, Any] = {}
        runs_meta[name] = {"mateval_task": task, "task_type": by_fold[0].task_type,
                           "dataset": (by_fold[0].result.get("dataset") or {}).get("name"),
                           "pool_size": protocol.get("pool_size"), "folds": {}}
        for fold in range(N_FOLDS):
            record = by_fold[fold]
            ids, targets, values = _predictions(record)
            if record.task_type == "classification":
                if any(not 0.0 <= v <= 1.0 for v in values):
                    raise ExportError(f"{record.directory}: classification scores outside [0, 1]")
                scores = classification_scores([int(t) for t in targets], values)
            else:
                scores = regression_scores(targets, values)
            hp = record.result.get("hyperparameters") or {}
            results[f"fold_{fold}"] = {
                "data": {i: float(v) for i, v in zip(ids, values)},
                "parameters": immutify({"mateval_run_id": record.run_id, "profile": hp.get("profile"),
                                        "hyperparameters": hp.get("effective") or {}}),
                "scores": scores, "uncertainty": None}
            predictions_path = record.directory / (record.files.get("predictions") or PREDICTIONS_FILE)
            runs_meta[name]["folds"][f"fold_{fold}"] = {
                "run_id": record.run_id, "result_sha256": file_sha256(record.directory / RESULT_FILE),
                "predictions_sha256": file_sha256(predictions_path), "n_test": len(ids),
                "git_sha": ((record.result.get("environment") or {}).get("git_sha"))}
        tasks[name] = {"@module": "matbench.task", "@class": "MatbenchTask", "benchmark_name": BENCHMARK_NAME,
                       "dataset_name": name, "results": results}
    hp = first.result.get("hyperparameters") or {}
    if official_all:
        note = "an official Matbench submission: Matbench's own rows and folds, every test split complete"
    else:
        note = ("Matbench-formatted but NOT an official Matbench submission (matbench itself will not load it: it "
                "checks the task names and every fold's ids against its datasets): " + "; ".join(reasons))
    metadata = {"algorithm": first.display_name,
                "mateval": {"official_submission": official_all, "note": note, "model": first.model,
                            "model_display_name": first.display_name, "seed": first.seed,
                            "config_sha256": first.config_sha256, "exported_by_git_sha": git_sha,
                            "hyperparameters": hp.get("effective") or {}, "profile": hp.get("profile"),
                            "runs": runs_meta}}
    document = {"@module": "matbench.bench", "@class": "MatbenchBenchmark", "version": MATBENCH_VERSION,
                "tasks": immutify(tasks), "user_metadata": immutify(metadata), "benchmark_name": BENCHMARK_NAME,
                "datestamp": (now or datetime.now(timezone.utc)).strftime(DATESTAMP_FORMAT)}
    # hash what a reader gets back from the file (a JSON round trip), as matbench's from_dict does
    document = json.loads(json.dumps(document))
    document["hash"] = hash_dictionary(document)
    return document, official_all


def export(records: Sequence[RunRecord], output: Path, explicit: bool = False, model: str | None = None,
           seed: int | None = None, git_sha: str | None = None) -> tuple[Path, list[str]]:
    """Write the Matbench results file of ``records`` to ``output`` (gzip-compressed JSON, written
    to a temporary file and renamed). Returns the path and lines to print.

    Raises:
        ExportError: as :func:`select` and :func:`build_document`; ``output`` cannot be written.
    """
    selected, lines = select(records, explicit, model, seed)
    document, official = build_document(selected, git_sha)
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(tmp, output)
    except OSError as exc:
        raise ExportError(f"{output}: cannot write: {exc}") from None
    tasks = ", ".join(f"{name} (mateval {meta['mateval_task']})"
                      for name, meta in document["user_metadata"]["mateval"]["runs"].items())
    lines.append(f"exported 5 folds of {len(selected)} task(s): {tasks}")
    lines.append(document["user_metadata"]["mateval"]["note"] if not official else
                 "official Matbench submission format: Matbench's own rows and folds")
    return output, lines
