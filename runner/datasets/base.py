"""Shared pieces of the dataset loaders: the loaded-dataset record, checksums, data-root lookup."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from runner.contract import Sample


class DatasetError(RuntimeError):
    """A dataset is missing, corrupted or unparsable. The message names the file (and row/id)."""


@dataclass
class LoadedDataset:
    """One task's data, split.

    Attributes:
        name: dataset name, e.g. ``"perov_5"``.
        variant: ``"subset"`` (the compact subset committed to mateval) or ``"full"``.
        path: the directory the files were read from.
        splits: ``{"train": [...], "val": [...], "test": [...]}`` of :class:`Sample`.
        sha256: ``{file name: sha256 hex}`` of every file read.
        split_description: how the split was made (human-readable, goes into the result).
        notes: notes for the result (e.g. a truncated split).
        protocol: the evaluation protocol's record when the splits were made by one
            (:func:`runner.protocols.matbench.apply`: name, fold, ...); ``None`` for the task's own split.
    """

    name: str
    variant: str
    path: Path
    splits: dict[str, list[Sample]]
    sha256: dict[str, str]
    split_description: str
    notes: list[str] = field(default_factory=list)
    protocol: dict | None = None

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {name: len(samples) for name, samples in self.splits.items()}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CHECKSUM_FILE = "SHA256SUMS"


def verified_sha256(directory: Path, paths: Sequence[Path]) -> dict[str, str]:
    """``{file name: sha256}`` of ``paths``, checked against ``directory/SHA256SUMS`` when that
    file exists (``sha256sum`` format: ``<hex>  <name>`` per line; the embedded datasets ship one).

    Raises:
        DatasetError: a listed file's sha256 differs (file, expected and actual named), or the
            checksum file is malformed (line named).
    """
    sums = {Path(p).name: file_sha256(Path(p)) for p in sorted(set(paths))}
    listing = Path(directory) / CHECKSUM_FILE
    if not listing.is_file():
        return sums
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name:
            raise DatasetError(f"{listing}: line {number}: expected '<sha256>  <file name>', got {line!r}")
        if name in sums and sums[name] != digest.lower():
            raise DatasetError(f"{Path(directory) / name}: sha256 mismatch: expected {digest.lower()} ({listing.name}), "
                               f"got {sums[name]}; the file is corrupted or was modified: restore it "
                               "(e.g. git checkout -- data/) or fetch it again")
    return sums


def find_dataset_dir(name: str, data_roots: Sequence[Path], required_files: Sequence[str]) -> Path:
    """First ``<root>/<name>`` among ``data_roots`` that holds every file in ``required_files``.

    Raises:
        DatasetError: naming every directory searched and the missing files.
    """
    searched = []
    for root in data_roots:
        candidate = Path(root) / name
        missing = [f for f in required_files if not (candidate / f).is_file()]
        if not missing:
            return candidate
        searched.append(f"{candidate} (missing: {', '.join(missing)})")
    raise DatasetError(
        f"dataset {name!r} not found; searched: {'; '.join(searched) or 'no data roots given'}. "
        "Set MATEVAL_DATA (or --data-dir) to the directory that contains it."
    )


def truncate_splits(splits: dict, max_samples: Mapping[str, int] | None, dataset: str, what: str) -> list[str]:
    """Keep the first ``n`` entries of each split named in ``max_samples`` (``{split: n}``), in
    place (``splits`` maps a split name to a sliceable sequence or a pandas frame); returns one note
    per truncated split (``"train split truncated to its first 96 <what>"``).

    Raises:
        DatasetError: ``max_samples`` names a split ``splits`` does not have (``dataset`` named).
    """
    notes = []
    for split, limit in (max_samples or {}).items():
        if split not in splits:
            raise DatasetError(f"{dataset}: max_samples names unknown split {split!r}")
        if limit < len(splits[split]):
            rows = splits[split]
            splits[split] = rows.iloc[:limit] if hasattr(rows, "iloc") else rows[:limit]
            notes.append(f"{split} split truncated to its first {limit} {what}")
    return notes

