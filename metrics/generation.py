"""Crystal-generation metrics: validity, coverage, property EMDs and success rates.

The definitions follow CDVAE (Xie et al., "Crystal Diffusion Variational Autoencoder for Periodic
Material Generation", ICLR 2022; reference implementation ``scripts/eval_utils.py`` and
``scripts/compute_metrics.py`` of github.com/txie-93/cdvae); SyMat (Luo et al., NeurIPS 2023) and
DiffCSP (Jiao et al., NeurIPS 2023) report the same metrics with CDVAE's evaluation code. Every place
where we differ from that code is stated in the function's docstring under "Notes".

Inputs are pymatgen ``Structure`` objects (``None`` for a requested crystal the model failed to
return), pymatgen ``Composition`` objects or formulas, and numpy arrays. The functions are pure: no
I/O, no torch, no parallelism (that lives in :mod:`runner.fingerprints`). matminer is imported only
when a fingerprint is first computed.

Validity (fractions over *all requested* crystals, a ``None`` counting as invalid):

- :func:`structure_validity` / :func:`validity_structure`: shortest interatomic distance (periodic
  images included) >= 0.5 Å and cell volume >= 0.1 Å^3;
- :func:`composition_validity` / :func:`validity_composition`: SMACT charge neutrality with the
  Pauling electronegativity test;
- :func:`validity`: both.

Distribution metrics against the reference set:

- :func:`crystalnn_fingerprint` (61 numbers) and :func:`magpie_fingerprint` (132 numbers);
- :func:`standardize_composition` (CDVAE's fixed Magpie scaler :data:`CDVAE_COMP_SCALER_MEANS`,
  :data:`CDVAE_COMP_SCALER_STDS`), :func:`coverage` -> ``{"COV-R", "COV-P"}`` with the per-dataset
  :data:`COVERAGE_CUTOFFS`, exactly CDVAE's ``compute_cov``; CDVAE feeds it every generated crystal
  with a fingerprint, valid or not;
- :func:`emd`, :func:`emd_density`, :func:`emd_num_elements` (Wasserstein-1 distances, over the
  valid generated crystals).

Success rates: :func:`success_rate` (returned structures / requested) and
:func:`optimization_success_rates` (CDVAE's SR5/SR10/SR15 for property optimization).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import warnings
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from ._cdvae_constants import CDVAE_COMP_SCALER_MEANS, CDVAE_COMP_SCALER_STDS
from ._validation import _as_1d_float

__all__ = [
    "COVERAGE_CUTOFFS",
    "CDVAE_COMP_SCALER_MEANS",
    "CDVAE_COMP_SCALER_STDS",
    "CRYSTALNN_FINGERPRINT_LENGTH",
    "MAGPIE_FINGERPRINT_LENGTH",
    "min_interatomic_distance",
    "crystal_density",
    "num_distinct_elements",
    "structure_validity",
    "validity_structure",
    "composition_validity",
    "validity_composition",
    "validity",
    "crystalnn_fingerprint",
    "magpie_fingerprint",
    "standardize_composition",
    "coverage",
    "emd",
    "emd_density",
    "emd_num_elements",
    "success_rate",
    "optimization_success_rates",
]

#: Coverage cutoffs per dataset, ``(structure, composition)``: the largest Euclidean distance
#: between CrystalNN fingerprints, and between standardized Magpie fingerprints, at which two
#: crystals count as close. CDVAE's ``COV_Cutoffs`` (``scripts/compute_metrics.py``), where the
#: datasets are called ``perovskite``, ``carbon`` and ``mp20`` (their ``conf/data/*.yaml``
#: ``eval_model_name``): ``mp20`` struc 0.4 comp 10, ``carbon`` 0.2 and 4, ``perovskite`` 0.2 and 4.
COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "perov_5": (0.2, 4.0),
    "carbon_24": (0.2, 4.0),
    "mp_20": (0.4, 10.0),
}

#: Length of :func:`crystalnn_fingerprint`: matminer's ``CrystalNNFingerprint`` "ops" preset,
#: coordination numbers 1-24 with their order parameters (``wt``, ``sgl_bd``, ``L-shaped``, ...).
CRYSTALNN_FINGERPRINT_LENGTH = 61
#: Length of :func:`magpie_fingerprint`: 22 Magpie elemental properties x 6 statistics
#: (minimum, maximum, range, mean, average deviation, mode).
MAGPIE_FINGERPRINT_LENGTH = 132

#: Oxidation-state lists of SMACT usable in :func:`composition_validity`.
_OXIDATION_STATE_SETS = ("smact14", "icsd24", "icsd16", "pymatgen_sp", "wiki")
_OX_ATTRIBUTE = {
    "smact14": "oxidation_states_smact14",
    "icsd24": "oxidation_states_icsd24",
    "icsd16": "oxidation_states_icsd16",
    "pymatgen_sp": "oxidation_states_sp",
    "wiki": "oxidation_states_wiki",
}
#: Above this many oxidation-state combinations, composition validity is decided by an exact
#: dynamic programme instead of enumerating the combinations (same answer, polynomial time).
_MAX_ENUMERATED_COMBINATIONS = 20_000
#: Tolerance for composition amounts to count as integers (partial occupancies are not).
_INTEGER_TOL = 1e-6
#: Coefficients tried on the LLL-reduced basis when searching for the shortest lattice vector.
_LATTICE_COEFFS = np.array(
    [c for c in itertools.product(range(-2, 3), repeat=3) if any(c)], dtype=np.float64
)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _is_structure(obj: Any) -> bool:
    from pymatgen.core import Structure

    return isinstance(obj, Structure)


def _check_entries(structures: Any, name: str, *, allow_none: bool = True) -> list:
    """A list of Structures (and, when allowed, ``None``); ``ValueError`` otherwise."""
    if _is_structure(structures):
        raise ValueError(f"{name} must be a sequence of structures, not a single Structure (wrap it in a list)")
    try:
        entries = list(structures)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of pymatgen Structures; got {type(structures).__name__}") from None
    for i, s in enumerate(entries):
        if s is None and allow_none:
            continue
        if not _is_structure(s):
            allowed = "pymatgen Structure or None" if allow_none else "pymatgen Structure"
            raise ValueError(f"{name}[{i}] must be a {allowed}; got {type(s).__name__}")
    return entries


def _check_nonnegative(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return value


def _fraction(flags: np.ndarray, name: str) -> float:
    if flags.size == 0:
        raise ValueError(f"{name} is empty; at least one requested crystal is required")
    return float(np.mean(flags))


def min_interatomic_distance(structure: Any) -> float:
    """Shortest distance between two atoms of a periodic crystal, in Å.

    The minimum over (a) the minimum-image distances between distinct sites and (b) the distance
    from an atom to its own nearest periodic image, i.e. the length of the shortest non-zero
    lattice translation. For a single-atom cell only (b) exists.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        Lattice in Å.

    Returns
    -------
    float
        Distance in Å; 0.0 for two sites at the same position; NaN when the lattice is degenerate
        (zero or non-finite volume), where distances are undefined.

    References
    ----------
    (a) is CDVAE's ``structure_validity`` (``eval_utils.py``): ``Structure.distance_matrix`` with
    the diagonal padded. (b) is ours; see the Notes of :func:`structure_validity`.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cu = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    >>> round(min_interatomic_distance(cu), 6)
    3.0
    >>> nacl = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0, 0]])
    >>> round(min_interatomic_distance(nacl), 6)
    2.5
    """
    lattice = structure.lattice
    matrix = np.asarray(lattice.matrix, dtype=np.float64)
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(structure.frac_coords)):
        return math.nan
    volume = abs(float(np.linalg.det(matrix)))
    if not volume > 0:
        return math.nan
    try:
        reduced = np.asarray(lattice.lll_matrix, dtype=np.float64)
        shortest = float(np.min(np.linalg.norm(_LATTICE_COEFFS @ reduced, axis=1)))
        if len(structure) > 1:
            dist = np.array(structure.distance_matrix, dtype=np.float64)
            np.fill_diagonal(dist, np.inf)
            shortest = min(shortest, float(dist.min()))
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError):
        return math.nan
    return shortest


def crystal_density(structure: Any) -> float:
    """Mass density of a crystal in g/cm^3 (pymatgen's ``Structure.density``).

    Parameters
    ----------
    structure : pymatgen.core.Structure

    Returns
    -------
    float
        g/cm^3; NaN when the cell volume is zero or not finite.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cu = Structure(Lattice.cubic(3.615), ["Cu"] * 4,
    ...                [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    >>> round(crystal_density(cu), 2)
    8.93
    """
    volume = float(structure.volume)
    if not (math.isfinite(volume) and volume > 0):
        return math.nan
    return float(structure.density)


def num_distinct_elements(structure: Any) -> int:
    """Number of distinct chemical elements in a crystal (CDVAE: ``len(set(structure.species))``).

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(4.0), ["Sr", "Ti", "O", "O", "O"],
    ...               [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    >>> num_distinct_elements(s)
    3
    """
    return len(structure.composition.elements)


# --------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------


def structure_validity(structures: Sequence[Any], cutoff: float = 0.5, min_volume: float = 0.1) -> np.ndarray:
    """Structural validity of each requested crystal.

    A crystal is valid when its shortest interatomic distance (:func:`min_interatomic_distance`,
    periodic images included) is ``>= cutoff`` and its cell volume is ``>= min_volume``.

    Parameters
    ----------
    structures : sequence of pymatgen.core.Structure or None, length n_requested
        ``None`` marks a requested crystal the model did not return; it is invalid.
    cutoff : float, default 0.5
        Smallest allowed interatomic distance, in Å.
    min_volume : float, default 0.1
        Smallest allowed cell volume, in Å^3.

    Returns
    -------
    ndarray of shape (n_requested,), dtype bool

    Raises
    ------
    ValueError
        If an entry is neither a Structure nor None, or ``cutoff``/``min_volume`` is negative or
        not finite.

    Notes
    -----
    Differs from CDVAE in one respect: CDVAE checks only distances between *distinct* sites
    (``Structure.distance_matrix`` with its diagonal padded), so an atom's distance to its own
    periodic images is ignored and a single-atom cell always passes the distance test. We also
    require the shortest lattice translation to be ``>= cutoff``. This matters only for lattices
    with a vector shorter than ``cutoff``, never for real crystals. A degenerate lattice (zero or
    non-finite volume, non-finite coordinates) is invalid.

    References
    ----------
    CDVAE ``eval_utils.structure_validity`` (``cutoff=0.5``) and ``Crystal.get_structure``
    (``volume < 0.1`` is invalid); Xie et al., ICLR 2022, Sec. 5.2 ("Validity").

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.06, 0, 0]])
    >>> structure_validity([nacl, close, None]).tolist()
    [True, False, False]
    """
    entries = _check_entries(structures, "structures")
    cutoff = _check_nonnegative(cutoff, "cutoff")
    min_volume = _check_nonnegative(min_volume, "min_volume")
    out = np.zeros(len(entries), dtype=bool)
    for i, s in enumerate(entries):
        if s is None:
            continue
        volume = abs(float(np.linalg.det(np.asarray(s.lattice.matrix, dtype=np.float64))))
        if not volume >= min_volume:  # NaN volume fails too
            continue
        out[i] = bool(min_interatomic_distance(s) >= cutoff)
    return out


def validity_structure(structures: Sequence[Any], cutoff: float = 0.5, min_volume: float = 0.1) -> float:
    """Fraction of requested crystals that are structurally valid (:func:`structure_validity`).

    Parameters
    ----------
    structures : sequence of pymatgen.core.Structure or None, length n_requested
    cutoff : float, default 0.5
        Å.
    min_volume : float, default 0.1
        Å^3.

    Returns
    -------
    float
        In [0, 1]; the denominator is ``n_requested`` (``None`` entries included).

    Raises
    ------
    ValueError
        As :func:`structure_validity`, or if ``structures`` is empty.

    References
    ----------
    CDVAE ``GenEval.get_validity`` (``struct_valid``).

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> validity_structure([nacl, None])
    0.5
    """
    return _fraction(structure_validity(structures, cutoff, min_volume), "structures")


def _integer_counts(composition: Any) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Element symbols and gcd-reduced integer counts, or None for non-integer amounts."""
    amounts = composition.get_el_amt_dict()  # merges oxidation-state-decorated species
    symbols, counts = [], []
    for symbol, amount in amounts.items():
        if amount <= _INTEGER_TOL:
            continue
        rounded = round(amount)
        if rounded < 1 or abs(amount - rounded) > _INTEGER_TOL:
            return None
        symbols.append(symbol)
        counts.append(int(rounded))
    if not counts:
        return None
    g = math.gcd(*counts)
    return tuple(symbols), tuple(c // g for c in counts)


def _balanced_by_enumeration(
    counts: Sequence[int], ox_lists: Sequence[Sequence[int]], enegs: Sequence[float], use_pauling_test: bool
) -> bool:
    """CDVAE's loop: some product of oxidation states is neutral and passes the Pauling test."""
    from smact.screening import pauling_test

    for ox_states in itertools.product(*ox_lists):
        if sum(o * c for o, c in zip(ox_states, counts)) != 0:
            continue
        if not use_pauling_test or pauling_test(ox_states, list(enegs)):
            return True
    return False


def _balanced_by_dynamic_programme(
    counts: Sequence[int], ox_lists: Sequence[Sequence[int]], enegs: Sequence[float], use_pauling_test: bool
) -> bool:
    """Same answer as :func:`_balanced_by_enumeration` in polynomial time.

    The Pauling test (every cation less electronegative than every anion) holds exactly when some
    cut ``t`` has all cations with EN <= t and all anions with EN > t; ``t`` can be taken among
    the elements' ENs (or -inf when there is no cation). For each cut, the reachable total charges
    are built element by element with only the oxidation states the cut allows.
    """
    cuts = [-math.inf, *sorted(set(enegs))] if use_pauling_test else [None]
    for cut in cuts:
        sums = {0}
        for count, oxs, en in zip(counts, ox_lists, enegs):
            allowed = [
                o for o in oxs
                if cut is None or o == 0 or (o > 0 and en <= cut) or (o < 0 and en > cut)
            ]
            sums = {s + count * o for s in sums for o in allowed}
            if not sums:
                break
        if 0 in sums:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _smact_valid(
    symbols: tuple[str, ...], counts: tuple[int, ...], use_pauling_test: bool, include_alloys: bool,
    oxidation_states_set: str,
) -> bool:
    import smact

    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(sym in smact.metals for sym in symbols):
        return True
    ox_lists, enegs = [], []
    for sym in symbols:
        try:
            element = smact.Element(sym)
        except (KeyError, NameError, ValueError, TypeError):
            return False  # SMACT has no data for this element (Z >= 104, dummy species)
        oxs = getattr(element, _OX_ATTRIBUTE[oxidation_states_set])
        if not oxs:
            return False  # no known oxidation state (He, Ne, Ar in SMACT 2014)
        en = element.pauling_eneg
        if use_pauling_test and (en is None or not math.isfinite(en)):
            return False  # no Pauling electronegativity: the Pauling test cannot pass
        ox_lists.append(tuple(int(o) for o in oxs))
        enegs.append(float(en) if en is not None else math.nan)
    n_combinations = math.prod(len(o) for o in ox_lists)
    if n_combinations <= _MAX_ENUMERATED_COMBINATIONS:
        return _balanced_by_enumeration(counts, ox_lists, enegs, use_pauling_test)
    return _balanced_by_dynamic_programme(counts, ox_lists, enegs, use_pauling_test)


def composition_validity(
    compositions_or_structures: Sequence[Any],
    use_pauling_test: bool = True,
    include_alloys: bool = True,
    oxidation_states_set: str = "smact14",
) -> np.ndarray:
    """Compositional (SMACT) validity of each requested crystal.

    A composition is valid when it is a single element; or, with ``include_alloys``, when every
    element is a metal (``smact.metals``); or when some assignment of one oxidation state per
    element (from SMACT's list) makes the gcd-reduced formula charge-neutral and, with
    ``use_pauling_test``, passes the Pauling electronegativity test
    (:func:`smact.screening.pauling_test`: every cation less electronegative than every anion).

    Parameters
    ----------
    compositions_or_structures : sequence, length n_requested
        Each a pymatgen ``Structure``, ``Composition``, formula string, or ``None`` (invalid).
    use_pauling_test : bool, default True
        Require the Pauling electronegativity test.
    include_alloys : bool, default True
        Count all-metal compositions as valid.
    oxidation_states_set : {"smact14", "icsd24", "icsd16", "pymatgen_sp", "wiki"}, default "smact14"
        SMACT's oxidation-state list. ``"smact14"`` (SMACT's original 2014 list) is what
        ``Element.oxidation_states`` was in the SMACT versions CDVAE used (< 3.0); SMACT >= 3.0
        defaults to ``"icsd24"``, which gives different answers.

    Returns
    -------
    ndarray of shape (n_requested,), dtype bool

    Raises
    ------
    ValueError
        If an entry is of another type, a formula does not parse, or ``oxidation_states_set`` is
        unknown.

    Notes
    -----
    Counts: the element counts of the whole cell divided by their gcd (``Fe4O6`` -> ``Fe2O3``),
    and exactly these counts are tested, as in CDVAE. CDVAE passes ``threshold=max(counts)`` to
    ``smact.neutral_ratios`` together with explicit ``stoichs``, so the threshold has no effect;
    we apply no cap on the counts either (the cost is in the number of oxidation-state
    combinations, not in the counts). As in CDVAE all atoms of one element share one oxidation
    state, so mixed-valence compounds such as Fe3O4 are invalid.

    Where we differ from CDVAE:

    - elements SMACT has no data for (Z >= 104, dummy species) do not raise: the composition is
      invalid (unless it is a single element). Elements without oxidation states (He, Ne, Ar in
      the 2014 list) make it invalid. An element without a Pauling electronegativity makes it
      invalid when ``use_pauling_test`` is set (current SMACT's ``pauling_test`` returns False;
      CDVAE caught a ``TypeError`` from older SMACT and counted it valid).
    - when there are more than 20,000 oxidation-state combinations, an exact dynamic programme
      over reachable total charges replaces the enumeration (same answer, bounded time).
    - non-integer amounts (partial occupancies) are invalid.

    References
    ----------
    CDVAE ``eval_utils.smact_validity`` and ``Crystal.get_composition``; SMACT: Davies et al.,
    J. Open Source Softw. 4, 1361 (2019).

    Examples
    --------
    >>> composition_validity(["NaCl", "NaCl2", "Fe2O3", "C", "CuZn", None]).tolist()
    [True, False, True, True, True, False]
    """
    from pymatgen.core import Composition

    if oxidation_states_set not in _OX_ATTRIBUTE:
        raise ValueError(
            f"oxidation_states_set must be one of {list(_OX_ATTRIBUTE)}; got {oxidation_states_set!r}"
        )
    if isinstance(compositions_or_structures, (str, Composition)) or _is_structure(compositions_or_structures):
        raise ValueError("compositions_or_structures must be a sequence (wrap a single entry in a list)")
    entries = list(compositions_or_structures)
    out = np.zeros(len(entries), dtype=bool)
    for i, entry in enumerate(entries):
        if entry is None:
            continue
        if _is_structure(entry):
            comp = entry.composition
        elif isinstance(entry, Composition):
            comp = entry
        elif isinstance(entry, str):
            try:
                comp = Composition(entry)
            except Exception as exc:  # pymatgen raises several types for a bad formula
                raise ValueError(f"compositions_or_structures[{i}]: cannot parse formula {entry!r}: {exc}") from None
        else:
            raise ValueError(
                f"compositions_or_structures[{i}] must be a Structure, Composition, formula string or None; "
                f"got {type(entry).__name__}"
            )
        reduced = _integer_counts(comp)
        if reduced is None:
            continue
        out[i] = _smact_valid(reduced[0], reduced[1], bool(use_pauling_test), bool(include_alloys),
                              oxidation_states_set)
    return out


def validity_composition(
    compositions_or_structures: Sequence[Any],
    use_pauling_test: bool = True,
    include_alloys: bool = True,
    oxidation_states_set: str = "smact14",
) -> float:
    """Fraction of requested crystals that are compositionally valid (:func:`composition_validity`).

    Parameters
    ----------
    compositions_or_structures : sequence, length n_requested
        Structures, Compositions, formulas, or ``None`` (invalid).
    use_pauling_test, include_alloys, oxidation_states_set
        As :func:`composition_validity`.

    Returns
    -------
    float
        In [0, 1]; the denominator is ``n_requested`` (``None`` entries included).

    Raises
    ------
    ValueError
        As :func:`composition_validity`, or if the input is empty.

    References
    ----------
    CDVAE ``GenEval.get_validity`` (``comp_valid``).

    Examples
    --------
    >>> validity_composition(["SrTiO3", "NaCl2"])
    0.5
    """
    flags = composition_validity(compositions_or_structures, use_pauling_test, include_alloys, oxidation_states_set)
    return _fraction(flags, "compositions_or_structures")


def validity(
    structures: Sequence[Any],
    cutoff: float = 0.5,
    min_volume: float = 0.1,
    use_pauling_test: bool = True,
    include_alloys: bool = True,
    oxidation_states_set: str = "smact14",
) -> float:
    """Fraction of requested crystals that are both structurally and compositionally valid.

    Parameters
    ----------
    structures : sequence of pymatgen.core.Structure or None, length n_requested
    cutoff, min_volume
        As :func:`structure_validity` (Å, Å^3).
    use_pauling_test, include_alloys, oxidation_states_set
        As :func:`composition_validity`.

    Returns
    -------
    float
        In [0, 1]; the denominator is ``n_requested`` (``None`` entries included).

    Raises
    ------
    ValueError
        As :func:`structure_validity` and :func:`composition_validity`, or if empty.

    References
    ----------
    CDVAE ``GenEval.get_validity`` (``valid``). CDVAE also marks a crystal invalid when its
    CrystalNN fingerprint cannot be computed; we do not (fingerprints are not validity).

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> nacl2 = Structure(Lattice.cubic(5.64), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0]])
    >>> validity([nacl, nacl2, None, nacl])
    0.5
    """
    entries = _check_entries(structures, "structures")
    s_ok = structure_validity(entries, cutoff, min_volume)
    c_ok = composition_validity(entries, use_pauling_test, include_alloys, oxidation_states_set)
    return _fraction(s_ok & c_ok, "structures")


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _crystalnn_featurizer():
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@functools.lru_cache(maxsize=1)
def _magpie_featurizer():
    from matminer.featurizers.composition.composite import ElementProperty

    return ElementProperty.from_preset("magpie", impute_nan=False)


def crystalnn_fingerprint(structure: Any) -> np.ndarray:
    """Structure fingerprint: the mean over sites of the CrystalNN site fingerprint.

    Parameters
    ----------
    structure : pymatgen.core.Structure

    Returns
    -------
    ndarray of shape (61,), dtype float64
        matminer ``CrystalNNFingerprint.from_preset("ops")`` featurized at every site and averaged
        over sites (:data:`CRYSTALNN_FINGERPRINT_LENGTH`). Dimensionless (coordination weights and
        order parameters).

    Raises
    ------
    Exception
        Whatever matminer/pymatgen raise for a structure they cannot analyse (e.g. overlapping
        atoms); callers that must not fail catch it (see :mod:`runner.fingerprints`).

    References
    ----------
    CDVAE ``Crystal.get_fingerprints``; Zimmermann & Jain, RSC Adv. 10, 6063 (2020) (CrystalNN).

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cu = Structure(Lattice.cubic(3.615), ["Cu"] * 4,
    ...                [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    >>> fp = crystalnn_fingerprint(cu)
    >>> fp.shape
    (61,)
    """
    featurizer = _crystalnn_featurizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns about missing oxidation states per site
        site_fps = [featurizer.featurize(structure, i) for i in range(len(structure))]
    return np.asarray(site_fps, dtype=np.float64).mean(axis=0)


def magpie_fingerprint(composition: Any) -> np.ndarray:
    """Composition fingerprint: matminer's Magpie ``ElementProperty``.

    Parameters
    ----------
    composition : pymatgen.core.Composition, formula string or Structure (its composition)

    Returns
    -------
    ndarray of shape (132,), dtype float64
        22 Magpie elemental properties x 6 statistics over the composition
        (:data:`MAGPIE_FINGERPRINT_LENGTH`), in each property's own unit. NaN where Magpie has no
        value for an element (e.g. noble gases, Z > 103).

    Notes
    -----
    Built with ``ElementProperty.from_preset("magpie", impute_nan=False)``: matminer >= 0.9
    imputes missing elemental data by default, the matminer CDVAE used did not; missing values
    stay NaN here and :func:`standardize_composition` maps them to 0, as CDVAE's scaler does.

    References
    ----------
    CDVAE ``Crystal.get_fingerprints``; Ward et al., npj Comput. Mater. 2, 16028 (2016) (Magpie).

    Examples
    --------
    >>> fp = magpie_fingerprint("NaCl")
    >>> fp.shape, bool(np.isfinite(fp).all())
    ((132,), True)
    """
    from pymatgen.core import Composition

    if _is_structure(composition):
        composition = composition.composition
    elif isinstance(composition, str):
        composition = Composition(composition)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = _magpie_featurizer().featurize(composition)
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Coverage
# --------------------------------------------------------------------------------------------


def _as_2d(x: ArrayLike, name: str, *, finite: bool) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must contain real numbers; could not convert it to float64: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_crystals, n_features); got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN or inf (first in row {bad}); drop crystals whose fingerprint failed")
    if not finite and np.isinf(arr).any():
        raise ValueError(f"{name} contains inf")
    return arr


def standardize_composition(
    composition_fps: ArrayLike, means: ArrayLike | None = None, stds: ArrayLike | None = None
) -> np.ndarray:
    """Standardize Magpie composition fingerprints with fixed per-feature constants (CDVAE's scaler).

    ``(x - means) / stds`` column by column; NaN in the result (missing Magpie data) becomes 0.
    By default ``means`` and ``stds`` are CDVAE's constants :data:`CDVAE_COMP_SCALER_MEANS` and
    :data:`CDVAE_COMP_SCALER_STDS`, the same for every dataset and every evaluation, so a
    fingerprint's standardized value never depends on the reference set it is compared with.

    Parameters
    ----------
    composition_fps : array-like of shape (n, d)
        Raw Magpie fingerprints (:func:`magpie_fingerprint`, d = 132 with the default constants);
        NaN allowed, inf not.
    means : array-like of shape (d,), optional
        Per-feature means, finite; default CDVAE's.
    stds : array-like of shape (d,), optional
        Per-feature standard deviations, finite and > 0; default CDVAE's.

    Returns
    -------
    ndarray of shape (n, d), float64
        Dimensionless, finite.

    Raises
    ------
    ValueError
        If ``composition_fps`` is not 2-D or contains inf, ``means``/``stds`` are not 1-D of
        length d, not finite, or a std is <= 0.

    References
    ----------
    CDVAE ``scripts/eval_utils.py``: ``CompScaler = StandardScaler(means=CompScalerMeans,
    stds=CompScalerStds, replace_nan_token=0.)`` and ``StandardScaler.transform``
    (``cdvae/common/data_utils.py``); constants from ``cdvae/common/constants.py``.

    Examples
    --------
    >>> standardize_composition([[3.0, np.nan]], means=[1.0, 0.0], stds=[2.0, 1.0]).tolist()
    [[1.0, 0.0]]
    >>> x = np.array([CDVAE_COMP_SCALER_MEANS])
    >>> float(np.abs(standardize_composition(x)).max())
    0.0
    """
    x = _as_2d(composition_fps, "composition_fps", finite=False)
    mu = _as_1d_float(CDVAE_COMP_SCALER_MEANS if means is None else means, "means")
    sd = _as_1d_float(CDVAE_COMP_SCALER_STDS if stds is None else stds, "stds")
    if mu.shape != sd.shape:
        raise ValueError(f"means and stds have different lengths: {mu.size} and {sd.size}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ValueError("means must be finite and stds finite and > 0")
    if x.shape[1] != mu.size:
        raise ValueError(f"composition_fps has {x.shape[1]} features but the scaler has {mu.size}"
                         + (" (CDVAE's Magpie scaler)" if means is None else ""))
    with np.errstate(invalid="ignore"):
        return np.nan_to_num((x - mu) / sd, nan=0.0)


def coverage(
    gen_structure_fps: ArrayLike,
    gen_composition_fps: ArrayLike,
    ref_structure_fps: ArrayLike,
    ref_composition_fps: ArrayLike,
    structure_cutoff: float,
    composition_cutoff: float,
    n_requested: int | None = None,
    *,
    composition_means: ArrayLike | None = None,
    composition_stds: ArrayLike | None = None,
) -> dict[str, float]:
    """Coverage recall (COV-R) and precision (COV-P) of generated crystals against a reference set.

    CDVAE's definition. Distances are Euclidean (``scipy.spatial.distance.cdist``) between
    structure fingerprints and, separately, between composition fingerprints standardized with
    :func:`standardize_composition` (CDVAE's fixed constants by default).

    - COV-R = fraction of reference crystals whose nearest generated crystal in structure space is
      within ``structure_cutoff`` **and** whose nearest generated crystal in composition space is
      within ``composition_cutoff`` (the two nearest neighbours may be different crystals).
    - COV-P = (number of generated crystals whose nearest reference in structure space is within
      ``structure_cutoff`` and whose nearest reference in composition space is within
      ``composition_cutoff``) / ``n_requested``.

    "Within" is ``<=``.

    Parameters
    ----------
    gen_structure_fps : array-like of shape (n_gen, d_s)
        CrystalNN fingerprints of the generated crystals that have one (finite). CDVAE passes every
        generated crystal whose fingerprint could be computed, valid or not.
    gen_composition_fps : array-like of shape (n_gen, d_c)
        Their raw Magpie fingerprints (NaN allowed: see :func:`standardize_composition`).
    ref_structure_fps : array-like of shape (n_ref, d_s)
        Reference crystals' CrystalNN fingerprints (finite), n_ref >= 1.
    ref_composition_fps : array-like of shape (n_ref, d_c)
        Reference crystals' raw Magpie fingerprints.
    structure_cutoff : float
        Largest structure-fingerprint distance counted as close (dimensionless).
    composition_cutoff : float
        Largest standardized-composition distance counted as close (dimensionless).
    n_requested : int, optional
        Denominator of COV-P: the number of generated crystals before any filtering (CDVAE's
        ``num_gen_crystals``); default ``n_gen``. Must be >= ``n_gen``.
    composition_means, composition_stds : array-like of shape (d_c,), optional
        The composition scaler; default CDVAE's (:data:`CDVAE_COMP_SCALER_MEANS`,
        :data:`CDVAE_COMP_SCALER_STDS`, which need d_c = 132). Other values define a variant.

    Returns
    -------
    dict
        ``{"COV-R": float, "COV-P": float}``, each in [0, 1]. Both NaN when ``n_gen == 0``
        (nothing to compare; CDVAE's code fails there).

    Raises
    ------
    ValueError
        Non-2-D input, row counts that differ between a set's two fingerprint arrays, feature
        counts that differ between generated and reference or from the scaler's, an empty
        reference set, NaN/inf in a structure fingerprint, a negative or non-finite cutoff, or
        ``n_requested`` < ``n_gen``.

    Notes
    -----
    Identical to CDVAE's ``compute_cov`` given the same fingerprints; the caller chooses which
    crystals enter. CDVAE's ``GenEval.get_coverage`` passes *all* generated crystals
    (``self.crys``, valid or not), keeps those whose fingerprints exist (``filter_fps``) and
    divides COV-P by the count before that filter; a reference crystal without a fingerprint
    would make CDVAE's code fail (it does not filter the reference set). A NaN in a structure
    fingerprint is refused here (CDVAE's ``cdist`` would propagate it).

    References
    ----------
    CDVAE ``scripts/eval_utils.py``: ``compute_cov``, ``filter_fps``, ``CompScaler``;
    ``scripts/compute_metrics.py``: ``GenEval.get_coverage``, ``COV_Cutoffs`` (github.com/txie-93/
    cdvae); Xie et al., ICLR 2022, Sec. 5.2 and Appendix (COV-R, COV-P), after Ganea et al.,
    NeurIPS 2021 (GeoMol).

    Examples
    --------
    Three reference and two generated crystals on a line; composition fingerprints all equal
    (the scaler is given explicitly because CDVAE's needs 132 features):

    >>> out = coverage([[0.0], [5.0]], [[1.0], [1.0]], [[0.0], [0.1], [3.0]], [[1.0], [1.0], [1.0]],
    ...                structure_cutoff=0.2, composition_cutoff=1.0,
    ...                composition_means=[0.0], composition_stds=[1.0])
    >>> round(out["COV-R"], 4), out["COV-P"]
    (0.6667, 0.5)
    """
    gs = _as_2d(gen_structure_fps, "gen_structure_fps", finite=True)
    gc = _as_2d(gen_composition_fps, "gen_composition_fps", finite=False)
    rs = _as_2d(ref_structure_fps, "ref_structure_fps", finite=True)
    rc = _as_2d(ref_composition_fps, "ref_composition_fps", finite=False)
    if gs.shape[0] != gc.shape[0]:
        raise ValueError(
            f"gen_structure_fps and gen_composition_fps have different row counts: {gs.shape[0]} and {gc.shape[0]}"
        )
    if rs.shape[0] != rc.shape[0]:
        raise ValueError(
            f"ref_structure_fps and ref_composition_fps have different row counts: {rs.shape[0]} and {rc.shape[0]}"
        )
    if rs.shape[0] == 0:
        raise ValueError("the reference set is empty; at least one reference fingerprint is required")
    if gs.shape[0] > 0 and gs.shape[1] != rs.shape[1]:
        raise ValueError(f"structure fingerprints differ in length: generated {gs.shape[1]}, reference {rs.shape[1]}")
    if gc.shape[0] > 0 and gc.shape[1] != rc.shape[1]:
        raise ValueError(f"composition fingerprints differ in length: generated {gc.shape[1]}, "
                         f"reference {rc.shape[1]}")
    s_cut = _check_nonnegative(structure_cutoff, "structure_cutoff")
    c_cut = _check_nonnegative(composition_cutoff, "composition_cutoff")
    n_gen = gs.shape[0]
    if n_requested is None:
        n_requested = n_gen
    if isinstance(n_requested, (bool, np.bool_)) or not isinstance(n_requested, numbers.Integral):
        raise ValueError(f"n_requested must be an integer; got {n_requested!r}")
    if n_requested < n_gen:
        raise ValueError(f"n_requested ({n_requested}) is smaller than the number of generated fingerprints ({n_gen})")
    rc_std = standardize_composition(rc, composition_means, composition_stds)
    if n_gen == 0:
        return {"COV-R": math.nan, "COV-P": math.nan}
    gc_std = standardize_composition(gc, composition_means, composition_stds)
    s_dist = cdist(gs, rs)  # (n_gen, n_ref)
    c_dist = cdist(gc_std, rc_std)
    recall = np.logical_and(s_dist.min(axis=0) <= s_cut, c_dist.min(axis=0) <= c_cut)
    precise = np.logical_and(s_dist.min(axis=1) <= s_cut, c_dist.min(axis=1) <= c_cut)
    return {"COV-R": float(np.mean(recall)), "COV-P": float(np.sum(precise)) / int(n_requested)}


# --------------------------------------------------------------------------------------------
# Earth mover's distances
# --------------------------------------------------------------------------------------------


def emd(values_a: ArrayLike, values_b: ArrayLike) -> float:
    """Earth mover's (Wasserstein-1) distance between two empirical 1-D distributions.

    Parameters
    ----------
    values_a : array-like of shape (n_a,)
        Samples of the first distribution (e.g. generated densities, g/cm^3).
    values_b : array-like of shape (n_b,)
        Samples of the second, in the same unit.

    Returns
    -------
    float
        Non-negative, in the values' unit; NaN when either input is empty (undefined).

    Raises
    ------
    ValueError
        If an input is not 1-D or contains NaN or inf.

    References
    ----------
    :func:`scipy.stats.wasserstein_distance`, as CDVAE ``GenEval.get_density_wdist``.

    Examples
    --------
    >>> emd([1.0, 2.0], [2.0, 3.0])
    1.0
    >>> emd([], [1.0])
    nan
    """
    a = _as_1d_float(values_a, "values_a")
    b = _as_1d_float(values_b, "values_b")
    for arr, name in ((a, "values_a"), (b, "values_b")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(wasserstein_distance(a, b))


def emd_density(gen_structures: Sequence[Any], ref_structures: Sequence[Any]) -> float:
    """EMD between the mass densities of generated and reference crystals, in g/cm^3.

    Parameters
    ----------
    gen_structures : sequence of pymatgen.core.Structure
        The valid generated crystals (the caller selects them; ``None`` is not accepted).
    ref_structures : sequence of pymatgen.core.Structure
        The reference crystals.

    Returns
    -------
    float
        g/cm^3; NaN when either set is empty.

    Raises
    ------
    ValueError
        If an entry is not a Structure or has a zero-volume cell.

    Notes
    -----
    CDVAE computes this over 1,000 valid crystals drawn at random (and fails with fewer); we use
    every valid generated crystal, so the value is deterministic.

    References
    ----------
    CDVAE ``GenEval.get_density_wdist``.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> a = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    >>> b = Structure(Lattice.cubic(4.0), ["Cu"], [[0, 0, 0]])
    >>> round(emd_density([a], [b]), 3)
    2.259
    """
    gen = _check_entries(gen_structures, "gen_structures", allow_none=False)
    ref = _check_entries(ref_structures, "ref_structures", allow_none=False)
    return emd([crystal_density(s) for s in gen], [crystal_density(s) for s in ref])


def emd_num_elements(gen_structures: Sequence[Any], ref_structures: Sequence[Any]) -> float:
    """EMD between the numbers of distinct elements of generated and reference crystals.

    Parameters
    ----------
    gen_structures : sequence of pymatgen.core.Structure
        The valid generated crystals (``None`` not accepted).
    ref_structures : sequence of pymatgen.core.Structure
        The reference crystals.

    Returns
    -------
    float
        In elements; NaN when either set is empty.

    Raises
    ------
    ValueError
        If an entry is not a Structure.

    Notes
    -----
    As :func:`emd_density`: all valid generated crystals, not CDVAE's random 1,000.

    References
    ----------
    CDVAE ``GenEval.get_num_elem_wdist``.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cu = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> emd_num_elements([cu, cu], [nacl, cu])
    0.5
    """
    gen = _check_entries(gen_structures, "gen_structures", allow_none=False)
    ref = _check_entries(ref_structures, "ref_structures", allow_none=False)
    return emd([num_distinct_elements(s) for s in gen], [num_distinct_elements(s) for s in ref])


# --------------------------------------------------------------------------------------------
# Success rates
# --------------------------------------------------------------------------------------------


def success_rate(n_requested: int, structures: Sequence[Any]) -> float:
    """Fraction of requested crystals that the model returned as a structure.

    ``(number of non-None entries of structures) / n_requested``: a "returned / parseable" rate.
    This is **not** CDVAE's success rate SR5/SR10/SR15, which measures property-targeted
    optimization (see :func:`optimization_success_rates`).

    Parameters
    ----------
    n_requested : int
        Number of crystals asked for, >= 1.
    structures : sequence of pymatgen.core.Structure or None
        What the model returned, at most ``n_requested`` entries; missing entries count as
        failures.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``n_requested`` is not a positive integer, ``structures`` is longer than
        ``n_requested``, or an entry is neither a Structure nor None.

    References
    ----------
    Ours (mateval); no counterpart in CDVAE, whose samples are always decoded to crystals.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cu = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    >>> success_rate(4, [cu, None, cu])
    0.5
    """
    if isinstance(n_requested, (bool, np.bool_)) or not isinstance(n_requested, numbers.Integral) or n_requested < 1:
        raise ValueError(f"n_requested must be a positive integer; got {n_requested!r}")
    entries = _check_entries(structures, "structures")
    if len(entries) > n_requested:
        raise ValueError(f"structures has {len(entries)} entries, more than n_requested={n_requested}")
    return sum(s is not None for s in entries) / int(n_requested)


def optimization_success_rates(
    property_values: ArrayLike, reference_property_values: ArrayLike
) -> dict[str, float]:
    """CDVAE's property-optimization success rates SR5, SR10 and SR15 (minimization).

    For each optimization run, its best (lowest) property value is compared with the 5th, 10th
    and 15th percentiles of the reference property distribution; SRp is the fraction of runs whose
    best value is ``<=`` the p-th percentile.

    Parameters
    ----------
    property_values : array-like of shape (n_runs,) or (n_steps, n_runs)
        Property of the optimized crystals, in the property's unit. 2-D: the crystals saved along
        each run (CDVAE saves several steps per initialization); the best over steps is used.
        NaN marks an invalid or failed crystal; a run with no finite value is not a success.
    reference_property_values : array-like of shape (n_ref,)
        The property over the reference (training) distribution, same unit, finite, n_ref >= 1.

    Returns
    -------
    dict
        ``{"SR5": float, "SR10": float, "SR15": float}``, each in [0, 1].

    Raises
    ------
    ValueError
        If ``property_values`` is empty or not 1-/2-D, contains inf, or the reference is empty,
        not 1-D or not finite.

    Notes
    -----
    CDVAE hard-codes the percentiles per dataset (``Percentiles`` in ``compute_metrics.py``,
    computed from its training data) and predicts the property of optimized crystals with a
    trained property model; here both the property values and the reference distribution are
    supplied by the caller, and the percentiles are computed with :func:`numpy.percentile`
    (linear interpolation). CDVAE's invalid crystals get +inf, equivalent to our NaN.

    References
    ----------
    CDVAE ``OptEval.get_success_rate``; Xie et al., ICLR 2022, Sec. 5.3 ("Property optimization").

    Examples
    --------
    >>> ref = np.arange(1, 101, dtype=float)          # percentiles 5.95, 10.9, 15.85
    >>> optimization_success_rates([1.0, 8.0, 12.0, 50.0], ref)
    {'SR5': 0.25, 'SR10': 0.5, 'SR15': 0.75}
    """
    try:
        values = np.asarray(property_values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"property_values must contain real numbers: {exc}") from None
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"property_values must be a non-empty 1-D or 2-D array; got shape {np.shape(property_values)}")
    if np.isinf(values).any():
        raise ValueError("property_values contains inf; mark invalid crystals with NaN")
    ref = _as_1d_float(reference_property_values, "reference_property_values")
    if ref.size == 0 or not np.all(np.isfinite(ref)):
        raise ValueError("reference_property_values must be non-empty and finite")
    best = np.where(np.isnan(values), np.inf, values).min(axis=0)  # (n_runs,)
    p5, p10, p15 = np.percentile(ref, [5, 10, 15])
    return {
        "SR5": float(np.mean(best <= p5)),
        "SR10": float(np.mean(best <= p10)),
        "SR15": float(np.mean(best <= p15)),
    }
