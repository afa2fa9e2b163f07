"""One ``mateval bench`` of an interatomic potential on a small real mlearn Si subset, and the
checks every such run must pass (shared by the model-specific ``test_bench_<model>.py`` files)."""

from __future__ import annotations

import math
from pathlib import Path

from metrics import catalogue
from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval


def bench_small_mlearn_si(tmp_path: Path, model: str, settings: list[str], package: str) -> dict:
    """Run ``mateval bench --model MODEL --task mlearn_si`` (local backend, 8 train / 2 val / 4 test
    cells, one epoch, ``--set`` for each of ``settings``) and check: status ok, every potential
    metric finite with its baseline, one history epoch, parameters and forward FLOPs counted, the
    predictions file written and ``package`` named in the environment. Returns the result."""
    args = ["bench", "--backend", "local", "--model", model, "--task", "mlearn_si", "--results-dir", str(tmp_path),
            "--max-samples", "train=8,val=2,test=4", "--set", "epochs=1", "--no-report"]
    for setting in settings:
        args += ["--set", setting]
    out = run_mateval(args, cwd=REPO_ROOT, timeout=1800)
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
    assert package in str(result["environment"])
    return result
