"""Reading (and appending to) files of a run directory without trusting what the model left there.

A run directory is writable by the model stage, so any file in it may have been replaced by a
symbolic link to a host file, a FIFO that blocks a reader, a directory, a file of many gigabytes or
a JSON document nested deeply enough to exhaust the parser's recursion. Every host-side reader of a
run directory (the scoring stage, :func:`orchestrator.results.finalize`, :mod:`orchestrator.reader`,
the report) goes through this module, which

- opens every path component below the run directory with ``O_NOFOLLOW`` (a symbolic link is
  refused, wherever it is in the path) and the file itself with ``O_NONBLOCK`` (a FIFO never
  blocks the open);
- accepts only regular files (``fstat`` of the opened descriptor, so nothing can be swapped in
  between the check and the read);
- bounds what it reads: whole files up to a byte cap (:func:`read_bytes`), log tails from the end
  (:func:`read_tail`), JSON up to a byte cap and a nesting depth (:func:`load_json`).

Anything refused raises :class:`RefusedFile` (an :class:`OSError`, so callers that already handle
unreadable files handle it too) whose message names the file and the reason, e.g.
``run.log is a symbolic link; not read``.

Only the standard library is imported: the model stage (``runner/inputs.py``) uses it too, in the
model's own environment.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO, Iterator

__all__ = ["RefusedFile", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_LOG_TAIL_BYTES", "MAX_CSV_BYTES",
           "open_file", "read_bytes", "read_text", "read_tail", "load_json", "json_depth", "open_append",
           "describe"]

#: Largest JSON document read from a run directory (``result.json``, ``task.json``), in bytes.
MAX_JSON_BYTES = 64 << 20
#: Deepest nesting of arrays and objects accepted in a JSON document (``result.json`` needs ~6).
MAX_JSON_DEPTH = 64
#: Bytes read from the end of a log file for a log tail.
MAX_LOG_TAIL_BYTES = 256 << 10
#: Largest CSV a reader of the report loads (``timeseries.csv``, ``predictions.csv``, ...), in bytes.
MAX_CSV_BYTES = 256 << 20

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class RefusedFile(OSError):
    """A file of a run directory that is not read: a symbolic link (the file or a directory on its
    path inside the run directory), not a regular file, larger than the cap, nested too deeply.
    ``str()`` names the file and the reason; ``name`` is the path relative to the run directory
    (or the file name) and ``reason`` the reason alone (``"is a symbolic link"``)."""

    def __init__(self, path: Path | str, reason: str, name: str | None = None):
        self.path_ = str(path)
        self.reason = reason
        self.name = name or Path(path).name
        super().__init__(f"{self.name} {reason}; not read ({self.path_})")

    def __str__(self) -> str:  # OSError's str() would prepend [Errno ...]
        return self.args[0]


def describe(exc: BaseException) -> str:
    """A one-line account of a read failure: a :class:`RefusedFile`'s own message (``"run.log is a
    symbolic link; not read (...)"``), else ``"<Type>: <message>"``."""
    return str(exc) if isinstance(exc, RefusedFile) else f"{type(exc).__name__}: {exc}"


def _parts(path: Path, root: Path | None) -> tuple[Path, list[str]]:
    """(directory opened as trusted, components below it) for ``path``: below ``root`` when
    ``path`` lies inside it, else below ``path``'s parent."""
    path = Path(path)
    if root is not None:
        try:
            relative = path.relative_to(root)
        except ValueError:
            relative = None
        if relative is not None and relative.parts and ".." not in relative.parts:
            return Path(root), list(relative.parts)
    return path.parent, [path.name]


