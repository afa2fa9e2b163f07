"""The MP-20 tasks (``mp20_formation_energy``, ``mp20_is_metal``) on real data: the embedded subset
(shapes, units, checksums, labels), the full variant from the shared data, the model inputs (no test
target), and clear errors for a missing or corrupted file."""

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from runner.datasets import DatasetError, cdvae, file_sha256
from runner.inputs import read_inputs
from runner.prepare import prepare
from runner.tasks import get_task
from runner.wire import RunSpec
from tests.conftest import REPO_ROOT, require

DATA = REPO_ROOT / "data"
SUBSET = DATA / "mp_20_biternary_subset"
NO_CHECKSUMS = shutil.ignore_patterns("SHA256SUMS")  # copies edited on purpose: test the parser, not the checksum


@pytest.fixture
def mp20_full(shared_data):
    """The shared mp_20_biternary folder (val.csv.gz, test.csv.gz)."""
    folder = shared_data / "mp_20_biternary"
    require((folder / "val.csv.gz").is_file(), f"{folder} not found")
    return folder


def test_subset_files_match_sha256sums_and_source_md():
    listed = dict(line.split("  ")[::-1] for line in (SUBSET / "SHA256SUMS").read_text().splitlines())
    source = (SUBSET / "SOURCE.md").read_text()
    assert sorted(listed) == ["test.csv", "train.csv", "val.csv"]
    for name, digest in listed.items():
        assert file_sha256(SUBSET / name) == digest
        assert digest in source
    assert sum(f.stat().st_size for f in SUBSET.iterdir()) < 1_000_000  # compact: it is committed


def test_regression_subset_shapes_units_and_targets():
    task = get_task("mp20_formation_energy")
    assert task.spec.task_type == "regression" and task.spec.unit == "eV/atom"
    dataset = task.load("subset", [DATA])
    assert dataset.name == "mp_20_biternary_subset" and dataset.variant == "subset"
    assert dataset.sizes() == {"train": 300, "val": 50, "test": 300}
    assert any("not CDVAE's MP-20 train split" in note for note in dataset.notes)
    frame = pd.read_csv(SUBSET / "train.csv")
    train = dataset.splits["train"]
    assert [s.id for s in train] == list(frame["material_id"])
    assert [s.target for s in train] == list(frame["formation_energy_per_atom"].astype(float))
    targets = np.array([s.target for split in dataset.splits.values() for s in split])
    assert -5.0 < targets.min() and targets.max() < 0.1  # eV/atom, MP-20's range (-4.47 to 0.08)
    sizes = [len(s.structure) for split in dataset.splits.values() for s in split]
    assert min(sizes) >= 2 and max(sizes) <= 20
    formula = dict(zip(frame["material_id"], frame["pretty_formula"]))
    for sample in train[:50]:
        assert sample.structure.composition.reduced_formula == formula[sample.id]
    ids = {split: {s.id for s in samples} for split, samples in dataset.splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] | ids["val"]) & ids["test"]


def test_classification_labels_are_metal_positive():
    task = get_task("mp20_is_metal")
    assert task.spec.task_type == "classification" and "metal" in task.spec.positive_class
    dataset = task.load("subset", [DATA], {"test": 200})
    frame = pd.read_csv(SUBSET / "test.csv").iloc[:200]
    labels = [s.target for s in dataset.splits["test"]]
    assert labels == [int(gap == 0.0) for gap in frame["band_gap"]]
    share = np.mean([s.target for s in dataset.splits["train"]])
    assert 0.6 < share < 0.8  # about 70 % metals in MP-20's binary/ternary part


def test_model_inputs_hold_no_test_target(tmp_path):
    spec = RunSpec(run_id="r1", model="matformer", model_dir=str(REPO_ROOT / "images" / "matformer"),
                   task="mp20_is_metal", data_roots=[str(DATA)], max_samples={"train": 20, "val": 5, "test": 30})
    data = prepare(spec, tmp_path)
    folder = tmp_path / "inputs"
    for line in (folder / "test.jsonl").read_text().splitlines():
        assert set(json.loads(line)) == {"id", "structure"}
    test_text = (folder / "test.jsonl").read_text() + (folder / "task.json").read_text()
    frame = pd.read_csv(SUBSET / "test.csv").iloc[:30]
    for column in ("band_gap", "formation_energy_per_atom", "e_above_hull"):
        assert not any(repr(float(v)) in test_text for v in frame[column] if v != 0.0), column
    inputs = read_inputs(tmp_path)
    assert [s.target for s in inputs.splits["test"]] == [None] * 30
    assert [s.target for s in inputs.splits["train"]] == [s.target for s in data.dataset.splits["train"]]
    assert inputs.task.positive_class == "metal: band_gap = 0 eV (PBE)"


