"""The Docker backend on a real Docker engine: images built from images/base and images/matformer
on the local base image (debootstrap + torch CPU wheel; no registry is reachable here), and real
containerized runs of Matformer on a small real perov_5 subset. One image build serves every
test. Without a Docker daemon these tests skip, except under CI=true, where they fail."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, require, run_mateval

pytestmark = pytest.mark.docker
SMALL = ["--max-samples", "train=96,val=16,test=128", "--interval", "0.5", "--no-report", "--quiet"]


@pytest.fixture(scope="session")
def client():
    from orchestrator.backends.docker import DockerUnavailable, docker_client

    try:
        return docker_client()
    except DockerUnavailable as exc:
        require(False, str(exc))


@pytest.fixture(scope="session")
def images(client, tmp_path_factory):
    """(matformer image, base image), built once on mateval/local-base:latest."""
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image
    from orchestrator.local_base import build_local_base

    log = tmp_path_factory.mktemp("build") / "build.log"
    build_local_base(client, log)
    return ensure_model_image(client, REPO_ROOT / "images" / "matformer", "matformer", LOCAL_BASE_IMAGE, log)


def docker_bench(results_dir: Path, *args: str, env=None):
    return run_mateval(["bench", "--backend", "docker", "--base-image", "mateval/local-base:latest",
                        "--results-dir", str(results_dir), *SMALL, *args], cwd=REPO_ROOT, env=env)


def only_run(results_dir: Path) -> Path:
    (run_dir,) = [p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def failing_matformer_run(results_dir: Path, *args: str) -> tuple[Path, dict]:
    """A Matformer run on perov5_heat_ref expected to end non-ok: (run dir, result)."""
    out = docker_bench(results_dir, "--model", "matformer", "--task", "perov5_heat_ref", *args)
    assert out.returncode == 1, out.stdout[-3000:]
    run_dir = only_run(results_dir)
    return run_dir, read_result(run_dir / "result.json")


def test_containerized_run_comes_back_through_the_volume(images, tmp_path):
    image, base = images
    out = docker_bench(tmp_path, "--model", "matformer", "--task", "perov5_has_gap", "--set", "epochs=1")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    run_dir = only_run(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["backend"] == "docker"
    assert result["container"]["image_id"] == image.id
    assert result["container"]["base_image"] == "mateval/local-base:latest"
    assert result["container"]["docker_version"]
    assert result["dataset"]["path"] == str(REPO_ROOT / "data" / "perov_5_subset") or \
        not result["dataset"]["path"].startswith("/mateval/")  # the host's path: scoring ran on the host
    assert set(result["metrics"]) == {"ROC-AUC", "Accuracy", "Precision", "Recall", "F1"}
    assert result["model_stats"]["params"] > 1_000_000
    assert result["resources"]["overall"]["duration (s)"] > 0
    for name in ("result.json", "predictions.csv", "timeseries.csv", "run.log"):
        assert (run_dir / name).stat().st_uid == os.getuid(), name
    assert "epoch 1/1" in (run_dir / "run.log").read_text()
    assert "backend docker" in out.stdout


def test_container_holds_no_test_target_and_cannot_set_its_score(images, tmp_path):
    """The peeking fixture model searches its container for the test targets and replaces the metric
    function in its own process: it finds no data, and the scoring stage (on the host) computes the
    real metrics from its predictions."""
    import csv
    import json

    import metrics

    out = docker_bench(tmp_path, "--model", "peeking", "--task", "perov5_heat_ref", "--max-samples",
                       "train=40,val=8,test=30", env={"MATEVAL_IMAGES": str(FIXTURE_MODELS)})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    run_dir = only_run(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["backend"] == "docker" and result["scoring"]["status"] == "done"
    peek = json.loads((run_dir / "peek.json").read_text())
    assert peek["run_dir"] == "/mateval/run"
    assert peek["data_mount_exists"] is False and peek["spec_data_roots"] == []
    assert peek["csv_with_targets"] == []  # no dataset file anywhere it looked
    assert peek["targets_in_samples"] == 0 and peek["test_jsonl_rows_with_target"] == 0
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    y_true = [float(r["target"]) for r in rows]
    y_pred = [float(r["prediction"]) for r in rows]
    assert len(rows) == 30
    assert result["metrics"] == pytest.approx(metrics.regression_metrics(y_true, y_pred))
    assert result["metrics"]["MAE"] > 0.05


def test_unchanged_model_is_not_rebuilt_and_runs_as_non_root(client, images):
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image

    image, base = images
    again, again_base = ensure_model_image(client, REPO_ROOT / "images" / "matformer", "matformer", LOCAL_BASE_IMAGE, None)
    assert (again.id, again_base.id) == (image.id, base.id)
    uid = client.containers.run(image.id, entrypoint=["id", "-u"], remove=True).decode().strip()
    assert uid == "1000"


def test_container_options_are_confined(client, images, tmp_path):
    from orchestrator.backends.docker import DockerBackend
    from runner.wire import RunSpec

    image, _ = images
    backend = DockerBackend("mateval/local-base:latest", gpus="none", memory="1g", cpus=1.5, client=client)
    spec = RunSpec(run_id="r", model="matformer", model_dir=str(REPO_ROOT / "images" / "matformer"), task="t",
                   data_roots=[str(REPO_ROOT / "data"), str(tmp_path / "missing")])
    options = backend.container_options(spec, tmp_path, image, [])
    assert options["privileged"] is False and options["network_disabled"] is True and options["init"] is True
    uid, gid = (int(part) for part in options["user"].split(":"))
    assert uid != 0 and gid != 0  # whoever starts it, root included
    assert (uid, gid) == ((1000, 1000) if os.getuid() == 0 else (os.getuid(), os.getgid() or 1000))
    assert options["cap_drop"] == ["ALL"] and "cap_add" not in options
    assert options["read_only"] is True and set(options["tmpfs"]) == {"/tmp"}
    assert options["environment"]["HOME"] == "/tmp" and options["environment"]["MPLCONFIGDIR"].startswith("/tmp/")
    assert 0 < options["pids_limit"] <= 4096
    assert options["security_opt"] == ["no-new-privileges"]
    # only the run directory: the data (test targets) and the scoring cache stay on the host
    assert options["volumes"] == {str(tmp_path.resolve()): {"bind": "/mateval/run", "mode": "rw"}}
    assert not any("docker.sock" in path for path in options["volumes"])
    assert options["mem_limit"] == "1g" and options["nano_cpus"] == 1_500_000_000
    assert backend.container_spec(spec).data_roots == [] and backend.container_spec(spec).cache_dir is None


def test_containerized_run_is_confined_and_its_files_come_back(client, images, tmp_path):
    """The crashing fixture's ``probe`` mode reports from inside the container what it may do."""
    import json

    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image

    ensure_model_image(client, FIXTURE_MODELS / "crashing", "crashing", LOCAL_BASE_IMAGE, None)
    out = docker_bench(tmp_path, "--model", "crashing", "--task", "perov5_heat_ref", "--gpus", "none",
                       "--set", "mode=probe", env={"MATEVAL_IMAGES": str(FIXTURE_MODELS)})
    assert out.returncode == 1, out.stdout[-3000:]
    run_dir = only_run(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "failed" and "probe done" in result["error"]["message"]
    (line,) = [line for line in (run_dir / "run.log").read_text().splitlines() if line.startswith("CONFINEMENT ")]
    inside = json.loads(line.split(" ", 1)[1])
    assert inside["uid"] != 0 and inside["euid"] != 0 and inside["gid"] != 0 and 0 not in inside["groups"]
    assert int(inside["cap_eff"], 16) == 0 and int(inside["cap_bnd"], 16) == 0  # every capability dropped
    assert inside["no_new_privs"] == "1"
    assert inside["writes_root"] is False and inside["writes_opt_mateval"] is False  # read-only root fs
    assert inside["writes_tmp"] is True  # the scratch tmpfs
    assert inside["pids_limit"] == "4096"
    assert (run_dir / "probe" / "written_inside.txt").is_file()
    for root, dirs, files in os.walk(run_dir):  # every file handed back to the invoking user
        for name in [".", *dirs, *files]:
            info = os.lstat(os.path.join(root, name))
            assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), os.path.join(root, name)


