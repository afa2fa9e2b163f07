"""Slurm settings, the sbatch script submitit makes from them, the node command and state mapping.

These are unit tests of our own logic; the real submissions are in
tests/integration/test_slurm_backend.py."""

from dataclasses import fields
from pathlib import Path

import pytest
import submitit
from submitit.slurm.slurm import _make_sbatch_string

from orchestrator.backends.slurm import SlurmConfig, SlurmConfigError, load_config, node_command, outcome_from_state
from orchestrator.backends.slurm_node import job_environment
from orchestrator.yamlfile import load_schema
from runner.wire import RunSpec


def test_layers_override_in_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MATEVAL_SLURM_CONFIG", raising=False)
    path = tmp_path / "slurm.yaml"
    path.write_text("partition: gpu\ntime: 120\ngpus: 1\naccount: matlab\nsbatch: {constraint: a100}\n")
    config = load_config(path, [({"time": 30, "cpus": 8}, "grid.yaml"), ({"partition": "debug"}, "--slurm")])
    assert (config.partition, config.time, config.gpus, config.cpus, config.account) == ("debug", 30, 1, 8, "matlab")
    assert config.sbatch == {"constraint": "a100"}
    monkeypatch.setenv("MATEVAL_SLURM_CONFIG", str(path))
    assert load_config().partition == "gpu"


@pytest.mark.parametrize("values, field", [
    ({"partiton": "gpu"}, "slurm.partiton"),
    ({"time": "2h"}, "slurm.time"),
    ({"gpus": -1}, "slurm.gpus"),
    ({"container": "docker"}, "slurm.container"),
    ({"container": "apptainer"}, "slurm.image"),
    ({"gpu_option": "tres"}, "slurm.gpu_option"),
    ({"sbatch": ["--exclusive"]}, "slurm.sbatch"),
    ({"time": 2.0}, "slurm.time"),  # JSON Schema alone would call 2.0 an integer
    ({"setup": "module load cuda"}, "slurm.setup"),
    ({"poll_s": 0}, "slurm.poll_s"),
    ({"poll_s": float("nan")}, "slurm.poll_s"),  # the schema alone lets NaN through
    ({"poll_s": float("inf")}, "slurm.poll_s"),
    ({"partition": ""}, "slurm.partition"),
])
def test_bad_settings_name_source_and_field(values, field):
    with pytest.raises(SlurmConfigError, match=rf"grid\.yaml: {field.replace('.', '[.]')}"):
        SlurmConfig().updated(values, "grid.yaml")


def test_schema_lists_every_setting():
    """orchestrator/schemas/slurm.schema.json describes exactly SlurmConfig's fields."""
    assert set(load_schema("slurm")["properties"]) == {f.name for f in fields(SlurmConfig)}


def test_hyphenated_keys_and_a_bad_file_value_name_the_file(tmp_path):
    assert SlurmConfig().updated({"gpu-option": "gres"}, "--slurm").gpu_option == "gres"
    path = tmp_path / "slurm.yaml"
    path.write_text("slurm:\n  container: pyxis\n")
    with pytest.raises(SlurmConfigError, match=r"slurm\.yaml: slurm\.image: expected an image"):
        load_config(path)


