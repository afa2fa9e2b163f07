"""The phonon-DOS (Petretto / e3nn tutorial) loader on the real data shipped in data/."""

import shutil

import numpy as np
import pandas as pd
import pytest

from runner.datasets import DatasetError, file_sha256, petretto
from runner.tasks import get_task
from tests.conftest import REPO_ROOT

NO_CHECKSUMS = shutil.ignore_patterns("SHA256SUMS")  # copies edited on purpose: test the parser

DATA = REPO_ROOT / "data"


def test_shipped_copy_matches_its_source_checksums():
    source = (DATA / "phonon_dos_petretto" / "SOURCE.md").read_text()
    for name in petretto.FILES:
        assert file_sha256(DATA / "phonon_dos_petretto" / name) in source


def test_published_split():
    dataset = get_task("phonon_dos").load("full", [DATA])
    assert dataset.sizes() == {"train": 1192, "val": 141, "test": 189}
    ids = [s.id for split in dataset.splits.values() for s in split]
    assert len(set(ids)) == 1522
    sample = dataset.splits["test"][0]
    assert sample.target.shape == (51,) and sample.target.max() == pytest.approx(1.0)
    sizes = [len(s.structure) for split in dataset.splits.values() for s in split]
    assert min(sizes) == 2 and max(sizes) == 40
    first = pd.read_csv(DATA / "phonon_dos_petretto" / "data.csv").iloc[int(
        (DATA / "phonon_dos_petretto" / "idx_test.txt").read_text().split()[0])]
    assert first["mp_id"] == sample.id


def broken_copy(tmp_path, row, column, value):
    folder = tmp_path / "phonon_dos_petretto"
    shutil.copytree(DATA / "phonon_dos_petretto", folder, ignore=NO_CHECKSUMS)  # a parse error, not a checksum
    frame = pd.read_csv(folder / "data.csv")
    frame.loc[row, column] = value
    frame.to_csv(folder / "data.csv", index=False)
    return frame.loc[row, "mp_id"]


def test_code_in_a_literal_is_rejected_not_run(tmp_path):
    row = int((DATA / "phonon_dos_petretto" / "idx_train.txt").read_text().split()[0])
    mp_id = broken_copy(tmp_path, row, "structure", "__import__('os').system('touch /tmp/pwned')")
    with pytest.raises(DatasetError, match=rf"row {row} \({mp_id}\): column 'structure' is not a Python literal"):
        petretto.load("full", [tmp_path])


def test_grid_mismatch_is_named(tmp_path):
    row = int((DATA / "phonon_dos_petretto" / "idx_valid.txt").read_text().split()[0])
    broken_copy(tmp_path, row, "phfreq", str([float(f) for f in np.arange(51) * 10.0]))
    with pytest.raises(DatasetError, match=rf"row {row} .*phfreq differs"):
        petretto.load("full", [tmp_path])


def test_bad_index_file(tmp_path):
    folder = tmp_path / "phonon_dos_petretto"
    shutil.copytree(DATA / "phonon_dos_petretto", folder, ignore=NO_CHECKSUMS)
    (folder / "idx_test.txt").write_text("5\nfive\n")
    with pytest.raises(DatasetError, match=r"idx_test\.txt: line 2: 'five' is not an integer"):
        petretto.load("full", [tmp_path])
