"""A real one-node Slurm cluster (``make local-slurm``) runs the runner as a batch job on real data.

Groundwork for the Slurm backend: the cluster set-up is idempotent, and a job submitted with sbatch
runs ``python -m runner --results ...`` on the node and leaves an ``ok`` result. Without Slurm
these tests skip, except under CI=true, where they fail."""

import subprocess
import sys
import time

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT

pytestmark = pytest.mark.slurm


def test_setup_is_idempotent(slurm_cluster):
    from orchestrator.local_slurm import ensure_cluster

    messages = []
    state = ensure_cluster(messages.append)
    assert state in ("idle", "mixed", "allocated")
    assert messages == [f"local Slurm cluster is up (node {state})"], "a running cluster was set up again"


def test_runner_as_a_batch_job(slurm_cluster, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\nset -e\ncd " + str(REPO_ROOT) + "\n" + " ".join([
        sys.executable, "-m", "runner", "--results", str(tmp_path / "results"), "--model-dir",
        str(FIXTURE_MODELS / "mean_baseline"), "--task", "perov5_heat_ref", "--data-root", str(REPO_ROOT / "data"),
        "--set", "epochs=1", "--interval", "0.2", "--backend", "slurm"]) + "\n")
    submitted = subprocess.run(["sbatch", "--parsable", "--time=5", "--cpus-per-task=1", "--mem=2G",
                                "-o", str(tmp_path / "slurm-%j.out"), str(script)],
                               capture_output=True, text=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()
        if not state:
            break
        time.sleep(2)
    log = (tmp_path / f"slurm-{job_id}.out").read_text()
    (run_dir,) = list((tmp_path / "results").iterdir())
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok", log[-3000:]
    assert result["backend"] == "slurm" and result["metrics"]["MAE"] > 0
    assert "epoch 1/1" in (run_dir / "run.log").read_text()