def test_model_crash_is_failed_with_its_log(images, tmp_path):
    run_dir, result = failing_matformer_run(tmp_path, "--set", "batch_size=0")
    assert result["status"] == "failed" and result["backend"] == "docker"
    assert "batch_size" in result["error"]["message"]
    assert "batch_size" in (run_dir / "run.log").read_text()


def test_timeout_stops_the_container(client, images, tmp_path):
    run_dir, result = failing_matformer_run(tmp_path, "--set", "epochs=500", "--timeout", "30")
    assert result["status"] == "timeout"
    # the run was under way when it was stopped (not "epoch 1": on a loaded machine the first epoch
    # may take longer than the limit)
    assert "training Matformer" in (run_dir / "run.log").read_text()
    assert not client.containers.list(all=True, filters={"label": f"org.mateval.run_id={result['run_id']}"})


def test_memory_limit_ends_as_oom(images, tmp_path):
    run_dir, result = failing_matformer_run(tmp_path, "--set", "epochs=1", "--memory", "300m")
    assert result["status"] == "oom"
    assert result["container"]["oom_killed"] is True
    assert (run_dir / "run.log").is_file()


def test_build_failure_names_the_step(images, tmp_path):
    models = tmp_path / "images"
    shutil.copytree(FIXTURE_MODELS / "mean_baseline", models / "mean_baseline")
    (models / "mean_baseline" / "Dockerfile").write_text(
        "ARG MATEVAL_BASE\nFROM ${MATEVAL_BASE}\nRUN echo about to fail && exit 3\n")
    results_dir = tmp_path / "results"
    out = docker_bench(results_dir, "--model", "mean_baseline", "--task", "perov5_heat_ref",
                       env={"MATEVAL_IMAGES": str(models)})
    assert out.returncode == 1
    run_dir = only_run(results_dir)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "failed" and result["error"]["type"] == "NotStarted"
    assert re.search(r"failed at step 3/\d+ : RUN echo about to fail && exit 3", result["error"]["message"])
    assert "about to fail" in (run_dir / "build.log").read_text()


