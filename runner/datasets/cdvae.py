"""Datasets in CDVAE's CSV format (Xie et al., ICLR 2022): one row per crystal with ``material_id``
and ``cif`` (a pymatgen CIF string) plus property columns.

- ``perov_5``: Castelli's cubic perovskites (5 atoms per cell). Columns ``formula``, ``heat_all``,
  ``heat_ref`` (heat of formation against the reference set, eV as given by CMR), ``dir_gap``,
  ``ind_gap`` (eV).
- ``carbon_24``: carbon allotropes from AIRSS (6-24 atoms per cell). Column ``energy_per_atom`` (eV).
- ``mp_20_biternary``: the binary and ternary compounds of CDVAE's MP-20 val and test splits
  (Materials Project, 2-20 atoms per cell; selected by WyckoffTransformer), gzip-compressed
  (``val.csv.gz``, ``test.csv.gz``). Columns ``formation_energy_per_atom`` (eV/atom) and
  ``band_gap`` (PBE, eV), among others. MP-20's ``train.csv`` is not available here.

Two variants:

- ``full``: ``<data root>/<name>/``. With the official ``train``, ``val`` and ``test`` files all
  present, those are the splits. Without the ``train`` file (it is not available offline here),
  the training pool is the official ``val`` file: property tasks divide it 90 % / 10 % into our
  train / validation splits with a fixed split seed (independent of the run seed, so every seed
  sees the same split); generation tasks train on all of it (no validation split). The official
  ``test`` file is always the test split (the reference set for generation).
- ``subset``: ``data/<name>_subset/{train,val,test}.csv``, a compact real subset committed to
  mateval, drawn from the full files by :func:`draw_subset` with a fixed seed (train and val from
  the official ``val`` file, test from the official ``test`` file; provenance and checksums in its
  SOURCE.md). It is what ``make bench`` uses by default.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from runner.contract import Sample
from runner.datasets.base import DatasetError, LoadedDataset, file_sha256, find_dataset_dir, truncate_splits, verified_sha256

FULL_FILES = ("val.csv", "test.csv")  # perov_5 / carbon_24; see full_files()
SPLIT_FILES = ("train.csv", "val.csv", "test.csv")
#: columns each dataset must have
REQUIRED_COLUMNS = {
    "perov_5": ("material_id", "cif", "formula", "heat_ref", "ind_gap"),
    "carbon_24": ("material_id", "cif"),
    "mp_20_biternary": ("material_id", "cif", "pretty_formula", "formation_energy_per_atom", "band_gap"),
}
#: file-name ending of the full (official) files of each dataset; the embedded subsets are plain ``.csv``
FULL_SUFFIX = {"perov_5": ".csv", "carbon_24": ".csv", "mp_20_biternary": ".csv.gz"}
#: how the split description names the official files' origin
ORIGIN = {"perov_5": "CDVAE", "carbon_24": "CDVAE", "mp_20_biternary": "MP-20"}
#: a note recorded with every load of the dataset (it goes into the result)
DATASET_NOTES = {
    "mp_20_biternary": ("only the binary and ternary compounds of MP-20's val and test splits are available: "
                        "train and val are both drawn from MP-20's val split, test is MP-20's test split; "
                        "this is not CDVAE's MP-20 train split"),
}
SPLIT_SEED = 42
FULL_VAL_FRACTION = 0.1


def full_files(name: str) -> tuple[str, str, str]:
    """Names of the official ``(train, val, test)`` files of dataset ``name`` (full variant)."""
    suffix = FULL_SUFFIX.get(name, ".csv")
    return f"train{suffix}", f"val{suffix}", f"test{suffix}"


def parse_structure(cif: str, *, path: Path, row: int, material_id: object):
    """Parse one CIF string into a ``pymatgen.core.Structure``.

    Raises:
        DatasetError: naming the file, the 0-based data row and the material id when the CIF does
            not parse or holds no sites.
    """
    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(cif, fmt="cif")
    except Exception as exc:  # pymatgen raises many types for bad CIFs
        raise DatasetError(
            f"{path}: row {row} (material_id={material_id}): CIF does not parse: {type(exc).__name__}: {exc}"
        ) from exc
    if len(structure) == 0:
        raise DatasetError(f"{path}: row {row} (material_id={material_id}): CIF has no atoms")
    return structure


def read_table(path: Path, required: Sequence[str] = ("material_id", "cif")) -> pd.DataFrame:
    """Read one CDVAE-format CSV and check its columns.

    Raises:
        DatasetError: the file is unreadable or lacks a required column (named).
    """
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: cannot be read as CSV: {exc}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected {list(required)}")
    return frame


def to_samples(frame: pd.DataFrame, path: Path, label: Callable[[Mapping[str, Any]], float | int] | None) -> list[Sample]:
    """Turn table rows into :class:`Sample` objects, parsing every CIF (``label=None``: no target,
    as for generation).

    Raises:
        DatasetError: a CIF does not parse, or a label is not finite (file, row, id named).
    """
    samples = []
    for row, record in enumerate(frame.to_dict("records")):
        structure = parse_structure(record["cif"], path=path, row=row, material_id=record["material_id"])
        target = None if label is None else label(record)
        if target is not None and not np.isfinite(float(target)):
            raise DatasetError(f"{path}: row {row} (material_id={record['material_id']}): label is not finite")
        samples.append(Sample(id=str(record["material_id"]), structure=structure, target=target))
    return samples


def data_files(name: str, variant: str, data_roots: Sequence[Path]) -> tuple[Path, dict[str, Path]]:
    """The directory and the file of each split (``train``, ``val``, ``test``) that :func:`load`
    reads, without reading them. Without the official ``train`` file (full variant), ``train`` and
    ``val`` are both the official ``val`` file (``val.csv``; ``val.csv.gz`` for ``mp_20_biternary``).

    Raises:
        DatasetError: unknown dataset or variant, or the directory is not found.
    """
    if name not in REQUIRED_COLUMNS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(REQUIRED_COLUMNS))}")
    if variant == "subset":
        directory = find_dataset_dir(f"{name}_subset", data_roots, SPLIT_FILES)
        return directory, {split: directory / f"{split}.csv" for split in ("train", "val", "test")}
    if variant == "full":
        train, val, test = full_files(name)
        directory = find_dataset_dir(name, data_roots, (val, test))
        if (directory / train).is_file():
            return directory, {"train": directory / train, "val": directory / val, "test": directory / test}
        return directory, {"train": directory / val, "val": directory / val, "test": directory / test}
    raise DatasetError(f"{name}: unknown data variant {variant!r}; expected 'subset' or 'full'")


def load(
    name: str,
    variant: str,
    data_roots: Sequence[Path],
    label: Callable[[Mapping[str, Any]], float | int] | None,
    max_samples: dict[str, int] | None = None,
    holdout_fraction: float = FULL_VAL_FRACTION,
) -> LoadedDataset:
    """Load dataset ``name`` for one task.

    Args:
        name: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20_biternary"``.
        variant: ``"subset"`` or ``"full"``.
        data_roots: directories searched, in order, for ``<name>_subset/`` or ``<name>/``.
        label: maps a table row to the task's target (e.g. ``row["heat_ref"]``); ``None`` for
            generation (targets ``None``).
        max_samples: optional ``{split: n}``; keep the first ``n`` samples of that split (used by
            tests and smoke runs; recorded in the result through the split sizes).
        holdout_fraction: without ``train.csv``, the fraction of CDVAE's ``val.csv`` held out as
            our validation split (0 for generation: train on all of it).

    Raises:
        DatasetError: unknown dataset or variant, directory not found, unreadable file, bad CIF.
    """
    directory, files = data_files(name, variant, data_roots)
    sha = verified_sha256(directory, list(files.values()))
    required = REQUIRED_COLUMNS[name]
    origin = ORIGIN[name]
    train_file, val_file, test_file = full_files(name)
    if files["train"] != files["val"]:  # the subset, or the full data with the official train file
        frames = {split: read_table(path, required) for split, path in files.items()}
        description = ("subset files train.csv / val.csv / test.csv as committed (see their SOURCE.md)"
                       if variant == "subset" else f"{origin}'s official {train_file} / {val_file} / {test_file}")
    else:
        pool = read_table(files["val"], required)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(pool))
        n_val = int(round(holdout_fraction * len(pool)))
        frames = {"train": pool.iloc[np.sort(order[n_val:])], "val": pool.iloc[np.sort(order[:n_val])],
                  "test": read_table(files["test"], required)}
        if n_val:
            description = (f"{origin}'s {train_file} is not available: {origin} {val_file} split "
                           f"{1 - holdout_fraction:.0%}/{holdout_fraction:.0%} into train/val (numpy "
                           f"default_rng({SPLIT_SEED}) permutation); {origin} {test_file} as test")
        else:
            description = (f"{origin}'s {train_file} is not available: trained on all of {origin} {val_file} "
                           f"(no validation split); {origin} {test_file} as test (the reference set)")

    notes = [DATASET_NOTES[name]] if name in DATASET_NOTES else []
    notes += truncate_splits(frames, max_samples, name, "rows")
    splits = {split: to_samples(frame, files[split], label) for split, frame in frames.items()}
    return LoadedDataset(name=f"{name}_subset" if variant == "subset" else name, variant=variant, path=directory,
                         splits=splits, sha256=sha, split_description=description, notes=notes)


#: SOURCE.md text of each dataset's embedded subset: (title, origin bullet, columns bullet, the
#: class column's header and the rule counted in it)
SUBSET_PROVENANCE = {
    "perov_5": (
        "perov_5_subset: a compact real subset of CDVAE's perov_5",
        "Origin: CDVAE's perov_5 (https://github.com/txie-93/cdvae, commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea, "
        "data/perov_5), MIT licence (Copyright (c) 2021 Tian Xie, Xiang Fu); the data come from I. E. Castelli et al., "
        "Energy Environ. Sci. 5, 9034 and 5814 (2012), via the Computational Materials Repository (CMR).",
        "Columns as in CDVAE: `Unnamed: 0` (row index in the original table), `material_id`, `cif`, `formula`, "
        "`heat_all`, `heat_ref` (eV, per CMR; whether per atom or per cell is not stated by the source), `dir_gap`, "
        "`ind_gap` (eV).",
        "rows with ind_gap > 0", lambda frame: int((frame["ind_gap"] > 0).sum()),
    ),
    "mp_20_biternary": (
        "mp_20_biternary_subset: a compact real subset of MP-20's binary and ternary compounds",
        "Origin: the binary and ternary compounds of CDVAE's MP-20 val and test splits as selected by "
        "WyckoffTransformer (https://github.com/SymmetryAdvantage/WyckoffTransformer, commit "
        "507e8f147a0e87905c2574ebfbbfc9fa21c2fb09, data/mp_20_biternary/{val,test}.csv.gz; Apache-2.0). "
        "MP-20: T. Xie et al., CDVAE, ICLR 2022 (https://github.com/txie-93/cdvae, MIT). The data are from the "
        "Materials Project (A. Jain et al., APL Mater. 1, 011002 (2013); CC BY 4.0).",
        "Columns as in CDVAE's mp_20: `Unnamed: 0` (row index in the original MP-20 table), `material_id`, "
        "`formation_energy_per_atom` (eV/atom, DFT PBE/GGA+U), `band_gap` (PBE, eV), `pretty_formula`, "
        "`e_above_hull` (eV/atom), `elements`, `cif` (2-20 atoms per cell), `spacegroup.number`.",
        "metals (band_gap = 0 eV)", lambda frame: int((frame["band_gap"] <= 0).sum()),
    ),
}


def draw_subset(source_dir: Path, out_dir: Path, n_train: int, n_val: int, n_test: int, seed: int,
                name: str = "perov_5") -> dict[str, str]:
    """Draw the committed subset of dataset ``name`` (``perov_5`` or ``mp_20_biternary``) from its
    official files: train and val from the ``val`` file (disjoint), test from the ``test`` file,
    uniformly at random with ``numpy.random.default_rng(seed)``; rows keep their original order and
    every column. Writes plain ``{train,val,test}.csv``, ``SHA256SUMS`` (checked by :func:`load`) and
    ``SOURCE.md``.

    Returns:
        ``{file name: sha256}`` of the written CSVs.

    Raises:
        DatasetError: unknown dataset, source files missing or unreadable, or fewer rows than asked for.
    """
    if name not in SUBSET_PROVENANCE:
        raise DatasetError(f"no subset recipe for dataset {name!r}; known: {', '.join(sorted(SUBSET_PROVENANCE))}")
    title, origin, columns, class_header, class_count = SUBSET_PROVENANCE[name]
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    _, val_file, test_file = full_files(name)
    rng = np.random.default_rng(seed)
    pool = read_table(source_dir / val_file, REQUIRED_COLUMNS[name])
    test = read_table(source_dir / test_file, REQUIRED_COLUMNS[name])
    if n_train + n_val > len(pool) or n_test > len(test):
        raise DatasetError(f"{source_dir}: not enough rows for train={n_train} val={n_val} test={n_test}")
    order = rng.permutation(len(pool))
    picks = {
        "train": pool.iloc[np.sort(order[:n_train])],
        "val": pool.iloc[np.sort(order[n_train:n_train + n_val])],
        "test": test.iloc[np.sort(rng.permutation(len(test))[:n_test])],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split, frame in picks.items():
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        data = buffer.getvalue().encode()
        (out_dir / f"{split}.csv").write_bytes(data)
        sums[f"{split}.csv"] = hashlib.sha256(data).hexdigest()
    (out_dir / "SHA256SUMS").write_text("".join(f"{digest}  {file}\n" for file, digest in sums.items()))
    source_sums = {file: file_sha256(source_dir / file) for file in (val_file, test_file)}
    command = (f"python -m runner.datasets.cdvae --dataset {name} --source <{name} dir> --out data/{name}_subset "
               f"--train {n_train} --val {n_val} --test {n_test} --seed {seed}")
    lines = [
        f"# {title}",
        "",
        f"Drawn by `{command}` (function `runner.datasets.cdvae.draw_subset`).",
        "",
        f"- {origin}",
        f"- train and val: disjoint uniform draws from the official `{val_file}`; test: a uniform draw from the "
        f"official `{test_file}` (the official `train` file is not available offline). Rows keep their original "
        "order and all columns.",
        f"- {columns}",
        "",
        f"| file | rows | {class_header} | sha256 |",
        "|---|---|---|---|",
    ]
    for split, frame in picks.items():
        lines.append(f"| {split}.csv | {len(frame)} | {class_count(frame)} | {sums[f'{split}.csv']} |")
    lines += ["", "Source files:", ""]
    lines += [f"- {file}: sha256 {digest}" for file, digest in source_sums.items()]
    (out_dir / "SOURCE.md").write_text("\n".join(lines) + "\n")
    return sums


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of :func:`draw_subset`."""
    parser = argparse.ArgumentParser(description=draw_subset.__doc__)
    parser.add_argument("--dataset", default="perov_5", choices=sorted(SUBSET_PROVENANCE))
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sums = draw_subset(args.source, args.out, args.train, args.val, args.test, args.seed, args.dataset)
    for file, digest in sums.items():
        print(f"{file}  {digest}")


if __name__ == "__main__":
    main()
