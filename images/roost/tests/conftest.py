"""pytest setup for this model's tests, which run in the model's own environment.

`python tests/run_model_tests.py NAME --python PYTHON` runs them from the repository root with the
repository root on PYTHONPATH (so `runner`, `metrics` and `tests.conftest` import) and
`--import-mode=importlib` (several model folders each have a `tests/conftest.py`; none is a
package). This file puts the model folder on `sys.path`, as the runner does for `entry_point`.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = MODEL_DIR.parents[1]
for _path in (REPO_ROOT, MODEL_DIR):  # the model folder first, as in the runner
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