def test_bad_file_is_named(tmp_path):
    path = tmp_path / "slurm.yaml"
    path.write_text("partition: [gpu\n")
    with pytest.raises(SlurmConfigError, match="slurm.yaml: invalid YAML"):
        load_config(path)
    with pytest.raises(SlurmConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_time_limit_rounds_the_timeout_up_to_minutes():
    assert SlurmConfig().time_limit_min(61) == 2
    assert SlurmConfig().time_limit_min(60) == 1
    assert SlurmConfig().time_limit_min(5) == 1
    assert SlurmConfig(time=45).time_limit_min(61) == 45


@pytest.mark.parametrize("gpu_option, expected", [("gres", "#SBATCH --gres=gpu:2"), ("gpus", "#SBATCH --gpus-per-node=2")])
def test_sbatch_script_carries_every_setting(tmp_path, gpu_option, expected):
    config = SlurmConfig(partition="gpu", gpus=2, gpu_option=gpu_option, cpus=8, mem="32G", account="matlab",
                         qos="high", sbatch={"constraint": "a100", "exclusive": True}, setup=["module load cuda"])
    params = config.executor_parameters(90)
    executor = submitit.SlurmExecutor(folder=tmp_path)
    executor.update_parameters(**params)  # submitit rejects unknown parameters
    script = _make_sbatch_string(command="python -m x", folder=tmp_path, **params)
    for line in (expected, "#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32G", "#SBATCH --account=matlab", "#SBATCH --qos=high",
                 "#SBATCH --constraint=a100", "#SBATCH --exclusive", "module load cuda"):
        assert line in script, line
    assert "srun" not in script  # the runner is started by our job function, in the batch step


def spec(tmp_path) -> RunSpec:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return RunSpec(run_id="r1", model="matformer", model_dir="/repo/images/matformer", task="perov5_heat_ref",
                   data_roots=[str(data), str(tmp_path / "absent")], cache_dir=str(tmp_path / "cache"))


def test_node_command_without_container_uses_the_shared_environment(tmp_path):
    command, cwd, image = node_command(SlurmConfig(python="/shared/venv/bin/python"), spec(tmp_path), tmp_path / "run")
    assert command == ["/shared/venv/bin/python", "-m", "runner", str(tmp_path / "run")]
    assert image is None and Path(cwd, "runner").is_dir()


def test_node_command_apptainer_binds_only_the_run_directory(tmp_path):
    """The model stage sees its run directory (inputs without test targets), not the datasets."""
    config = SlurmConfig(container="apptainer", image="/sif/mateval-{model}.sif", gpus=1)
    command, _, image = node_command(config, spec(tmp_path), tmp_path / "run")
    assert image == "/sif/mateval-matformer.sif"
    assert command[:2] == ["apptainer", "exec"] and "--nv" in command and "--cleanenv" in command
    assert "--containall" in command and "--no-privs" in command  # confined: no capability, own /tmp
    binds = [command[i + 1] for i, word in enumerate(command) if word == "--bind"]
    assert binds == [f"{(tmp_path / 'run').resolve()}:/mateval/run:rw"]
    assert command[-5:] == [image, "python", "-m", "runner", "/mateval/run"]
    without_gpu = node_command(SlurmConfig(container="apptainer", image="/x.sif"), spec(tmp_path), tmp_path / "run")[0]
    assert "--nv" not in without_gpu


def test_node_command_pyxis(tmp_path):
    config = SlurmConfig(container="pyxis", image="/sqsh/mateval+{model}.sqsh")
    command, _, image = node_command(config, spec(tmp_path), tmp_path / "run")
    assert command[0] == "srun" and f"--container-image={image}" in command
    mounts = next(word for word in command if word.startswith("--container-mounts="))
    assert mounts == f"--container-mounts={(tmp_path / 'run').resolve()}:/mateval/run:rw"  # no dataset mounted
    assert "--no-container-remap-root" in command and "--container-readonly" in command


@pytest.mark.parametrize("state, flags, error_type", [
    ("COMPLETED", {}, None),
    ("TIMEOUT", {"timed_out": True}, None),
    ("CANCELLED by 0", {"cancelled": True}, None),
    ("OUT_OF_MEMORY", {"oom_killed": True}, None),
    ("NODE_FAIL", {}, "NodeFail"),
    ("PREEMPTED", {}, "Preempted"),
])
def test_slurm_states(state, flags, error_type):
    outcome = outcome_from_state(state, None, 1.0, {"job_id": "5_0", "time_limit_min": 3})
    for name in ("timed_out", "cancelled", "oom_killed"):
        assert getattr(outcome, name) == flags.get(name, False), name
    assert outcome.error_type == error_type
    assert outcome.slurm["state"] == state and outcome.slurm["job_id"] == "5_0"
    if state == "TIMEOUT":
        assert "3 min" in outcome.message


def test_threads_follow_the_allocation():
    env = job_environment({"SLURM_CPUS_PER_TASK": "4", "PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == "4" and env["MKL_NUM_THREADS"] == "4" and env["PYTHONUNBUFFERED"] == "1"
    assert job_environment({"SLURM_CPUS_PER_TASK": "4", "OMP_NUM_THREADS": "2"})["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in job_environment({"PATH": "/bin"})


@pytest.mark.parametrize("text", ["slurm: [gpu]\n", "- gpu\n"])
def test_a_slurm_section_that_is_not_a_mapping_is_named(tmp_path, text):
    path = tmp_path / "slurm.yaml"
    path.write_text(text)
    with pytest.raises(SlurmConfigError, match="slurm.yaml: expected a mapping of Slurm settings"):
        load_config(path)


def test_an_empty_slurm_section_is_the_defaults(tmp_path):
    path = tmp_path / "slurm.yaml"
    path.write_text("slurm:\n")
    assert load_config(path) == load_config(None)
