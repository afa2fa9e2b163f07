"""The perov_5 loader on real data: subset, full, and bad input."""

import shutil

import pandas as pd
import pytest

from runner.datasets import DatasetError, file_sha256
from runner.datasets import perov5
from runner.tasks import UnknownTaskError, get_task
from tests.conftest import REPO_ROOT

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
    shutil.copytree(SUBSET_ROOT / "perov_5_subset", folder)
    frame = pd.read_csv(folder / "val.csv")
    frame.loc[3, "cif"] = "data_broken\n_cell_length_a nonsense\n"
    frame.to_csv(folder / "val.csv", index=False)
    bad_id = frame.loc[3, "material_id"]
    with pytest.raises(DatasetError, match=rf"val\.csv: row 3 \(material_id={bad_id}\): CIF does not parse"):
        get_task("perov5_heat_ref").load("subset", [tmp_path])


def test_missing_dataset_lists_search_path(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset 'perov_5' not found; searched: .*missing: val\.csv, test\.csv"):
        perov5.load("full", [tmp_path], lambda row: 0.0)


def test_missing_column_is_named(tmp_path):
    folder = tmp_path / "perov_5_subset"
    shutil.copytree(SUBSET_ROOT / "perov_5_subset", folder)
    pd.read_csv(folder / "test.csv").drop(columns=["heat_ref"]).to_csv(folder / "test.csv", index=False)
    with pytest.raises(DatasetError, match=r"test\.csv: missing column\(s\) \['heat_ref'\]"):
        get_task("perov5_heat_ref").load("subset", [tmp_path])


def test_unknown_task_lists_known():
    with pytest.raises(UnknownTaskError, match="known tasks: perov5_has_gap, perov5_heat_ref"):
        get_task("perov5_bandgap")


def test_draw_subset_is_deterministic(shared_data, tmp_path):
    first = perov5.draw_subset(shared_data / "perov_5", tmp_path / "a", 20, 5, 10, seed=0)
    second = perov5.draw_subset(shared_data / "perov_5", tmp_path / "b", 20, 5, 10, seed=0)
    assert first == second
    assert "sha256" in (tmp_path / "a" / "SOURCE.md").read_text()
