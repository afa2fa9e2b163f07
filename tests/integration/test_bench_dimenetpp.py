"""DimeNet++ (torch_geometric's DimeNetPlusPlus) through mateval on the embedded QM9 molecules:
``mateval bench --model dimenetpp`` in its own environment, dynamic and padded batches, ends ok with
the regression metrics beside the per-element linear baseline, the parameter count and FLOPs; a
crystal-only model is not run on molecules."""

import csv
import math

import pytest

from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
SMALL = ["hidden_channels=16", "num_blocks=1", "out_emb_channels=16", "int_emb_size=8", "basis_emb_size=4",
         "epochs=2", "batch_size=8"]


@pytest.mark.parametrize("batching", ["dynamic", "padded"])
def test_bench_dimenetpp_on_qm9_molecules(tmp_path, batching):
    sets = [x for item in SMALL + [f"batching={batching}"] for x in ("--set", item)]
    out = run_mateval(["bench", "--model", "dimenetpp", "--results-dir", str(tmp_path), "--no-report", "--quiet",
                       "--max-samples", "train=24,val=4,test=10", *sets],
                      cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok", result.get("error")
    assert result["task"]["name"] == "qm9_u0" and result["task"]["unit"] == "eV"
    assert result["dataset"]["name"] == "qm9_subset" and result["dataset"]["sizes"] == {"train": 24, "val": 4, "test": 10}
    assert result["hyperparameters"]["effective"]["batching"] == batching
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    for name in ("MAE", "RMSE"):
        assert math.isfinite(result["metrics"][name]) and result["metrics"][name] > 0
        assert math.isfinite(result["baseline"]["metrics"][name])
    assert "per-element linear fit" in result["baseline"]["predictor"]
    assert result["model_stats"]["params"] > 1000 and result["model_stats"]["flops"]["forward_per_sample"] > 0
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert len(rows) == 10 and all(r["id"].startswith("qm9-") for r in rows)
    # the model never saw U0: the test inputs hold species and positions only
    assert "U0" not in (run_dir / "inputs" / "test.jsonl").read_text()


def test_crystal_models_are_not_run_on_molecules(tmp_path):
    out = run_mateval(["bench", "--model", "matformer", "--task", "qm9_u0", "--results-dir", str(tmp_path),
                       "--no-report", "--quiet"], cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert "matformer on qm9_u0: molecules not supported by the model" in out.stdout + out.stderr
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
