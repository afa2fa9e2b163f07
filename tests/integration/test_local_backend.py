"""The local backend end to end through the ``mateval`` command line, on real perov_5 data, with
the test-fixture models (a mean baseline and a model that fails in a chosen way)."""

import json
import shutil
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import FIXTURE_MODELS, REPO_ROOT, run_mateval

ENV = {"MATEVAL_IMAGES": str(FIXTURE_MODELS)}
SMALL = ["--max-samples", "train=40,val=10,test=128", "--interval", "0.2"]


def runs(results_dir: Path) -> list[Path]:
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_mean_baseline_both_tasks(tmp_path):
    out = run_mateval(["bench", "--model", "mean_baseline", "--results-dir", str(tmp_path), "--no-report", *SMALL],
                      cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    dirs = runs(tmp_path)
    assert len(dirs) == 2
    by_task = {read_result(d / "result.json")["task"]["name"]: d for d in dirs}
    regression = read_result(by_task["perov5_heat_ref"] / "result.json")
    assert regression["status"] == "ok" and regression["backend"] == "local"
    assert set(regression["metrics"]) == {"MAE", "MSE", "RMSE", "R2", "MaxError"}
    assert regression["metrics"]["MAE"] > 0 and regression["dataset"]["sizes"] == {"train": 40, "val": 10, "test": 128}
    assert regression["model_stats"]["params"] == 1
    assert regression["model_stats"]["flops"]["forward_per_sample"] == 2  # one multiply-add per sample
    assert regression["resources"]["overall"]["duration (s)"] > 0
    assert len(regression["history"]) == 2
    classification = read_result(by_task["perov5_has_gap"] / "result.json")
    assert set(classification["metrics"]) == {"ROC-AUC", "Accuracy", "Precision", "Recall", "F1"}
    assert classification["metrics"]["ROC-AUC"] == 0.5  # a constant score ranks nothing
    predictions = (by_task["perov5_has_gap"] / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "id,target,prediction,score" and len(predictions) == 129
    for d in dirs:
        assert (d / "run.log").read_text().count("epoch") >= 2
        assert (d / "timeseries.csv").is_file()
    assert "mateval results" in out.stdout


@pytest.mark.parametrize("mode, extra, status, error_type", [
    ("raise", [], "failed", "RuntimeError"),
    ("oom", [], "oom", "MemoryError"),
    ("hang", ["--timeout", "15"], "timeout", "Timeout"),  # room for start-up on a loaded machine
    ("sigkill", [], "oom", "Killed"),
    ("exit", [], "failed", "Crashed"),
])
def test_failures_are_recorded_with_their_log(tmp_path, mode, extra, status, error_type):
    out = run_mateval(["bench", "--model", "crashing", "--results-dir", str(tmp_path), "--no-report",
                       "--set", f"mode={mode}", *SMALL, *extra], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 1, out.stdout + out.stderr
    (run_dir,) = runs(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == status
    assert result["error"]["type"] == error_type
    assert "epoch 1" in (run_dir / "run.log").read_text()
    assert "epoch 1" in result["error"]["log_tail"]
    assert not (tmp_path / ".staging" / run_dir.name).exists()


def test_second_bench_adds_a_run_never_overwrites(tmp_path):
    args = ["bench", "--model", "mean_baseline", "--task", "perov5_heat_ref", "--results-dir", str(tmp_path),
            "--no-report", "--quiet", *SMALL]
    first = run_mateval(args, cwd=REPO_ROOT, env=ENV)
    assert first.returncode == 0, first.stdout + first.stderr
    (run_dir,) = runs(tmp_path)
    before = (run_dir / "result.json").read_bytes()
    assert run_mateval(args, cwd=REPO_ROOT, env=ENV).returncode == 0
    assert len(runs(tmp_path)) == 2
    assert (run_dir / "result.json").read_bytes() == before


ONE_RUN = ["--model", "mean_baseline", "--task", "perov5_heat_ref", "--no-report", "--quiet",
           "--max-samples", "train=40,val=10,test=128"]


@pytest.mark.parametrize("args, message", [
    (["--model", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["--model", "mean_baseline", "--task", "nosuchtask"], "unknown task 'nosuchtask'"),
    (["--model", "mean_baseline", "--backend", "kubernetes"], "unknown backend 'kubernetes'"),
    # every number is checked before any run: none falls back to a default, none crashes later
    ([*ONE_RUN, "--interval", "0"], "argument --interval: expected a finite number of seconds >= 0.05"),
    ([*ONE_RUN, "--interval", "-1"], "argument --interval: expected a finite number of seconds >= 0.05"),
    ([*ONE_RUN, "--interval", "nan"], "argument --interval: expected a finite number of seconds >= 0.05"),
    ([*ONE_RUN, "--timeout", "nan"], "argument --timeout: expected a finite number of seconds > 0"),
    ([*ONE_RUN, "--timeout", "-1"], "argument --timeout: expected a finite number of seconds > 0"),
    ([*ONE_RUN, "--timeout", "0"], "argument --timeout: expected a finite number of seconds > 0"),
    ([*ONE_RUN, "--num-samples", "0"], "argument --num-samples: expected an integer >= 1"),
    ([*ONE_RUN, "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    ([*ONE_RUN, "--seed", "3", "--seed", "3"], "--seed: repeated seed 3"),
    ([*ONE_RUN, "--jobs", "0"], "argument --jobs: expected an integer >= 1"),
    ([*ONE_RUN, "--cpus", "nan"], "argument --cpus: expected a finite number of CPUs > 0"),
    ([*ONE_RUN, "--memory", "lots"], "argument --memory: expected a memory size"),
    ([*ONE_RUN, "--max-samples", "train=0"], "argument --max-samples: train: expected an integer >= 1"),
])
def test_bad_arguments_are_clear_errors(tmp_path, args, message):
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--results-dir", str(results_dir), *args], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in (out.stdout + out.stderr).replace("\n", " ")
    assert "Traceback" not in out.stdout + out.stderr
    assert not results_dir.exists()  # stopped before any run: no run directory, no staging


@pytest.mark.parametrize("where, field", [("grid", "timeout_s"), ("grid", "num_samples"), ("model.yaml", "timeout_s")])
def test_bad_numbers_in_files_are_clear_errors(tmp_path, where, field):
    """``.nan`` in a grid file or model.yaml stops ``bench`` before any run, naming the file and field."""
    models = tmp_path / "models"
    shutil.copytree(FIXTURE_MODELS / "mean_baseline", models / "mean_baseline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    manifest = models / "mean_baseline" / "model.yaml"
    grid = tmp_path / "grid.yaml"
    grid.write_text("models: [mean_baseline]\ntasks: [perov5_heat_ref]\nmax_samples: {train: 40, val: 10, test: 128}\n")
    if where == "grid":
        grid.write_text(grid.read_text() + (f"{field}: .nan\n" if field == "timeout_s" else f"{field}: 0\n"))
        named = f"{grid}: {field}: expected"
    else:
        manifest.write_text(manifest.read_text().replace("timeout_s: 600", "timeout_s: .nan"))
        named = f"{manifest}: field '{field}': expected"
    results_dir = tmp_path / "results"
    out = run_mateval(["bench", "--grid", str(grid), "--results-dir", str(results_dir), "--no-report", "--quiet"],
                      cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(models)})
    assert out.returncode == 2, out.stdout + out.stderr
    assert named in out.stdout.replace("\n", " ")
    assert not results_dir.exists()


def test_unknown_hyperparameter_fails_the_run_with_its_name(tmp_path):
    out = run_mateval(["bench", "--model", "mean_baseline", "--task", "perov5_heat_ref", "--results-dir",
                       str(tmp_path), "--no-report", "--set", "learning_rate=1", *SMALL], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 1
    (run_dir,) = runs(tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and "no hyperparameter named 'learning_rate'" in result["error"]["message"]


def test_runner_without_orchestrator_makes_a_new_run_dir(tmp_path):
    """The form Compose services use: python -m runner --results DIR --model-dir D --task T."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "runner", "--results", str(tmp_path), "--model-dir",
               str(FIXTURE_MODELS / "mean_baseline"), "--task", "perov5_has_gap", "--data-root",
               str(REPO_ROOT / "data"), "--set", "epochs=1", "--interval", "0.2"]
    for _ in range(2):
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
    dirs = runs(tmp_path)
    assert len(dirs) == 2
    for run_dir in dirs:
        result = read_result(run_dir / "result.json")
        assert result["status"] == "ok" and result["hyperparameters"]["effective"]["epochs"] == 1
        assert "epoch 1/1" in (run_dir / "run.log").read_text()


def test_generation_run_scores_and_keeps_the_crystals(tmp_path):
    """The runner's generation path with the train_copy fixture on real perov_5 data."""
    from runner.tasks.generation import read_cif

    out = run_mateval(["bench", "--model", "train_copy", "--results-dir", str(tmp_path), "--no-report",
                       "--max-samples", "train=30,val=10,test=30", "--num-samples", "20", "--interval", "0.2",
                       "--jobs", "2"], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    (run_dir,) = runs(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "generation"
    metrics = result["metrics"]
    assert set(metrics) == {"validity_structure", "validity_composition", "validity", "COV-R", "COV-P",
                            "EMD_density", "EMD_num_elements", "success_rate"}
    assert metrics["success_rate"] == 0.9  # two of the 20 requests returned None
    assert metrics["validity_structure"] == 0.9  # real crystals are valid; the Nones are not
    assert 0 < metrics["COV-R"] <= 1 and 0 < metrics["COV-P"] <= 1
    assert result["metric_details"]["n_requested"] == 20 and result["metric_details"]["n_returned"] == 18
    assert set(result["resources"]["phases"]) == {"train", "generate"}
    assert len(read_cif(run_dir / "generated.cif")) == 18
    assert len((run_dir / "generated.csv").read_text().splitlines()) == 21
    # the reference fingerprints are cached: a second run hits the cache
    again = run_mateval(["bench", "--model", "train_copy", "--results-dir", str(tmp_path), "--no-report", "--quiet",
                         "--max-samples", "train=30,val=10,test=30", "--num-samples", "20"], cwd=REPO_ROOT, env=ENV)
    assert again.returncode == 0
    second = max(runs(tmp_path), key=lambda p: p.name)
    assert read_result(second / "result.json")["metric_details"]["fingerprint_cache_hit"] is True


def test_sigterm_to_the_orchestrator_stops_and_keeps_the_run(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "bench", "--model", "crashing", "--results-dir",
                                str(tmp_path), "--no-report", "--set", "mode=hang", *SMALL], cwd=REPO_ROOT,
                               env=dict(os.environ, **ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if "epoch 1" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    (run_dir,) = runs(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "cancelled" and "interrupted" in result["error"]["message"]
    assert "interrupted" in (run_dir / "run.log").read_text()
    leftover = subprocess.run(["pgrep", "-f", str(run_dir.name)], capture_output=True, text=True).stdout.strip()
    assert not leftover, f"runner processes left behind: {leftover}"


def test_spectra_run_on_the_published_phonon_split(tmp_path):
    out = run_mateval(["bench", "--model", "mean_baseline", "--task", "phonon_dos", "--results-dir", str(tmp_path),
                       "--no-report", "--max-samples", "train=200,val=20,test=40", "--interval", "0.2"],
                      cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    (run_dir,) = runs(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "spectra"
    assert set(result["metrics"]) == {"MAE", "MSE", "RMSE", "R2", "Wasserstein", "Cv_300K_MAE"}
    assert 0 < result["metrics"]["MAE"] < 1 and result["metrics"]["Wasserstein"] > 0
    assert result["dataset"]["sizes"] == {"train": 200, "val": 20, "test": 40}
    rows = (run_dir / "predictions.csv").read_text().splitlines()
    assert rows[0] == "id,frequency,target,prediction" and len(rows) == 1 + 40 * 51


def _start_hanging_bench(results_dir: Path, mode: str):
    """``mateval bench`` of the crashing fixture in ``mode`` (hang or stubborn), returned once the
    model has reported its first epoch: (orchestrator process, run id)."""
    import os
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "bench", "--model", "crashing", "--results-dir",
                                str(results_dir), "--no-report", "--set", f"mode={mode}", *SMALL], cwd=REPO_ROOT,
                               env=dict(os.environ, **ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if "epoch 1" in line or time.monotonic() > deadline:
            break
    (staged,) = [p for p in (results_dir / ".staging").iterdir() if not p.name.startswith(".")]
    return process, staged.name


def _runner_pids(run_id: str, within_s: float) -> list[int]:
    """The pids of processes whose command line holds ``run_id``, after waiting up to ``within_s``
    seconds for there to be none."""
    import os
    import subprocess
    import time

    deadline = time.monotonic() + within_s
    while True:
        found = subprocess.run(["pgrep", "-f", run_id], capture_output=True, text=True).stdout.split()
        pids = [int(pid) for pid in found if int(pid) != os.getpid()]
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


def _kill(pids: list[int]) -> None:
    import os
    import signal

    for pid in pids:  # only the runners this test started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_of_the_orchestrator_takes_the_runner_and_the_next_bench_cleans_up(tmp_path):
    import signal

    process, run_id = _start_hanging_bench(tmp_path, "hang")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    leftover = _runner_pids(run_id, within_s=10)
    _kill(leftover)
    assert not leftover, f"runner processes survived kill -9 of the orchestrator: {leftover}"
    assert (tmp_path / ".staging" / run_id).is_dir()  # nobody published it
    out = run_mateval(["bench", "--resume", "--model", "mean_baseline", "--task", "perov5_heat_ref",
                       "--results-dir", str(tmp_path), "--no-report", "--quiet", *SMALL], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout.replace("\n", " ")
    assert f"stale staging entry .staging/{run_id}" in text and "no result.json" in text
    assert not (tmp_path / ".staging" / run_id).exists()
    assert (tmp_path / ".staging-stale" / run_id / "run_spec.json").is_file()
    assert [p.name for p in (tmp_path / ".staging").iterdir()] == []  # and no owner file is left behind


def test_second_interrupt_kills_the_run_at_once(tmp_path):
    """A model that ignores SIGTERM: the first Ctrl-C asks it to stop, the second one kills it."""
    import signal
    import time

    process, run_id = _start_hanging_bench(tmp_path, "stubborn")
    process.send_signal(signal.SIGINT)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    second = time.monotonic()
    try:
        output = process.communicate(timeout=120)[0]
    finally:
        leftover = _runner_pids(run_id, within_s=5)
        _kill(leftover)
    assert not leftover, f"runner processes left behind: {leftover}"
    assert process.returncode == 130, output
    assert time.monotonic() - second < 60
    (run_dir,) = runs(tmp_path)
    result = read_result(run_dir / "result.json")
    assert result["status"] == "cancelled" and "interrupted" in result["error"]["message"]
    assert "interrupted again while stopping the run: sending SIGKILL" in (run_dir / "run.log").read_text()


def test_stale_staging_entry_is_moved_and_a_live_one_kept(tmp_path):
    """An entry no live orchestrator owns (its own was killed) is reported and moved by the next
    bench; an entry a live orchestrator claimed (here: this test process) is left alone."""
    from orchestrator.staging import StagingOwner

    stale = tmp_path / ".staging" / "20260101T000000Z-crashing-perov5_heat_ref-s0-dead"
    stale.mkdir(parents=True)
    (stale / "result.json").write_text('{"status": "ok"}')
    owner = StagingOwner(tmp_path)
    owner.claim("20260101T000000Z-other-live")
    live = tmp_path / ".staging" / "20260101T000000Z-other-live"
    live.mkdir()
    out = run_mateval(["bench", "--model", "mean_baseline", "--task", "perov5_heat_ref", "--results-dir", str(tmp_path),
                       "--no-report", "--quiet", *SMALL], cwd=REPO_ROOT, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout.replace("\n", " ")
    assert f"stale staging entry .staging/{stale.name} (result.json with status ok" in text
    assert (tmp_path / ".staging-stale" / stale.name / "result.json").is_file() and not stale.exists()
    assert live.is_dir() and "other-live" not in text
    assert len(runs(tmp_path)) == 1  # the stale entry is not counted as a run
    owner.release()
    assert not owner.path.exists()
