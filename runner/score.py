"""The scoring stage of a run: metrics from the model's output and the held-out targets.

``python -m runner.score RUN_DIR`` with the run's spec (:class:`runner.wire.RunSpec`, the host's
view, as JSON) on standard input. The orchestrator runs it after the model stage ended ``ok``, in
mateval's own environment, in a process of its own (outside the container on the Docker backend):
the model never runs in this process, and nothing of the model's code is imported here.

It loads the task's dataset again (:func:`runner.prepare.load_task_data`; the files' sha256 must
equal those the prepare stage recorded), reads the model's output through the task type
(:meth:`runner.tasks.base.TaskType.read_output`, which checks ids, shapes and numbers), scores it
(:meth:`~runner.tasks.base.TaskType.score`, which also writes ``predictions.csv`` or
``generated.cif``/``generated.csv``) and completes ``result.json``: ``metrics``,
``metric_details``, ``baseline`` (the trivial predictor's metrics on the same split,
:meth:`~runner.tasks.base.TaskType.baseline`; ``null`` for a task type without one), ``flags``
(degenerate results: the task type's :meth:`~runner.tasks.base.TaskType.flags` and a training
loss that went non-finite, :func:`loss_flags`), ``files``, the ``dataset`` and ``task`` blocks
as the host knows them, and ``scoring`` (status, seconds, Python). A scoring error makes the run ``failed`` with the error's
phase ``scoring``. Exit status: 0 when the result is ``ok`` afterwards, 1 otherwise.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from runner.result import base_result, read_result, utc_now, write_result
from runner.wire import RESULT_FILE, RunSpec

LOG = logging.getLogger("mateval.score")


def record_failure(spec: RunSpec, run_dir: Path, exc: BaseException, phase: str) -> dict[str, Any]:
    """Write a ``failed`` result for a run that could not reach the model (e.g. its dataset is
    missing): the error named with its phase. Returns the result."""
    result = base_result(spec)
    result["error"] = {"type": type(exc).__name__, "message": str(exc), "phase": phase,
                       "traceback": traceback.format_exc() if sys.exc_info()[0] else None, "log_tail": None}
    write_result(Path(run_dir), result)
    return result


def loss_flags(history: Sequence[Any]) -> list[dict[str, str]]:
    """``[{"code": "loss_not_finite", "message": ...}]`` when an epoch of ``history`` (``result.json``'s,
    written by the model stage) recorded a training or validation loss that was NaN or infinite
    (stored as ``null`` for the training loss, named in the entry's ``non_finite`` list), else ``[]``."""
    import math

    epochs: list[str] = []
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict):
            continue
        named = entry.get("non_finite") if isinstance(entry.get("non_finite"), list) else []
        bad = [str(n) for n in named]
        for key in ("train_loss", "val_loss"):
            value = entry.get(key)
            if ((key == "train_loss" and value is None) or (isinstance(value, float) and not math.isfinite(value))) \
                    and key not in bad:
                bad.append(key)
        if bad:
            epochs.append(f"{entry.get('epoch', '?')} ({', '.join(bad)})")
    if not epochs:
        return []
    shown = ", ".join(epochs[:5]) + (f" and {len(epochs) - 5} more" if len(epochs) > 5 else "")
    return [{"code": "loss_not_finite", "message": f"the loss went non-finite (NaN or infinite) at epoch {shown}"}]


def score_baseline(task_type: Any, output: Any, data: Any, definition: Any, context: Any) -> dict[str, Any] | None:
    """``result.json``'s ``baseline`` block (:meth:`runner.tasks.base.TaskType.baseline` on the
    run's training and test splits), ``None`` when the task type defines none. A baseline that
    cannot be computed is recorded with its ``error`` (the model's metrics stand)."""
    started = time.perf_counter()
    try:
        found = task_type.baseline(output, data.dataset.splits["train"], data.dataset.splits["test"],
                                   definition.spec, context)
    except Exception as exc:  # noqa: BLE001 - the model's scores do not depend on the baseline
        LOG.error("baseline failed: %s: %s", type(exc).__name__, exc)
        return {"predictor": f"the trivial predictor of task type {task_type.name}", "metrics": {},
                "details": {}, "error": f"{type(exc).__name__}: {exc}"}
    if found is None:
        return None
    record = found.as_record()
    record["details"].setdefault("seconds", round(time.perf_counter() - started, 3))
    return record


