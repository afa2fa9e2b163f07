"""``python -m runner <run_dir>``: see :mod:`runner.run`."""

import signal
import sys

from runner.run import main


def _terminate(signum, frame):
    """Turn the first SIGTERM into an exception so the result is still written; ignore later ones
    (a scheduler may signal every process of a job, a wrapper may forward the same signal), which
    would otherwise interrupt the writing of the result."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(f"terminated by signal {signum} (SIGTERM)")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