def _open_fd(path: Path, root: Path | None, flags: int, mode: int = 0o644) -> int:
    """A descriptor of ``path`` opened with ``flags``, no symbolic link followed below the trusted
    directory (see :func:`_parts`).

    Raises:
        RefusedFile: a component is a symbolic link, or a directory component is not a directory.
        FileNotFoundError / OSError: as ``os.open`` raises them otherwise.
    """
    base, parts = _parts(Path(path), root)
    shown = "/".join(parts)
    dir_fd = os.open(base, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for index, part in enumerate(parts[:-1]):
            try:
                next_fd = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(parts[:index + 1])
                    is_link = os.path.islink(os.path.join(base, where))
                    raise RefusedFile(path, f"has a {'symbolic link' if is_link else 'non-directory'} "
                                            f"({where}) on its path", shown) from None
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        try:
            return os.open(parts[-1], flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno in (errno.EEXIST, errno.EISDIR, errno.ENXIO)
                                            and os.path.islink(path)):
                raise RefusedFile(path, "is a symbolic link", shown) from None
            if exc.errno == errno.EISDIR:
                raise RefusedFile(path, "is a directory, not a regular file", shown) from None
            if exc.errno == errno.ENXIO:
                raise RefusedFile(path, "is not a regular file", shown) from None
            raise
    finally:
        os.close(dir_fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def open_file(path: Path | str, root: Path | str | None = None) -> BinaryIO:
    """Open a regular file of a run directory for reading in binary mode, following no symbolic
    link at or below ``root`` (the run directory; default: ``path``'s parent).

    Raises:
        RefusedFile: a symbolic link (the file or a directory on its path below ``root``), or not a
            regular file (directory, FIFO, socket, device).
        FileNotFoundError / OSError: missing or unreadable.
    """
    fd = _open_fd(Path(path), Path(root) if root is not None else None, os.O_RDONLY | _NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(path, f"is {_kind(info.st_mode)}, not a regular file",
                              "/".join(_parts(Path(path), Path(root) if root else None)[1]))
        if _NONBLOCK:  # regular files ignore O_NONBLOCK, but leave the descriptor as a plain one
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path | str, max_bytes: int, root: Path | str | None = None) -> bytes:
    """The content of a regular file of a run directory (see :func:`open_file`), at most
    ``max_bytes`` bytes.

    Raises:
        RefusedFile: as :func:`open_file`, or the file is larger than ``max_bytes``.
        FileNotFoundError / OSError: missing or unreadable.
    """
    with open_file(path, root) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RefusedFile(path, f"is larger than the {max_bytes} bytes allowed", Path(path).name)
    return data


def read_text(path: Path | str, max_bytes: int, root: Path | str | None = None, errors: str = "strict") -> str:
    """:func:`read_bytes` decoded as UTF-8 (``errors`` as for :meth:`bytes.decode`).

    Raises:
        RefusedFile, OSError: as :func:`read_bytes`; UnicodeDecodeError with ``errors="strict"``.
    """
    return read_bytes(path, max_bytes, root).decode("utf-8", errors)


def read_tail(path: Path | str, max_bytes: int = MAX_LOG_TAIL_BYTES, root: Path | str | None = None) -> str:
    """The last ``max_bytes`` bytes of a regular file (a log), decoded as UTF-8 with replacement;
    a first line cut by the byte cap is dropped.

    Raises:
        RefusedFile: as :func:`open_file`.
        FileNotFoundError / OSError: missing or unreadable.
    """
    with open_file(path, root) as handle:
        size = os.fstat(handle.fileno()).st_size
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read(max_bytes)
    text = data.decode("utf-8", "replace")
    if start > 0 and "\n" in text:
        text = text.split("\n", 1)[1]
    return text


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (``0`` for a scalar), counted
    without parsing (strings skipped), so it never recurses."""
    if text.count("[") + text.count("{") == 0:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(path: Path | str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH,
              root: Path | str | None = None) -> Any:
    """Parse a JSON file of a run directory (see :func:`open_file`) of at most ``max_bytes`` bytes
    and ``max_depth`` levels of nesting.

    Raises:
        RefusedFile: as :func:`read_bytes`, or nested deeper than ``max_depth``.
        FileNotFoundError / OSError: missing or unreadable.
        ValueError: not UTF-8 or not valid JSON (``json.JSONDecodeError``).
    """
    text = read_text(path, max_bytes, root)
    depth = json_depth(text)
    if depth > max_depth:
        raise RefusedFile(path, f"is nested {depth} levels deep, more than the {max_depth} allowed",
                          Path(path).name)
    try:
        return json.loads(text)
    except RecursionError:  # the depth check makes this unreachable; kept as a guard
        raise RefusedFile(path, "is nested too deeply to parse", Path(path).name) from None


def open_append(path: Path | str, root: Path | str | None = None):
    """Open (creating it) a log file of a run directory for appending text, following no symbolic
    link (see :func:`open_file`), so the host never writes through a link the model planted.

    Raises:
        RefusedFile: a symbolic link or not a regular file.
        OSError: cannot be opened.
    """
    fd = _open_fd(Path(path), Path(root) if root is not None else None,
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NONBLOCK, 0o644)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(path, f"is {_kind(info.st_mode)}, not a regular file", Path(path).name)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8", errors="replace")
    except BaseException:
        os.close(fd)
        raise


def iter_lines(path: Path | str, root: Path | str | None = None) -> Iterator[str]:
    """The lines of a regular text file (see :func:`open_file`), UTF-8, streamed (no size cap:
    for large input files the host wrote, e.g. ``inputs/train.jsonl``).

    Raises:
        RefusedFile, OSError: as :func:`open_file`; UnicodeDecodeError for bytes that are not UTF-8.
    """
    import io

    with io.TextIOWrapper(open_file(path, root), encoding="utf-8") as handle:
        yield from handle
