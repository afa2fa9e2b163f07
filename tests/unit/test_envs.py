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


def test_relocate_scripts_points_console_scripts_at_the_renamed_environment(tmp_path):
    """pip writes the build folder's interpreter into each script's #! line; after the rename the
    scripts must name the final folder (else: "No such file or directory")."""
    import os

    from orchestrator.envs import relocate_scripts

    old, new = tmp_path / ".env-abc.tmp-4242", tmp_path / "env-abc"
    (old / "bin").mkdir(parents=True)
    script = old / "bin" / "mace_run_train"
    script.write_text(f"#!{old}/bin/python\nimport sys\n")
    os.chmod(script, 0o755)
    (old / "bin" / "activate").write_text(f'VIRTUAL_ENV="{old}"\nexport VIRTUAL_ENV\n')
    (old / "bin" / "data.bin").write_bytes(b"\x00\x01" + str(old).encode())  # not a script: untouched
    (old / "bin" / "python").symlink_to("/usr/bin/python3")
    changed = relocate_scripts(old, new)
    assert sorted(p.name for p in changed) == ["activate", "mace_run_train"]
    assert script.read_text().splitlines()[0] == f"#!{new}/bin/python"
    assert os.stat(script).st_mode & 0o777 == 0o755
    assert f'VIRTUAL_ENV="{new}"' in (old / "bin" / "activate").read_text()
    assert (old / "bin" / "data.bin").read_bytes().endswith(str(old).encode())

    # an environment renamed before this existed is healed in place, whatever the build's pid was
    os.rename(old, new)
    (new / "bin" / "nequip-train").write_text(f"#!{tmp_path}/.env-abc.tmp-977/bin/python\n")
    healed = relocate_scripts(tmp_path / ".env-abc.tmp-", new, prefix_only=True)
    assert [p.name for p in healed] == ["nequip-train"]
    assert (new / "bin" / "nequip-train").read_text() == f"#!{new}/bin/python\n"
    assert relocate_scripts(tmp_path / ".env-abc.tmp-", new, prefix_only=True) == []
