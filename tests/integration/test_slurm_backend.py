"""The Slurm backend on a real one-node cluster (``make local-slurm``, with accounting).

Grids go through submitit as job arrays; the checks are on what lands in the results directory:
every run ``ok`` with ``backend: slurm``, a time limit recorded as ``timeout``, ``scancel`` as
``cancelled`` with its log, an interrupted orchestrator cancelling its jobs, and ``--resume``
submitting only the runs that have no ``ok`` result. Without Slurm these tests skip; under CI=true
they fail instead."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

pytestmark = pytest.mark.slurm
FIXTURES = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
#: one CPU and 1 GB per job, so that jobs share the 2-core test node; quick polls
SMALL_JOBS = ["--slurm", "cpus=1", "--slurm", "mem=1G", "--slurm", "poll_s=1", "--interval", "0.2"]


def results_of(results_dir: Path) -> list[dict]:
    return [read_result(p / "result.json") for p in sorted(results_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".")]


def grid_file(tmp_path: Path, seeds=(0, 1)) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(f"""name: fixture-grid
models: [mean_baseline]
tasks: [perov5_heat_ref, perov5_has_gap]
seeds: [{", ".join(map(str, seeds))}]
set: {{epochs: 1}}
max_samples: {{train: 100, val: 20, test: 60}}
""")
    return path


def squeue_state(job_name: str) -> tuple[str, str] | None:
    out = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i %T"], capture_output=True, text=True).stdout.split()
    return (out[0], out[1]) if len(out) >= 2 else None


def test_grid_runs_as_one_job_array_every_result_ok(slurm_cluster, tmp_path):
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--grid", str(grid_file(tmp_path)), "--backend", "slurm", "--results-dir",
                       str(results_dir), *SMALL_JOBS], cwd=REPO_ROOT, env=FIXTURES, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "submitted 4 run(s) as job array" in out.stdout
    assert "4 done (0 not ok)" in out.stdout
    found = results_of(results_dir)
    assert sorted((r["task"]["name"], r["seed"]) for r in found) == [
        ("perov5_has_gap", 0), ("perov5_has_gap", 1), ("perov5_heat_ref", 0), ("perov5_heat_ref", 1)]
    arrays = set()
    for result in found:
        assert result["status"] == "ok" and result["backend"] == "slurm"
        assert result["slurm"]["state"] == "COMPLETED" and result["slurm"]["exit_code"] == 0
        assert result["slurm"]["node"] and result["slurm"]["time_limit_min"] == 10  # timeout_s 600 of model.yaml
        arrays.add(result["slurm"]["job_id"].split("_")[0])
        assert result["dataset"]["sizes"]["train"] == 100
    assert len(arrays) == 1
    (report,) = results_dir.glob("report-*.html")
    html = report.read_text()
    assert all(r["run_id"] in html for r in found)
    assert not list((results_dir / ".staging").iterdir())


def test_example_grid_small_on_slurm(slurm_cluster, tmp_path):
    """The issue's first try: `mateval bench --backend slurm --grid examples/grid-small.yaml`."""
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--backend", "slurm", "--grid", "examples/grid-small.yaml", "--results-dir",
                       str(results_dir), "--slurm", "poll_s=2"], cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    found = results_of(results_dir)
    assert len(found) == 4 and all(r["status"] == "ok" and r["backend"] == "slurm" for r in found)
    assert {r["model"]["name"] for r in found} == {"matformer"}
    assert all(r["hyperparameters"]["effective"]["epochs"] == 2 for r in found)
    (report,) = results_dir.glob("report-*.html")
    assert all(r["run_id"] in report.read_text() for r in found)


def test_time_limit_is_recorded_as_timeout_with_its_log(slurm_cluster, tmp_path):
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--model", "crashing", "--set", "mode=hang", "--backend", "slurm", "--results-dir",
                       str(results_dir), "--no-report", "--slurm", "time=1", *SMALL_JOBS], cwd=REPO_ROOT,
                      env=FIXTURES, timeout=600)
    assert out.returncode == 1, out.stdout[-4000:]
    (result,) = results_of(results_dir)
    assert result["status"] == "timeout" and result["error"]["type"] == "Timeout"
    assert result["slurm"]["state"] == "TIMEOUT" and result["slurm"]["time_limit_min"] == 1
    assert "Slurm time limit of 1 min" in result["error"]["message"]
    assert "DUE TO TIME LIMIT" in result["error"]["log_tail"]
    run_dir = results_dir / result["run_id"]
    assert "training Crashing model" in (run_dir / "run.log").read_text()  # the runner's own output is kept
    assert (run_dir / "slurm.err").is_file()


