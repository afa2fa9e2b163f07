"""Integrity you can check, and summaries of the whole results directory (issue 13, items 7 and 8),
on real runs of the mean_baseline and crashing fixtures on the local backend: a hand-edited
result, a changed run file, a failed run flipped to ok, a forged seal, repeated runs, two models
benched into one directory, and ``report -o`` aimed into a run directory."""

import json
import shutil

import pytest

from orchestrator.integrity import SEAL_FILE, file_sha256
from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
SMALL = ["--max-samples", "train=40,val=8,test=30", "--interval", "0.2", "--no-report", "--quiet"]


def bench(results, *args):
    out = run_mateval(["bench", "--backend", "local", "--results-dir", str(results), *SMALL, *args],
                      cwd=REPO_ROOT, env=ENV, timeout=900)
    return out


def runs(results):
    return sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))


def check(*paths, extra=()):
    return run_mateval(["check-result", *map(str, paths), *extra], cwd=REPO_ROOT, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One ok regression run and one failed run, published."""
    results = tmp_path_factory.mktemp("results")
    assert bench(results, "--model", "mean_baseline", "--task", "perov5_heat_ref").returncode == 0
    assert bench(results, "--model", "crashing", "--task", "perov5_heat_ref", "--set", "mode=raise").returncode == 1
    ok, failed = sorted(runs(results), key=lambda p: read_result(p / "result.json")["status"] != "ok")
    return ok, failed


def copy_run(run_dir, tmp_path):
    target = tmp_path / "results" / run_dir.name
    shutil.copytree(run_dir, target, symlinks=True)
    return target


def test_a_published_run_is_sealed_and_checks(published):
    ok, failed = published
    result = read_result(ok / "result.json")
    files = result["integrity"]["files"]
    assert {"predictions.csv", "model_predictions.csv", "run.log", "inputs/test.jsonl"} <= set(files)
    assert (ok / SEAL_FILE).read_text().split()[0] == file_sha256(ok / "result.json")
    out = check(ok / "result.json", failed)
    assert out.returncode == 0, out.stdout
    assert "5 metrics recomputed and identical" in out.stdout


def test_hand_edited_result_fails_everywhere(published, tmp_path):
    run_dir = copy_run(published[0], tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    # A value no path, timestamp or sha256 can contain: "-5" once matched pytest's "pytest-5" folder.
    result["metrics"]["RMSE"] = -987654.321
    (run_dir / "result.json").write_text(json.dumps(result))
    out = check(run_dir)
    assert out.returncode == 1 and "changed after the run was recorded" in out.stdout
    summary = run_mateval(["report", "--results-dir", str(run_dir.parent)], cwd=REPO_ROOT, env=ENV)
    text = (run_dir.parent / "summary.md").read_text()
    assert "Unreadable results" in text and "changed after the run was recorded" in text and "987654" not in text
    assert summary.returncode in (0, 1)


def test_changed_predictions_fail(published, tmp_path):
    run_dir = copy_run(published[0], tmp_path)
    lines = (run_dir / "predictions.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[1] = "999.0"
    lines[1] = ",".join(fields)
    (run_dir / "predictions.csv").write_text("\n".join(lines) + "\n")
    out = check(run_dir)
    assert out.returncode == 1 and "predictions.csv: changed after the run was recorded" in out.stdout.replace("\n", "")


def test_failed_run_flipped_to_ok_fails_and_is_not_resumed(published, tmp_path):
    run_dir = copy_run(published[1], tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    result["status"], result["error"] = "ok", None
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / SEAL_FILE).write_text(f"{file_sha256(run_dir / 'result.json')}  result.json\n")  # seal forged too
    out = check(run_dir)
    assert out.returncode == 1 and "status ok without metrics" in out.stdout
    again = bench(run_dir.parent, "--model", "crashing", "--task", "perov5_heat_ref", "--set", "mode=raise", "--resume")
    assert "already ok" not in again.stdout  # the flipped run is not taken as done


def test_forged_seal_is_caught_by_recomputing(published, tmp_path):
    run_dir = copy_run(published[0], tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    true_mae = result["metrics"]["MAE"]
    result["metrics"]["MAE"] = true_mae / 2
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / SEAL_FILE).write_text(f"{file_sha256(run_dir / 'result.json')}  result.json\n")
    out = check(run_dir)
    assert out.returncode == 1
    assert "metric MAE" in out.stdout and repr(true_mae) in out.stdout.replace("\n", "")
    assert check(run_dir, extra=["--no-rescore"]).returncode == 0  # only the recomputation sees it


def test_summaries_cover_the_directory_and_count_repeats_once(tmp_path):
    results = tmp_path / "results"
    for _ in range(2):
        assert bench(results, "--model", "mean_baseline", "--task", "perov5_heat_ref").returncode == 0
    out = bench(results, "--model", "train_copy", "--num-samples", "6")
    assert out.returncode == 0, out.stdout[-3000:]
    text = (results / "summary.md").read_text()
    assert "Mean baseline †1 (1 run)" in text and "Training-set copy †1" in text  # both suites, the repeat counted once
    # like with like: both ran on the embedded subset, truncated; the runs recorded it and the table says so
    assert "†1: data: subset; max-samples train=40,val=8,test=30" in text
    assert "1 repeated run of the same computation counted once" in text
    (first, second) = [p.name for p in runs(results) if "mean_baseline" in p.name]
    assert f"`{second}` counted; not counted: `{first}`" in text


def test_report_refuses_to_write_into_a_run_directory(published):
    ok = published[0]
    before = (ok / "result.json").read_bytes()
    out = run_mateval(["report", "--results-dir", str(ok.parent), "-o", str(ok / "result.json")], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 2 and "refusing to write inside the run directory" in out.stdout.replace("\n", "")
    out = run_mateval(["report", "--results-dir", str(ok.parent), "-o", str(ok / "sub" / "r.html")], cwd=REPO_ROOT,
                      env=ENV)
    assert out.returncode == 2
    assert (ok / "result.json").read_bytes() == before and not (ok / "sub").exists()
