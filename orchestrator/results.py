"""Run directories: preparing them (spec and model inputs), finalizing them (status, scoring) and
publishing them.

A run is prepared in ``<results>/.staging/<run_id>/``: the model's view of the spec
(:meth:`runner.wire.RunSpec.for_model`) and the model inputs (:func:`stage_inputs`, the prepare
stage: test targets left out). After the model stage, :func:`finalize` settles the status and, for
a run that ended ``ok``, runs the scoring stage (``python -m runner.score``) in mateval's own
environment, in a process of its own. Then the directory is moved to ``<results>/<run_id>/`` with
one ``rename`` (atomic on one file system). A published directory is never written again;
``run_id`` holds a timestamp and a random suffix, and publishing refuses to replace an existing
directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.backends.base import RunOutcome
from runner import safefiles
from runner.result import ResultError, base_result, log_tail, read_result, write_result
from runner.wire import LOG_FILE, RESULT_FILE, SPEC_FILE, RunSpec, new_run_id

__all__ = ["new_run_id", "prepare", "stage_inputs", "score", "finalize", "collect", "publish", "run_dirs",
           "append_log", "secure_log"]

STAGING = ".staging"


def prepare(results_root: Path, spec: RunSpec) -> Path:
    """Create the staging directory of ``spec.run_id`` and write ``run_spec.json`` into it.

    Raises:
        FileExistsError: the run id is already staged or published.
    """
    results_root = Path(results_root)
    if (results_root / spec.run_id).exists():
        raise FileExistsError(f"{results_root / spec.run_id} already exists; results are never overwritten")
    staging = results_root / STAGING / spec.run_id
    staging.mkdir(parents=True, exist_ok=False)
    spec.for_model().save(staging / SPEC_FILE)
    return staging


def stage_inputs(spec: RunSpec, staging: Path, cache: dict | None = None) -> dict[str, Any] | None:
    """The prepare stage: write the model inputs of ``spec`` into ``staging`` (see
    :mod:`runner.prepare`). ``cache`` (a dict the caller keeps) reuses a dataset loaded for an
    earlier run with the same task, data and sample limits.

    Returns ``None``, or, when the data cannot be prepared (missing or corrupted dataset, a bad
    target), the ``failed`` result it wrote for the run (error phase ``prepare``): the model is
    then not started.
    """
    from runner.prepare import load_task_data, prepare as write_model_inputs
    from runner.score import record_failure

    key = (spec.task, spec.data_variant, tuple(spec.data_roots), json.dumps(spec.max_samples, sort_keys=True),
           spec.seed, spec.protocol, spec.fold)  # the seed draws the validation split of some datasets
    try:
        data = cache.get(key) if cache is not None else None
        if data is None:
            data = load_task_data(spec)
            if cache is not None:
                cache[key] = data
        write_model_inputs(spec, staging, data)
        return None
    except Exception as exc:  # noqa: BLE001 - recorded as this run's failure; the suite goes on
        append_log(staging, f"mateval: cannot prepare the run's data: {type(exc).__name__}: {exc}")
        result = record_failure(spec, staging, exc, phase="prepare")
        result["error"]["log_tail"] = log_tail(staging / LOG_FILE)
        write_result(staging, result)
        return result


def score(staging: Path, spec: RunSpec) -> dict[str, Any]:
    """Run the scoring stage (``python -m runner.score``, this interpreter: mateval's own
    environment) on a run whose model stage ended ``ok``; its output goes to ``run.log``. Returns
    the result it wrote; if it wrote none (it crashed), the run is recorded ``failed`` here."""
    with safefiles.open_append(staging / LOG_FILE) as log:
        log.write("mateval: scoring stage (python -m runner.score, mateval's environment)\n")
        log.flush()
        process = subprocess.run([sys.executable, "-m", "runner.score", str(staging)], input=spec.to_json(),
                                 stdout=log, stderr=subprocess.STDOUT, text=True,
                                 env=dict(os.environ, PYTHONUNBUFFERED="1"))
    result = read_result(staging / RESULT_FILE)
    if (result.get("scoring") or {}).get("status") == "pending" and result["status"] == "ok":
        result["status"] = "failed"
        result["error"] = {"type": "ScoringCrashed", "phase": "scoring", "traceback": None,
                           "message": f"the scoring stage exited with status {process.returncode} without "
                                      "recording metrics", "log_tail": log_tail(staging / LOG_FILE)}
        result["scoring"]["status"] = "failed"
        write_result(staging, result)
    elif result["status"] != "ok" and result.get("error") and not result["error"].get("log_tail"):
        result["error"]["log_tail"] = log_tail(staging / LOG_FILE)
        write_result(staging, result)
    return result


def _forced_status(outcome: RunOutcome, spec: RunSpec) -> tuple[str, str, str] | None:
    """(status, error type, message) that how the run ended imposes, whatever the runner wrote:
    a timeout, the out-of-memory killer, or a cancellation; ``None`` otherwise."""
    detail = f" ({outcome.message})" if outcome.message else ""
    if outcome.timed_out:
        limit = f" of {spec.timeout_s:g} s" if spec.timeout_s else ""
        return "timeout", "Timeout", f"run exceeded its time limit{limit}{detail}"
    if outcome.oom_killed:
        return "oom", "OOMKilled", f"the out-of-memory killer ended the run (exit {outcome.exit_code}){detail}"
    if outcome.cancelled:
        return "cancelled", "Cancelled", outcome.message or "the run was cancelled"
    return None


def _status_from_outcome(outcome: RunOutcome, spec: RunSpec) -> tuple[str, str, str]:
    """(status, error type, message) for a run that left no valid result."""
    forced = _forced_status(outcome, spec)
    if forced:
        return forced
    code = outcome.exit_code
    detail = f" ({outcome.message})" if outcome.message else ""
    if code is None:
        return "failed", outcome.error_type or "NotStarted", outcome.message or "the run could not be started"
    if code in (-signal.SIGKILL, 137):
        return "oom", "Killed", (f"killed by SIGKILL (exit {code}) before writing a result; on Linux this is "
                                 f"usually the out-of-memory killer{detail}")
    if code < 0:
        return "failed", "Signal", f"killed by signal {-code} before writing a result{detail}"
    return "failed", "Crashed", f"runner exited with status {code} without writing a valid result{detail}"


def _record_backend(result: dict[str, Any], outcome: RunOutcome) -> None:
    if outcome.details:
        result["container"] = {k: v for k, v in outcome.details.items() if v is not None}
    if outcome.slurm:
        result["slurm"] = {k: v for k, v in outcome.slurm.items() if v is not None}


def finalize(staging: Path, spec: RunSpec, outcome: RunOutcome, scoring: bool = True) -> dict[str, Any]:
    """Make sure ``staging/result.json`` exists, is schema-valid and has the right status, and
    score a run that ended ``ok`` (:func:`score`; ``scoring=False`` only in tests of the status
    logic on results that are not real runs).

    - valid result, ended normally: kept as the runner wrote it (plus the backend's records);
    - valid result, but the backend timed the run out, the out-of-memory killer ended it, or it
      was cancelled (a non-``ok`` result only): the status becomes ``timeout``, ``oom`` or
      ``cancelled``, with the runner's own error kept in the message;
    - no result, or an invalid one (kept as ``result.invalid.json``): a new result is written from
      the spec with the status derived from how the process ended and the log tail.
    """
    staging = Path(staging)
    path = staging / RESULT_FILE
    refused = secure_log(staging)
    log_text = log_tail(staging / LOG_FILE)
    problem = None
    try:
        result = read_result(path)
    except ResultError as exc:
        result, problem = None, str(exc)
        if os.path.lexists(path):
            os.replace(path, staging / "result.invalid.json")
    if result is not None:
        if refused:
            result["notes"] = [*result.get("notes", []), refused]
        _record_backend(result, outcome)
        forced = _forced_status(outcome, spec)
        if forced and result["status"] != forced[0] and not (forced[0] == "cancelled" and result["status"] == "ok") \
                and not (forced[0] == "oom" and result["status"] == "timeout"):
            previous = result.get("error") or {}
            message = forced[2] + (f"; the runner reported {previous['type']}: {previous['message']}"
                                   if previous.get("message") else "")
            result["status"] = forced[0]
            result["error"] = {"type": forced[1], "message": message, "phase": previous.get("phase"),
                               "traceback": previous.get("traceback"), "log_tail": log_text}
        elif result["status"] != "ok" and result.get("error"):
            if outcome.message and outcome.message not in (result["error"].get("message") or ""):
                result["error"]["message"] = f"{result['error'].get('message') or ''} ({outcome.message})".strip()
            if not result["error"].get("log_tail"):
                result["error"]["log_tail"] = log_text
        write_result(staging, result)
        if result["status"] == "ok" and scoring:
            result = score(staging, spec)
        return result
    status, error_type, message = _status_from_outcome(outcome, spec)
    result = base_result(spec)
    result["status"] = status
    invalid = os.path.lexists(staging / "result.invalid.json")
    result["error"] = {"type": error_type, "message": message + (f"; {problem}" if invalid else "")
                       + (f"; {refused}" if refused else ""),
                       "phase": None, "traceback": None, "log_tail": log_text}
    if refused:
        result["notes"].append(refused)
    if invalid:
        result["files"]["invalid_result"] = "result.invalid.json"
    _record_backend(result, outcome)
    write_result(staging, result)
    return result


def rescore(run_dir: Path, data_roots: list[Path], cache_dir: Path | None = None) -> list[str]:
    """Recompute the metrics, the baseline and the flags of the published ``ok`` run in ``run_dir``
    with the scoring stage (the same code, in a process of its own, on a copy of the run directory)
    and compare them with the recorded ones. Returns the differences (empty: identical).

    The data are looked up under ``data_roots`` (their sha256 must equal the recorded ones).

    Raises:
        runner.result.ResultError: ``result.json`` is unreadable or invalid.
    """
    import math
    import shutil
    import tempfile
    from dataclasses import replace

    run_dir = Path(run_dir)
    recorded = read_result(run_dir / RESULT_FILE)
    if recorded["status"] != "ok":
        return []
    try:
        spec = RunSpec.load(run_dir / SPEC_FILE)
    except ValueError as exc:
        return [str(exc)]
    spec = replace(spec, data_roots=[str(p) for p in data_roots], cache_dir=str(cache_dir) if cache_dir else None,
                   n_jobs=None)
    with tempfile.TemporaryDirectory(prefix="mateval-rescore-") as tmp:
        copy = Path(tmp) / run_dir.name
        shutil.copytree(run_dir, copy, symlinks=True)
        fresh = dict(recorded, metrics={}, metric_details={}, scoring={"status": "pending"})
        fresh.pop("baseline", None)
        fresh.pop("flags", None)
        write_result(copy, fresh)
        process = subprocess.run([sys.executable, "-m", "runner.score", str(copy)], input=spec.to_json(),
                                 capture_output=True, text=True)
        again = read_result(copy / RESULT_FILE)
    if again["status"] != "ok":
        message = (again.get("error") or {}).get("message") or process.stdout[-500:]
        return [f"{run_dir}: the metrics cannot be recomputed: {message}"]
    def differences(what: str, old_metrics: dict, new_metrics: dict) -> list[str]:
        out = []
        for name in sorted(set(old_metrics) | set(new_metrics)):
            old, new = old_metrics.get(name), new_metrics.get(name)
            if not (old == new or (old is None and isinstance(new, float) and math.isnan(new))):
                out.append(f"{run_dir / RESULT_FILE}: {what} {name} is {old!r}, recomputed from the run's files: "
                           f"{new!r}")
        return out

    found = differences("metric", recorded["metrics"], again["metrics"])
    old_base, new_base = recorded.get("baseline"), again.get("baseline")
    if (old_base is None) != (new_base is None) or (old_base and new_base
                                                    and old_base.get("predictor") != new_base.get("predictor")):
        found.append(f"{run_dir / RESULT_FILE}: baseline is {short(old_base)}, recomputed from the run's files: "
                     f"{short(new_base)}")
    elif old_base:
        found += differences("baseline metric", old_base.get("metrics") or {}, new_base.get("metrics") or {})
    if recorded.get("flags", []) != again.get("flags", []):
        found.append(f"{run_dir / RESULT_FILE}: flags are {short(recorded.get('flags'))}, recomputed from the run's "
                     f"files: {short(again.get('flags'))}")
    return found


def short(value: Any, limit: int = 300) -> str:
    """``value`` as compact JSON, cut at ``limit`` characters (for a message)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def append_log(run_dir: Path, line: str) -> None:
    """Append ``line`` to the run's ``run.log`` without following a link the model may have put
    there (:func:`runner.safefiles.open_append`); a log that cannot be written is left alone (the
    line is lost, never written elsewhere)."""
    try:
        with safefiles.open_append(Path(run_dir) / LOG_FILE) as log:
            log.write(line.rstrip("\n") + "\n")
    except OSError:
        pass


def _kind(path: Path) -> str:
    """What ``path`` is, for a note: ``"a symbolic link"``, ``"a FIFO"``, ``"a directory"``, ..."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "gone"
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "a regular file"


def secure_log(run_dir: Path) -> str | None:
    """Make ``run_dir/run.log`` a regular file again if the model replaced it (a symbolic link, a
    FIFO, a directory): the replacement is moved to ``run.log.refused`` (renamed, never read nor
    followed) and a fresh ``run.log`` says so. The backends do the same while the run's log is
    still open (:func:`orchestrator.backends.base.keep_log`), putting the real log back.

    Returns the note for the run's record when ``run.log.refused`` exists (``"run.log was replaced
    by a symbolic link during the run; not read (kept as run.log.refused)"``), else ``None``.
    """
    run_dir = Path(run_dir)
    log, refused = run_dir / LOG_FILE, run_dir / f"{LOG_FILE}.refused"
    try:
        safefiles.open_file(log, run_dir).close()
    except safefiles.RefusedFile:
        try:
            os.replace(log, refused)  # renames the link itself, never its target
        except OSError as exc:
            return f"{LOG_FILE} is {_kind(log)}; not read, and it could not be moved aside: {type(exc).__name__}: {exc}"
        append_log(run_dir, f"mateval: {LOG_FILE} had been replaced by {_kind(refused)}; not read "
                            f"(kept as {LOG_FILE}.refused)")
    except OSError:
        pass
    if not os.path.lexists(refused):
        return None
    return f"{LOG_FILE} was replaced by {_kind(refused)} during the run; not read (kept as {LOG_FILE}.refused)"


def collect(staging: Path, spec: RunSpec, outcome: RunOutcome, results_root: Path,
            scoring: bool = True) -> tuple[dict[str, Any], Path | None, str | None]:
    """Finalize (:func:`finalize`) and publish (:func:`publish`) one run; never raises, so one bad
    run never stops a suite.

    Any error while finalizing (an unreadable result, a schema failure, a full disk: ``OSError``
    ``ENOSPC`` when writing) is recorded for that run: a ``failed`` result with error type
    ``CollectError`` naming it, written if the disk allows, and a line in ``run.log`` (kept). The
    directory is published even when no result could be written (readers then name it as
    unreadable); if it cannot be published either it stays in ``.staging``.

    Returns:
        ``(result, published directory or None, problem or None)``: the result as finalized or as
        recorded after the error; ``problem`` says what went wrong while collecting.
    """
    staging = Path(staging)
    problem = None
    try:
        result = finalize(staging, spec, outcome, scoring=scoring)
    except Exception as exc:  # noqa: BLE001 - recorded for this run; the suite goes on
        problem = f"the run could not be collected: {type(exc).__name__}: {str(exc)[:2000]}"
        append_log(staging, f"mateval: {problem}")
        result = base_result(spec)
        result["error"] = {"type": "CollectError", "message": problem, "phase": "collect",
                           "traceback": None, "log_tail": log_tail(staging / LOG_FILE)}
        _record_backend(result, outcome)
        try:
            if os.path.lexists(staging / RESULT_FILE):
                os.replace(staging / RESULT_FILE, staging / "result.invalid.json")
                result["files"]["invalid_result"] = "result.invalid.json"
            write_result(staging, result)
        except Exception as again:  # noqa: BLE001 - e.g. the disk is still full
            problem += f"; no result could be written either: {type(again).__name__}: {again}"
    try:
        return result, publish(staging, results_root), problem
    except Exception as exc:  # noqa: BLE001 - the run stays in .staging, named
        message = f"not published, left in {staging}: {type(exc).__name__}: {exc}"
        return result, None, f"{problem}; {message}" if problem else message


def publish(staging: Path, results_root: Path) -> Path:
    """Seal a finalized staging directory (:func:`orchestrator.integrity.seal`: every file's sha256
    in ``result.json``, ``result.json``'s own in ``result.sha256``) and move it to
    ``<results_root>/<run_id>`` (never replacing one).

    Raises:
        FileExistsError: the destination exists.
    """
    from orchestrator.integrity import seal

    destination = Path(results_root) / Path(staging).name
    if destination.exists():
        raise FileExistsError(f"{destination} already exists; results are never overwritten")
    try:
        seal(staging)
    except (ResultError, OSError) as exc:  # recorded in the log; the reader then names the run
        append_log(staging, f"mateval: the run could not be sealed: {exc}")
    os.rename(staging, destination)
    return destination


def run_dirs(results_root: Path) -> list[Path]:
    """Published run directories under ``results_root`` (those holding a ``result.json`` or a
    ``run_spec.json``), oldest first by name."""
    root = Path(results_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and ((p / RESULT_FILE).exists() or (p / SPEC_FILE).exists()))
