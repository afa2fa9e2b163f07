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

import ast  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402

#: rows of phonon_dos_petretto/data.csv the tests read (the graph tests use the first 12)
N_ROWS = 48


def petretto_csv() -> Path | None:
    """data.csv of phonon_dos_petretto: MATEVAL_DATA, the shared data folder, or the repo's data/."""
    candidates = [Path(os.environ["MATEVAL_DATA"]) if os.environ.get("MATEVAL_DATA") else None,
                  Path("/work/shared/data"), REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "data"]
    for base in candidates:
        if base is not None and (base / "phonon_dos_petretto" / "data.csv").is_file():
            return base / "phonon_dos_petretto" / "data.csv"
    return None


def parse_structure(text: str):
    """ASE ``Atoms.todict()`` literal -> pymatgen Structure (literal_eval, never eval)."""
    from pymatgen.core import Structure

    atoms = ast.literal_eval(text)
    return Structure(lattice=atoms["cell"], species=atoms["numbers"], coords=atoms["positions"],
                     coords_are_cartesian=True)


@pytest.fixture(scope="session")
def petretto_frame():
    """The first ``N_ROWS`` rows of phonon_dos_petretto/data.csv (skips when the file is absent)."""
    pd = pytest.importorskip("pandas")
    path = petretto_csv()
    if path is None:
        pytest.skip("phonon_dos_petretto/data.csv not available")
    return pd.read_csv(path, nrows=N_ROWS)


@pytest.fixture(scope="module")
def petretto_structures(petretto_frame) -> list:
    """The crystals of ``petretto_frame``, parsed afresh for each test module (Structures are mutable)."""
    return [parse_structure(text) for text in petretto_frame["structure"]]
