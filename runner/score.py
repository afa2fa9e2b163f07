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
``metric_details``, ``files``, the ``dataset`` and ``task`` blocks as the host knows them, and
``scoring`` (status, seconds, Python). A scoring error makes the run ``failed`` with the error's
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
                                 extra={"num_samples": spec.num_samples or definition.num_samples})
        scored = task_type.score(output, test, definition.spec, context)
        result["metrics"], result["metric_details"] = scored.metrics, scored.details
        result["files"].update(scored.files)
        result["dataset"] = data.record()
        result["task"] = task_record(definition)
        result["task_type"] = task_type.name
        result["scoring"] = {"status": "done", "seconds": round(time.perf_counter() - started, 3),
                             "python": platform.python_version(), "finished_at": utc_now()}
        LOG.info("metrics: %s", {k: (round(v, 6) if isinstance(v, float) else v) for k, v in scored.metrics.items()})
    except Exception as exc:  # noqa: BLE001 - recorded as the run's failure, the suite goes on
        LOG.error("scoring failed: %s: %s", type(exc).__name__, exc)
        result["status"] = "failed"
        result["metrics"], result["metric_details"] = {}, {}
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
