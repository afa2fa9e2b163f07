"""Progress lines with elapsed time and an estimate of what remains, for long loops.

The model stage and the scoring stage write to a log (``run.log``, echoed by the orchestrator), not
to a terminal, so progress is a line at most every few seconds rather than a redrawn bar::

    mateval: graph building 312/800 (39 %), 6.1 s elapsed, about 9.5 s left
    mateval: epoch 3/10 ... (21.2 s; 1 min 4 s elapsed, about 2 min 29 s left)

Part of the model contract (:mod:`runner.contract`): a model may wrap any long loop of its own
(graph building, sampling) in :func:`track`. Standard library only, so that the runner, the models
and the metrics' callers can all use it.

The estimate is the mean time per item so far times the items left (linear extrapolation), the
same as tqdm's default with ``smoothing=0``.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")

#: most seconds between two progress lines of one loop (its first line comes after this too)
EVERY_S = 5.0


def duration_text(seconds: float) -> str:
    """``seconds`` as ``"4.2 s"``, ``"3 min 4 s"`` or ``"2 h 5 min"``.

    Raises:
        ValueError: ``seconds`` is negative or not finite.
    """
    if not (seconds >= 0 and seconds != float("inf")):
        raise ValueError(f"duration: expected a finite number of seconds >= 0, got {seconds!r}")
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def remaining_s(done: int, total: int, elapsed_s: float) -> float | None:
    """Seconds left by linear extrapolation: ``elapsed_s / done * (total - done)``; ``None`` before
    the first item is done or when ``total`` is unknown (``<= 0``)."""
    if done <= 0 or total <= 0:
        return None
    return max(elapsed_s / done * (total - done), 0.0)


def status_line(what: str, done: int, total: int, elapsed_s: float) -> str:
    """One progress line (without the ``mateval:`` prefix), e.g.
    ``"graph building 312/800 (39 %), 6.1 s elapsed, about 9.5 s left"``; without a known total,
    ``"graph building 312 done, 6.1 s elapsed"``."""
    if total <= 0:
        return f"{what} {done} done, {duration_text(elapsed_s)} elapsed"
    left = remaining_s(done, total, elapsed_s)
    text = f"{what} {done}/{total} ({100 * done / total:.0f} %), {duration_text(elapsed_s)} elapsed"
    return text if left is None or done >= total else f"{text}, about {duration_text(left)} left"


class Progress:
    """Counts the items of one long piece of work and writes a :func:`status_line` at most every
    ``every_s`` seconds, and once at the end (:meth:`close`) when any line was written or the work
    took longer than ``every_s``, unless the last line already said it.

    Args:
        what: what is done, as a noun phrase ("graph building", "fingerprinting generated crystals").
        total: number of items (``<= 0``: unknown).
        every_s: most seconds between two lines.
        write: where a line goes (default: standard error, with a ``mateval: `` prefix, flushed).
        clock: seconds, monotonic (default :func:`time.monotonic`; a test passes its own).
    """

    def __init__(self, what: str, total: int, every_s: float = EVERY_S, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.every_s = what, int(total), float(every_s)
        self.done = 0
        self._write = write or _stderr_writer(sys.stderr)
        self._clock = clock
        self.start = self._last = clock()
        self.lines = 0
        self._shown = -1  # items done at the last line

    def update(self, n: int = 1) -> None:
        """``n`` more items are done; writes a line when ``every_s`` passed since the last one."""
        self.done += n
        now = self._clock()
        if now - self._last >= self.every_s:
            self._emit(now)

    def close(self) -> None:
        """The work ended: a last line (see the class docstring)."""
        now = self._clock()
        if self.done != self._shown and (self.lines or now - self.start >= self.every_s):
            self._emit(now)

    def _emit(self, now: float) -> None:
        self._last = now
        self._shown = self.done
        self.lines += 1
        self._write(status_line(self.what, self.done, self.total, now - self.start))


def _stderr_writer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        print(f"mateval: {line}", file=stream, flush=True)

    return write


def track(items: Iterable[T], what: str, total: int | None = None, every_s: float = EVERY_S,
          write: Callable[[str], None] | None = None) -> Iterator[T]:
    """Yield every item of ``items`` while a :class:`Progress` reports on them (``total`` defaults
    to ``len(items)`` when it has one)::

        graphs = [build(s) for s in track(structures, "graph building")]
    """
    if total is None:
        total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
    progress = Progress(what, total, every_s, write)
    try:
        for item in items:
            yield item
            progress.update()
    finally:
        progress.close()
