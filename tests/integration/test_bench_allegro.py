"""Allegro (nequip-allegro on nequip, the authors' packages) through mateval on real mlearn Si:
``mateval bench --model allegro --task mlearn_si`` in Allegro's own environment, on a small real subset for one epoch
with a small network, ends ok with every potential metric, its baseline, the parameter count and
the energy FLOPs."""

import math

import pytest

from metrics import catalogue
from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow


def test_bench_allegro_on_a_small_mlearn_si_subset(tmp_path):
    out = run_mateval(["bench", "--backend", "local", "--model", "allegro", "--task", "mlearn_si", "--results-dir",
                       str(tmp_path), "--max-samples", "train=8,val=2,test=4", "--set", "epochs=1",
                       "--set", "num_scalar_features=16", "--set", "num_tensor_features=4", "--set", "num_layers=1",
                       "--no-report"],
                      cwd=REPO_ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok" and result["task_type"] == "potential"
    assert set(result["metrics"]) == set(catalogue.names("potential"))
    assert all(math.isfinite(v) for v in result["metrics"].values())
    assert set(result["baseline"]["metrics"]) == set(result["metrics"])
    assert len(result["history"]) == 1 and math.isfinite(result["history"][0]["train_loss"])
    stats = result["model_stats"]
    assert stats["params"] > 0 and stats["trainable_params"] == stats["params"]
    assert stats["flops"]["forward_per_sample"] > 0
    assert (run_dir / result["files"]["predictions_extxyz"]).is_file()
    assert "nequip-allegro" in str(result["environment"])
