"""Datasets in CDVAE's CSV format (Xie et al., ICLR 2022): one row per crystal with ``material_id``
and ``cif`` (a pymatgen CIF string) plus property columns.

- ``perov_5``: Castelli's cubic perovskites (5 atoms per cell). Columns ``formula``, ``heat_all``,
  ``heat_ref`` (heat of formation against the reference set, eV as given by CMR), ``dir_gap``,
  ``ind_gap`` (eV).
- ``carbon_24``: carbon allotropes from AIRSS (6-24 atoms per cell). Column ``energy_per_atom`` (eV).

Two variants:

- ``full``: ``<data root>/<name>/``. With CDVAE's official ``train.csv``, ``val.csv`` and
  ``test.csv`` all present, those are the splits. Without ``train.csv`` (it is not available
  offline here), the training pool is CDVAE's ``val.csv``: property tasks divide it 90 % / 10 % into
  our train / validation splits with a fixed split seed (independent of the run seed, so every
  seed sees the same split); generation tasks train on all of it (no validation split). CDVAE's
  ``test.csv`` is always the test split (the reference set for generation).
- ``subset``: ``data/<name>_subset/{train,val,test}.csv``, a compact real subset committed to
  mateval, drawn from the full files by :func:`draw_subset` with a fixed seed (provenance and
  checksums in its SOURCE.md). It is what ``make bench`` uses by default.
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
from runner.datasets.base import DatasetError, LoadedDataset, file_sha256, find_dataset_dir, verified_sha256

FULL_FILES = ("val.csv", "test.csv")
SPLIT_FILES = ("train.csv", "val.csv", "test.csv")
#: columns each dataset must have
REQUIRED_COLUMNS = {
    "perov_5": ("material_id", "cif", "formula", "heat_ref", "ind_gap"),
    "carbon_24": ("material_id", "cif"),
}
SPLIT_SEED = 42
FULL_VAL_FRACTION = 0.1


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
    reads, without reading them. Without CDVAE's ``train.csv`` (full variant), ``train`` and
    ``val`` are both ``val.csv``.

    Raises:
        DatasetError: unknown dataset or variant, or the directory is not found.
    """
    if name not in REQUIRED_COLUMNS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(REQUIRED_COLUMNS))}")
    if variant == "subset":
        directory = find_dataset_dir(f"{name}_subset", data_roots, SPLIT_FILES)
        return directory, {split: directory / f"{split}.csv" for split in ("train", "val", "test")}
    if variant == "full":
        directory = find_dataset_dir(name, data_roots, FULL_FILES)
        if (directory / "train.csv").is_file():
            return directory, {split: directory / f"{split}.csv" for split in ("train", "val", "test")}
        return directory, {"train": directory / "val.csv", "val": directory / "val.csv", "test": directory / "test.csv"}
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
        name: ``"perov_5"`` or ``"carbon_24"``.
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
    if files["train"] != files["val"]:  # the subset, or the full data with CDVAE's train.csv
        frames = {split: read_table(path, required) for split, path in files.items()}
        description = ("subset files train.csv / val.csv / test.csv as committed (see their SOURCE.md)"
                       if variant == "subset" else "CDVAE's official train.csv / val.csv / test.csv")
    else:
        pool = read_table(directory / "val.csv", required)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(pool))
        n_val = int(round(holdout_fraction * len(pool)))
        frames = {"train": pool.iloc[np.sort(order[n_val:])], "val": pool.iloc[np.sort(order[:n_val])],
                  "test": read_table(directory / "test.csv", required)}
        if n_val:
            description = (f"CDVAE's train.csv is not available: CDVAE val.csv split {1 - holdout_fraction:.0%}/"
                           f"{holdout_fraction:.0%} into train/val (numpy default_rng({SPLIT_SEED}) permutation); "
                           "CDVAE test.csv as test")
        else:
            description = ("CDVAE's train.csv is not available: trained on all of CDVAE val.csv (no validation "
                           "split); CDVAE test.csv as test (the reference set)")

    notes = []
    if max_samples:
        for split, limit in max_samples.items():
            if split not in frames:
                raise DatasetError(f"{name}: max_samples names unknown split {split!r}")
            if limit < len(frames[split]):
                frames[split] = frames[split].iloc[:limit]
                notes.append(f"{split} split truncated to its first {limit} rows")
    splits = {split: to_samples(frame, files[split], label) for split, frame in frames.items()}
    return LoadedDataset(name=f"{name}_subset" if variant == "subset" else name, variant=variant, path=directory,
                         splits=splits, sha256=sha, split_description=description, notes=notes)


