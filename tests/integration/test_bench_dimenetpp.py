"""DimeNet++ (torch_geometric's DimeNetPlusPlus) through mateval on the embedded QM9 molecules:
``mateval bench --model dimenetpp`` in its own environment, dynamic and padded batches, ends ok with
the regression metrics beside the per-element linear baseline, the parameter count and FLOPs; a
crystal-only model is not run on molecules."""

import pytest

from tests.conftest import REPO_ROOT, run_mateval
from tests.integration.molecule_bench import bench_small_qm9

pytestmark = pytest.mark.slow
SMALL = ["hidden_channels=16", "num_blocks=1", "out_emb_channels=16", "int_emb_size=8", "basis_emb_size=4",
         "epochs=2", "batch_size=8"]


@pytest.mark.parametrize("batching", ["dynamic", "padded"])
def test_bench_dimenetpp_on_qm9_molecules(tmp_path, batching):
    result = bench_small_qm9(tmp_path, "dimenetpp", SMALL + [f"batching={batching}"])
    assert result["hyperparameters"]["effective"]["batching"] == batching


def test_crystal_models_are_not_run_on_molecules(tmp_path):
    out = run_mateval(["bench", "--model", "matformer", "--task", "qm9_u0", "--results-dir", str(tmp_path),
                       "--no-report", "--quiet"], cwd=REPO_ROOT, env={"MATEVAL_IMAGES": str(REPO_ROOT / "images")})
    assert "matformer on qm9_u0: molecules not supported by the model" in out.stdout + out.stderr
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
