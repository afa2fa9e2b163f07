"""End to end: ``mateval bench --model pdos`` trains the real e3nn phonon-DOS network on a small
slice of the published split and scores its spectra."""

import csv
from pathlib import Path

import pytest

from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow


def test_pdos_on_the_published_split(tmp_path):
    out = run_mateval(["bench", "--model", "pdos", "--results-dir", str(tmp_path), "--no-report",
                       "--max-samples", "train=48,val=12,test=24", "--set", "epochs=2", "--interval", "0.5"],
                      cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "spectra" and result["model"]["name"] == "pdos"
    assert result["dataset"]["name"] == "phonon_dos_petretto"
    assert result["dataset"]["sizes"] == {"train": 48, "val": 12, "test": 24}
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    metrics = result["metrics"]
    assert 0 < metrics["MSE"] < 1 and metrics["RMSE"] == pytest.approx(metrics["MSE"] ** 0.5)
    assert metrics["Wasserstein"] > 0 and metrics["Cv_300K_MAE"] >= 0
    assert result["model_stats"]["params"] > 1_000_000
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert len(rows) == 24 * 51
    assert all(0 <= float(r["prediction"]) <= 1 + 1e-6 for r in rows)  # non-negative, max-normalized


def test_pdos_runs_in_its_own_environment_and_reuses_it(tmp_path):
    """The local backend runs PDos in its own environment (e3nn from images/pdos/requirements.lock);
    mateval's own environment has neither e3nn nor torch_geometric; a second run reuses it."""
    import importlib.util
    import sys

    from orchestrator import envs

    if Path(sys.prefix).resolve() == (REPO_ROOT / ".venv").resolve():
        assert importlib.util.find_spec("e3nn") is None and importlib.util.find_spec("torch_geometric") is None
    env = envs.env_for(REPO_ROOT / "images" / "pdos")
    args = ["bench", "--backend", "local", "--model", "pdos", "--no-report", "--max-samples",
            "train=12,val=4,test=6", "--set", "epochs=1", "--interval", "0.5"]
    first = run_mateval([*args, "--results-dir", str(tmp_path / "a")], cwd=REPO_ROOT)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert env.exists()
    second = run_mateval([*args, "--results-dir", str(tmp_path / "b")], cwd=REPO_ROOT)
    assert second.returncode == 0, second.stdout[-4000:]
    assert "creating the environment" not in second.stdout
    for results in ("a", "b"):
        (run_dir,) = [p for p in (tmp_path / results).iterdir() if p.is_dir() and not p.name.startswith(".")]
        result = read_result(run_dir / "result.json")
        assert result["status"] == "ok"
        model_env = result["environment"]["model_env"]
        assert model_env["name"] == env.name and model_env["lock_sha256"] == env.sha256
        assert model_env["locks"] == ["images/base/requirements.lock", "images/pdos/requirements.lock"]
        assert result["environment"]["packages"]["e3nn"] == "0.6.0"
        assert result["environment"]["packages"]["torch"].startswith(model_env["torch"].split("+")[0])
        assert f"model stage in environment {env.name}" in (run_dir / "run.log").read_text()