def test_full_variant_split(mp20_full):
    dataset = get_task("mp20_formation_energy").load("full", [mp20_full.parent], {"test": 5})
    assert dataset.sizes() == {"train": 6426, "val": 714, "test": 5}  # 7,140 rows of MP-20 val, 90 % / 10 %
    assert "MP-20's train.csv.gz is not available" in dataset.split_description
    assert dataset.sha256 == {"val.csv.gz": "f0a1743241ade50592ce24dd3efc8b5e4d4d84c6a72e827c16699e83ce254f07",
                              "test.csv.gz": "e96144ffbad7fc61b0012456ead22d2c8f6993282a4fef584fbf906581086e02"}
    assert not {s.id for s in dataset.splits["train"]} & {s.id for s in dataset.splits["val"]}


def test_committed_subset_is_reproduced_from_the_source(mp20_full, tmp_path):
    sums = cdvae.draw_subset(mp20_full, tmp_path, 300, 50, 300, seed=0, name="mp_20_biternary")
    assert (tmp_path / "SHA256SUMS").read_text() == (SUBSET / "SHA256SUMS").read_text()
    assert set(sums) == {"train.csv", "val.csv", "test.csv"}


def test_missing_dataset_names_the_files(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset 'mp_20_biternary' not found; searched: .*"
                                           r"missing: val\.csv\.gz, test\.csv\.gz"):
        get_task("mp20_is_metal").load("full", [tmp_path])
    partial = tmp_path / "mp_20_biternary_subset"
    shutil.copytree(SUBSET, partial)
    (partial / "test.csv").unlink()
    with pytest.raises(DatasetError, match=r"mp_20_biternary_subset \(missing: test\.csv\)"):
        get_task("mp20_is_metal").load("subset", [tmp_path])


def test_corrupted_subset_file_fails_its_checksum(tmp_path):
    copy = tmp_path / "mp_20_biternary_subset"
    shutil.copytree(SUBSET, copy)
    data = bytearray((copy / "test.csv").read_bytes())
    data[-10] = ord("7") if data[-10] != ord("7") else ord("8")
    (copy / "test.csv").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"mp_20_biternary_subset/test\.csv: sha256 mismatch"):
        get_task("mp20_formation_energy").load("subset", [tmp_path])


def test_bad_cif_names_file_row_and_id(tmp_path):
    copy = tmp_path / "mp_20_biternary_subset"
    shutil.copytree(SUBSET, copy, ignore=NO_CHECKSUMS)
    frame = pd.read_csv(copy / "val.csv")
    frame.loc[7, "cif"] = "data_broken\n_cell_length_a nonsense\n"
    frame.to_csv(copy / "val.csv", index=False)
    bad_id = frame.loc[7, "material_id"]
    with pytest.raises(DatasetError, match=rf"val\.csv: row 7 \(material_id={bad_id}\): CIF does not parse"):
        get_task("mp20_is_metal").load("subset", [tmp_path])


def test_missing_band_gap_names_file_and_row(tmp_path):
    copy = tmp_path / "mp_20_biternary_subset"
    shutil.copytree(SUBSET, copy, ignore=NO_CHECKSUMS)
    frame = pd.read_csv(copy / "train.csv")
    frame.loc[4, "band_gap"] = np.nan
    frame.to_csv(copy / "train.csv", index=False)
    with pytest.raises(DatasetError, match=r"train\.csv: row 4 \(material_id=mp-\d+\): label is not finite"):
        get_task("mp20_is_metal").load("subset", [tmp_path], {"val": 1, "test": 1})


def test_unreadable_full_file_is_named(tmp_path):
    folder = tmp_path / "mp_20_biternary"
    folder.mkdir()
    (folder / "val.csv.gz").write_bytes(b"not gzip at all")
    with gzip.open(folder / "test.csv.gz", "wt") as handle:
        handle.write("material_id,cif\n")
    with pytest.raises(DatasetError, match=r"mp_20_biternary/val\.csv\.gz: cannot be read as CSV"):
        get_task("mp20_formation_energy").load("full", [tmp_path])