def score_run(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """Score the run in ``run_dir`` (see the module docstring); returns the result written.

    A result whose status is not ``ok`` is returned unchanged (there is nothing to score).

    Raises:
        runner.result.ResultError: the model stage's ``result.json`` is missing or invalid.
    """
    from runner.prepare import load_task_data, task_record
    from runner.tasks import load_plugins
    from runner.tasks.base import ScoringContext

    run_dir = Path(run_dir)
    result = read_result(run_dir / RESULT_FILE)
    if result["status"] != "ok":
        return result
    started = time.perf_counter()
    try:
        load_plugins()
        data = load_task_data(spec)
        recorded = (result.get("dataset") or {}).get("sha256") or {}
        if recorded and recorded != data.dataset.sha256:
            raise ValueError(f"the dataset files changed between prepare and scoring: {recorded} != "
                             f"{data.dataset.sha256}")
        definition, task_type = data.definition, data.task_type
        test = data.dataset.splits["test"]
        LOG.info("scoring %s (%s) against %d held-out test samples", spec.task, task_type.name, len(test))
        output = task_type.read_output(run_dir, test, definition.spec)
        context = ScoringContext(run_dir=run_dir, dataset=definition.dataset,
                                 cache_dir=Path(spec.cache_dir) if spec.cache_dir else None, n_jobs=spec.n_jobs,
                                 extra={"num_samples": spec.num_samples or definition.num_samples},
                                 seed=int(spec.seed))
        scored = task_type.score(output, test, definition.spec, context)
        result["metrics"], result["metric_details"] = scored.metrics, scored.details
        result["flags"] = [f.as_record() for f in task_type.flags(output, test, definition.spec, scored)]
        result["flags"] += loss_flags(result.get("history"))
        result["baseline"] = score_baseline(task_type, output, data, definition, context)
        result["files"].update(scored.files)
        result["dataset"] = data.record()
        result["task"] = task_record(definition)
        result["task_type"] = task_type.name
        result["scoring"] = {"status": "done", "seconds": round(time.perf_counter() - started, 3),
                             "python": platform.python_version(), "finished_at": utc_now()}
        LOG.info("metrics: %s", {k: (round(v, 6) if isinstance(v, float) else v) for k, v in scored.metrics.items()})
        if result["baseline"]:
            LOG.info("baseline (%s): %s", result["baseline"]["predictor"],
                     {k: (round(v, 6) if isinstance(v, float) else v)
                      for k, v in result["baseline"]["metrics"].items()})
        for flag in result["flags"]:
            LOG.warning("flag %s: %s", flag["code"], flag["message"])
    except Exception as exc:  # noqa: BLE001 - recorded as the run's failure, the suite goes on
        LOG.error("scoring failed: %s: %s", type(exc).__name__, exc)
        result["status"] = "failed"
        result["metrics"], result["metric_details"] = {}, {}
        result.pop("baseline", None)
        result.pop("flags", None)
        result["error"] = {"type": type(exc).__name__, "message": str(exc), "phase": "scoring",
                           "traceback": traceback.format_exc(), "log_tail": None}
        result["scoring"] = {"status": "failed", "seconds": round(time.perf_counter() - started, 3),
                             "python": platform.python_version(), "finished_at": utc_now()}
    write_result(run_dir, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runner.score RUN_DIR`` (the spec as JSON on standard input)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m runner.score RUN_DIR < run_spec.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = RunSpec.from_json(sys.stdin.read(), "standard input")
    result = score_run(spec, Path(args[0]))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
