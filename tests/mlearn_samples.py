"""Real mlearn configurations (Zuo et al., J. Phys. Chem. A 124, 731 (2020); files under
``$MATEVAL_SHARED_DATA/mlearn``, default /work/shared/data/mlearn) as ``potential`` samples, for
the model tests of interatomic potentials, which run in each model's own environment with the
repository root on ``PYTHONPATH``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from runner.contract import Sample

#: the mlearn data folder (one sub-folder per element with training.json / test.json)
MLEARN = Path(os.environ.get("MATEVAL_SHARED_DATA", "/work/shared/data")) / "mlearn"


def smallest(element: str, n: int) -> list[Sample]:
    """The ``n`` smallest training configurations of ``element`` (fewest atoms; ties in file
    order) with targets ``{"energy": eV, "forces": (n_atoms, 3) eV/Å}`` and ``config_type``.

    Raises:
        FileNotFoundError: no ``MLEARN/<element>/training.json``.
    """
    from pymatgen.core import Structure

    records = json.loads((MLEARN / element / "training.json").read_text())
    order = sorted(range(len(records)), key=lambda i: (records[i]["num_atoms"], i))[:n]
    return [Sample(f"{element}-{i + 1}", Structure.from_dict(records[i]["structure"]),
                   {"energy": float(records[i]["outputs"]["energy"]),
                    "forces": np.asarray(records[i]["outputs"]["forces"], dtype=np.float64)},
                   {"config_type": records[i]["group"]}) for i in order]


def blind(samples: list[Sample]) -> list[Sample]:
    """The same samples without targets (what ``predict`` receives)."""
    return [Sample(s.id, s.structure, None, s.info) for s in samples]
