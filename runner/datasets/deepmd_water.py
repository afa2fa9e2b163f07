"""deepmd_water: DeePMD-kit's example liquid-water data (deepmodeling/deepmd-kit,
``examples/water/data``, LGPL-3.0): 4 periodic systems of 64 H2O (192 atoms), 400 frames in all,
total energies (eV) and forces (eV/Å). DeePMD-kit's documentation says these data are "of very
limited amount, provided only for testing purposes, and should not be used to train a production
model"; the level of theory is not documented. mateval uses them as a second, small
energy-and-forces test case, not as a benchmark of record.

Format (DeePMD npy "system", read with ``numpy.load(allow_pickle=False)``): ``data_<k>/type.raw``
(one type index per atom), ``type_map.raw`` (type index -> element), ``set.*/coord.npy``
(``(frames, 3 n_atoms)``, Cartesian, Å), ``box.npy`` (``(frames, 9)``, cell vectors as rows, Å),
``energy.npy`` (``(frames,)``, eV), ``force.npy`` (``(frames, 3 n_atoms)``, eV/Å). Each frame
becomes a pymatgen ``Structure`` (periodic); ids ``data_<k>/set.<nnn>/<frame>``.

Split (stated by mateval; the source has none): systems ``data_0``, ``data_1`` and ``data_2``
(320 frames) are the training pool, from which 10 % of the frames are held out for validation
with the run's seed; ``data_3`` (80 frames) is the test split. Frames of one system are steps of
one trajectory, so a whole held-out system keeps correlated frames out of the test split.

Variants: ``full`` reads ``<root>/deepmd_water/`` (1.9 MB, ``$MATEVAL_DATA``); ``subset`` reads
``data/deepmd_water_subset/``, a compact real subset committed to mateval and drawn by
:func:`draw_subset` (every 4th frame of each system, same layout, float32 arrays copied unchanged;
its ``SHA256SUMS`` lists every file by its path in the folder and is checked on every load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from runner.contract import Sample
from runner.datasets.base import CHECKSUM_FILE, DatasetError, LoadedDataset, file_sha256, find_dataset_dir, truncate_splits
from runner.datasets.mlearn import VAL_FRACTION, split_validation

NAME = "deepmd_water"
SUBSET_NAME = "deepmd_water_subset"
#: :func:`draw_subset` keeps every ``SUBSET_STRIDE``-th frame of each system
SUBSET_STRIDE = 4
TRAIN_SYSTEMS = ("data_0", "data_1", "data_2")
TEST_SYSTEMS = ("data_3",)
ARRAYS = ("coord.npy", "box.npy", "energy.npy", "force.npy")


def data_files(variant: str, data_roots: Sequence[Path]) -> tuple[Path, list[Path]]:
    """The dataset directory and every file :func:`load` reads, without reading them.

    Raises:
        DatasetError: unknown variant, or no data root holds ``deepmd_water/`` with its systems.
    """
    if variant not in ("subset", "full"):
        raise DatasetError(f"{NAME}: unknown data variant {variant!r}; expected 'subset' or 'full'")
    systems = TRAIN_SYSTEMS + TEST_SYSTEMS
    directory = find_dataset_dir(SUBSET_NAME if variant == "subset" else NAME, data_roots, [f"{s}/{f}" for s in systems for f in ("type.raw", "type_map.raw")])
    files = []
    for system in systems:
        files += [directory / system / "type.raw", directory / system / "type_map.raw"]
        sets = sorted(p for p in (directory / system).glob("set.*") if p.is_dir())
        if not sets:
            raise DatasetError(f"{directory / system}: no set.* folder")
        files += [s / name for s in sets for name in ARRAYS]
    return directory, files


def data_sha256(variant: str, data_roots: Sequence[Path]) -> dict[str, str]:
    """``{path relative to the dataset directory: sha256}`` of every file read, checked against
    the directory's ``SHA256SUMS`` when it has one (paths relative to the directory).

    Raises:
        DatasetError: as :func:`data_files`, a file is missing, or a sha256 differs from
            ``SHA256SUMS`` (file named).
    """
    directory, files = data_files(variant, data_roots)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetError(f"{NAME}: missing file(s) {', '.join(missing[:4])}")
    sums = {f.relative_to(directory).as_posix(): file_sha256(f) for f in files}
    listing = directory / CHECKSUM_FILE
    if listing.is_file():
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            digest, _, name = line.partition("  ")
            if not line.strip():
                continue
            if len(digest) != 64 or not name.strip():
                raise DatasetError(f"{listing}: line {number}: expected '<sha256>  <path>', got {line!r}")
            name = name.strip()
            if name in sums and sums[name] != digest.lower():
                raise DatasetError(f"{directory / name}: sha256 mismatch: expected {digest.lower()} ({listing.name}), "
                                   f"got {sums[name]}; the file is corrupted or was modified: restore it "
                                   "(e.g. git checkout -- data/)")
    return sums


def _array(path: Path, shape: tuple) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as a .npy array: {exc}") from exc
    if array.shape[1:] != shape[1:] or (shape[0] is not None and array.shape[0] != shape[0]):
        raise DatasetError(f"{path}: shape {array.shape}, expected {tuple('frames' if d is None else d for d in shape)}")
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{path}: holds non-finite values")
    return array


def read_system(directory: Path) -> list[Sample]:
    """The frames of one DeePMD system as samples (targets: total energy, forces).

    Raises:
        DatasetError: unreadable or inconsistent files (file named).
    """
    from pymatgen.core import Lattice, Structure

    type_map = (directory / "type_map.raw").read_text().split()
    try:
        types = [int(t) for t in (directory / "type.raw").read_text().split()]
    except ValueError as exc:
        raise DatasetError(f"{directory / 'type.raw'}: not integers: {exc}") from exc
    if not types or max(types) >= len(type_map) or min(types) < 0:
        raise DatasetError(f"{directory / 'type.raw'}: type indices outside 0..{len(type_map) - 1} (type_map.raw)")
    species = [type_map[t] for t in types]
    n = len(types)
    samples = []
    for set_dir in sorted(p for p in directory.glob("set.*") if p.is_dir()):
        energy = _array(set_dir / "energy.npy", (None,))
        frames = energy.shape[0]
        coord = _array(set_dir / "coord.npy", (frames, 3 * n))
        box = _array(set_dir / "box.npy", (frames, 9))
        force = _array(set_dir / "force.npy", (frames, 3 * n))
        for frame in range(frames):
            structure = Structure(Lattice(box[frame].reshape(3, 3)), species, coord[frame].reshape(n, 3),
                                  coords_are_cartesian=True)
            samples.append(Sample(id=f"{directory.name}/{set_dir.name}/{frame}", structure=structure,
                                  target={"energy": float(energy[frame]), "forces": force[frame].reshape(n, 3)},
                                  info={"config_type": directory.name}))
    return samples


def load(variant: str, data_roots: Sequence[Path], max_samples: dict[str, int] | None = None,
         seed: int = 0) -> LoadedDataset:
    """Load the water data on mateval's split (see the module docstring).

    Raises:
        DatasetError: as :func:`data_sha256` and :func:`read_system`.
    """
    directory, _ = data_files(variant, data_roots)
    sha = data_sha256(variant, data_roots)
    pool = [s for system in TRAIN_SYSTEMS for s in read_system(directory / system)]
    test = [s for system in TEST_SYSTEMS for s in read_system(directory / system)]
    train, val = split_validation(pool, seed)
    splits = {"train": train, "val": val, "test": test}
    notes = ["DeePMD-kit's example water data: its authors provide them only for testing, not to train a "
             "production model"]
    notes += truncate_splits(splits, max_samples, NAME, "frames")
    description = (f"mateval's split of DeePMD-kit's example water data: systems {', '.join(TRAIN_SYSTEMS)} "
                   f"({len(pool)} frames) for training, {len(val)} of them ({VAL_FRACTION:.0%}) held out for "
                   f"validation with numpy default_rng(run seed = {seed}); system {', '.join(TEST_SYSTEMS)} "
                   f"({len(test)} frames) as test")
    if variant == "subset":
        description += (f"; the committed subset {SUBSET_NAME} (every {SUBSET_STRIDE}th frame of each system, "
                        "see its SOURCE.md)")
    return LoadedDataset(name=SUBSET_NAME if variant == "subset" else NAME, variant=variant, path=directory,
                         splits=splits, sha256=sha, split_description=description, notes=notes)


def draw_subset(source: Path, out: Path, stride: int = SUBSET_STRIDE) -> dict[str, str]:
    """Write every ``stride``-th frame (0, stride, 2 stride, ...) of each system of the DeePMD
    water data in ``source`` to ``out`` in the same layout: ``data_<k>/type.raw``, ``type_map.raw``
    (copied) and one ``set.000/`` holding the kept frames of all the system's sets, in order, with
    the source's dtype (float32) unchanged; then ``SHA256SUMS`` (paths relative to ``out``).

    Returns:
        ``{relative path: sha256}`` of the written files.

    Raises:
        DatasetError: the source is not the DeePMD water data.
    """
    import hashlib
    import io
    import shutil

    source, out = Path(source), Path(out)
    sums = {}
    for system in TRAIN_SYSTEMS + TEST_SYSTEMS:
        src = source / system
        sets = sorted(p for p in src.glob("set.*") if p.is_dir())
        if not sets or not (src / "type.raw").is_file():
            raise DatasetError(f"{src}: not a DeePMD system (type.raw, set.*/)")
        dst = out / system / "set.000"
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("type.raw", "type_map.raw"):
            shutil.copyfile(src / name, out / system / name)
            sums[f"{system}/{name}"] = file_sha256(out / system / name)
        for array in ARRAYS:
            joined = np.concatenate([np.load(s / array, allow_pickle=False) for s in sets])[::stride]
            buffer = io.BytesIO()
            np.save(buffer, joined, allow_pickle=False)
            (dst / array).write_bytes(buffer.getvalue())
            sums[f"{system}/set.000/{array}"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (out / CHECKSUM_FILE).write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    return sums


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of :func:`draw_subset`."""
    import argparse

    parser = argparse.ArgumentParser(description=draw_subset.__doc__)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stride", type=int, default=SUBSET_STRIDE)
    args = parser.parse_args(argv)
    for name, digest in draw_subset(args.source, args.out, args.stride).items():
        print(f"{digest}  {name}")


if __name__ == "__main__":
    main()
