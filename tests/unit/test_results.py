"""Finalizing and publishing run directories: statuses, kept logs, never overwriting."""

import json
import signal

import pytest

from orchestrator import results
from orchestrator.backends.base import RunOutcome
from runner.result import ResultError, read_result, write_result
from runner.result import base_result
from runner.wire import RunSpec


def staged(tmp_path, log="line 1\nTraceback: boom\n"):
    spec = RunSpec(run_id=results.new_run_id("m", "t", 0), model="m", model_dir="/nowhere", task="t")
    staging = results.prepare(tmp_path, spec)
    (staging / "run.log").write_text(log)
    return spec, staging


@pytest.mark.parametrize("outcome, status, error_type", [
    (RunOutcome(exit_code=None, timed_out=True, wall_s=5), "timeout", "Timeout"),
    (RunOutcome(exit_code=-signal.SIGKILL, timed_out=False, wall_s=5), "oom", "Killed"),
    (RunOutcome(exit_code=137, timed_out=False, wall_s=5), "oom", "Killed"),
    (RunOutcome(exit_code=3, timed_out=False, wall_s=5), "failed", "Crashed"),
    (RunOutcome(exit_code=-signal.SIGSEGV, timed_out=False, wall_s=5), "failed", "Signal"),
    (RunOutcome(exit_code=None, timed_out=False, wall_s=0, message="no docker"), "failed", "NotStarted"),
])
def test_missing_result_gets_status_from_outcome(tmp_path, outcome, status, error_type):
    spec, staging = staged(tmp_path)
    result = results.finalize(staging, spec, outcome)
    assert result["status"] == status
    assert result["error"]["type"] == error_type
    assert "Traceback: boom" in result["error"]["log_tail"]
    assert read_result(staging / "result.json")["status"] == status


def test_runner_result_is_kept_but_timeout_wins(tmp_path):
    spec, staging = staged(tmp_path)
    written = base_result(spec) | {"status": "ok"}
    write_result(staging, written)
    kept = results.finalize(staging, spec, RunOutcome(exit_code=0, timed_out=False, wall_s=1), scoring=False)
    assert kept["status"] == "ok"
    timed = results.finalize(staging, spec, RunOutcome(exit_code=-15, timed_out=True, wall_s=1))
    assert timed["status"] == "timeout" and timed["error"]["type"] == "Timeout"


def test_invalid_result_is_kept_aside(tmp_path):
    spec, staging = staged(tmp_path)
    (staging / "result.json").write_text('{"schema_version": "1.0", "run_id": ')  # truncated
    result = results.finalize(staging, spec, RunOutcome(exit_code=0, timed_out=False, wall_s=1))
    assert result["status"] == "failed"
    assert (staging / "result.invalid.json").read_text().startswith('{"schema_version"')
    assert result["files"]["invalid_result"] == "result.invalid.json"
    assert "not valid JSON" in result["error"]["message"]


def test_publish_never_overwrites(tmp_path):
    spec, staging = staged(tmp_path)
    results.finalize(staging, spec, RunOutcome(exit_code=1, timed_out=False, wall_s=1))
    published = results.publish(staging, tmp_path)
    assert published == tmp_path / spec.run_id and (published / "result.json").is_file()
    with pytest.raises(FileExistsError):
        results.prepare(tmp_path, spec)
    other = tmp_path / ".staging" / spec.run_id
    other.mkdir(parents=True)
    with pytest.raises(FileExistsError):
        results.publish(other, tmp_path)
    assert json.loads((published / "result.json").read_text())["run_id"] == spec.run_id


def test_schema_rejects_bad_results(tmp_path):
    spec = RunSpec(run_id="r1", model="m", model_dir="/x", task="t")
    bad = base_result(spec) | {"status": "exploded"}
    with pytest.raises(ResultError, match="field 'status'"):
        write_result(tmp_path, bad)
    assert not (tmp_path / "result.json").exists()
    nan_metrics = base_result(spec) | {"metrics": {"MAE": float("nan")}}
    write_result(tmp_path, nan_metrics)
    assert read_result(tmp_path / "result.json")["metrics"] == {"MAE": None}


def test_reader_reports_unreadable(tmp_path):
    from orchestrator.reader import read_runs

    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / "result.json").write_text("{}")
    (record,) = read_runs([tmp_path / "run-a"])
    assert not record.ok and record.result is None and "fails result schema" in record.error


@pytest.mark.parametrize("outcome, status, error_type", [
    (RunOutcome(exit_code=1, timed_out=False, wall_s=5, cancelled=True, message="the Slurm job was cancelled "
                "(CANCELLED by 0)"), "cancelled", "Cancelled"),
    (RunOutcome(exit_code=None, timed_out=False, wall_s=5, oom_killed=True), "oom", "OOMKilled"),
    (RunOutcome(exit_code=None, timed_out=False, wall_s=5, message="Slurm ended the job with state NODE_FAIL",
                error_type="NodeFail"), "failed", "NodeFail"),
])
def test_scheduler_outcomes_without_result(tmp_path, outcome, status, error_type):
    spec, staging = staged(tmp_path)
    result = results.finalize(staging, spec, outcome)
    assert (result["status"], result["error"]["type"]) == (status, error_type)
    assert "Traceback: boom" in result["error"]["log_tail"]


def test_cancel_overrides_a_failed_result_but_not_an_ok_one(tmp_path):
    cancelled = RunOutcome(exit_code=1, timed_out=False, wall_s=5, cancelled=True, message="cancelled (scancel)",
                           slurm={"job_id": "7_1", "state": "CANCELLED by 0", "node": None})
    spec, staging = staged(tmp_path)
    written = base_result(spec) | {"status": "failed", "error": {"type": "Terminated", "message": "terminated by "
                                   "signal 15 (SIGTERM)", "phase": "train", "traceback": "tb", "log_tail": None}}
    write_result(staging, written)
    result = results.finalize(staging, spec, cancelled)
    assert result["status"] == "cancelled" and result["error"]["phase"] == "train"
    assert "cancelled (scancel)" in result["error"]["message"] and "SIGTERM" in result["error"]["message"]
    assert result["slurm"] == {"job_id": "7_1", "state": "CANCELLED by 0"}

    spec, staging = staged(tmp_path)
    write_result(staging, base_result(spec) | {"status": "ok"})
    assert results.finalize(staging, spec, cancelled, scoring=False)["status"] == "ok"
