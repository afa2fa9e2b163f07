"""End to end: ``mateval bench --model pdos`` trains the real e3nn phonon-DOS network on a small
slice of the published split and scores its spectra."""

import csv

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
