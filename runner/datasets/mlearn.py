"""mlearn: DFT (VASP, PBE) total energies and forces of elemental Si, Ge, Li and Mo from the ML
interatomic-potential benchmark of Zuo et al., J. Phys. Chem. A 124, 731 (2020)
(materialsvirtuallab/mlearn, BSD 3-Clause).

Files ``<root>/mlearn/<element>/training.json`` and ``test.json``: a JSON list of records with
``structure`` (pymatgen ``Structure.as_dict()``, Å), ``outputs.energy`` (total energy of the cell,
eV), ``outputs.forces`` (``(n_atoms, 3)``, eV/Å), ``group`` (configuration type: AIMD-NVT,
Vacancy, Elastic, Surface, ...), ``num_atoms``, ``tag``. Structures are read with pymatgen.

Split: the paper's published training / test files; the validation split is drawn from the
training file with the **run's seed** (``numpy.random.default_rng(seed)`` permutation, 10 % of the
training structures, at least one), so that every model sees the same validation structures for a
given seed and hands them to its package explicitly. Ids follow JARVIS-Leaderboard's ``mlearn_*``
benchmarks: ``<element>-1`` ... ``<element>-<n_train>`` for the training file in file order, then
the test file. The configuration type goes to ``Sample.info["config_type"]``.

Variants: the mlearn Si files ship whole in mateval (``data/mlearn/Si/``, 3.0 MB, sha256 in its
``SHA256SUMS``); ``subset`` and ``full`` read the same published split, from the first data root
that holds ``mlearn/<element>/`` (Ge, Li and Mo: ``MATEVAL_DATA``). Every file's sha256 is checked
against the one recorded in ``/work/shared/data/mlearn/SOURCE.md`` (:data:`PUBLISHED_SHA256`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from runner.contract import Sample
from runner.datasets.base import DatasetError, LoadedDataset, find_dataset_dir, truncate_splits, verified_sha256

NAME = "mlearn"
ELEMENTS = ("Si", "Ge", "Li", "Mo")
FILES = ("training.json", "test.json")
#: share of the published training structures held out for validation (with the run's seed)
VAL_FRACTION = 0.1
#: sha256 of the files as published (mlearn commit 10c427a5, recorded in the data's SOURCE.md)
PUBLISHED_SHA256 = {
    "Si/training.json": "ae6d4b0a65b00e0fcf7ba0a6fad366716710d2f0d21d70199203089c6866b500",
    "Si/test.json": "d452b30a89f23bff76f7cc529b7b6c2d159ea81ccd5a4599fb1a18207654fa91",
    "Ge/training.json": "43dee02009a5167f94c7aafce19051222bcfc328c46181750cc2a2018187ca00",
    "Ge/test.json": "737ea6159c9dd27ebee7fb8ffae22f15e20466884927771248ca4f5b2cd3f093",
    "Li/training.json": "1cac01475c5a4fb85771ee1fd23366a6b8abfb9891e0c9e088b6e37228e147b3",
    "Li/test.json": "554d0ce60b35a07b357be3a80bf04f68eb8fc97b5a88328caf08c860b5e9b260",
    "Mo/training.json": "b13305fca0d0d2631ab080c8fcf13c743ee79a911712fb65a34ca88fadf09f9a",
    "Mo/test.json": "68169e2927c2115daa2f504805fcb9548ee65daf2dd015428807ba92f8e13bb8",
}


def _check_element(element: str) -> None:
    if element not in ELEMENTS:
        raise DatasetError(f"{NAME}: unknown element {element!r}; known: {', '.join(ELEMENTS)}")


def data_files(element: str, variant: str, data_roots: Sequence[Path]) -> tuple[Path, dict[str, Path]]:
    """The element's directory and its files (``{"train": training.json, "test": test.json}``),
    without reading them.

    Raises:
        DatasetError: unknown element or variant, or no data root holds ``mlearn/<element>/``.
    """
    _check_element(element)
    if variant not in ("subset", "full"):
        raise DatasetError(f"{NAME}: unknown data variant {variant!r}; expected 'subset' or 'full'")
    root = find_dataset_dir(NAME, data_roots, [f"{element}/{name}" for name in FILES])
    directory = root / element
    return directory, {"train": directory / "training.json", "test": directory / "test.json"}


def data_sha256(element: str, variant: str, data_roots: Sequence[Path]) -> dict[str, str]:
    """``{"<element>/<file>": sha256}`` of the element's files, checked against the directory's
    ``SHA256SUMS`` (when present) and against :data:`PUBLISHED_SHA256`.

    Raises:
        DatasetError: as :func:`data_files`, or a sha256 that differs (file named).
    """
    directory, files = data_files(element, variant, data_roots)
    sums = verified_sha256(directory, list(files.values()))
    out = {}
    for name, digest in sums.items():
        key = f"{element}/{name}"
        if PUBLISHED_SHA256.get(key, digest) != digest:
            raise DatasetError(f"{directory / name}: sha256 {digest} differs from the published file's "
                               f"{PUBLISHED_SHA256[key]} (mlearn commit 10c427a5): the file is not mlearn's")
        out[key] = digest
    return out


def read_records(path: Path, element: str, first_id: int) -> list[Sample]:
    """The samples of one mlearn file, ids ``<element>-<first_id>``, ``<element>-<first_id + 1>``, ...

    Raises:
        DatasetError: unreadable JSON, a record without structure, energy or forces, forces of
            another shape than ``(n_atoms, 3)``, or non-finite values (file, record and id named).
    """
    from pymatgen.core import Structure

    try:
        records = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DatasetError(f"{path}: holds a JSON {type(records).__name__}, expected a list of records")
    samples = []
    for index, record in enumerate(records):
        sample_id = f"{element}-{first_id + index}"
        where = f"{path}: record {index} ({sample_id})"
        try:
            structure = Structure.from_dict(record["structure"])
            energy = float(record["outputs"]["energy"])
            forces = np.asarray(record["outputs"]["forces"], dtype=np.float64)
            group = str(record["group"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if forces.shape != (len(structure), 3):
            raise DatasetError(f"{where}: forces of shape {forces.shape}, expected ({len(structure)}, 3)")
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise DatasetError(f"{where}: energy or forces are not finite")
        samples.append(Sample(id=sample_id, structure=structure, target={"energy": energy, "forces": forces},
                              info={"config_type": group}))
    return samples


def split_validation(train: list[Sample], seed: int, fraction: float = VAL_FRACTION) -> tuple[list, list]:
    """``(train, val)``: ``round(fraction * len(train))`` structures (at least one when there are
    two or more) drawn with ``numpy.random.default_rng(seed).permutation``; both keep file order."""
    n_val = max(1, int(round(fraction * len(train)))) if len(train) >= 2 else 0
    order = np.random.default_rng(seed).permutation(len(train))
    held = set(int(i) for i in order[:n_val])
    return ([s for i, s in enumerate(train) if i not in held], [s for i, s in enumerate(train) if i in held])


def load(element: str, variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None,
         seed: int = 0) -> LoadedDataset:
    """Load mlearn ``element`` on the published split, validation drawn with ``seed``.

    Args:
        element: ``"Si"``, ``"Ge"``, ``"Li"`` or ``"Mo"``.
        variant: ``"subset"`` or ``"full"`` (the same data, see the module docstring).
        data_roots: directories searched, in order, for ``mlearn/<element>/``.
        max_samples: optional ``{split: n}``: keep the first ``n`` samples of that split (tests).
        seed: the run's seed (draws the validation split).

    Raises:
        DatasetError: as :func:`data_sha256` and :func:`read_records`.
    """
    directory, files = data_files(element, variant, data_roots)
    sha = data_sha256(element, variant, data_roots)
    published_train = read_records(files["train"], element, 1)
    test = read_records(files["test"], element, len(published_train) + 1)
    train, val = split_validation(published_train, seed)
    splits = {"train": train, "val": val, "test": test}
    notes = []
    notes += truncate_splits(splits, max_samples, NAME, "structures")
    if variant == "subset":
        notes.append(f"mlearn {element} ships whole: the subset and full variants are the same published split")
    description = (f"Zuo et al. (2020)'s published mlearn {element} training.json / test.json "
                   f"({len(published_train)} / {len(test)} structures); validation: {len(val)} of the training "
                   f"structures ({VAL_FRACTION:.0%}) drawn with numpy default_rng(run seed = {seed})")
    return LoadedDataset(name=f"{NAME}_{element}", variant="full", path=directory, splits=splits, sha256=sha,
                         split_description=description, notes=notes)
