"""``python -m runner <run_dir>``: see :mod:`runner.run`.

With ``MATEVAL_STDIN_WATCHDOG=1`` in the environment (the Docker backend sets it and holds the
container's standard input open from the orchestrator), the end of standard input means that the
orchestrator is gone, ``kill -9`` included: the runner then stops as at a timeout (SIGTERM to
itself: a result is written) and kills itself :data:`WATCHDOG_GRACE_S` seconds later if it is still
alive, so that no container outlives its orchestrator.
"""

import os
import signal
import sys
import threading
import time

from runner.run import main

#: the environment variable that turns the standard-input watchdog on
WATCHDOG_ENV = "MATEVAL_STDIN_WATCHDOG"
#: seconds between the watchdog's SIGTERM and its SIGKILL
WATCHDOG_GRACE_S = 15.0


def _terminate(signum, frame):
    """Turn the first SIGTERM into an exception so the result is still written; ignore later ones
    (a scheduler may signal every process of a job, a wrapper may forward the same signal), which
    would otherwise interrupt the writing of the result."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(f"terminated by signal {signum} (SIGTERM)")


def watch_stdin(stream=None, grace_s: float = WATCHDOG_GRACE_S) -> threading.Thread:
    """Start a daemon thread that reads ``stream`` (default: the standard input, binary) to its end,
    then stops this process: a line on stderr, SIGTERM to itself (:func:`_terminate` turns it into a
    result with the error "terminated by signal 15"), and SIGKILL ``grace_s`` seconds later.

    Nothing the orchestrator writes is read as an instruction: the data is discarded, only the
    end of the stream counts. Returns the thread (already started).
    """
    stream = sys.stdin.buffer if stream is None else stream

    def watch() -> None:
        try:
            while stream.read(65536):
                pass
        except (OSError, ValueError):  # closed or unreadable: the same as its end
            pass
        print("mateval: standard input closed: the orchestrator is gone; stopping the run", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        print(f"mateval: still running {grace_s:g} s after the orchestrator went: SIGKILL", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="stdin-watchdog", daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    if os.environ.get(WATCHDOG_ENV) == "1":
        watch_stdin()
    sys.exit(main())
