"""Naming and sharing of the per-model environments (orchestrator/envs.py); creating one for real is
tested end to end by tests/integration/test_bench_pdos.py."""

import shutil

from orchestrator import envs
from tests.conftest import FIXTURE_MODELS, REPO_ROOT

IMAGES = REPO_ROOT / "images"


def test_models_with_the_same_locks_share_an_environment():
    symat = envs.env_for(IMAGES / "symat")  # its lock pins nothing: the base lock alone
    assert symat.locks == (envs.BASE_LOCK,)
    assert envs.env_for(FIXTURE_MODELS / "mean_baseline") == symat
    matformer, pdos = envs.env_for(IMAGES / "matformer"), envs.env_for(IMAGES / "pdos")
    assert len({symat.name, matformer.name, pdos.name}) == 3
    assert matformer.locks == (envs.BASE_LOCK, (IMAGES / "matformer" / "requirements.lock").resolve())
    assert matformer.name == f"env-{matformer.sha256[:16]}" and matformer.path.parent == envs.envs_root()


def test_a_changed_lock_makes_a_new_environment_and_comments_do_not(tmp_path):
    folder = tmp_path / "matformer"
    shutil.copytree(IMAGES / "matformer", folder)
    original = envs.env_for(IMAGES / "matformer")
    lock = folder / "requirements.lock"
    lock.write_text("# a new comment\n\n" + lock.read_text())
    assert envs.env_for(folder).sha256 == original.sha256
    lock.write_text(lock.read_text().replace("torch-geometric==2.8.1", "torch-geometric==2.8.0"))
    assert envs.env_for(folder).sha256 != original.sha256


def test_torch_spec_and_root_come_from_the_environment(monkeypatch, tmp_path):
    default = envs.env_for(IMAGES / "pdos")
    monkeypatch.setenv(envs.TORCH_SPEC_VARIABLE, "torch==2.12.0")
    monkeypatch.setenv(envs.ENVS_VARIABLE, str(tmp_path))
    other = envs.env_for(IMAGES / "pdos")
    assert other.torch == "torch==2.12.0" and other.sha256 != default.sha256
    assert other.path.parent == tmp_path.resolve() and not other.exists()


def test_runner_variables_name_the_environment(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/plugins")
    env = envs.env_for(IMAGES / "pdos")
    variables = env.variables()
    assert variables["PYTHONPATH"].split(":") == [str(REPO_ROOT), "/plugins"]
    assert variables["MATEVAL_ENV_NAME"] == env.name and variables["MATEVAL_ENV_SHA256"] == env.sha256
    assert variables["MATEVAL_ENV_LOCKS"].split(":") == ["images/base/requirements.lock", "images/pdos/requirements.lock"]
    assert variables["PYTHONNOUSERSITE"] == "1"