def start_bench(tmp_path: Path, job_name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "bench", "--model", "crashing", "--set",
                             "mode=hang", "--backend", "slurm", "--results-dir", str(tmp_path / "results"),
                             "--no-report", "--slurm", f"job_name={job_name}", "--slurm", "time=10", *SMALL_JOBS],
                            cwd=REPO_ROOT, env=dict(os.environ, **FIXTURES), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_running(job_name: str, process: subprocess.Popen, staging: Path) -> str:
    """The job id once the job runs and the runner is training (so that there is a log to keep)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = squeue_state(job_name)
        logs = list(staging.glob("*/run.log")) if staging.is_dir() else []
        if state and state[1] == "RUNNING" and logs and "training" in logs[0].read_text():
            return state[0]
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(1)
    process.kill()
    pytest.fail(f"job {job_name} never ran: {process.communicate()[0][-3000:]}")


def test_scancel_of_a_running_job_is_recorded_as_cancelled_with_its_log(slurm_cluster, tmp_path):
    job_name = f"mateval-test-scancel-{os.getpid()}"
    process = start_bench(tmp_path, job_name)
    job_id = wait_running(job_name, process, tmp_path / "results" / ".staging")
    subprocess.run(["scancel", job_id], check=True)
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 1, output[-3000:]
    (result,) = results_of(tmp_path / "results")
    assert result["status"] == "cancelled" and result["error"]["type"] == "Cancelled"
    assert result["slurm"]["state"].startswith("CANCELLED")
    log = (tmp_path / "results" / result["run_id"] / "run.log").read_text()
    assert "training Crashing model" in log and "ended with state CANCELLED" in log


def test_interrupted_orchestrator_cancels_its_jobs(slurm_cluster, tmp_path):
    job_name = f"mateval-test-sigint-{os.getpid()}"
    process = start_bench(tmp_path, job_name)
    job_id = wait_running(job_name, process, tmp_path / "results" / ".staging")
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 130, output[-3000:]
    assert squeue_state(job_name) is None, "the job is still queued or running"
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], capture_output=True,
                           text=True).stdout.strip()
    assert state.startswith("CANCELLED"), state
    (result,) = results_of(tmp_path / "results")
    assert result["status"] == "cancelled" and "interrupted" in result["error"]["message"]


def test_resume_submits_only_the_missing_runs(slurm_cluster, tmp_path):
    results_dir = tmp_path / "results"
    grid = grid_file(tmp_path)
    first = run_mateval(["bench", "--grid", str(grid), "--seed", "0", "--backend", "slurm", "--results-dir",
                         str(results_dir), "--no-report", *SMALL_JOBS], cwd=REPO_ROOT, env=FIXTURES, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:]
    before = {p.name: (p / "result.json").read_bytes() for p in results_dir.iterdir()
              if p.is_dir() and not p.name.startswith(".")}
    assert len(before) == 2

    second = run_mateval(["bench", "--grid", str(grid), "--backend", "slurm", "--resume", "--results-dir",
                          str(results_dir), "--no-report", *SMALL_JOBS], cwd=REPO_ROOT, env=FIXTURES, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "submitted 2 run(s)" in second.stdout and second.stdout.count("already ok") == 2
    found = results_of(results_dir)
    assert sorted((r["task"]["name"], r["seed"]) for r in found) == [
        ("perov5_has_gap", 0), ("perov5_has_gap", 1), ("perov5_heat_ref", 0), ("perov5_heat_ref", 1)]
    for name, data in before.items():  # earlier results untouched
        assert (results_dir / name / "result.json").read_bytes() == data

    third = run_mateval(["bench", "--grid", str(grid), "--backend", "slurm", "--resume", "--results-dir",
                         str(results_dir), "--no-report", *SMALL_JOBS], cwd=REPO_ROOT, env=FIXTURES, timeout=600)
    assert third.returncode == 0 and "nothing to run: all 4 runs already have an ok result" in third.stdout
    assert len(results_of(results_dir)) == 4


def test_bad_slurm_settings_fail_before_submitting(slurm_cluster, tmp_path):
    out = run_mateval(["bench", "--grid", str(grid_file(tmp_path)), "--backend", "slurm", "--results-dir",
                       str(tmp_path / "results"), "--slurm", "partiton=gpu"], cwd=REPO_ROOT, env=FIXTURES)
    assert out.returncode == 2 and "--slurm: slurm.partiton: unknown field" in out.stdout
    out = run_mateval(["bench", "--grid", str(grid_file(tmp_path)), "--backend", "slurm", "--results-dir",
                       str(tmp_path / "results"), "--slurm", "partition=nosuchpartition", *SMALL_JOBS],
                      cwd=REPO_ROOT, env=FIXTURES)
    assert out.returncode == 2 and "sbatch refused" in out.stdout and "nosuchpartition" in out.stdout.lower()
    assert not [p for p in (tmp_path / "results").iterdir() if not p.name.startswith(".")]
    assert not list((tmp_path / "results" / ".staging").iterdir())
