"""The local backend: the runner in a subprocess, in the model's own environment (no Docker).

The model stage runs with the interpreter of the model's environment (:mod:`orchestrator.envs`:
torch, the runner's pinned dependencies and the model's lock, exactly what its image gets), with the
repository on ``PYTHONPATH`` for the runner and the metrics. The environments of a suite's models
are created in :meth:`LocalBackend.setup`, before any run starts.

No orphans: the runner is started in its own session (its own process group, so that a terminal's
Ctrl-C reaches only the orchestrator, which then stops the group) and with the Linux parent-death
signal set to SIGKILL (:func:`die_with_parent`), so that it dies with the orchestrator whatever
kills the orchestrator, ``kill -9`` included. The kernel sends that signal when the *thread* that
started the runner ends, not only the process: :meth:`LocalBackend.run` must be called from a
thread that outlives the run (the CLI calls it from its main thread). The runner's own children
(data loader workers, ...) are not covered by it; they are in the runner's process group, which
:meth:`LocalBackend.run` stops as a whole at a timeout or an interrupt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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


#: ``PR_SET_PDEATHSIG`` of ``<linux/prctl.h>``
PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's ``prctl``, looked up once in the parent (a child between fork and exec must not load
    libraries), or ``None`` off Linux."""
    if not os.uname().sysname == "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent(parent_pid: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child receive SIGKILL when its
    parent (the thread of the orchestrator that started it) ends, however it ends (Linux
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; a no-op elsewhere). If the parent already died between
    the fork and this call, the child kills itself at once.

    Args:
        parent_pid: the orchestrator's pid (default: this process's, taken now, in the parent).
    """
    parent = os.getpid() if parent_pid is None else parent_pid
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent is already gone: the signal would never come
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def stop_group(process: subprocess.Popen, grace_s: float, log=None) -> None:
    """Stop the runner's process group: SIGTERM (the runner writes its result), then SIGKILL to
    the whole group when it is still running after ``grace_s`` seconds, or at once when the wait
    is interrupted (a second Ctrl-C, SIGTERM), before that interruption propagates.

    Args:
        process: the runner, leader of its own process group (``start_new_session=True``).
        grace_s: seconds between SIGTERM and SIGKILL.
        log: a text file the steps are written to, or ``None``.
    """
    def note(line: str) -> None:
        if log is not None:
            try:
                log.write(f"mateval: {line}\n")
            except (OSError, ValueError):
                pass

    try:
        _kill_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            note(f"still running {grace_s:g} s after SIGTERM: sending SIGKILL")
            _kill_group(process, signal.SIGKILL)
            process.wait()
        else:
            _kill_group(process, signal.SIGKILL)  # the runner ended: its children go with it
    except BaseException:
        note("interrupted again while stopping the run: sending SIGKILL to its process group")
        _kill_group(process, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except BaseException:  # noqa: BLE001 - SIGKILL was sent; do not hold the interrupt back
            pass
        raise


class LocalBackend(Backend):
    """``<model env>/bin/python -m runner <run_dir>`` in its own process group, with a timeout.

    At the timeout the whole process group gets SIGTERM (the runner turns it into a failed result
    with its log), then SIGKILL after :data:`GRACE_S` seconds. An interrupt of the orchestrator
    (Ctrl-C) stops the group the same way before it propagates; a second interrupt during the
    grace period sends SIGKILL to the group at once (:func:`stop_group`). The runner dies with the
    orchestrator (:func:`die_with_parent`; see the module docstring).
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
                                       start_new_session=True, preexec_fn=die_with_parent())

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
                stop_group(process, GRACE_S, log)
            except BaseException:
                stop_group(process, GRACE_S, log)
                raise
            finally:
                reader.join(timeout=10)
                keep_log(log, log_path)
        return RunOutcome(exit_code=process.returncode, timed_out=timed_out, wall_s=time.monotonic() - start)
