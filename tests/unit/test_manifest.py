"""model.yaml validation: errors name the file and the field."""

import shutil
from pathlib import Path

import pytest
import yaml

from runner.manifest import ManifestError, load_manifest
from tests.conftest import FIXTURE_MODELS, REPO_ROOT


def make_model(tmp_path: Path, text: str, name: str = "mymodel") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.yaml").write_text(text)
    return folder


def valid_document() -> dict:
    return yaml.safe_load((FIXTURE_MODELS / "mean_baseline" / "model.yaml").read_text()) | {"name": "mymodel"}


def test_valid_manifests_load():
    manifest = load_manifest(FIXTURE_MODELS / "mean_baseline")
    assert manifest.name == "mean_baseline"
    assert len(manifest.sha256) == 64
    effective, overridden = manifest.hyperparameters("bench", {"sleep_s": 0.5})
    assert effective == {"epochs": 2, "sleep_s": 0.5}
    assert overridden == {"sleep_s": {"paper": 0.0, "used": 0.5}}
    assert load_manifest(REPO_ROOT / "images" / "matformer").name == "matformer"


def test_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"empty/model\.yaml"):
        load_manifest(tmp_path / "empty")


def test_yaml_syntax_error_names_line(tmp_path):
    folder = make_model(tmp_path, "name: mymodel\npaper: [unclosed\n")
    with pytest.raises(ManifestError, match=r"model\.yaml: not valid YAML \(line \d+"):
        load_manifest(folder)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("entry_point"), "entry_point"),
    (lambda d: d.update(hyperparamters={"epochs": 1}), "hyperparamters"),  # typo: unknown field
    (lambda d: d["paper"].update(year="2022"), "paper.year"),
    (lambda d: d.update(task_types=["regresion"]), "task_types.0"),
    (lambda d: d.update(entry_point="no_colon_here"), "entry_point"),
])
def test_schema_errors_name_the_field(tmp_path, mutate, field):
    document = valid_document()
    mutate(document)
    folder = make_model(tmp_path, yaml.safe_dump(document))
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert f"field '{field}'" in str(info.value)
    assert str(folder / "model.yaml") in str(info.value)


def test_name_must_match_folder(tmp_path):
    document = valid_document() | {"name": "other"}
    folder = make_model(tmp_path, yaml.safe_dump(document))
    with pytest.raises(ManifestError, match="field 'name'.*folder name 'mymodel'"):
        load_manifest(folder)


def test_bench_hyperparameters_must_be_declared(tmp_path):
    document = valid_document() | {"bench_hyperparameters": {"epoch": 1}}
    folder = make_model(tmp_path, yaml.safe_dump(document))
    with pytest.raises(ManifestError, match=r"bench_hyperparameters\.epoch"):
        load_manifest(folder)


def test_unknown_override_is_an_error():
    manifest = load_manifest(FIXTURE_MODELS / "mean_baseline")
    with pytest.raises(ManifestError, match="no hyperparameter named 'learning_rate'"):
        manifest.hyperparameters("bench", {"learning_rate": 1})


def test_entry_point_import_error_names_file(tmp_path):
    folder = tmp_path / "mean_baseline"
    shutil.copytree(FIXTURE_MODELS / "mean_baseline", folder)
    (folder / "model.yaml").write_text((folder / "model.yaml").read_text().replace(
        "mean_baseline_model:MeanBaseline", "mean_baseline_model:Missing"))
    with pytest.raises(ManifestError, match=r"entry_point: cannot import"):
        load_manifest(folder).load_entry_point()
