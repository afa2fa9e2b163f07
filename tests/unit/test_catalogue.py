"""The metric catalogue (metrics/catalogue.yaml, metrics/catalogue.py)."""

from __future__ import annotations

import dataclasses

import pytest

from metrics import catalogue

BUILT_IN = {
    "regression": ("MAE", "MSE", "RMSE", "R2", "MaxError"),
    "classification": ("ROC-AUC", "Accuracy", "Precision", "Recall", "F1"),
    "generation": ("validity_structure", "validity_composition", "validity", "COV-R", "COV-P", "EMD_density",
                   "EMD_num_elements", "success_rate"),
    "spectra": ("MAE", "MSE", "RMSE", "R2", "Wasserstein", "Cv_300K_MAE"),
}
MAIN = {"regression": "MAE", "classification": "ROC-AUC", "generation": "validity", "spectra": "MAE"}


@pytest.fixture
def restore_catalogue():
    saved = list(catalogue.entries())
    yield
    catalogue._entries = saved


def test_built_in_task_types_and_metric_keys_are_unchanged() -> None:
    assert catalogue.task_types()[:4] == tuple(BUILT_IN)
    for task_type, keys in BUILT_IN.items():
        assert sorted(catalogue.names(task_type)) == sorted(keys)


def test_every_task_type_has_exactly_one_main_metric() -> None:
    for task_type in catalogue.task_types():
        mains = [e.name for e in catalogue.entries(task_type) if e.main]
        assert len(mains) == 1, (task_type, mains)
        assert catalogue.main_metric(task_type) == mains[0]
    for task_type, name in MAIN.items():
        assert catalogue.main_metric(task_type) == name


def test_entries_are_complete_and_well_formed() -> None:
    for e in catalogue.entries():
        assert e.label and e.definition and e.source
        assert e.format in catalogue.FORMATS and e.direction in catalogue.DIRECTIONS
        assert e.definition_key
    assert catalogue.entry("regression", "MSE").unit == "target^2"
    assert catalogue.entry("regression", "MAE").unit == "target"
    assert catalogue.entry("regression", "R2").unit is None
    assert catalogue.entry("spectra", "Wasserstein").unit == "cm⁻¹"
    assert catalogue.entry("generation", "validity").format == "percent"
    assert catalogue.entry("generation", "EMD_density").direction == "lower"
    assert catalogue.entry("classification", "ROC-AUC").higher_is_better
    assert catalogue.entry("generation", "COV-P").definition_key == "coverage"


def test_entry_errors_name_the_known_metrics() -> None:
    with pytest.raises(KeyError, match="known: MAE, MSE"):
        catalogue.entry("regression", "MAPE")
    with pytest.raises(KeyError, match="known task types"):
        catalogue.entry("no_such_type", "MAE")
    with pytest.raises(KeyError):
        catalogue.main_metric("no_such_type")
    assert catalogue.names("no_such_type") == () and catalogue.entries("no_such_type") == []


def test_describe_fills_placeholders_from_metric_details() -> None:
    e = catalogue.entry("generation", "COV-R")
    assert {"structure", "composition"} <= set(e.placeholders)
    text = e.describe({"thresholds": {"structure": 0.2, "composition": 12.0}})
    assert "within 0.2 in CrystalNN" in text and "within 12 in Magpie" in text
    assert "{cutoff}" in catalogue.entry("generation", "validity").describe({})  # unknown: kept as written
    assert "0.5" in catalogue.entry("classification", "F1").describe({"threshold": 0.5})


def test_register_adds_a_plugin_task_type(restore_catalogue) -> None:
    added = catalogue.register([
        {"name": "energy_MAE", "task_type": "energy_forces", "label": "Energy MAE", "unit": "meV/atom",
         "format": "number", "direction": "lower", "main": True, "definition": "Mean absolute energy error.",
         "source": "plugin"},
        catalogue.MetricEntry(name="forces_MAE", task_type="energy_forces", label="Forces MAE", unit="meV/Å",
                              format="number", direction="lower", main=False, definition="Mean |F error|.",
                              source="plugin"),
    ])
    assert [e.name for e in added] == ["energy_MAE", "forces_MAE"]
    assert catalogue.task_types()[-1] == "energy_forces"
    assert catalogue.names("energy_forces") == ("energy_MAE", "forces_MAE")
    assert catalogue.main_metric("energy_forces") == "energy_MAE"
    assert catalogue.entry("energy_forces", "forces_MAE").unit == "meV/Å"


def test_register_rejects_duplicates_and_bad_entries(restore_catalogue) -> None:
    mae = dataclasses.replace(catalogue.entry("regression", "MAE"), main=False)
    with pytest.raises(ValueError, match="duplicate entry 'regression'/'MAE'"):
        catalogue.register([mae])
    with pytest.raises(ValueError, match="exactly one main metric"):
        catalogue.register([dataclasses.replace(mae, name="MAE2", main=True)])
    with pytest.raises(ValueError, match="missing field"):
        catalogue.register([{"name": "x", "task_type": "t"}])
    with pytest.raises(ValueError, match="field 'direction'"):
        catalogue.register([{"name": "x", "task_type": "t", "label": "x", "unit": None, "format": "number",
                             "direction": "sideways", "main": True, "definition": "d", "source": "s"}])
    assert catalogue.names("regression") == BUILT_IN["regression"]  # nothing was added
    assert "t" not in catalogue.task_types()
