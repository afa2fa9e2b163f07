"""The local backend: the runner in a subprocess, in the model's own environment (no Docker).

The model stage runs with the interpreter of the model's environment (:mod:`orchestrator.envs`:
torch, the runner's pinned dependencies and the model's lock, exactly what its image gets), with the
repository on ``PYTHONPATH`` for the runner and the metrics. The environments of a suite's models
are created in :meth:`LocalBackend.setup`, before any run starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from typing import Sequence

from orchestrator import envs
from orchestrator.backends.base import Backend, RunOutcome, keep_log
from runner.wire import RunSpec

#: seconds between SIGTERM (the runner then writes its result) and SIGKILL at a timeout
GRACE_S = 15.0


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


class LocalBackend(Backend):
    """``<model env>/bin/python -m runner <run_dir>`` in its own process group, with a timeout.

    At the timeout the whole process group gets SIGTERM (the runner turns it into a failed result
    with its log), then SIGKILL after :data:`GRACE_S` seconds. An interrupt of the orchestrator
    (Ctrl-C) stops the group the same way before it propagates.
    """

    name = "local"

    def setup(self, model_folders: Sequence[Path], say: Callable[[str], None]) -> None:
        """Create (or find) the environment of every model (see :mod:`orchestrator.envs`).

        Raises:
            orchestrator.envs.ModelEnvError: an environment cannot be created.
        """
        for folder in dict.fromkeys(Path(f) for f in model_folders):
            env = envs.ensure(folder, say)
            say(f"{folder.name}: environment {env.name} ({env.path})")

    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        start = time.monotonic()
        with open(log_path, "a+", buffering=1) as log:  # "+": keep_log reads it back
            def say(line: str) -> None:
                log.write(f"mateval: {line}\n")
                if echo is not None:
                    echo(f"mateval: {line}")

            try:
                model_env = envs.ensure(Path(spec.model_dir), say)
            except envs.ModelEnvError as exc:
                say(f"cannot create the model environment: {exc}")
                return RunOutcome(exit_code=None, timed_out=False, wall_s=time.monotonic() - start,
                                  message=f"model environment: {str(exc)[:2000]}")
            say(f"model stage in environment {model_env.name} ({model_env.python})")
            env = dict(os.environ, PYTHONUNBUFFERED="1", **model_env.variables())
            process = subprocess.Popen([str(model_env.python), "-m", "runner", str(run_dir)], stdout=subprocess.PIPE,
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
                keep_log(log, log_path)
        return RunOutcome(exit_code=process.returncode, timed_out=timed_out, wall_s=time.monotonic() - start)
