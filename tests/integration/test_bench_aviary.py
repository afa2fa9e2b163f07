"""End to end: ``mateval bench --model roost`` and ``--model wrenformer`` (aviary-models 1.2.1, the
authors' package) on small real subsets of MP-20 (``mp20_formation_energy``, the embedded
``data/mp_20_biternary_subset``), in the shared aviary environment, for one epoch: each run ends
ok with the regression metrics, their train-mean baseline, one history entry with aviary's own
MAE, the parameter count of the aviary module, FLOPs and the saved model."""

import math

import pytest

from metrics import catalogue
from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["roost", "wrenformer"])
def test_bench_aviary_model_on_mp20(model, tmp_path):
    out = run_mateval(["bench", "--backend", "local", "--model", model, "--task", "mp20_formation_energy",
                       "--results-dir", str(tmp_path), "--max-samples", "train=16,val=4,test=8",
                       "--set", "epochs=1", "--no-report"], cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["model"]["name"] == model, result.get("error")
    assert result["dataset"]["sizes"] == {"train": 16, "val": 4, "test": 8}
    assert set(result["metrics"]) == set(catalogue.names("regression"))
    assert all(math.isfinite(v) for v in result["metrics"].values())
    assert set(result["baseline"]["metrics"]) == set(result["metrics"])
    (epoch,) = result["history"]
    assert math.isfinite(epoch["train_loss"]) and epoch["val_mae"] > 0
    stats = result["model_stats"]
    assert stats["params"] == stats["trainable_params"] > 1_000_000  # aviary's default trunk of 1024 and 512
    assert stats["flops"]["forward_per_sample"] > 0
    assert result["files"]["model"] == f"model/{model}.model" and (run_dir / result["files"]["model"]).is_file()
    assert "aviary-models" in str(result["environment"])
