"""The local backend: the runner in a subprocess of this Python environment (no Docker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from orchestrator.backends.base import Backend, RunOutcome
from runner.run import RunSpec

#: seconds between SIGTERM (the runner then writes its result) and SIGKILL at a timeout
GRACE_S = 15.0


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


class LocalBackend(Backend):
    """``python -m runner <run_dir>`` in its own process group, with a timeout.

    At the timeout the whole process group gets SIGTERM (the runner turns it into a failed result
    with its log), then SIGKILL after :data:`GRACE_S` seconds. An interrupt of the orchestrator
    (Ctrl-C) stops the group the same way before it propagates.
    """

    name = "local"

    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        start = time.monotonic()
        with open(log_path, "a", buffering=1) as log:
            process = subprocess.Popen([sys.executable, "-m", "runner", str(run_dir)], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                                       start_new_session=True)

            def pump() -> None:
                for line in process.stdout:
                    log.write(line)
                    if echo is not None:
                        echo(line.rstrip("\n"))

            reader = threading.Thread(target=pump, name="runner-log", daemon=True)
            reader.start()
            timed_out = False
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.write(f"mateval: timeout after {timeout_s:g} s: sending SIGTERM to the run\n")
                _kill_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=GRACE_S)
                except subprocess.TimeoutExpired:
                    log.write(f"mateval: still running {GRACE_S:g} s after SIGTERM: sending SIGKILL\n")
                    _kill_group(process, signal.SIGKILL)
                    process.wait()
            except BaseException:
                _kill_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=GRACE_S)
                except subprocess.TimeoutExpired:
                    _kill_group(process, signal.SIGKILL)
                raise
            finally:
                reader.join(timeout=10)
        return RunOutcome(exit_code=process.returncode, timed_out=timed_out, wall_s=time.monotonic() - start)
