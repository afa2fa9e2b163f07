"""What a Slurm job executes on the compute node (through submitit): start the runner, wait.

Kept to the standard library, so that unpickling the job on a node imports nothing heavy. The
runner's output goes straight into the run's ``run.log`` (the run directory is on the shared file
system), and the function returns the runner's exit status, which submitit pickles for the
orchestrator.

Signals: Slurm sends SIGTERM to every process of the job at its time limit or on ``scancel``
(then SIGKILL ``KillWait`` seconds later). The runner turns the first SIGTERM into a written
result; this wrapper does not forward it (the runner would get it twice) and only waits.
"""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

LOG_FILE = "run.log"


def job_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The runner's environment: this one, unbuffered, with ``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` set to the job's ``SLURM_CPUS_PER_TASK`` unless already set, so that
    PyTorch uses the CPUs Slurm allocated rather than every core of the node (two jobs sharing a
    node would otherwise each start a thread per core and slow each other down)."""
    env = dict(os.environ if environ is None else environ, PYTHONUNBUFFERED="1")
    cpus = env.get("SLURM_CPUS_PER_TASK")
    if cpus:
        env.setdefault("OMP_NUM_THREADS", cpus)
        env.setdefault("MKL_NUM_THREADS", cpus)
    return env


def run_on_node(run_dir: str, command: Sequence[str], cwd: str | None = None) -> int:
    """Run ``command`` (the runner on ``run_dir``) with its output appended to ``run_dir/run.log``.

    Returns:
        the runner's exit status (negative ``-N`` when a signal ``N`` ended it).
    """
    log_path = Path(run_dir) / LOG_FILE
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if job else os.environ.get("SLURM_JOB_ID", "?")
    with open(log_path, "a", buffering=1) as log:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        log.write(f"mateval: {stamp} Slurm job {job} started on {socket.gethostname()}: {' '.join(command)}\n")
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=job_environment())
        code = process.wait()
        log.write(f"mateval: runner exited with status {code}\n")
    return code
