"""QM9: 133,885 small organic molecules (C, H, N, O, F; up to 9 heavy atoms) with geometries and
properties from DFT (B3LYP/6-31G(2df,p)); R. Ramakrishnan, P. O. Dral, M. Rupp, O. A. von
Lilienfeld, Sci. Data 1, 140022 (2014), CC0.

Format: extended XYZ read with ``ase.io.read(path, index=":")``, non-periodic, positions in Å, the
per-molecule properties in ``Atoms.info`` under QM9's own names and raw units (``U0`` in Hartree,
as in metatrain's ``qm9_reduced_100.xyz``). Each molecule becomes a ``pymatgen.core.Molecule`` of
its species and positions only (no ``properties``: the file's properties, the target among them,
must not reach the model); ids ``qm9-<k>``, ``k`` = 1-based position in the file.

Target ``U0``: the internal energy at 0 K, converted from Hartree to eV with ASE's CODATA
``ase.units.Hartree`` (27.211386... eV). Atom reference energies are not subtracted: the source
gives none, so the target is the total U0 as the file holds it (a model may subtract a fit of its
own, as the DimeNet++ adapter does).

Split (fixed by mateval; QM9 has no official one): the molecules are permuted once with
``numpy.random.default_rng(SPLIT_SEED)``; with at least :data:`DIMENET_TRAIN` + :data:`DIMENET_VAL`
+ 1 molecules the split follows DimeNet's sizes (110,000 train, 10,000 validation, the rest test;
Klicpera et al. 2020 draw theirs with their own seed, so the molecules differ); with fewer, 20 % of
the molecules are the test split. The test split is the same for every run; the validation split
is drawn from the rest with the **run's seed** (10 %, or DimeNet's 10,000), like mlearn's.

Variants: ``subset`` reads ``data/qm9_subset/qm9_reduced_100.xyz`` (100 molecules, embedded, sha256
in its ``SHA256SUMS``); ``full`` reads ``<root>/qm9/qm9.xyz`` from ``$MATEVAL_DATA`` (the whole of
QM9 in the same extended-XYZ layout). Every file's sha256 goes into the result and is checked
against a ``SHA256SUMS`` beside it when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from runner.contract import Sample
from runner.datasets.base import DatasetError, LoadedDataset, find_dataset_dir, truncate_splits, verified_sha256

NAME = "qm9"
SUBSET_NAME = "qm9_subset"
FILES = {"subset": "qm9_reduced_100.xyz", "full": "qm9.xyz"}
#: fixed permutation seed of the test split (the same for every run)
SPLIT_SEED = 0
#: DimeNet's training and validation sizes (Klicpera et al. 2020), used for the full QM9
DIMENET_TRAIN = 110_000
DIMENET_VAL = 10_000
#: without the full QM9: the test share, and the validation share of the rest
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
#: QM9's properties (Atoms.info keys) in the raw units of the file
PROPERTIES = {"U0": "Hartree"}


def data_files(variant: str, data_roots: Sequence[Path]) -> tuple[Path, Path]:
    """The dataset directory and the extended-XYZ file :func:`load` reads, without reading it.

    Raises:
        DatasetError: unknown variant, or no data root holds the file.
    """
    if variant not in FILES:
        raise DatasetError(f"{NAME}: unknown data variant {variant!r}; expected 'subset' or 'full'")
    directory = find_dataset_dir(SUBSET_NAME if variant == "subset" else NAME, data_roots, [FILES[variant]])
    return directory, directory / FILES[variant]


def data_sha256(variant: str, data_roots: Sequence[Path]) -> dict[str, str]:
    """``{file name: sha256}`` of the file read, checked against ``SHA256SUMS`` beside it.

    Raises:
        DatasetError: as :func:`data_files`, or a sha256 that differs (file named).
    """
    directory, path = data_files(variant, data_roots)
    return verified_sha256(directory, [path])


def read_molecules(path: Path, prop: str = "U0") -> list[Sample]:
    """The molecules of a QM9 extended-XYZ file, target ``prop`` in eV (Hartree × ``ase.units.Hartree``).

    Returns:
        one :class:`Sample` per molecule, ``structure`` a ``pymatgen.core.Molecule`` (Å),
        ``target`` a float (eV), ids ``qm9-1`` ... in file order.

    Raises:
        DatasetError: the file does not parse, a molecule is periodic, lacks ``prop`` or holds a
            non-finite value (file, molecule and id named).
    """
    from ase import units
    from ase.io import read
    from pymatgen.core import Molecule

    if prop not in PROPERTIES:
        raise DatasetError(f"{NAME}: unknown property {prop!r}; known: {', '.join(PROPERTIES)}")
    try:
        frames = read(str(path), index=":", format="extxyz")
    except Exception as exc:  # ase raises many kinds of errors on a malformed file
        raise DatasetError(f"{path}: cannot be read as extended XYZ: {type(exc).__name__}: {exc}") from exc
    samples = []
    for index, atoms in enumerate(frames):
        sample_id = f"{NAME}-{index + 1}"
        where = f"{path}: molecule {index + 1} ({sample_id})"
        if any(atoms.pbc):
            raise DatasetError(f"{where}: periodic (pbc={list(atoms.pbc)}); QM9 molecules are not")
        if prop not in atoms.info:
            raise DatasetError(f"{where}: no {prop!r} in its properties ({', '.join(sorted(atoms.info))})")
        try:
            value = float(atoms.info[prop]) * units.Hartree
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: {prop} is not a number: {exc}") from exc
        if not np.isfinite(value) or not np.all(np.isfinite(atoms.positions)):
            raise DatasetError(f"{where}: {prop} or positions are not finite")
        # species and positions only: the file's other properties (U0 among them) never reach the model
        molecule = Molecule(atoms.get_chemical_symbols(), atoms.positions.astype(float))
        samples.append(Sample(id=sample_id, structure=molecule, target=value))
    if not samples:
        raise DatasetError(f"{path}: holds no molecules")
    return samples


def split_sizes(n: int) -> tuple[int, int]:
    """``(n_test, n_val)`` for ``n`` molecules (see the module docstring)."""
    if n > DIMENET_TRAIN + DIMENET_VAL:
        return n - DIMENET_TRAIN - DIMENET_VAL, DIMENET_VAL
    n_test = max(1, int(round(TEST_FRACTION * n)))
    return n_test, max(1, int(round(VAL_FRACTION * (n - n_test))))


def load(variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None,
         seed: int = 0, prop: str = "U0") -> LoadedDataset:
    """Load QM9 (``prop`` in eV) on mateval's fixed test split, validation drawn with ``seed``.

    Args:
        variant: ``"subset"`` (the embedded 100 molecules) or ``"full"`` (``$MATEVAL_DATA/qm9/qm9.xyz``).
        data_roots: directories searched, in order, for the dataset directory.
        max_samples: optional ``{split: n}``: keep the first ``n`` samples of that split (tests).
        seed: the run's seed (draws the validation split).
        prop: the QM9 property (``"U0"``).

    Raises:
        DatasetError: as :func:`data_sha256` and :func:`read_molecules`; fewer than 3 molecules.
    """
    directory, path = data_files(variant, data_roots)
    sha = data_sha256(variant, data_roots)
    molecules = read_molecules(path, prop)
    if len(molecules) < 3:
        raise DatasetError(f"{path}: {len(molecules)} molecules; the split needs at least 3")
    n_test, n_val = split_sizes(len(molecules))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(molecules))
    test_index = set(int(i) for i in order[:n_test])
    pool = [i for i in range(len(molecules)) if i not in test_index]
    held = set(pool[int(i)] for i in np.random.default_rng(seed).permutation(len(pool))[:n_val])
    splits = {"train": [molecules[i] for i in pool if i not in held],
              "val": [molecules[i] for i in pool if i in held],
              "test": [molecules[i] for i in sorted(test_index)]}
    notes = truncate_splits(splits, max_samples, NAME, "molecules")
    if variant == "subset":
        notes.append("qm9_subset: 100 QM9 molecules (metatrain's qm9_reduced_100.xyz), enough to run the pipeline, "
                     "not a benchmark of record; put the whole of QM9 in $MATEVAL_DATA/qm9/qm9.xyz and use --data full")
    description = (f"mateval's fixed QM9 split of {path.name} ({len(molecules)} molecules): {n_test} test molecules "
                   f"from numpy default_rng({SPLIT_SEED}).permutation; validation: {n_val} of the rest drawn with "
                   f"numpy default_rng(run seed = {seed})")
    return LoadedDataset(name=NAME if variant == "full" else SUBSET_NAME, variant=variant, path=directory,
                         splits=splits, sha256=sha, split_description=description, notes=notes)
