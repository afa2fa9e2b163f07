"""The backend interface: start the runner on a prepared run directory and report how it ended."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from runner import safefiles
from runner.wire import LOG_FILE, RunSpec


@dataclass
class RunOutcome:
    """How the runner process (or container, or job) ended.

    Attributes:
        exit_code: the process exit status; negative ``-N`` when killed by signal ``N``; ``None``
            when it never started.
        timed_out: the backend stopped it at the run's timeout.
        wall_s: seconds from start to end as the backend saw them.
        message: backend-specific explanation (e.g. why it could not start).
        oom_killed: the kernel's out-of-memory killer ended it (Docker reports this; Slurm's
            ``OUT_OF_MEMORY`` state too).
        cancelled: it was cancelled (``scancel``, or the orchestrator was interrupted).
        error_type: the result's error type when no result was written and the exit status says
            nothing (e.g. ``NodeFail`` from Slurm's ``NODE_FAIL``).
        details: recorded in the result's ``container`` block (image id, Docker version, ...).
        slurm: recorded in the result's ``slurm`` block (job id, final state, node, ...).
    """

    exit_code: int | None
    timed_out: bool
    wall_s: float
    message: str = ""
    oom_killed: bool = False
    cancelled: bool = False
    error_type: str | None = None
    details: dict = field(default_factory=dict)
    slurm: dict = field(default_factory=dict)


def keep_log(log, log_path: Path) -> None:
    """Put the run's real log back at ``log_path`` if the model replaced the file the backend
    writes (``log``, opened ``"a+"`` before the model started) by something else (a symbolic link
    to a host file, a FIFO, another file): the replacement is moved to ``run.log.refused``, never
    read nor followed (:func:`orchestrator.results.finalize` names it in the run's record), and
    what the backend wrote is copied into a new ``run.log``. Never raises."""
    import os
    import shutil

    try:
        log.flush()
        ours = os.fstat(log.fileno())
        try:
            there = os.lstat(log_path)
            if (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino):
                return
            os.replace(log_path, Path(log_path).with_name(f"{LOG_FILE}.refused"))
        except FileNotFoundError:
            pass
        log.seek(0)
        with safefiles.open_append(log_path) as fresh:
            shutil.copyfileobj(log, fresh)
            fresh.write("mateval: run.log was replaced during the model stage; the replacement is kept as "
                        "run.log.refused (not read) and this log restored\n")
    except (OSError, ValueError):
        pass


class Backend(abc.ABC):
    """A place where runs happen. Implementations: :class:`orchestrator.backends.local.LocalBackend`."""

    name: str = "abstract"

    @abc.abstractmethod
    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        """Run the runner on ``run_dir`` (which holds ``run_spec.json``) with a wall-clock limit,
        writing its output to ``log_path`` and, line by line, to ``echo``."""

    def setup(self, model_folders: Sequence[Path], say: Callable[[str], None]) -> None:
        """Get ready to run these models before any run starts (e.g. create the local backend's
        model environments, whose creation must not eat into a run's time limit). Default: nothing.

        Raises:
            RuntimeError: a model cannot be made ready (the message says which and why).
        """

    def clean_orphans(self, results_root: Path, live_run_ids: set[str]) -> list[str]:
        """Remove what runs of ``results_root`` left behind on this backend when their orchestrator
        died (e.g. a container), except runs in ``live_run_ids`` (claimed by a live orchestrator);
        one line per thing removed. Default: nothing (a local runner dies with its orchestrator)."""
        return []

    def time_limit_s(self, timeout_s: float) -> float:
        """The wall-clock limit this backend will enforce for a run asked to stop at ``timeout_s``
        (a scheduler may round it, e.g. Slurm to whole minutes); recorded as the spec's ``timeout_s``."""
        return timeout_s

    def run_all(self, runs: Sequence[tuple[RunSpec, Path]], finished: Callable[[RunSpec, Path, RunOutcome], Any],
                start: Callable[[int, RunSpec], Callable[[str], None] | None] | None = None) -> None:
        """Run every ``(spec, staging directory)`` and call ``finished`` as each one ends.

        ``finished`` finalizes and publishes a run and returns its result (a dict). The default
        runs them one after the other with :meth:`run`; ``start(index, spec)`` is
        called before each and returns its log echo. An ``OSError`` of one run (a full disk while its
        log is written) becomes that run's failed outcome: the next run still starts. A scheduler
        backend (Slurm) overrides this to submit them all at once.

        Raises:
            KeyboardInterrupt: after the interrupted run was stopped and passed to ``finished``
                (with ``cancelled``); runs not started are left alone for the caller to clean up.
        """
        for index, (spec, staging) in enumerate(runs, start=1):
            echo = start(index, spec) if start else None
            started = time.monotonic()
            try:
                outcome = self.run(spec, staging, spec.timeout_s, staging / LOG_FILE, echo)
            except OSError as exc:  # e.g. a full disk while the run's log is written: this run only
                outcome = RunOutcome(exit_code=None, timed_out=False, wall_s=time.monotonic() - started,
                                     message=f"the run could not be carried out: {exc}")
            except KeyboardInterrupt:
                try:
                    with safefiles.open_append(staging / LOG_FILE) as log:  # never through a planted link
                        log.write("mateval: the orchestrator was interrupted; the run was stopped\n")
                except OSError:
                    pass
                finished(spec, staging, RunOutcome(exit_code=None, timed_out=False, wall_s=0.0, cancelled=True,
                                                   message="the orchestrator was interrupted; the run was stopped"))
                raise
            finished(spec, staging, outcome)
