"""The backend interface: start the runner on a prepared run directory and report how it ended."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runner.run import RunSpec


@dataclass
class RunOutcome:
    """How the runner process (or container, or job) ended.

    Attributes:
        exit_code: the process exit status; negative ``-N`` when killed by signal ``N``; ``None``
            when it never started.
        timed_out: the backend stopped it at the run's timeout.
        wall_s: seconds from start to end as the backend saw them.
        message: backend-specific explanation (e.g. why it could not start).
        oom_killed: the kernel's out-of-memory killer ended it (Docker reports this).
        details: recorded in the result's ``container`` block (image id, Docker version, ...).
    """

    exit_code: int | None
    timed_out: bool
    wall_s: float
    message: str = ""
    oom_killed: bool = False
    details: dict = field(default_factory=dict)


class Backend(abc.ABC):
    """A place where runs happen. Implementations: :class:`orchestrator.backends.local.LocalBackend`."""

    name: str = "abstract"

    @abc.abstractmethod
    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        """Run the runner on ``run_dir`` (which holds ``run_spec.json``) with a wall-clock limit,
        writing its output to ``log_path`` and, line by line, to ``echo``."""
