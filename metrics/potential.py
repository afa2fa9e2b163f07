"""Interatomic-potential metrics: pure functions of energies and forces.

A test set of ``n_structures`` structures is given as

- ``energy_true``, ``energy_pred``: shape ``(n_structures,)``, the **total** energy of each
  structure (cell), eV;
- ``forces_true``, ``forces_pred``: shape ``(n_atoms_total, 3)``, the forces on every atom of
  every structure, structure after structure (the atoms of structure 0 first), eV/Å;
- ``n_atoms``: shape ``(n_structures,)``, positive integers summing to ``n_atoms_total``.

This is the layout of fairchem's S2EF evaluator (``forces`` concatenated over the batch, ``natoms``
per system). Inputs are validated by :func:`check_potential_arrays`: the shapes above, at least one
structure, finite numbers. Every ``ValueError`` names the offending argument.

The functions return values in the input units (eV, eV/Å, eV/atom); :func:`potential_metrics`
converts errors to meV/atom and meV/Å, the units of MACE's error tables and of Zuo et al. (2020).

Sources:

- energy and force MAE/RMSE: MACE's error table (``mace/tools/train.py``, class ``MACELoss``:
  ``mae_e_per_atom``, ``rmse_e_per_atom`` from ``delta_es_per_atom = (E_ref - E_pred) / n_atoms``,
  ``mae_f``, ``rmse_f`` over every force component; ``mace/tools/utils.py``: ``compute_mae``,
  ``compute_rmse``); the same definitions as Zuo et al., J. Phys. Chem. A 124, 731 (2020).
- force cosine similarity, force magnitude error, EFwT: fairchem's S2EF evaluator
  (FAIR-Chem/fairchem, ``src/fairchem/core/modules/evaluator.py``, commit 09c63cb6, functions
  ``cosine_similarity``, ``magnitude_error``, ``energy_forces_within_threshold``; Chanussot et
  al., ACS Catal. 11, 6059 (2021), the OC20 paper, section "S2EF" metrics).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._validation import _to_float64

__all__ = [
    "check_potential_arrays",
    "energy_mae_per_atom",
    "energy_rmse_per_atom",
    "force_mae",
    "force_rmse",
    "force_cosine_similarity",
    "force_magnitude_error",
    "energy_forces_within_threshold",
    "potential_metrics",
    "potential_metrics_by_group",
    "element_counts",
    "linear_reference_energies",
    "linear_reference_predict",
    "COSINE_EPS",
    "EFWT_ENERGY_THRESHOLD",
    "EFWT_FORCE_THRESHOLD",
]

#: ``eps`` of ``torch.cosine_similarity`` (its default), which fairchem's ``cosine_similarity`` calls.
COSINE_EPS = 1e-8
#: fairchem's ``energy_forces_within_threshold``: ``e_thresh = 0.02`` eV on the total energy.
EFWT_ENERGY_THRESHOLD = 0.02
#: fairchem's ``energy_forces_within_threshold``: ``f_thresh = 0.03`` eV/Å on every force component.
EFWT_FORCE_THRESHOLD = 0.03


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
def _energies(x: ArrayLike, name: str) -> np.ndarray:
    arr = _to_float64(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one total energy per structure; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds {int((~np.isfinite(arr)).sum())} non-finite value(s)")
    return arr


def _forces(x: ArrayLike, name: str) -> np.ndarray:
    arr = _to_float64(x, name)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n_atoms_total, 3); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds {int((~np.isfinite(arr)).sum())} non-finite value(s)")
    return arr


def _n_atoms(x: ArrayLike, name: str = "n_atoms") -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be 1-D and non-empty, one atom count per structure; got shape {arr.shape}")
    as_float = _to_float64(arr, name)
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)) or np.any(as_float < 1):
        raise ValueError(f"{name} must hold positive integers")
    return as_float.astype(np.int64)


def check_potential_arrays(energy_true: ArrayLike, energy_pred: ArrayLike, forces_true: ArrayLike,
                           forces_pred: ArrayLike, n_atoms: ArrayLike) -> tuple[np.ndarray, ...]:
    """Validate and convert the inputs of the metrics (see the module docstring for the layout).

    Returns:
        ``(energy_true, energy_pred, forces_true, forces_pred, n_atoms)``: float64 arrays of shapes
        ``(n,)``, ``(n,)``, ``(N, 3)``, ``(N, 3)`` and an int64 array of shape ``(n,)``.

    Raises:
        ValueError: naming the argument: wrong shape, no structure, non-finite values, atom counts
            that are not positive integers or do not sum to the number of force rows.
    """
    et, ep = _energies(energy_true, "energy_true"), _energies(energy_pred, "energy_pred")
    ft, fp = _forces(forces_true, "forces_true"), _forces(forces_pred, "forces_pred")
    n = _n_atoms(n_atoms)
    if et.shape != ep.shape or et.shape != n.shape:
        raise ValueError(f"energy_true, energy_pred and n_atoms must have the same length; got {et.shape[0]}, "
                         f"{ep.shape[0]} and {n.shape[0]}")
    if ft.shape != fp.shape:
        raise ValueError(f"forces_true and forces_pred have different shapes: {ft.shape} and {fp.shape}")
    if int(n.sum()) != ft.shape[0]:
        raise ValueError(f"n_atoms sums to {int(n.sum())} but forces_true has {ft.shape[0]} rows (atoms)")
    return et, ep, ft, fp, n


def _energy_pair(energy_true, energy_pred, n_atoms):
    et, ep = _energies(energy_true, "energy_true"), _energies(energy_pred, "energy_pred")
    n = _n_atoms(n_atoms)
    if et.shape != ep.shape or et.shape != n.shape:
        raise ValueError(f"energy_true, energy_pred and n_atoms must have the same length; got {et.shape[0]}, "
                         f"{ep.shape[0]} and {n.shape[0]}")
    return et, ep, n


def _force_pair(forces_true, forces_pred):
    ft, fp = _forces(forces_true, "forces_true"), _forces(forces_pred, "forces_pred")
    if ft.shape != fp.shape:
        raise ValueError(f"forces_true and forces_pred have different shapes: {ft.shape} and {fp.shape}")
    if ft.shape[0] == 0:
        raise ValueError("forces_true and forces_pred are empty; at least one atom is required")
    return ft, fp


# --------------------------------------------------------------------------
# Energies
# --------------------------------------------------------------------------
def energy_mae_per_atom(energy_true: ArrayLike, energy_pred: ArrayLike, n_atoms: ArrayLike) -> float:
    """Mean over structures of ``|E_pred - E_true| / n_atoms``, in eV/atom.

    Args:
        energy_true, energy_pred: total energies, shape ``(n,)``, eV.
        n_atoms: atoms per structure, shape ``(n,)``.

    Source: MACE ``mae_e_per_atom`` (``mace/tools/train.py``, ``MACELoss``).

    Raises:
        ValueError: as :func:`check_potential_arrays` for these arguments.

    Examples:
        >>> energy_mae_per_atom([-10.0, -20.0], [-9.0, -22.0], [2, 4])
        0.5
    """
    et, ep, n = _energy_pair(energy_true, energy_pred, n_atoms)
    return float(np.mean(np.abs(ep - et) / n))


def energy_rmse_per_atom(energy_true: ArrayLike, energy_pred: ArrayLike, n_atoms: ArrayLike) -> float:
    """``sqrt(mean over structures of ((E_pred - E_true) / n_atoms)^2)``, in eV/atom.

    Args and errors as :func:`energy_mae_per_atom`. Source: MACE ``rmse_e_per_atom``
    (``mace/tools/train.py``, ``MACELoss``; ``compute_rmse`` of ``delta_es_per_atom``).

    Examples:
        >>> round(energy_rmse_per_atom([-10.0, -20.0], [-9.0, -22.0], [2, 4]), 12)
        0.5
    """
    et, ep, n = _energy_pair(energy_true, energy_pred, n_atoms)
    return float(np.sqrt(np.mean(((ep - et) / n) ** 2)))


# --------------------------------------------------------------------------
# Forces
# --------------------------------------------------------------------------
def force_mae(forces_true: ArrayLike, forces_pred: ArrayLike) -> float:
    """Mean of ``|F_pred - F_true|`` over every force component of every atom, in eV/Å.

    Args:
        forces_true, forces_pred: shape ``(N, 3)``, eV/Å.

    Source: MACE ``mae_f`` (``compute_mae`` of all force components); fairchem ``forces_mae``.

    Raises:
        ValueError: shapes differ or are not ``(N, 3)`` with ``N >= 1``, or non-finite values.

    Examples:
        >>> force_mae([[0.0, 0.0, 0.0]], [[0.3, -0.6, 0.0]])
        0.3
    """
    ft, fp = _force_pair(forces_true, forces_pred)
    return float(np.mean(np.abs(fp - ft)))


def force_rmse(forces_true: ArrayLike, forces_pred: ArrayLike) -> float:
    """``sqrt(mean of (F_pred - F_true)^2)`` over every force component of every atom, in eV/Å.

    Args and errors as :func:`force_mae`. Source: MACE ``rmse_f`` (``compute_rmse`` of all force
    components).

    Examples:
        >>> round(force_rmse([[0.0, 0.0, 0.0]], [[0.3, -0.3, 0.0]]), 12)
        0.244948974278
    """
    ft, fp = _force_pair(forces_true, forces_pred)
    return float(np.sqrt(np.mean((fp - ft) ** 2)))


def _cosine_per_atom(ft: np.ndarray, fp: np.ndarray) -> np.ndarray:
    # torch.cosine_similarity(x1, x2, dim=1, eps=1e-8): each norm clamped at eps separately
    # (x1 . x2) / (max(|x1|, eps) * max(|x2|, eps)); checked against torch 2.13.
    norm_t = np.maximum(np.linalg.norm(ft, axis=1), COSINE_EPS)
    norm_p = np.maximum(np.linalg.norm(fp, axis=1), COSINE_EPS)
    return np.sum(ft * fp, axis=1) / (norm_t * norm_p)


def force_cosine_similarity(forces_true: ArrayLike, forces_pred: ArrayLike) -> float:
    """Mean over atoms of the cosine similarity of the predicted and true force vectors.

    Per atom ``F_pred . F_true / (max(|F_pred|, eps) * max(|F_true|, eps))`` with ``eps = 1e-8``
    (``torch.cosine_similarity``'s default, which fairchem calls), so an atom with a zero predicted
    or zero true force counts as 0. Dimensionless, in [-1, 1]; higher is better.

    Source: fairchem ``cosine_similarity`` (``src/fairchem/core/modules/evaluator.py``), which
    computes it in float32; here float64 (the values differ by float32 rounding at most).

    Raises:
        ValueError: as :func:`force_mae`.

    Examples:
        >>> force_cosine_similarity([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        0.5
    """
    ft, fp = _force_pair(forces_true, forces_pred)
    return float(np.mean(_cosine_per_atom(ft, fp)))


def force_magnitude_error(forces_true: ArrayLike, forces_pred: ArrayLike) -> float:
    """Mean over atoms of ``| |F_pred| - |F_true| |`` (Euclidean norms, ``p=2``), in eV/Å.

    Source: fairchem ``magnitude_error`` (``src/fairchem/core/modules/evaluator.py``, default
    ``p=2``).

    Raises:
        ValueError: as :func:`force_mae`.

    Examples:
        >>> force_magnitude_error([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
        1.5
    """
    ft, fp = _force_pair(forces_true, forces_pred)
    return float(np.mean(np.abs(np.linalg.norm(fp, axis=1) - np.linalg.norm(ft, axis=1))))


def _within_threshold(et, ep, ft, fp, n, e_thresh, f_thresh) -> np.ndarray:
    force_error = np.abs(ft - fp)
    ends = np.cumsum(n)
    starts = ends - n
    max_force_error = np.array([force_error[s:e].max() for s, e in zip(starts, ends)])
    return (np.abs(et - ep) < e_thresh) & (max_force_error < f_thresh)


def energy_forces_within_threshold(energy_true: ArrayLike, energy_pred: ArrayLike, forces_true: ArrayLike,
                                   forces_pred: ArrayLike, n_atoms: ArrayLike,
                                   energy_threshold: float = EFWT_ENERGY_THRESHOLD,
                                   force_threshold: float = EFWT_FORCE_THRESHOLD) -> float:
    """EFwT: the fraction of structures whose **total** energy error is below 0.02 eV and whose
    every force component error is below 0.03 eV/Å (both strict ``<``).

    fairchem's threshold is on the total energy of the system (its ``target["energy"]``, one value
    per system), not per atom: for a 64-atom cell 0.02 eV is 0.3 meV/atom, so EFwT is strict for
    bulk cells.

    Args:
        energy_true, energy_pred: total energies, shape ``(n,)``, eV.
        forces_true, forces_pred: shape ``(N, 3)``, eV/Å, structure after structure.
        n_atoms: atoms per structure, shape ``(n,)``, summing to ``N``.
        energy_threshold, force_threshold: fairchem's ``e_thresh`` and ``f_thresh``; other values
            make a variant that must be reported under another name.

    Returns:
        A fraction in [0, 1]; higher is better.

    Source: fairchem ``energy_forces_within_threshold`` (``src/fairchem/core/modules/evaluator.py``).

    Raises:
        ValueError: as :func:`check_potential_arrays`.

    Examples:
        >>> energy_forces_within_threshold([-1.0, -2.0], [-1.01, -2.0], [[0, 0, 0], [0, 0, 0]],
        ...                                [[0.0, 0.0, 0.0], [0.0, 0.05, 0.0]], [1, 1])
        0.5
    """
    et, ep, ft, fp, n = check_potential_arrays(energy_true, energy_pred, forces_true, forces_pred, n_atoms)
    return float(np.mean(_within_threshold(et, ep, ft, fp, n, energy_threshold, force_threshold)))


# --------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------
#: metric name -> unit of the value :func:`potential_metrics` returns
METRIC_UNITS = {
    "energy_MAE": "meV/atom",
    "energy_RMSE": "meV/atom",
    "force_MAE": "meV/Å",
    "force_RMSE": "meV/Å",
    "force_cos": None,
    "force_magnitude_error": "meV/Å",
    "EFwT": None,
}


def potential_metrics(energy_true: ArrayLike, energy_pred: ArrayLike, forces_true: ArrayLike,
                      forces_pred: ArrayLike, n_atoms: ArrayLike) -> dict[str, float]:
    """Every potential metric, errors in meV (units in :data:`METRIC_UNITS`).

    Returns:
        ``{"energy_MAE", "energy_RMSE"}`` (meV/atom, :func:`energy_mae_per_atom`,
        :func:`energy_rmse_per_atom` times 1000), ``{"force_MAE", "force_RMSE",
        "force_magnitude_error"}`` (meV/Å), ``"force_cos"`` (:func:`force_cosine_similarity`) and
        ``"EFwT"`` (:func:`energy_forces_within_threshold`, a fraction).

    Raises:
        ValueError: as :func:`check_potential_arrays`.
    """
    et, ep, ft, fp, n = check_potential_arrays(energy_true, energy_pred, forces_true, forces_pred, n_atoms)
    return {
        "energy_MAE": 1000.0 * energy_mae_per_atom(et, ep, n),
        "energy_RMSE": 1000.0 * energy_rmse_per_atom(et, ep, n),
        "force_MAE": 1000.0 * force_mae(ft, fp),
        "force_RMSE": 1000.0 * force_rmse(ft, fp),
        "force_cos": force_cosine_similarity(ft, fp),
        "force_magnitude_error": 1000.0 * force_magnitude_error(ft, fp),
        "EFwT": energy_forces_within_threshold(et, ep, ft, fp, n),
    }


def potential_metrics_by_group(energy_true: ArrayLike, energy_pred: ArrayLike, forces_true: ArrayLike,
                               forces_pred: ArrayLike, n_atoms: ArrayLike,
                               groups: Sequence[Any]) -> dict[str, dict[str, float]]:
    """:func:`potential_metrics` of each group of structures (e.g. mlearn's configuration types),
    plus ``n_structures`` per group.

    Args:
        groups: one label per structure, shape ``(n,)``; converted with ``str``.

    Returns:
        ``{group: {metric: value, ..., "n_structures": count}}``, groups sorted by name.

    Raises:
        ValueError: as :func:`check_potential_arrays`, or ``groups`` of another length.
    """
    et, ep, ft, fp, n = check_potential_arrays(energy_true, energy_pred, forces_true, forces_pred, n_atoms)
    labels = [str(g) for g in groups]
    if len(labels) != n.size:
        raise ValueError(f"groups has {len(labels)} entries but there are {n.size} structures")
    ends = np.cumsum(n)
    starts = ends - n
    out: dict[str, dict[str, float]] = {}
    for label in sorted(set(labels)):
        mask = np.array([g == label for g in labels])
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts[mask], ends[mask])])
        values = potential_metrics(et[mask], ep[mask], ft[rows], fp[rows], n[mask])
        out[label] = {**values, "n_structures": int(mask.sum())}
    return out


# --------------------------------------------------------------------------
# Baseline: per-element linear reference energies
# --------------------------------------------------------------------------
def element_counts(species: Sequence[Sequence[str]], elements: Sequence[str]) -> np.ndarray:
    """Count matrix of shape ``(n_structures, len(elements))``: how many atoms of each element
    each structure holds.

    Args:
        species: per structure, the chemical symbol of each atom.
        elements: the columns, e.g. the training set's elements sorted by Z.

    Raises:
        ValueError: an atom of an element not in ``elements`` (structure and element named).
    """
    column = {el: i for i, el in enumerate(elements)}
    counts = np.zeros((len(species), len(column)), dtype=np.float64)
    for row, symbols in enumerate(species):
        for symbol in symbols:
            if symbol not in column:
                raise ValueError(f"structure {row} holds {symbol}, which is not among elements {list(elements)}")
            counts[row, column[symbol]] += 1
    return counts


def linear_reference_energies(counts: ArrayLike, energies: ArrayLike) -> np.ndarray:
    """Per-element reference energies ``e`` (eV/atom) of the least-squares fit
    ``E_total ~ counts @ e`` (no intercept), with ``numpy.linalg.lstsq`` (minimum-norm solution
    when the counts are rank-deficient, e.g. every structure of one compound has the same
    stoichiometry).

    This is the "E0s" / atomic reference-energy fit potentials subtract before training (MACE
    ``--E0s=average``, nequip's per-species shifts), used on its own as the baseline of the
    potential task: energies from element counts, zero forces.

    Args:
        counts: shape ``(n_structures, n_elements)`` (:func:`element_counts`).
        energies: total energies, shape ``(n_structures,)``, eV.

    Returns:
        float64 array of shape ``(n_elements,)``, eV/atom.

    Raises:
        ValueError: mismatched shapes, no structure, non-finite values.

    Examples:
        >>> linear_reference_energies([[1, 0], [0, 2], [1, 1]], [-1.0, -4.0, -3.0]).round(12).tolist()
        [-1.0, -2.0]
    """
    c = _to_float64(counts, "counts")
    e = _energies(energies, "energies")
    if c.ndim != 2 or c.shape[0] != e.shape[0] or c.shape[0] == 0:
        raise ValueError(f"counts must have shape (n_structures, n_elements) with n_structures = len(energies) "
                         f">= 1; got {c.shape} and {e.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("counts holds non-finite values")
    solution, *_ = np.linalg.lstsq(c, e, rcond=None)
    return solution


def linear_reference_predict(counts: ArrayLike, reference_energies: ArrayLike) -> np.ndarray:
    """Total energies ``counts @ reference_energies`` (eV), shape ``(n_structures,)``.

    Raises:
        ValueError: shapes that do not match.
    """
    c = _to_float64(counts, "counts")
    r = _to_float64(reference_energies, "reference_energies")
    if c.ndim != 2 or r.ndim != 1 or c.shape[1] != r.shape[0]:
        raise ValueError(f"counts {c.shape} and reference_energies {r.shape} do not match")
    return c @ r
