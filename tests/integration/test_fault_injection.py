"""Fault injection: a suite survives its models' failures and its own interruption.

Each failure mode of the fixture model ``crashing`` runs in a suite (a grid file) beside a model
that works (``mean_baseline``), on the local and the Docker backend: the failing run is recorded
with its status and log, the other run still comes back ``ok``, and the report renders both. The
orchestrator itself is interrupted (SIGINT, SIGTERM) mid-suite: the running child or container
is stopped, finished results are intact, and ``--resume`` runs exactly what is missing. Two suites
writing into the same results directory at once do not disturb each other. All on the real
perov_5 subset embedded in data/."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, require, run_mateval

ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
SMALL = ["--max-samples", "train=60,val=20,test=60", "--interval", "0.2", "--quiet"]
LOCAL_BASE = "mateval/local-base:latest"


def published(results_dir: Path) -> list[Path]:
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def results_by_model(results_dir: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for run_dir in published(results_dir):
        result = read_result(run_dir / "result.json")
        found.setdefault(result["model"]["name"], []).append(result)
    return found


def suite_grid(tmp_path: Path, mode: str, timeout_s: int = 600) -> Path:
    path = tmp_path / f"suite-{mode}.yaml"
    path.write_text(f"""name: fault-{mode}
models:
  - {{name: crashing, tasks: [perov5_heat_ref], set: {{mode: {mode}}}}}
  - {{name: mean_baseline, tasks: [perov5_heat_ref], set: {{epochs: 1}}}}
