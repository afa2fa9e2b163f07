"""phonon_dos_petretto: phonon densities of states of 1,522 Materials Project crystals (Petretto et
al., Sci. Data 5, 180065 (2018)) as processed for the e3nn phonon-DOS work (Chen et al., Adv. Sci.
8, 2004214 (2021); ninarina12/phononDoS_tutorial), with the tutorial's published train / valid /
test index files (1,192 / 141 / 189), which are the task's split.

``data.csv`` columns: ``mp_id``; ``structure``, a Python dict literal from ASE ``Atoms.todict()``
(``numbers``, Cartesian ``positions`` in Å, ``cell`` 3×3 in Å, ``pbc``) parsed with
``ast.literal_eval`` (never ``eval``); ``phfreq``, the 51-point grid (0 to 1000 cm⁻¹);
``phdos``, the DOS on that grid, max-normalized per crystal.

The data are small (5.2 MB), so mateval ships them in ``data/phonon_dos_petretto/``; ``subset``
and ``full`` both read the same published split (a data root that holds the directory wins).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from runner.contract import Sample
from runner.datasets.base import DatasetError, LoadedDataset, find_dataset_dir, truncate_splits, verified_sha256

NAME = "phonon_dos_petretto"
FILES = ("data.csv", "idx_train.txt", "idx_valid.txt", "idx_test.txt")
SPLIT_FILES = {"train": "idx_train.txt", "val": "idx_valid.txt", "test": "idx_test.txt"}
COLUMNS = ("mp_id", "structure", "phfreq", "phdos")


def _literal(text: str, path: Path, row: int, mp_id: str, column: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise DatasetError(f"{path}: row {row} ({mp_id}): column {column!r} is not a Python literal: {exc}") from exc


def parse_structure(text: str, *, path: Path, row: int, mp_id: str):
    """An ASE ``Atoms.todict()`` literal -> ``pymatgen.core.Structure`` (Cartesian positions, Å).

    Raises:
        DatasetError: naming the file, row and mp_id when the literal or the structure is invalid.
    """
    from pymatgen.core import Lattice, Structure

    atoms = _literal(text, path, row, mp_id, "structure")
    try:
        if not atoms.get("numbers"):
            raise ValueError("no atoms")
        return Structure(Lattice(atoms["cell"]), atoms["numbers"], atoms["positions"], coords_are_cartesian=True)
    except Exception as exc:  # KeyError, ValueError from pymatgen
        raise DatasetError(f"{path}: row {row} ({mp_id}): structure is not a valid crystal: {exc}") from exc


def read_indices(path: Path, n_rows: int) -> list[int]:
    """0-based row positions, one per line.

    Raises:
        DatasetError: a line is not an integer or an index is out of range (file and line named).
    """
    indices = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            index = int(line)
        except ValueError:
            raise DatasetError(f"{path}: line {line_number}: {line!r} is not an integer row index") from None
        if not 0 <= index < n_rows:
            raise DatasetError(f"{path}: line {line_number}: row index {index} outside 0..{n_rows - 1}")
        indices.append(index)
    return indices


def data_files(variant: str, data_roots: Sequence[Path]) -> tuple[Path, dict[str, Path]]:
    """The directory and every file :func:`load` reads (by file name), without reading them.

    Raises:
        DatasetError: unknown variant or the directory is not found.
    """
    if variant not in ("subset", "full"):
        raise DatasetError(f"{NAME}: unknown data variant {variant!r}; expected 'subset' or 'full'")
    directory = find_dataset_dir(NAME, data_roots, FILES)
    return directory, {name: directory / name for name in FILES}


def load(variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None) -> tuple[LoadedDataset, np.ndarray]:
    """Load the published split; returns ``(dataset, grid)`` with ``grid`` the 51 frequencies (cm⁻¹).

    Raises:
        DatasetError: unknown variant, files missing, a malformed literal, a grid that differs
            between rows, or overlapping splits.
    """
    directory, files = data_files(variant, data_roots)
    sha = verified_sha256(directory, list(files.values()))
    path = directory / "data.csv"
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: cannot be read as CSV: {exc}") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}")
    splits_idx = {split: read_indices(directory / name, len(frame)) for split, name in SPLIT_FILES.items()}
    seen: dict[int, str] = {}
    for split, indices in splits_idx.items():
        for index in indices:
            if index in seen:
                raise DatasetError(f"{directory}: row {index} is in both the {seen[index]} and the {split} split")
            seen[index] = split
    notes = []
    notes += truncate_splits(splits_idx, max_samples, NAME, "crystals")
    grid = None
    splits: dict[str, list[Sample]] = {}
    for split, indices in splits_idx.items():
        samples = []
        for row in indices:
            record = frame.iloc[row]
            mp_id = str(record["mp_id"])
            freq = np.asarray(_literal(record["phfreq"], path, row, mp_id, "phfreq"), dtype=np.float64)
            dos = np.asarray(_literal(record["phdos"], path, row, mp_id, "phdos"), dtype=np.float64)
            if grid is None:
                grid = freq
            if freq.shape != grid.shape or not np.allclose(freq, grid):
                raise DatasetError(f"{path}: row {row} ({mp_id}): phfreq differs from the first row's grid")
            if dos.shape != grid.shape or not np.all(np.isfinite(dos)):
                raise DatasetError(f"{path}: row {row} ({mp_id}): phdos must be {grid.size} finite values")
            samples.append(Sample(id=mp_id, structure=parse_structure(record["structure"], path=path, row=row,
                                                                     mp_id=mp_id), target=dos))
        splits[split] = samples
    if variant == "subset":
        notes.append("the phonon data ship whole: the subset and full variants are the same published split")
    dataset = LoadedDataset(name=NAME, variant="full", path=directory, splits=splits,
                            sha256=sha,
                            split_description="the phononDoS tutorial's published idx_train / idx_valid / idx_test "
                                              "(element-balanced, 1,192 / 141 / 189)", notes=notes)
    return dataset, grid