def test_compose_file_is_valid():
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose not installed (apt-get install docker-compose)")
    out = subprocess.run([compose, "-f", str(REPO_ROOT / "compose" / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, cwd=REPO_ROOT, env=dict(os.environ, MATEVAL_DATA="/tmp"))
    assert out.returncode == 0, out.stderr
    assert "matformer" in out.stdout and "symat" in out.stdout and "capabilities" in out.stdout


def test_every_model_image_builds_and_imports_its_entry_point(client, images):
    """Each images/<model>/Dockerfile builds on the base and its entry point imports inside."""
    from orchestrator import registry
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image

    for name in registry.model_names():
        manifest = registry.get_model(name)
        image, _ = ensure_model_image(client, manifest.folder, name, LOCAL_BASE_IMAGE, None)
        module, _, cls = manifest.data["entry_point"].partition(":")
        code = (f"import sys; sys.path.insert(0, '/opt/mateval/images/{name}'); "
                f"from {module} import {cls}; from runner.contract import ModelAdapter; "
                f"assert issubclass({cls}, ModelAdapter); print('ok')")
        out = client.containers.run(image.id, entrypoint=["python", "-c", code], remove=True, network_disabled=True)
        assert out.decode().strip().endswith("ok"), name


def _potential_models() -> list[str]:
    from orchestrator import registry

    return [name for name in registry.model_names() if "potential" in registry.get_model(name).data["task_types"]]


@pytest.mark.parametrize("model", _potential_models())
def test_containerized_interatomic_potential_run(client, images, model, tmp_path):
    """Each interatomic potential (MACE, NequIP, Allegro, DPA2, SchNet: the authors' packages in
    their own images) trains and predicts in its container on real mlearn Si and ends ok, scored
    on the host with every potential metric."""
    from metrics import catalogue
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image
    from orchestrator import registry

    image, _ = ensure_model_image(client, registry.get_model(model).folder, model, LOCAL_BASE_IMAGE, None)
    out = run_mateval(["bench", "--backend", "docker", "--base-image", "mateval/local-base:latest", "--results-dir",
                       str(tmp_path), "--model", model, "--task", "mlearn_si", "--max-samples", "train=6,val=2,test=3",
                       "--set", "epochs=1", "--no-report", "--quiet"], cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    run_dir = only_run(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["backend"] == "docker", result.get("error")
    assert result["container"]["image_id"] == image.id
    assert set(result["metrics"]) == set(catalogue.names("potential"))
    assert result["model_stats"]["params"] > 0
    assert (run_dir / result["files"]["predictions_extxyz"]).is_file()


def _molecular_models() -> list[str]:
    from orchestrator import registry

    return [name for name in registry.model_names() if "molecule" in registry.get_model(name).data.get("structures", [])]


@pytest.mark.parametrize("model", _molecular_models())
def test_containerized_molecular_run(client, images, model, tmp_path):
    """Each model that takes molecules (DimeNet++, SchNet) learns QM9's U0 in its container on the
    embedded QM9 molecules and ends ok, scored on the host beside the per-element linear baseline."""
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image
    from orchestrator import registry

    image, _ = ensure_model_image(client, registry.get_model(model).folder, model, LOCAL_BASE_IMAGE, None)
    out = run_mateval(["bench", "--backend", "docker", "--base-image", "mateval/local-base:latest", "--results-dir",
                       str(tmp_path), "--model", model, "--task", "qm9_u0", "--max-samples", "train=12,val=2,test=4",
                       "--set", "epochs=1", "--no-report", "--quiet"], cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    result = read_result(only_run(tmp_path) / "result.json")
    assert result["status"] == "ok" and result["backend"] == "docker", result.get("error")
    assert result["container"]["image_id"] == image.id
    assert result["metrics"]["MAE"] > 0 and "per-element linear fit" in result["baseline"]["predictor"]