seeds: [0]
timeout_s: {timeout_s}
""")
    return path


@pytest.fixture(scope="module")
def docker_fixture_images():
    """The Docker images of the two fixture models, on the local base image (built once)."""
    from orchestrator.backends.docker import DockerUnavailable, docker_client
    from orchestrator.images import LOCAL_BASE_IMAGE, ensure_model_image
    from orchestrator.local_base import build_local_base

    try:
        client = docker_client()
    except DockerUnavailable as exc:
        require(False, str(exc))
    build_local_base(client, None)
    for name in ("crashing", "mean_baseline"):
        ensure_model_image(client, FIXTURE_MODELS / name, name, LOCAL_BASE_IMAGE, None)
    return client


LOCAL_CASES = [
    ("raise", [], "failed", "RuntimeError", "deliberate failure in fit"),
    ("sigkill", [], "oom", "Killed", "epoch 1"),
    ("oom", [], "oom", "MemoryError", "deliberate out-of-memory"),
    ("hang", ["--timeout", "20"], "timeout", "Timeout", "epoch 1"),  # room for start-up on a loaded machine
]


@pytest.mark.parametrize("mode, extra, status, error_type, in_log", LOCAL_CASES, ids=[c[0] for c in LOCAL_CASES])
def test_local_suite_records_the_failure_and_runs_the_rest(tmp_path, mode, extra, status, error_type, in_log):
    out = run_mateval(["bench", "--grid", str(suite_grid(tmp_path, mode)), "--backend", "local", "--results-dir",
                       str(tmp_path / "results"), *SMALL, *extra], cwd=REPO_ROOT, env=ENV, timeout=600)
    assert out.returncode == 1, out.stdout[-3000:]
    check_suite(tmp_path / "results", status, error_type, in_log, "local")


def check_suite(results_dir: Path, status: str, error_type: str, in_log: str, backend: str) -> None:
    found = results_by_model(results_dir)
    (crashed,) = found["crashing"]
    (fine,) = found["mean_baseline"]
    assert (crashed["status"], crashed["error"]["type"]) == (status, error_type), crashed["error"]
    assert in_log in crashed["error"]["log_tail"]
    assert in_log in (results_dir / crashed["run_id"] / "run.log").read_text()
    assert fine["status"] == "ok" and fine["metrics"]["MAE"] > 0
    assert crashed["backend"] == fine["backend"] == backend
    (report,) = results_dir.glob("report-*.html")
    html = report.read_text()
    assert crashed["run_id"] in html and fine["run_id"] in html and status.upper() in html
    summary = (results_dir / "summary.md").read_text()
    assert status.upper() in summary


DOCKER_CASES = [
    ("raise", [], "failed", "RuntimeError", "deliberate failure in fit"),
    ("sigkill", [], "oom", "Killed", "epoch 1"),
    ("alloc", ["--memory", "400m"], "oom", "OOMKilled", "epoch 1"),
    ("hang", ["--timeout", "30"], "timeout", "Timeout", "epoch 1"),
]


@pytest.mark.docker
@pytest.mark.parametrize("mode, extra, status, error_type, in_log", DOCKER_CASES, ids=[c[0] for c in DOCKER_CASES])
def test_docker_suite_records_the_failure_and_runs_the_rest(docker_fixture_images, tmp_path, mode, extra, status,
                                                            error_type, in_log):
    out = run_mateval(["bench", "--grid", str(suite_grid(tmp_path, mode)), "--backend", "docker", "--base-image",
                       LOCAL_BASE, "--gpus", "none", "--results-dir", str(tmp_path / "results"), *SMALL, *extra],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:]
    check_suite(tmp_path / "results", status, error_type, in_log, "docker")
    client = docker_fixture_images
    assert not client.containers.list(all=True, filters={"label": "org.mateval.run_id"}), "containers left behind"


@pytest.mark.docker
def test_kill_9_of_the_orchestrator_stops_its_container_and_the_next_bench_removes_it(docker_fixture_images,
                                                                                       tmp_path):
    """No container outlives its orchestrator: after ``kill -9`` the runner's standard-input
    watchdog stops the run, and the next bench removes the container and moves the staging entry."""
    client = docker_fixture_images
    results = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "bench", "--model", "crashing", "--backend",
                                "docker", "--base-image", LOCAL_BASE, "--gpus", "none", "--results-dir", str(results),
                                "--no-report", "--set", "mode=hang", "--max-samples", "train=60,val=20,test=60"],
                               cwd=REPO_ROOT, env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        for line in process.stdout:
            if "epoch 1" in line or time.monotonic() > deadline:
                break
        (staged,) = [p for p in (results / ".staging").iterdir() if not p.name.startswith(".")]
        run_id = staged.name
        (container,) = client.containers.list(all=True, filters={"label": f"org.mateval.run_id={run_id}"})
        assert container.status == "running"
    finally:
        process.kill()
        process.communicate(timeout=60)
    deadline = time.monotonic() + 60  # the watchdog's SIGTERM at once, its SIGKILL 15 s later at most
    while container.status != "exited" and time.monotonic() < deadline:
        time.sleep(1)
        container.reload()
    try:
        assert container.status == "exited", "the container outlived its orchestrator"
        assert "standard input closed: the orchestrator is gone" in container.logs().decode(errors="replace")
        out = run_mateval(["bench", "--model", "mean_baseline", "--backend", "docker", "--base-image", LOCAL_BASE,
                           "--gpus", "none", "--results-dir", str(results), "--no-report", "--set", "epochs=1",
                           *SMALL], cwd=REPO_ROOT, env=ENV)
        assert out.returncode == 0, out.stdout[-3000:]
        text = out.stdout.replace("\n", " ")
        assert f"container {container.short_id} of run {run_id} (exited; the orchestrator that started it is gone)" \
            in text
        assert f"stale staging entry .staging/{run_id}" in text
        assert not client.containers.list(all=True, filters={"label": f"org.mateval.run_id={run_id}"})
        assert (results / ".staging-stale" / run_id / "run_spec.json").is_file()
    finally:
        for left in client.containers.list(all=True, filters={"label": f"org.mateval.run_id={run_id}"}):
            left.remove(force=True)


def four_run_grid(tmp_path: Path) -> Path:
    path = tmp_path / "four.yaml"
    path.write_text("models: [mean_baseline]\ntasks: [perov5_heat_ref, perov5_has_gap]\nseeds: [0, 1]\n"
                    "set: {epochs: 3, sleep_s: 2.0}\n")
    return path


def interrupt_mid_suite(tmp_path: Path, sig: int, backend_args: list[str]) -> tuple[str, Path]:
    """Start a 4-run suite, wait until the second run trains, send ``sig``; (output, results dir)."""
    results_dir = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "bench", "--grid", str(four_run_grid(tmp_path)),
                                "--results-dir", str(results_dir), "--max-samples", "train=60,val=20,test=60",
                                "--interval", "0.2", *backend_args], cwd=REPO_ROOT, env=dict(os.environ, **ENV),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, epochs = time.monotonic() + 600, 0
    lines = []
    for line in process.stdout:
        lines.append(line)
        epochs += "epoch 1/3" in line
        if epochs == 2 or time.monotonic() > deadline:
            break
    assert epochs == 2, "".join(lines)[-3000:]
    process.send_signal(sig)
    output = "".join(lines) + process.communicate(timeout=180)[0]
    assert process.returncode == 130, output[-3000:]
    return output, results_dir


def check_interrupted_then_resumed(tmp_path: Path, output: str, results_dir: Path, backend_args: list[str]) -> None:
    runs = [read_result(d / "result.json") for d in published(results_dir)]
    assert [r["status"] for r in runs] == ["ok", "cancelled"], output[-3000:]
    assert "interrupted" in runs[1]["error"]["message"]
    assert not list((results_dir / ".staging").iterdir()), "runs never started must leave nothing behind"
    first = {d.name: (d / "result.json").read_bytes() for d in published(results_dir)}
    leftover = subprocess.run(["pgrep", "-f", "-a", "runner .*" + str(results_dir)], capture_output=True, text=True)
    assert not leftover.stdout.strip(), f"runner processes left behind: {leftover.stdout}"

    again = run_mateval(["bench", "--grid", str(four_run_grid(tmp_path)), "--results-dir", str(results_dir),
                         "--resume", *SMALL, *backend_args], cwd=REPO_ROOT, env=ENV, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("already ok") == 1 and "3 run(s) on backend" in again.stdout
    for name, data in first.items():
        assert (results_dir / name / "result.json").read_bytes() == data  # never overwritten
    statuses = sorted((r["task"]["name"], r["seed"], r["status"])
                      for r in (read_result(d / "result.json") for d in published(results_dir)) if r["status"] == "ok")
    assert statuses == [("perov5_has_gap", 0, "ok"), ("perov5_has_gap", 1, "ok"), ("perov5_heat_ref", 0, "ok"),
                        ("perov5_heat_ref", 1, "ok")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_local_suite_interrupted_then_resumed(tmp_path, sig):
    output, results_dir = interrupt_mid_suite(tmp_path, sig, ["--backend", "local"])
    check_interrupted_then_resumed(tmp_path, output, results_dir, ["--backend", "local"])


@pytest.mark.docker
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_docker_suite_interrupted_then_resumed(docker_fixture_images, tmp_path, sig):
    args = ["--backend", "docker", "--base-image", LOCAL_BASE, "--gpus", "none"]
    output, results_dir = interrupt_mid_suite(tmp_path, sig, args)
    assert not docker_fixture_images.containers.list(all=True, filters={"label": "org.mateval.run_id"})
    check_interrupted_then_resumed(tmp_path, output, results_dir, args)


def test_two_suites_at_once_into_one_results_directory(tmp_path):
    results_dir = tmp_path / "results"
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [mean_baseline]\ntasks: [perov5_heat_ref, perov5_has_gap]\nseeds: [0, 1]\n"
                    "set: {epochs: 1}\n")
    command = [sys.executable, "-m", "orchestrator.cli", "bench", "--grid", str(grid), "--backend", "local",
               "--results-dir", str(results_dir), *SMALL]
    processes = [subprocess.Popen(command, cwd=REPO_ROOT, env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    runs = published(results_dir)
    assert len(runs) == 8 and len({p.name for p in runs}) == 8
    for run_dir in runs:
        result = read_result(run_dir / "result.json")
        assert result["status"] == "ok" and result["run_id"] == run_dir.name
    assert not list((results_dir / ".staging").iterdir())


def test_report_renders_the_good_runs_beside_broken_results(tmp_path):
    """A truncated result.json and one that fails the schema are named; the good run still renders."""
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--model", "mean_baseline", "--task", "perov5_heat_ref", "--set", "epochs=1",
                       "--results-dir", str(results_dir), "--backend", "local", "--no-report", *SMALL],
                      cwd=REPO_ROOT, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]
    (good,) = published(results_dir)
    text = (good / "result.json").read_text()
    truncated = results_dir / "20990101T000000-broken-truncated"
    truncated.mkdir()
    (truncated / "result.json").write_text(text[: len(text) // 2])
    invalid = results_dir / "20990101T000001-broken-schema"
    invalid.mkdir()
    (invalid / "result.json").write_text(text.replace('"status": "ok"', '"status": "finished"'))
    out = run_mateval(["report", "--results-dir", str(results_dir)], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout[-2000:]
    html = (results_dir / "report.html").read_text()
    assert good.name in html and str(truncated / "result.json") in html
    assert "finished" in html  # the schema violation is shown with the field's bad value
    check = run_mateval(["check-result", str(truncated / "result.json"), str(invalid / "result.json")],
                        cwd=REPO_ROOT, env=ENV)
    assert check.returncode == 1
    flat = check.stdout.replace("\n", " ")
    assert "broken-truncated/result.json" in flat and "broken-schema/result.json" in flat and "status" in flat


def test_malformed_model_yaml_and_unknown_names_are_clear_errors(tmp_path):
    """Bad manifests, unknown models and tasks stop before any run, naming the file and the field."""
    images = tmp_path / "images"
    shutil.copytree(FIXTURE_MODELS / "mean_baseline", images / "mean_baseline")
    manifest = images / "mean_baseline" / "model.yaml"
    manifest.write_text(manifest.read_text().replace("task_types: [regression, classification, spectra]",
                                                     "task_types: regression"))
    out = run_mateval(["bench", "--model", "mean_baseline", "--results-dir", str(tmp_path / "r")], cwd=REPO_ROOT,
                      env={"MATEVAL_IMAGES": str(images)})
    assert out.returncode == 2 and str(manifest) in out.stdout.replace("\n", "") and "task_types" in out.stdout
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [mean_baseline, nosuchmodel]\n")
    out = run_mateval(["bench", "--grid", str(grid), "--results-dir", str(tmp_path / "r")], cwd=REPO_ROOT, env=ENV)
    flat = out.stdout.replace("\n", "")
    assert out.returncode == 2 and "grid.yaml: models[1]" in flat and "unknown model 'nosuchmodel'" in flat
    assert not (tmp_path / "r").exists() or not published(tmp_path / "r")
