"""``make local-slurm``: a real one-node Slurm cluster on this machine (for tests and first tries).

Installs Debian's ``slurm-wlm`` and ``munge`` when missing, creates a munge key, writes a
``slurm.conf`` naming this host with the CPUs and memory it has, and starts ``munged``,
``slurmctld`` and ``slurmd``. Idempotent: a running cluster whose node answers is left alone.
Needs root (it writes ``/etc/slurm`` and starts daemons).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

CONF_DIR = Path("/etc/slurm")
STATE_DIR = Path("/var/spool/slurmctld")
SLURMD_DIR = Path("/var/spool/slurmd")
LOG_DIR = Path("/var/log/slurm")
PARTITION = "mateval"


class LocalSlurmError(RuntimeError):
    """The local cluster could not be set up; the message names the step and shows its output."""


def _run(command: list[str], step: str, check: bool = True) -> subprocess.CompletedProcess:
    process = subprocess.run(command, capture_output=True, text=True)
    if check and process.returncode != 0:
        raise LocalSlurmError(f"{step} failed (exit {process.returncode}): {' '.join(command)}\n"
                              f"{(process.stdout + process.stderr)[-3000:]}")
    return process


def slurm_conf(host: str, cpus: int, memory_mb: int) -> str:
    """A minimal ``slurm.conf`` for one node ``host`` in partition ``mateval``."""
    return f"""# Written by mateval (orchestrator/local_slurm.py): a one-node cluster for tests.
ClusterName=mateval
SlurmctldHost={host}
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir={SLURMD_DIR}
StateSaveLocation={STATE_DIR}
SlurmUser=root
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile={LOG_DIR}/slurmctld.log
SlurmdLogFile={LOG_DIR}/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
OverTimeLimit=0
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def node_state() -> str | None:
    """The node's state from ``sinfo`` (e.g. ``idle``), or ``None`` when no controller answers."""
    if shutil.which("sinfo") is None:
        return None
    process = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    return process.stdout.strip().splitlines()[0] if process.returncode == 0 and process.stdout.strip() else None


def ensure_cluster(echo=print) -> str:
    """Set up and start the cluster when needed; returns the node state (``idle`` or ``mixed``...).

    Raises:
        LocalSlurmError: a step failed (install, key, daemons) or the node never became usable.
    """
    state = node_state()
    if state in ("idle", "mixed", "allocated"):
        echo(f"local Slurm cluster is up (node {state})")
        return state
    if os.geteuid() != 0:
        raise LocalSlurmError("make local-slurm needs root (it writes /etc/slurm and starts daemons)")
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        echo("installing slurm-wlm and munge")
        _run(["apt-get", "update", "-qq"], "apt-get update")
        _run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], "apt-get install slurm-wlm munge")
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.9)
    for directory in (CONF_DIR, STATE_DIR, SLURMD_DIR, LOG_DIR, Path("/run/munge"), Path("/var/log/munge")):
        directory.mkdir(parents=True, exist_ok=True)
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        _run(["mungekey", "--create", "--keyfile", str(key)], "munge key")
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    for directory in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
        if directory.exists():
            shutil.chown(directory, "munge", "munge")
    (CONF_DIR / "slurm.conf").write_text(slurm_conf(host, cpus, memory_mb))
    # slurmd initializes a cgroup plugin even with proctrack/linuxproc and task/none; 22.05 has no
    # "disabled" plugin, so let it detect the host's cgroup version (nothing is constrained).
    (CONF_DIR / "cgroup.conf").write_text("CgroupPlugin=autodetect\nCgroupAutomount=yes\n")
    if _run(["pgrep", "-x", "munged"], "pgrep munged", check=False).returncode != 0:
        _run(["runuser", "-u", "munge", "--", "munged"], "start munged")
    for daemon in ("slurmctld", "slurmd"):
        _run(["pkill", "-x", daemon], f"stop {daemon}", check=False)
    time.sleep(1)
    _run(["slurmctld"], "start slurmctld")
    _run(["slurmd"], "start slurmd")
    for _ in range(60):
        state = node_state()
        if state in ("idle", "mixed", "allocated"):
            echo(f"local Slurm cluster is up: node {host}, {cpus} CPUs, {memory_mb} MB, partition {PARTITION}")
            return state
        if state and ("down" in state or "drain" in state):
            _run(["scontrol", "update", f"NodeName={host}", "State=RESUME"], "resume node", check=False)
        time.sleep(1)
    raise LocalSlurmError(f"node {host} did not become idle (last state: {state}); see {LOG_DIR}/slurmd.log "
                          f"and {LOG_DIR}/slurmctld.log")


def main() -> int:
    """``python -m orchestrator.local_slurm``"""
    try:
        ensure_cluster()
    except LocalSlurmError as exc:
        print(f"mateval: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
