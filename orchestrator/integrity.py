"""Integrity of a published run: what was recorded can be checked later.

When a run is finalized, :func:`seal` records the sha256 of every file of its directory in
``result.json`` (``integrity.files``, paths relative to the run directory; symbolic links are not
followed and not recorded) and then the sha256 of ``result.json`` itself in ``result.sha256``
(``sha256sum`` format). :func:`problems` checks both: a hand-edited ``result.json``, a changed,
missing or replaced file, or an ``ok`` status without metrics is named. The reader
(:mod:`orchestrator.reader`) treats a run with problems as unreadable, so the summary, the report
and ``--resume`` never use it; ``mateval check-result`` also recomputes the metrics.

Runs published before sealing existed (no ``result.sha256``) are read as they are.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from runner.result import atomic_write_text, read_result, write_result
from runner.wire import RESULT_FILE

SEAL_FILE = "result.sha256"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a regular file's bytes, opened without following a symbolic link.

    Raises:
        OSError: the file cannot be opened (``ELOOP`` for a symbolic link) or is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(run_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``run_dir`` except ``result.json``
    and the seal; symbolic links (files or folders) are skipped, never followed."""
    run_dir = Path(run_dir)
    digests = {}
    for folder, dirs, files in os.walk(run_dir, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            relative = path.relative_to(run_dir).as_posix()
            if relative in (RESULT_FILE, SEAL_FILE) or path.is_symlink() or not path.is_file():
                continue
            digests[relative] = file_sha256(path)
    return digests


def seal(run_dir: Path) -> dict[str, Any]:
    """Record the files' sha256 in ``run_dir/result.json`` and write ``run_dir/result.sha256``.
    Returns the result written.

    Raises:
        runner.result.ResultError: ``result.json`` is unreadable or invalid.
        OSError: a file cannot be read or written.
    """
    run_dir = Path(run_dir)
    result = read_result(run_dir / RESULT_FILE)
    result["integrity"] = {"algorithm": "sha256", "files": file_digests(run_dir), "seal_file": SEAL_FILE}
    write_result(run_dir, result)
    atomic_write_text(run_dir / SEAL_FILE, f"{file_sha256(run_dir / RESULT_FILE)}  {RESULT_FILE}\n")
    return result


def problems(run_dir: Path, result: Mapping[str, Any]) -> list[str]:
    """What does not match what was recorded when ``run_dir`` was sealed (empty: all matches).

    Checks the seal of ``result.json``, each file of ``integrity.files`` (present, a regular file,
    same sha256), and that an ``ok`` result has metrics. Never raises.
    """
    run_dir = Path(run_dir)
    found = []
    seal_path = run_dir / SEAL_FILE
    if seal_path.is_symlink() or (seal_path.exists() and not seal_path.is_file()):
        found.append(f"{seal_path}: not a regular file")
    elif seal_path.is_file():
        try:
            expected = seal_path.read_text().split()[0].lower()
            actual = file_sha256(run_dir / RESULT_FILE)
            if expected != actual:
                found.append(f"{run_dir / RESULT_FILE}: changed after the run was recorded (sha256 {actual}, "
                             f"sealed {expected})")
        except (OSError, IndexError) as exc:
            found.append(f"{seal_path}: cannot be checked: {exc}")
    recorded = ((result.get("integrity") or {}).get("files") or {}) if isinstance(result, Mapping) else {}
    for relative, expected in sorted(recorded.items()):
        path = run_dir / relative
        try:
            actual = file_sha256(path)
        except OSError as exc:
            found.append(f"{path}: recorded at the run's end but now missing or not a regular file ({exc})")
            continue
        if actual != expected:
            found.append(f"{path}: changed after the run was recorded (sha256 {actual}, recorded {expected})")
    if isinstance(result, Mapping) and result.get("status") == "ok" and not result.get("metrics"):
        found.append(f"{run_dir / RESULT_FILE}: status ok without metrics")
    return found
