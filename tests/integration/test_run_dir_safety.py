"""A model that misbehaves on purpose in its run directory, through the real local backend and the
``mateval`` command line (fixture model ``crashing``, modes ``link_log`` and ``deep_result``), on
the real perov_5 subset in data/:

- it replaces ``run.log`` with a symbolic link to a host file and exits non-zero: the host file's
  content is in neither ``result.json`` nor the report, the refusal is named in the run's record,
  and the real log is kept;
- it writes a ``result.json`` of 100000 nested lists and exits: the suite goes on to the next run,
  the bad run is recorded ``failed`` with a clear error, and ``report``, ``check-result`` and
  ``--resume`` on the results directory exit normally, naming it (also when such a file sits in a
  published run directory as its ``result.json``);
- it fills the file system of the results directory (a real 32 MiB tmpfs, mounted as root) and
  raises: the suite goes on to the next run, whose own start fails for want of space, and each run
  is published and named with the full disk in the terminal, with its ``run.log`` kept.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, require, run_mateval
from tests.integration.test_fault_injection import LOCAL_BASE, docker_fixture_images  # noqa: F401 - a fixture

ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
SMALL = ["--max-samples", "train=60,val=20,test=60", "--interval", "0.2", "--quiet"]
SECRET = "host-secret-7d2a90b1"


def published(results_dir: Path) -> list[Path]:
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def suite(tmp_path: Path, crashing_set: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(f"""name: misbehaving
models:
  - {{name: crashing, tasks: [perov5_heat_ref], set: {{{crashing_set}}}}}
  - {{name: mean_baseline, tasks: [perov5_heat_ref], set: {{epochs: 1}}}}
