"""The CDVAE-format loader on real data (perov_5, carbon_24): subset, full, official split, bad input."""

import shutil

import pandas as pd
import pytest

from runner.datasets import DatasetError, file_sha256
from runner.datasets import cdvae
from runner.tasks import UnknownTaskError, get_task
from tests.conftest import REPO_ROOT

NO_CHECKSUMS = shutil.ignore_patterns("SHA256SUMS")  # copies edited on purpose: test the parser

SUBSET_ROOT = REPO_ROOT / "data"


def test_subset_matches_its_recorded_checksums():
    source = (SUBSET_ROOT / "perov_5_subset" / "SOURCE.md").read_text()
    for split in ("train", "val", "test"):
        assert file_sha256(SUBSET_ROOT / "perov_5_subset" / f"{split}.csv") in source


def test_subset_loads_both_tasks():
    regression = get_task("perov5_heat_ref").load("subset", [SUBSET_ROOT], {"train": 10, "val": 5, "test": 128})
    assert regression.sizes() == {"train": 10, "val": 5, "test": 128}
    sample = regression.splits["train"][0]
    assert len(sample.structure) == 5 and isinstance(sample.target, float)
    classification = get_task("perov5_has_gap").load("subset", [SUBSET_ROOT], {"test": 128})
    labels = [s.target for s in classification.splits["test"]]
    frame = pd.read_csv(SUBSET_ROOT / "perov_5_subset" / "test.csv").iloc[:128]
    assert labels == [int(g > 0) for g in frame["ind_gap"]]
    assert 0 < sum(labels) < len(labels)


def test_full_variant_split(shared_data):
    dataset = get_task("perov5_heat_ref").load("full", [shared_data], {"test": 5})
    assert dataset.sizes() == {"train": 3408, "val": 379, "test": 5}
    train_ids = {s.id for s in dataset.splits["train"]}
    assert not train_ids & {s.id for s in dataset.splits["val"]}
    assert dataset.sha256["val.csv"] == "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2"


def test_bad_cif_names_row_and_id(tmp_path):
    folder = tmp_path / "perov_5_subset"
    shutil.copytree(SUBSET_ROOT / "perov_5_subset", folder, ignore=NO_CHECKSUMS)  # a parse error, not a checksum
    frame = pd.read_csv(folder / "val.csv")
    frame.loc[3, "cif"] = "data_broken\n_cell_length_a nonsense\n"
    frame.to_csv(folder / "val.csv", index=False)
    bad_id = frame.loc[3, "material_id"]
    with pytest.raises(DatasetError, match=rf"val\.csv: row 3 \(material_id={bad_id}\): CIF does not parse"):
        get_task("perov5_heat_ref").load("subset", [tmp_path])


def test_missing_dataset_lists_search_path(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset 'perov_5' not found; searched: .*missing: val\.csv, test\.csv"):
        cdvae.load("perov_5", "full", [tmp_path], lambda row: 0.0)


def test_missing_column_is_named(tmp_path):
    folder = tmp_path / "perov_5_subset"
    shutil.copytree(SUBSET_ROOT / "perov_5_subset", folder, ignore=NO_CHECKSUMS)
    pd.read_csv(folder / "test.csv").drop(columns=["heat_ref"]).to_csv(folder / "test.csv", index=False)
    with pytest.raises(DatasetError, match=r"test\.csv: missing column\(s\) \['heat_ref'\]"):
        get_task("perov5_heat_ref").load("subset", [tmp_path])


def test_unknown_task_lists_known():
    with pytest.raises(UnknownTaskError, match="known tasks: carbon24_generation, mp20_formation_energy, mp20_is_metal, perov5_generation, perov5_has_gap"):
        get_task("perov5_bandgap")


def test_draw_subset_is_deterministic(shared_data, tmp_path):
    first = cdvae.draw_subset(shared_data / "perov_5", tmp_path / "a", 20, 5, 10, seed=0)
    second = cdvae.draw_subset(shared_data / "perov_5", tmp_path / "b", 20, 5, 10, seed=0)
    assert first == second
    assert "sha256" in (tmp_path / "a" / "SOURCE.md").read_text()


def test_generation_split_trains_on_all_of_val(shared_data):
    dataset = get_task("perov5_generation").load("full", [shared_data], {"test": 5})
    assert dataset.sizes() == {"train": 3787, "val": 0, "test": 5}
    assert dataset.splits["train"][0].target is None
    assert "trained on all of CDVAE val.csv" in dataset.split_description


def test_carbon24_loads_and_official_split_is_used_when_present(shared_data, tmp_path):
    carbon = get_task("carbon24_generation").load("full", [shared_data], {"train": 20, "test": 10})
    assert carbon.sizes()["train"] == 20 and 6 <= len(carbon.splits["train"][0].structure) <= 24
    official = tmp_path / "carbon_24"
    official.mkdir()
    frame = pd.read_csv(shared_data / "carbon_24" / "val.csv").iloc[:30]
    for split, rows in (("train", frame.iloc[:20]), ("val", frame.iloc[20:25]), ("test", frame.iloc[25:])):
        rows.to_csv(official / f"{split}.csv", index=False)
    dataset = get_task("carbon24_generation").load("full", [tmp_path])
    assert dataset.sizes() == {"train": 20, "val": 5, "test": 5}
    assert dataset.split_description == "CDVAE's official train.csv / val.csv / test.csv"


def test_corrupted_embedded_file_fails_its_checksum(tmp_path):
    """A committed subset file that was modified is refused before parsing, naming the file."""
    copy = tmp_path / "perov_5_subset"
    shutil.copytree(REPO_ROOT / "data" / "perov_5_subset", copy)
    dataset = cdvae.load("perov_5", "subset", [tmp_path], lambda row: row["heat_ref"])
    assert dataset.sha256["train.csv"] in (copy / "SHA256SUMS").read_text()
    text = (copy / "val.csv").read_text()
    (copy / "val.csv").write_text(text.replace("\n", "\n\n", 1))  # one stray blank line
    with pytest.raises(DatasetError, match=r"val\.csv: sha256 mismatch: expected [0-9a-f]{64} \(SHA256SUMS\), got"):
        cdvae.load("perov_5", "subset", [tmp_path], lambda row: row["heat_ref"])
    (copy / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(DatasetError, match=r"SHA256SUMS: line 1"):
        cdvae.load("perov_5", "subset", [tmp_path], lambda row: row["heat_ref"])
