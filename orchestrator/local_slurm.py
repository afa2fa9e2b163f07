"""``make local-slurm``: a real one-node Slurm cluster on this machine (for tests and first tries).

Installs Debian's ``slurm-wlm``, ``slurmdbd``, ``munge`` and ``mariadb-server`` when missing,
creates a munge key, writes a ``slurm.conf`` naming this host with the CPUs and memory it has, and
starts ``munged``, MariaDB, ``slurmdbd``, ``slurmctld`` and ``slurmd``. Idempotent: a running
cluster whose node answers, whose accounting (``sacct``) works and whose ``slurm.conf`` is the one
it would write is left alone; otherwise the daemons are restarted. Needs root (it
writes ``/etc/slurm`` and starts daemons).

Accounting is part of the cluster because job states after the end of a job (``TIMEOUT``,
``CANCELLED``, ``NODE_FAIL``...) come from ``sacct``, which is what submitit (and so the Slurm
backend) reads; without ``slurmdbd`` every finished job would look ``UNKNOWN``.
"""

from __future__ import annotations

import os
import secrets
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
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
DB_NAME = "slurm_acct_db"
DB_USER = "slurm"


class LocalSlurmError(RuntimeError):
    """The local cluster could not be set up; the message names the step and shows its output."""


def _run(command: list[str], step: str, check: bool = True, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    process = subprocess.run(command, capture_output=True, text=True, env=env)
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
SlurmctldLogFile={LOG_DIR}/slurmctld.log
SlurmdLogFile={LOG_DIR}/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
OverTimeLimit=0
DefMemPerCPU={max(256, memory_mb // max(cpus, 1))}
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def slurmdbd_conf(password: str) -> str:
    """``slurmdbd.conf``: accounting in the local MariaDB database :data:`DB_NAME`."""
    return f"""# Written by mateval (orchestrator/local_slurm.py).
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile={LOG_DIR}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser={DB_USER}
StoragePass={password}
StorageLoc={DB_NAME}
"""


def accounting_works() -> bool:
    """``sacct`` answers (slurmdbd reachable and the cluster registered)."""
    if shutil.which("sacct") is None:
        return False
    process = subprocess.run(["sacct", "-n", "-X", "-o", "JobID", "-S", "now"], capture_output=True, text=True,
                             timeout=20)
    return process.returncode == 0


def _wait(predicate, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise LocalSlurmError(f"{what} did not come up within {seconds:g} s" + (f"; see {log}" if log else ""))


def _start_database(echo) -> str:
    """Start MariaDB when needed and create the accounting database and user; returns the password."""
    password_file = CONF_DIR / ".slurmdbd-db-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_hex(16))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()

    def answers() -> bool:
        return subprocess.run(["mariadb", "-e", "SELECT 1"], capture_output=True, timeout=20).returncode == 0

    if not answers():
        echo("starting MariaDB (accounting database)")
        run_dir = Path("/run/mysqld")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "mysql", "mysql")
        subprocess.Popen(["mysqld_safe", "--user=mysql"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        _wait(answers, 60, "MariaDB", Path("/var/log/mysql/error.log"))
    _run(["mariadb", "-e", f"CREATE DATABASE IF NOT EXISTS {DB_NAME}; "
          f"CREATE USER IF NOT EXISTS '{DB_USER}'@'localhost' IDENTIFIED BY '{password}'; "
          f"ALTER USER '{DB_USER}'@'localhost' IDENTIFIED BY '{password}'; "
          f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost'; FLUSH PRIVILEGES;"], "create the accounting database")
    return password


def _start_accounting(echo) -> None:
    """MariaDB, ``slurmdbd`` and the cluster's registration in it."""
    password = _start_database(echo)
    conf = CONF_DIR / "slurmdbd.conf"
    conf.write_text(slurmdbd_conf(password))
    conf.chmod(0o600)
    _run(["pkill", "-x", "slurmdbd"], "stop slurmdbd", check=False)
    time.sleep(0.5)
    _run(["slurmdbd"], "start slurmdbd")

    listed: list[str] = []

    def registered() -> bool:
        process = subprocess.run(["sacctmgr", "-n", "-P", "show", "cluster", "format=Cluster"], capture_output=True,
                                 text=True, timeout=20)
        listed[:] = process.stdout.split()
        return process.returncode == 0

    _wait(registered, 60, "slurmdbd", LOG_DIR / "slurmdbd.log")
    if "mateval" not in listed:
        _run(["sacctmgr", "-i", "add", "cluster", "mateval"], "register the cluster in slurmdbd")


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
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.9)
    conf = slurm_conf(host, cpus, memory_mb)
    current = (CONF_DIR / "slurm.conf").read_text() if (CONF_DIR / "slurm.conf").is_file() else None
    state = node_state()
    if state in ("idle", "mixed", "allocated") and accounting_works() and current == conf:
        echo(f"local Slurm cluster is up (node {state})")
        return state
    if os.geteuid() != 0:
        raise LocalSlurmError("make local-slurm needs root (it writes /etc/slurm and starts daemons)")
    if not all(shutil.which(tool) for tool in ("slurmctld", "slurmdbd", "munged", "mysqld_safe")):
        echo(f"installing {', '.join(PACKAGES)}")
        _run(["apt-get", "update", "-qq"], "apt-get update")
        _run(["apt-get", "install", "-y", "-qq", *PACKAGES], "apt-get install",
             env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
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
    (CONF_DIR / "slurm.conf").write_text(conf)
    # slurmd initializes a cgroup plugin even with proctrack/linuxproc and task/none; 22.05 has no
    # "disabled" plugin, so let it detect the host's cgroup version (nothing is constrained).
    (CONF_DIR / "cgroup.conf").write_text("CgroupPlugin=autodetect\nCgroupAutomount=yes\n")
    if _run(["pgrep", "-x", "munged"], "pgrep munged", check=False).returncode != 0:
        _run(["runuser", "-u", "munge", "--", "munged"], "start munged")
    _start_accounting(echo)
    for daemon in ("slurmctld", "slurmd"):
        _run(["pkill", "-x", daemon], f"stop {daemon}", check=False)
    time.sleep(1)
    _run(["slurmctld"], "start slurmctld")
    _run(["slurmd"], "start slurmd")
    for _ in range(60):
        state = node_state()
        if state in ("idle", "mixed", "allocated"):
            _wait(accounting_works, 60, "accounting (sacct)", LOG_DIR / "slurmctld.log")
            echo(f"local Slurm cluster is up: node {host}, {cpus} CPUs, {memory_mb} MB, partition {PARTITION}, "
                 "accounting in slurmdbd")
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
