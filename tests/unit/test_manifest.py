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
    (lambda d: d.update(timeout_s=-1), "timeout_s"),
    (lambda d: d.update(timeout_s=0), "timeout_s"),
    (lambda d: d.update(timeout_s=float("nan")), "timeout_s"),  # the schema alone lets NaN through
    (lambda d: d.update(timeout_s=float("inf")), "timeout_s"),
    (lambda d: d.update(timeout_s=10**9), "timeout_s"),  # over 30 days
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


# --- hyperparameter_types: declared types and ranges, checked before the adapter starts -----------

def typed_document(**types) -> dict:
    return valid_document() | {"hyperparameter_types": types or {
        "epochs": {"type": "integer", "minimum": 1}, "sleep_s": {"type": "number", "minimum": 0}}}


@pytest.mark.parametrize("overrides, field, expected", [
    ({"epochs": "3"}, "hyperparameters.epochs", "expected an integer >= 1, got '3'"),  # wrong type
    ({"epochs": 2.0}, "hyperparameters.epochs", "expected an integer >= 1, got 2.0"),  # an integer is not 2.0
    ({"epochs": True}, "hyperparameters.epochs", "expected an integer >= 1, got True"),  # nor a bool
    ({"epochs": 0}, "hyperparameters.epochs", "expected an integer >= 1, got 0"),  # out of range
    ({"sleep_s": -0.5}, "hyperparameters.sleep_s", "expected a finite number >= 0, got -0.5"),
    ({"sleep_s": float("nan")}, "hyperparameters.sleep_s", "expected a finite number >= 0, got nan"),
    ({"sleep_s": float("inf")}, "hyperparameters.sleep_s", "expected a finite number >= 0, got inf"),
])
def test_overrides_are_checked_against_the_declared_types(overrides, field, expected):
    manifest = load_manifest(FIXTURE_MODELS / "mean_baseline")
    with pytest.raises(ManifestError) as info:
        manifest.hyperparameters("bench", overrides)
    message = str(info.value)
    assert str(manifest.path) in message and f"field '{field}'" in message and expected in message
    assert "(an override)" in message


def test_an_unknown_choice_is_named():
    manifest = load_manifest(FIXTURE_MODELS / "crashing")
    with pytest.raises(ManifestError, match=r"crashing/model\.yaml: field 'hyperparameters\.mode': expected one of "
                                            r"\['raise', .*\], got 'explode'"):
        manifest.hyperparameters("paper", {"mode": "explode"})
    assert manifest.hyperparameters("paper", {"mode": "hang"})[0]["mode"] == "hang"


def test_values_that_fit_pass_unchanged():
    manifest = load_manifest(FIXTURE_MODELS / "mean_baseline")
    effective, _ = manifest.hyperparameters("paper", {"epochs": 1, "sleep_s": 1})  # an integer is a number
    assert effective == {"epochs": 1, "sleep_s": 1}
    manifest.check_hyperparameters({"epochs": 5, "sleep_s": 0.0})


@pytest.mark.parametrize("declaration, good, bad", [
    ({"type": "number", "exclusive_minimum": 0, "maximum": 1}, [1, 0.5, 1e-9], [0, 0.0, 1.5, -1]),
    ({"type": "integer", "minimum": 0, "exclusive_maximum": 3}, [0, 2], [3, -1, 1.0]),
    ({"type": "integer", "minimum": 1, "nullable": True}, [None, 1], [0, "1"]),
    ({"type": "boolean"}, [True, False], [0, 1, "yes", None]),
    ({"type": "string", "choices": ["mse", "l1"]}, ["mse", "l1"], ["MSE", "", 1]),
    ({"type": "integer", "choices": [92]}, [92], [93, 92.0]),
])
def test_each_kind_of_declaration(tmp_path, declaration, good, bad):
    document = valid_document() | {"hyperparameters": {"x": good[0]}, "hyperparameter_types": {"x": declaration},
                                   "bench_hyperparameters": {}}
    manifest = load_manifest(make_model(tmp_path, yaml.safe_dump(document)))
    for value in good:
        manifest.check_hyperparameters({"x": value})
    for value in bad:
        with pytest.raises(ManifestError, match=r"field 'hyperparameters\.x': expected"):
            manifest.check_hyperparameters({"x": value})


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["hyperparameters"].update(epochs=0), "hyperparameters.epochs"),  # paper default out of range
    (lambda d: d["hyperparameters"].update(sleep_s=".5"), "hyperparameters.sleep_s"),  # a typo: a string
    (lambda d: d.update(bench_hyperparameters={"epochs": -1}), "bench_hyperparameters.epochs"),
    (lambda d: d["hyperparameter_types"].update(epoch={"type": "integer"}), "hyperparameter_types.epoch"),
    (lambda d: d["hyperparameter_types"].update(epochs={"type": "int"}), "hyperparameter_types.epochs.type"),
    (lambda d: d["hyperparameter_types"].update(epochs={"type": "integer", "min": 1}), "hyperparameter_types.epochs.min"),
    (lambda d: d["hyperparameter_types"].update(epochs={"minimum": 1}), "hyperparameter_types.epochs.type"),
    (lambda d: d["hyperparameter_types"].update(epochs={"type": "string", "minimum": 1}),
     "hyperparameter_types.epochs.minimum"),
    (lambda d: d["hyperparameter_types"].update(epochs={"type": "integer", "choices": [2, "3"]}),
     "hyperparameter_types.epochs.choices"),
    (lambda d: d["hyperparameter_types"].update(sleep_s={"type": "number", "maximum": float("nan")}),
     "hyperparameter_types.sleep_s.maximum"),
])
def test_declarations_and_declared_values_are_checked_at_load(tmp_path, mutate, field):
    document = typed_document()
    mutate(document)
    folder = make_model(tmp_path, yaml.safe_dump(document))
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert f"field '{field}'" in str(info.value)
    assert str(folder / "model.yaml") in str(info.value)


@pytest.mark.parametrize("model", ["matformer", "symat", "pdos"])
def test_shipped_models_declare_every_hyperparameter(model):
    manifest = load_manifest(REPO_ROOT / "images" / model)
    assert set(manifest.hyperparameter_types) == set(manifest.data["hyperparameters"])
    manifest.hyperparameters("bench")
    manifest.hyperparameters("paper")
