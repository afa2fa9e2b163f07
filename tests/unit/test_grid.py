"""Grid files: parsing, precedence, and errors that name the file and the field."""

import pytest

from orchestrator.backends import BACKENDS
from orchestrator.grid import GridError, load_grid
from orchestrator.yamlfile import load_schema
from tests.conftest import REPO_ROOT


def write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_example_grid_is_valid():
    grid = load_grid(REPO_ROOT / "examples" / "grid-small.yaml")
    assert [m.name for m in grid.models] == ["matformer"]
    assert grid.tasks == ("perov5_heat_ref", "perov5_has_gap") and grid.seeds == (0, 1)
    assert grid.overrides == {"epochs": 2} and grid.max_samples == {"train": 200, "val": 50, "test": 100}
    assert grid.slurm["cpus"] == 1


def test_model_entries(tmp_path):
    grid = load_grid(write(tmp_path, "models:\n  - symat\n  - {name: matformer, tasks: [perov5_heat_ref], "
                                     "set: {epochs: 3}}\nseeds: 4\n"))
    assert grid.models[0].name == "symat" and grid.models[0].tasks is None
    assert grid.models[1].tasks == ("perov5_heat_ref",) and grid.models[1].overrides == {"epochs": 3}
    assert grid.seeds == (4,) and grid.name == "grid"


@pytest.mark.parametrize("text, where", [
    ("models: [matformer]\nseed: [0]\n", "unknown field"),
    ("tasks: [perov5_heat_ref]\n", "models: missing"),
    ("models: []\n", "models: expected a non-empty list"),
    ("models: [{tasks: [x]}]\n", r"models\[0\]: expected a model name"),
    ("models: [{name: m, epochs: 3}]\n", r"models\[0\]\.epochs: unknown field"),
    ("models: [{name: m, tasks: []}]\n", r"models\[0\]\.tasks: expected a non-empty list"),
    ("models: [{name: m, set: 3}]\n", r"models\[0\]\.set: expected a mapping"),
    ("models: [m, m]\n", "listed more than once"),
    ("models: [m]\nseeds: [0, -1]\n", "seeds: expected"),
    ("models: [m]\nseeds: [1, 1]\n", "seeds: repeated"),
    ("models: [m]\ndata: tiny\n", "data: expected"),
    ("models: [m]\nprofile: fast\n", "profile: expected"),
    ("models: [m]\nmax_samples: {train: 0}\n", "max_samples.train"),
    ("models: [m]\nmax_samples: {trian: 3}\n", r"max_samples\.trian: unknown field"),
    ("models: [m]\nseeds: [2.0]\n", "seeds: expected"),  # JSON Schema alone would call 2.0 an integer
    ("models: [m]\nnum_samples: 0\n", "num_samples: expected a positive integer"),
    ("models: [m]\nname: ' '\n", "name: expected a non-empty string"),
    ("models: [m]\nbackend: kubernetes\n", "backend: expected"),
    ("models: [m]\ntimeout_s: -5\n", "timeout_s: expected"),
    ("models: [m]\ntimeout_s: .nan\n", "timeout_s: expected"),
    ("models: [m]\ntimeout_s: .inf\n", "timeout_s: expected"),
    ("models: [m]\ntimeout_s: 0\n", "timeout_s: expected"),
    ("models: [m]\nseeds: [4294967296]\n", "seeds: expected an integer >= 0 and <= 4294967295"),
    ("models: [m]\nnum_samples: 10.0\n", "num_samples: expected a positive integer, got 10.0"),
    ("models: [m]\nset: [epochs]\n", "set: expected a mapping"),
    ("models: [m\n", "invalid YAML"),
    ("- m\n", "expected a mapping"),
    ("", "expected a mapping"),
])
def test_errors_name_the_file_and_field(tmp_path, text, where):
    with pytest.raises(GridError, match=where) as info:
        load_grid(write(tmp_path, text))
    assert str(tmp_path / "grid.yaml") in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(GridError, match="cannot read the grid file"):
        load_grid(tmp_path / "nope.yaml")


def test_several_problems_are_reported_together(tmp_path):
    with pytest.raises(GridError) as info:
        load_grid(write(tmp_path, "models: [m]\ndata: tiny\nnum_samples: 0\n"))
    assert "data: expected" in str(info.value) and "num_samples: expected" in str(info.value)


def test_shorthands(tmp_path):
    grid = load_grid(write(tmp_path, "models: m\ntasks: t\nseeds: 3\nset:\n"))
    assert grid.models == (grid.models[0],) and grid.models[0].name == "m"
    assert grid.tasks == ("t",) and grid.seeds == (3,) and grid.overrides == {}


def test_schema_backends_are_the_backends():
    """The grid schema lists the backends itself (grid.py must not import orchestrator.backends)."""
    assert load_schema("grid")["properties"]["backend"]["enum"] == ["auto", *BACKENDS, None]
