"""End to end: ``mateval bench --model symat`` trains the real SyMat on small real subsets of
perov_5 (embedded) and carbon_24 (shared data), generates crystals and scores them."""

import math

import pytest

from runner.result import read_result
from runner.tasks.generation import read_cif
from tests.conftest import REPO_ROOT, run_mateval

pytestmark = pytest.mark.slow
FAST = ["--set", "epochs=2", "--set", "langevin_steps=2", "--num-samples", "16", "--interval", "0.5", "--no-report"]


def run_symat(results_dir, *args, env=None):
    out = run_mateval(["bench", "--model", "symat", "--results-dir", str(results_dir), *FAST, *args], cwd=REPO_ROOT,
                      env={"MATEVAL_IMAGES": str(REPO_ROOT / "images"), **(env or {})})
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    (run_dir,) = [p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir, read_result(run_dir / "result.json")


def test_symat_on_perov5(tmp_path):
    run_dir, result = run_symat(tmp_path, "--max-samples", "train=64,val=16,test=40")
    assert result["status"] == "ok" and result["task_type"] == "generation"
    assert result["model"]["name"] == "symat"
    assert result["hyperparameters"]["overridden"]["epochs"]["used"] == 2
    metrics = result["metrics"]
    assert 0 <= metrics["validity"] <= metrics["validity_structure"] <= 1
    assert 0 <= metrics["success_rate"] <= 1
    details = result["metric_details"]
    assert details["n_requested"] == 16 and details["n_reference"] == 40
    assert len(read_cif(run_dir / "generated.cif")) == details["n_returned"]
    training_elements = _training_elements()
    for _, structure in read_cif(run_dir / "generated.cif"):
        assert {el.symbol for el in structure.composition.elements} <= training_elements
    assert result["model_stats"]["params"] > 1_000_000 and result["model_stats"]["flops"]["forward_per_sample"] > 0
    assert set(result["resources"]["phases"]) == {"train", "generate"}
    if details["n_valid"]:
        assert math.isfinite(metrics["EMD_density"])


def _training_elements():
    import pandas as pd
    from pymatgen.core import Structure

    frame = pd.read_csv(REPO_ROOT / "data" / "perov_5_subset" / "train.csv").iloc[:64]
    return {el.symbol for cif in frame["cif"] for el in Structure.from_str(cif, fmt="cif").composition.elements}


def test_symat_on_carbon24(tmp_path, shared_data):
    run_dir, result = run_symat(tmp_path, "--task", "carbon24_generation", "--data", "full", "--max-samples",
                                "train=48,test=30", env={"MATEVAL_DATA": str(shared_data)})
    assert result["status"] == "ok" and result["dataset"]["name"] == "carbon_24"
    assert result["dataset"]["sizes"] == {"train": 48, "val": 0, "test": 30}
    for _, structure in read_cif(run_dir / "generated.cif"):
        assert {el.symbol for el in structure.composition.elements} == {"C"}
