"""Atom encodings: the element one-hot and the mass-weighted element one-hot.

Element vocabulary: the 118 elements Z = 1..118 (index ``Z - 1``), as in the tutorial
(``in_dim = 118``), whatever the training set contains; the Petretto data hold 64 of them. An
element absent from the training data is still encodable (its embedding column is simply
untrained). Masses are pymatgen's ``Element.atomic_mass`` in amu (the tutorial uses ASE's masses,
which differ in the third or fourth significant figure for a few elements, e.g. H 1.00794 vs 1.008).
"""

from __future__ import annotations

import numpy as np

#: Size of the element vocabulary (Z = 1..118).
N_ELEMENTS = 118


def _atomic_masses() -> np.ndarray:
    from pymatgen.core import Element

    return np.array([float(Element.from_Z(z).atomic_mass) for z in range(1, N_ELEMENTS + 1)], dtype=np.float64)


#: ``(118,)`` float64: atomic mass (amu) of element ``Z`` at index ``Z - 1``.
ATOMIC_MASSES = _atomic_masses()


def atomic_numbers(structure) -> np.ndarray:
    """Atomic number of every site of an ordered structure.

    Returns:
        ``(N,)`` int64, values in 1..118.

    Raises:
        ValueError: an empty structure, a disordered site (partial occupancy or several
            species), a site that is not an element (e.g. a dummy species or vacancy), or an
            atomic number outside 1..118 (the vocabulary); the message names the site.
    """
    from pymatgen.core import DummySpecies, Element

    if len(structure) == 0:
        raise ValueError("structure has no sites")
    numbers = np.empty(len(structure), dtype=np.int64)
    for index, site in enumerate(structure):
        if not site.is_ordered:
            raise ValueError(f"site {index} is disordered ({site.species}); only ordered structures are supported")
        specie = site.specie
        element = specie if isinstance(specie, Element) else getattr(specie, "element", None)
        if isinstance(specie, DummySpecies) or not isinstance(element, Element):
            raise ValueError(f"site {index}: species {specie!s} is not a chemical element")
        z = element.Z
        if not 1 <= int(z) <= N_ELEMENTS:
            raise ValueError(f"site {index}: element {specie!s} (Z={z}) is outside the vocabulary Z=1..{N_ELEMENTS}")
        numbers[index] = int(z)
    return numbers


def element_one_hot(numbers: np.ndarray) -> np.ndarray:
    r"""Node attributes :math:`z_i = e_{Z_i}` (the tutorial's ``type_onehot``).

    Shapes: ``numbers (N,)`` int (1..118) -> ``(N, 118)`` float32.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    out = np.zeros((numbers.size, N_ELEMENTS), dtype=np.float32)
    out[np.arange(numbers.size), numbers - 1] = 1.0
    return out


def mass_weighted_one_hot(numbers: np.ndarray) -> np.ndarray:
    r"""Node input features :math:`x_i = m_{Z_i}\, e_{Z_i}`, the one-hot of the element scaled by
    its atomic mass in amu (the tutorial's ``am_onehot``).

    Shapes: ``numbers (N,)`` int (1..118) -> ``(N, 118)`` float32.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    out = element_one_hot(numbers)
    out[np.arange(numbers.size), numbers - 1] = ATOMIC_MASSES[numbers - 1]
    return out


def node_inputs(structure) -> tuple[np.ndarray, np.ndarray]:
    """``(x, node_attr)``: mass-weighted one-hot and one-hot, each ``(N, 118)`` float32.

    Raises:
        ValueError: see :func:`atomic_numbers`.
    """
    numbers = atomic_numbers(structure)
    return mass_weighted_one_hot(numbers), element_one_hot(numbers)
