"""Input node features: the 92-dimensional CGCNN atom-feature table.

Matformer (Yan et al., NeurIPS 2022) initialises each node with the "cgcnn" atom features of Xie &
Grossman (PRL 120, 145301, 2018): a binary vector of one-hot bins of group, period,
electronegativity, covalent radius, valence electrons, first ionization energy, electron affinity,
block and atomic volume. The table ships with this package as ``atom_init.json`` (provenance in
``ATOM_FEATURES_SOURCE.md``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

ATOM_FEATURES_PATH = Path(__file__).with_name("atom_init.json")
N_ATOM_FEATURES = 92


@lru_cache(maxsize=1)
def atom_feature_table() -> dict[int, np.ndarray]:
    """The CGCNN table as ``{atomic number: (92,) float32 array}`` (read once, cached).

    Raises:
        ValueError: when the shipped file does not hold 92-dimensional vectors.
    """
    with ATOM_FEATURES_PATH.open() as handle:
        raw = json.load(handle)
    table = {int(z): np.asarray(vec, dtype=np.float32) for z, vec in raw.items()}
    bad = sorted(z for z, vec in table.items() if vec.shape != (N_ATOM_FEATURES,))
    if bad:
        raise ValueError(f"{ATOM_FEATURES_PATH}: atomic numbers {bad} do not have {N_ATOM_FEATURES} features")
    return table


def atom_features(structure) -> np.ndarray:
    """CGCNN features of every site of a pymatgen ``Structure``.

    Args:
        structure: ``pymatgen.core.Structure`` with ordered sites (one element per site).

    Returns:
        ``np.ndarray`` of shape ``(n_atoms, 92)``, dtype float32, row ``i`` for site ``i``.
        Dimensionless (binary one-hot bins).

    Raises:
        ValueError: when a site is disordered, or when an element has no entry in the table
            (the message names the element and its atomic number; the table covers Z = 1..100).
    """
    table = atom_feature_table()
    rows = []
    for index, site in enumerate(structure):
        if not site.is_ordered:
            raise ValueError(f"site {index} is disordered ({site.species}); Matformer needs one element per site")
        element = site.specie
        z = int(getattr(element, "Z", 0))
        if z not in table:
            raise ValueError(
                f"element {element} (Z={z}) at site {index} has no CGCNN atom features "
                f"(atom_init.json covers Z=1..{max(table)})"
            )
        rows.append(table[z])
    if not rows:
        return np.zeros((0, N_ATOM_FEATURES), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False)
