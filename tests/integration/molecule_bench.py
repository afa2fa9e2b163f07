"""Shared end-to-end check of a molecular model: ``mateval bench --model M --task qm9_u0`` on a small
slice of the embedded QM9 molecules, in the model's own environment."""

import csv
import math

from runner.result import read_result
from tests.conftest import REPO_ROOT, run_mateval


def bench_small_qm9(tmp_path, model: str, sets: list[str]) -> dict:
    """Run the bench with ``--set`` items ``sets`` on 24/4/10 molecules and check the run: ok, QM9's
    unit and split sizes, one history entry per epoch, finite MAE/RMSE beside the per-element linear
    baseline, parameters and FLOPs, a prediction per test molecule, and test inputs without U0.
    Returns the result."""
    options = [x for item in sets for x in ("--set", item)]
    out = run_mateval(["bench", "--model", model, "--task", "qm9_u0", "--results-dir", str(tmp_path), "--no-report",
                       "--quiet", "--max-samples", "train=24,val=4,test=10", *options],
                      cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = read_result(run_dir / "result.json")
    assert result["status"] == "ok", result.get("error")
    assert result["task"]["name"] == "qm9_u0" and result["task"]["unit"] == "eV"
    assert result["dataset"]["name"] == "qm9_subset" and result["dataset"]["sizes"] == {"train": 24, "val": 4, "test": 10}
    epochs = result["hyperparameters"]["effective"]["epochs"]
    assert [h["epoch"] for h in result["history"]] == list(range(1, epochs + 1))
    for name in ("MAE", "RMSE"):
        assert math.isfinite(result["metrics"][name]) and result["metrics"][name] > 0
        assert math.isfinite(result["baseline"]["metrics"][name])
    assert "per-element linear fit" in result["baseline"]["predictor"]
    assert result["model_stats"]["params"] > 1000 and result["model_stats"]["flops"]["forward_per_sample"] > 0
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert len(rows) == 10 and all(r["id"].startswith("qm9-") for r in rows)
    # the model never saw U0: the test inputs hold species and positions only
    assert "U0" not in (run_dir / "inputs" / "test.jsonl").read_text()
    return result