seeds: [0]
""")
    return path


def by_model(results_dir: Path) -> dict[str, tuple[Path, dict]]:
    return {r["model"]["name"]: (d, r) for d, r in ((d, read_result(d / "result.json")) for d in published(results_dir))}


def test_run_log_replaced_by_a_link_to_a_host_file_is_never_read(tmp_path):
    check_link_log(tmp_path, ["--backend", "local"])


@pytest.mark.docker
def test_run_log_replaced_by_a_link_in_a_container_is_never_read(docker_fixture_images, tmp_path):  # noqa: F811
    check_link_log(tmp_path, ["--backend", "docker", "--base-image", LOCAL_BASE, "--gpus", "none"])


def check_link_log(tmp_path: Path, backend: list[str]) -> None:
    secret = tmp_path / "host-file.txt"
    secret.write_text(SECRET + "\n")
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--grid", str(suite(tmp_path, f"mode: link_log, link_target: '{secret}'")),
                       *backend, "--results-dir", str(results_dir), *SMALL],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:]
    runs = by_model(results_dir)
    run_dir, bad = runs["crashing"]
    assert runs["mean_baseline"][1]["status"] == "ok"
    assert SECRET not in (run_dir / "result.json").read_text()
    assert SECRET not in out.stdout
    (report,) = results_dir.glob("report-*.html")
    assert SECRET not in report.read_text()
    assert bad["status"] == "failed" and bad["error"]["type"] == "Crashed"
    assert "run.log was replaced by a symbolic link during the run; not read" in bad["error"]["message"]
    assert any("symbolic link" in note for note in bad["notes"])
    # the real log is kept, the link moved aside (never followed), the host file untouched
    assert (run_dir / "run.log.refused").is_symlink()
    log = (run_dir / "run.log").read_text()
    assert "epoch 1" in log and SECRET not in log
    assert secret.read_text() == SECRET + "\n"
    # rendering again (the report's own log reader) does not follow a link either
    (run_dir / "run.log").unlink()
    (run_dir / "run.log").symlink_to(secret)
    again = run_mateval(["report", "--results-dir", str(results_dir)], cwd=REPO_ROOT, env=ENV)
    assert again.returncode == 0, again.stdout[-3000:]
    assert SECRET not in (results_dir / "report.html").read_text()


def check_deep_result_suite(tmp_path: Path, backend: list[str]) -> tuple[Path, Path]:
    """The suite with the deeply nested result on a backend: (results directory, the bad run)."""
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--grid", str(suite(tmp_path, "mode: deep_result")), *backend,
                       "--results-dir", str(results_dir), *SMALL], cwd=REPO_ROOT, env=ENV, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:]
    runs = by_model(results_dir)
    run_dir, bad = runs["crashing"]
    assert runs["mean_baseline"][1]["status"] == "ok"  # the next run ran
    assert bad["status"] == "failed"
    assert "result.json is nested 100000 levels deep" in bad["error"]["message"]
    assert (run_dir / "result.invalid.json").is_file() and "epoch 1" in (run_dir / "run.log").read_text()
    assert not list((results_dir / ".staging").iterdir())
    return results_dir, run_dir


@pytest.mark.docker
def test_deeply_nested_result_from_a_container_never_stops_a_suite(docker_fixture_images, tmp_path):  # noqa: F811
    check_deep_result_suite(tmp_path, ["--backend", "docker", "--base-image", LOCAL_BASE, "--gpus", "none"])


def test_deeply_nested_result_never_stops_a_suite(tmp_path):
    results_dir, run_dir = check_deep_result_suite(tmp_path, ["--backend", "local"])

    # the same file as a published run's result.json
    broken = results_dir / "20990101T000000-crashing-perov5_heat_ref-s0-deadbe"
    broken.mkdir()
    shutil.copy(run_dir / "result.invalid.json", broken / "result.json")
    shutil.copy(run_dir / "run_spec.json", broken / "run_spec.json")

    report = run_mateval(["report", "--results-dir", str(results_dir)], cwd=REPO_ROOT, env=ENV)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert broken.name in report.stdout.replace("\n", "") and "nested" in report.stdout
    assert str(broken / "result.json") in (results_dir / "report.html").read_text()

    files = [str(p) for p in sorted(results_dir.glob("*/result*.json"))]
    check = run_mateval(["check-result", *files], cwd=REPO_ROOT, env=ENV)
    assert check.returncode == 1, check.stdout[-3000:] + check.stderr[-3000:]
    flat = check.stdout.replace("\n", "")
    assert "Traceback" not in check.stderr
    assert f"{broken.name}/result.json" in flat and "result.invalid.json" in flat and "nested" in flat

    resume = run_mateval(["bench", "--grid", str(suite(tmp_path, "mode: deep_result")), "--backend", "local",
                          "--results-dir", str(results_dir), "--resume", "--no-report", *SMALL],
                         cwd=REPO_ROOT, env=ENV, timeout=600)
    assert "Traceback" not in resume.stderr, resume.stderr[-3000:]
    assert resume.returncode == 1, resume.stdout[-3000:]
    flat = resume.stdout.replace("\n", "")
    assert f"resume: {broken.name} skipped" in flat and "already ok" in flat


def test_a_full_disk_never_stops_a_suite_and_keeps_the_logs(tmp_path):
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a small tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(small)], check=True)
    try:
        results_dir = small / "results"
        out = run_mateval(["bench", "--grid", str(suite(tmp_path, "mode: fill_disk")), "--backend", "local",
                           "--results-dir", str(results_dir), *SMALL], cwd=REPO_ROOT, env=ENV, timeout=600)
        assert "Traceback" not in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
        assert out.returncode == 1, out.stdout[-3000:]
        runs = published(results_dir)
        assert sorted(d.name.split("-")[1] for d in runs) == ["crashing", "mean_baseline"]  # the suite went on
        flat = out.stdout.replace("\n", "")
        for run_dir in runs:
            assert f"{run_dir.name}: status failed" in flat and "No space left on device" in flat
            assert (run_dir / "run.log").is_file()
        rows = [line for line in out.stdout.splitlines() if "UNREADABLE" in line]
        assert len(rows) == 2 and any("crashing" in r for r in rows) and any("mean_baseline" in r for r in rows)
        crashing = next(d for d in runs if "-crashing-" in d.name)
        assert "epoch 1" in (crashing / "run.log").read_text()
        assert not [p for p in (results_dir / ".staging").iterdir() if not p.name.startswith(".")]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
