"""Shared fixtures: paths to the real data, the test-fixture model folder, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_MODELS = REPO_ROOT / "tests" / "fixtures" / "models"
IN_CI = os.environ.get("CI") == "true"


def shared_data_dir() -> Path | None:
    """``MATEVAL_DATA`` or ``../shared/data`` beside the checkout, if it exists."""
    for candidate in (os.environ.get("MATEVAL_DATA"), REPO_ROOT.parent / "shared" / "data"):
        if candidate and Path(candidate, "perov_5", "test.csv").is_file():
            return Path(candidate)
    return None


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI=true, where the test must run: fail."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI but unavailable: {reason}")
        pytest.skip(reason)


@pytest.fixture
def shared_data() -> Path:
    """The real shared datasets directory (skips outside CI when absent)."""
    path = shared_data_dir()
    require(path is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    return path


def run_mateval(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800):
    """Run the ``mateval`` command line in a subprocess; returns the CompletedProcess (text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A running one-node Slurm cluster with accounting (``make local-slurm``); its node state.

    Started here when this user may (root); skips without Slurm, fails under CI=true."""
    import shutil

    from orchestrator.local_slurm import LocalSlurmError, ensure_cluster, node_state

    require(os.geteuid() == 0 or node_state() is not None, "needs root to start a local Slurm cluster")
    require(shutil.which("apt-get") is not None or shutil.which("slurmctld") is not None, "no Slurm and no apt-get")
    try:
        return ensure_cluster(lambda line: None)
    except LocalSlurmError as exc:
        require(False, str(exc))
