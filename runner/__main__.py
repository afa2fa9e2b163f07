"""``python -m runner <run_dir>``: see :mod:`runner.run`."""

import signal
import sys

from runner.run import main


def _terminate(signum, frame):  # turn SIGTERM into an exception so the result is still written
    raise SystemExit(f"terminated by signal {signum} (SIGTERM)")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
