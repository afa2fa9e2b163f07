"""The suite plan: order, precedence of settings, the configuration hash and --resume matching.

Uses the fixture models and the real perov_5 subset embedded in data/ (its files are hashed)."""

import pytest

from orchestrator import plan, results
from orchestrator.grid import load_grid
from runner.manifest import load_manifest
from runner.result import write_result
from runner.result import base_result
from runner.wire import RunSpec
from runner.tasks import UnknownTaskError, get_task
from tests.conftest import FIXTURE_MODELS, REPO_ROOT

ROOTS = [REPO_ROOT / "data"]


@pytest.fixture
def baseline():
    return load_manifest(FIXTURE_MODELS / "mean_baseline")


def test_order_and_precedence(tmp_path, baseline):
    grid_file = tmp_path / "g.yaml"
    grid_file.write_text("models: [{name: mean_baseline, set: {epochs: 3, sleep_s: 0.1}}]\nset: {epochs: 1}\n"
                         "tasks: [perov5_heat_ref, perov5_has_gap]\n")
    grid = load_grid(grid_file)
    settings = plan.Settings(overrides=dict(grid.overrides))
    runs = plan.build([baseline], [], [0, 1], settings, {"sleep_s": 0.0}, grid)
    assert [(r.task, r.seed) for r in runs] == [("perov5_heat_ref", 0), ("perov5_heat_ref", 1),
                                                ("perov5_has_gap", 0), ("perov5_has_gap", 1)]
    assert runs[0].overrides == {"epochs": 3, "sleep_s": 0.0}  # grid < model entry < --set
    only = plan.build([baseline], ["perov5_has_gap"], [0], settings, {}, grid)
    assert [r.task for r in only] == ["perov5_has_gap"]


def test_unsupported_task_type_is_skipped_with_a_reason(baseline):
    skipped = []
    runs = plan.build([baseline], ["perov5_generation", "perov5_heat_ref"], [0], plan.Settings(), {}, None, skipped)
    assert [r.task for r in runs] == ["perov5_heat_ref"]
    assert "perov5_generation" in skipped[0] and "generation" in skipped[0]


def test_grid_task_errors_name_the_file(tmp_path):
    grid_file = tmp_path / "g.yaml"
    grid_file.write_text("models: [{name: mean_baseline, tasks: [perov5_heat_rf]}]\n")
    with pytest.raises(UnknownTaskError, match=r"g\.yaml: models\[0\]\.tasks: .*perov5_heat_rf"):
        plan.check_tasks(load_grid(grid_file), [])


def test_config_hash_tracks_what_changes_scores(tmp_path, baseline):
    def digest(settings=plan.Settings(), overrides=None, folder=None):
        model_sha = plan.model_folder_sha256(folder or baseline.folder)
        return plan.config_sha256(model_sha, "perov5_heat_ref", settings, overrides or {})

    reference = digest()
    assert digest() == reference
    assert digest(overrides={"epochs": 3}) != reference
    assert digest(plan.Settings(max_samples={"train": 10})) != reference
    assert digest(plan.Settings(profile="paper")) != reference
    assert digest(plan.Settings(data_variant="full")) != reference
    copy = tmp_path / "mean_baseline"
    copy.mkdir()
    for path in baseline.folder.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    assert digest(folder=copy) == reference  # content, not location
    (copy / "mean_baseline_model.py").write_text((copy / "mean_baseline_model.py").read_text() + "\n# changed\n")
    assert digest(folder=copy) != reference


def published(tmp_path, item, status="ok", data_sha=None, config=None):
    spec = RunSpec(run_id=results.new_run_id(item.manifest.name, item.task, item.seed), model=item.manifest.name,
                   model_dir=str(item.manifest.folder), task=item.task, seed=item.seed,
                   config_sha256=config or item.config_sha256)
    staging = results.prepare(tmp_path, spec)
    result = base_result(spec) | {"status": status, "metrics": {"MAE": 0.1} if status == "ok" else {}}
    result["task"]["name"] = item.task
    result["dataset"]["sha256"] = data_sha if data_sha is not None else get_task(item.task).data_sha256("subset", ROOTS)
    write_result(staging, result)
    return results.publish(staging, tmp_path)


def test_resume_skips_only_matching_ok_runs(tmp_path, baseline):
    settings = plan.Settings()
    runs = plan.build([baseline], ["perov5_heat_ref", "perov5_has_gap"], [0, 1], settings, {})
    done = published(tmp_path, runs[0])
    published(tmp_path, runs[1], status="failed")
    published(tmp_path, runs[2], data_sha={"train.csv": "0" * 64})  # other data
    published(tmp_path, runs[3], config="f" * 64)  # other configuration
    todo, skipped = plan.drop_completed(runs, settings, ROOTS, results.run_dirs(tmp_path))
    assert todo == runs[1:] and skipped == [(runs[0], done)]


def test_resume_keeps_runs_whose_data_is_missing(tmp_path, baseline):
    runs = plan.build([baseline], ["perov5_heat_ref"], [0], plan.Settings(), {})
    published(tmp_path, runs[0])
    todo, _ = plan.drop_completed(runs, plan.Settings(), [tmp_path / "no-data"], results.run_dirs(tmp_path))
    assert todo == runs


def test_molecular_tasks_are_skipped_for_crystal_models(baseline):
    skipped = []
    runs = plan.build([baseline], ["qm9_u0", "perov5_heat_ref"], [0], plan.Settings(), {}, None, skipped)
    assert [r.task for r in runs] == ["perov5_heat_ref"]
    assert skipped == ["mean_baseline on qm9_u0: molecules not supported by the model (model.yaml structures: crystal)"]