def draw_subset(source_dir: Path, out_dir: Path, n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, str]:
    """Draw the committed perov_5 subset from CDVAE's files: train and val from ``val.csv`` (disjoint),
    test from ``test.csv``, uniformly at random with ``numpy.random.default_rng(seed)``; rows keep
    their original order and every column. Writes ``{train,val,test}.csv``, ``SHA256SUMS`` (checked
    by :func:`load`) and ``SOURCE.md``.

    Returns:
        ``{file name: sha256}`` of the written CSVs.

    Raises:
        DatasetError: source files missing, or fewer rows than asked for.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    rng = np.random.default_rng(seed)
    pool = read_table(source_dir / "val.csv", REQUIRED_COLUMNS["perov_5"])
    test = read_table(source_dir / "test.csv", REQUIRED_COLUMNS["perov_5"])
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
    (out_dir / "SHA256SUMS").write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    source_sums = {name: file_sha256(source_dir / name) for name in FULL_FILES}
    positives = {split: int((frame["ind_gap"] > 0).sum()) for split, frame in picks.items()}
    lines = [
        "# perov_5_subset: a compact real subset of CDVAE's perov_5",
        "",
        "Drawn by `python -m runner.datasets.cdvae --source <perov_5 dir> --out data/perov_5_subset "
        f"--train {n_train} --val {n_val} --test {n_test} --seed {seed}` "
        "(function `runner.datasets.perov5.draw_subset`).",
        "",
        "- Origin: CDVAE's perov_5 (https://github.com/txie-93/cdvae, commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea, "
        "data/perov_5), MIT licence (Copyright (c) 2021 Tian Xie, Xiang Fu); the data come from I. E. Castelli et al., "
        "Energy Environ. Sci. 5, 9034 and 5814 (2012), via the Computational Materials Repository (CMR).",
        "- train and val: disjoint uniform draws from CDVAE's `val.csv`; test: a uniform draw from CDVAE's `test.csv` "
        "(CDVAE's `train.csv` is not available offline). Rows keep their original order and all columns.",
        "- Columns as in CDVAE: `Unnamed: 0` (row index in the original table), `material_id`, `cif`, `formula`, "
        "`heat_all`, `heat_ref` (eV, per CMR; whether per atom or per cell is not stated by the source), `dir_gap`, "
        "`ind_gap` (eV).",
        "",
        "| file | rows | rows with ind_gap > 0 | sha256 |",
        "|---|---|---|---|",
    ]
    for split, frame in picks.items():
        lines.append(f"| {split}.csv | {len(frame)} | {positives[split]} | {sums[f'{split}.csv']} |")
    lines += ["", "Source files:", ""]
    lines += [f"- {name}: sha256 {digest}" for name, digest in source_sums.items()]
    (out_dir / "SOURCE.md").write_text("\n".join(lines) + "\n")
    return sums


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of :func:`draw_subset`."""
    parser = argparse.ArgumentParser(description=draw_subset.__doc__)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sums = draw_subset(args.source, args.out, args.train, args.val, args.test, args.seed)
    for name, digest in sums.items():
        print(f"{name}  {digest}")


if __name__ == "__main__":
    main()
