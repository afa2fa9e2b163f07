"""Who owns a staging entry, and which ones are stale.

A run is prepared in ``<results>/.staging/<run_id>/`` and published from there when it ends
(:mod:`orchestrator.results`). An orchestrator that dies without cleaning up (``kill -9``, a
power cut) leaves its entries behind, possibly with a result nobody will publish. To tell them
from the entries of an orchestrator still running (another ``mateval bench`` on the same results
directory), every orchestrator holds a :class:`StagingOwner`: an exclusive ``flock`` on
``<results>/.staging/.owner-<pid>-<random>.lock`` for as long as its process lives (the kernel
releases it however the process ends), the file listing the run ids it claimed, one a line, each
written before its staging directory is created.

An entry is *stale* when no locked owner file claims it (:func:`stale_entries`; also an entry
made before owner files existed). :func:`clean_stale` moves stale entries to
``<results>/.staging-stale/<run_id>`` (kept for inspection, never read as results) and deletes
owner files no process holds any more. ``mateval bench`` (with or without ``--resume``) does this
before it prepares its own runs and prints one line per entry moved.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import weakref
from dataclasses import dataclass
from pathlib import Path

from runner.wire import RESULT_FILE

STAGING = ".staging"
STALE = ".staging-stale"
OWNER_PREFIX = ".owner-"
OWNER_SUFFIX = ".lock"


def _release(path: str, fd: int) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


class StagingOwner:
    """This process's claim on the staging entries it prepares (see the module docstring).

    The lock is held until :meth:`release`, the object's collection or the process's end.

    Args:
        results_root: the results directory (``.staging`` is created in it).

    Raises:
        OSError: the owner file cannot be created or locked.
    """

    def __init__(self, results_root: Path):
        staging = Path(results_root) / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        temporary = staging / f".claiming-{token}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # locked before it gets the name others look for
        self.path = staging / f"{OWNER_PREFIX}{token}{OWNER_SUFFIX}"
        os.rename(temporary, self.path)
        self._fd = fd
        self._finalizer = weakref.finalize(self, _release, str(self.path), fd)

    def claim(self, run_id: str) -> None:
        """Record ``run_id`` as this process's; call it before creating ``.staging/<run_id>``."""
        os.write(self._fd, f"{run_id}\n".encode())

    def release(self) -> None:
        """Delete the owner file and drop the lock (idempotent)."""
        self._finalizer()


def _held(path: Path) -> tuple[bool, set[str]]:
    """``(locked by a live process, run ids listed)`` of an owner file; an unlocked one is deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False, set()
    try:
        with os.fdopen(os.dup(fd), "r", errors="replace") as handle:
            claimed = {line.strip() for line in handle if line.strip()}
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True, claimed
            raise
        try:
            os.unlink(path)  # its process is gone; we hold the lock, so nobody reuses the file
        except FileNotFoundError:
            pass
        return False, claimed
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StaleEntry:
    """A staging entry no live orchestrator owns.

    Attributes:
        path: ``<results>/.staging/<run_id>``.
        status: the ``status`` of its ``result.json`` as written (``None``: none, or unreadable).
    """

    path: Path
    status: str | None


def _status(directory: Path) -> str | None:
    import json

    path = directory / RESULT_FILE
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 16 * 2**20:
            return None
        status = json.loads(path.read_text(errors="replace")).get("status")
        return status if isinstance(status, str) else None
    except (OSError, ValueError, AttributeError, RecursionError):
        return None


def live_claims(results_root: Path) -> set[str]:
    """The run ids that live orchestrators claimed in ``<results_root>/.staging`` (owner files of
    ended processes are deleted on the way)."""
    staging = Path(results_root) / STAGING
    live: set[str] = set()
    if not staging.is_dir():
        return live
    owners = [*staging.glob(f"{OWNER_PREFIX}*{OWNER_SUFFIX}"), *staging.glob(".claiming-*")]
    for owner in owners:  # a ".claiming-" file whose process died before naming it is deleted too
        held, claimed = _held(owner)
        if held:
            live |= claimed
    return live


def stale_entries(results_root: Path) -> list[StaleEntry]:
    """The entries of ``<results_root>/.staging`` that no live orchestrator owns, by name.

    Owner files of ended processes are deleted on the way.
    """
    staging = Path(results_root) / STAGING
    if not staging.is_dir():
        return []
    entries = sorted(p for p in staging.iterdir() if not p.name.startswith(".") and p.is_dir()
                     and not p.is_symlink())  # listed before the owners: a claim precedes its directory
    live = live_claims(results_root)
    return [StaleEntry(entry, _status(entry)) for entry in entries if entry.name not in live]


def clean_stale(results_root: Path) -> list[str]:
    """Move every stale staging entry (:func:`stale_entries`) to ``<results_root>/.staging-stale/``
    (a numbered name when taken) and return one line per entry saying what was moved where.

    Raises:
        OSError: an entry cannot be moved.
    """
    root = Path(results_root)
    lines = []
    for entry in stale_entries(root):
        target_dir = root / STALE
        target_dir.mkdir(exist_ok=True)
        target, n = target_dir / entry.path.name, 1
        while target.exists():
            target, n = target_dir / f"{entry.path.name}.{n}", n + 1
        try:
            os.rename(entry.path, target)
        except FileNotFoundError:  # published or removed meanwhile by its owner
            continue
        what = f"result.json with status {entry.status}" if entry.status else "no result.json"
        lines.append(f"stale staging entry {STAGING}/{entry.path.name} ({what}; the orchestrator that "
                     f"prepared it is gone): moved to {target.relative_to(root)}")
    return lines
