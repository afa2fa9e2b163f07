"""NequIP (nequip, the authors' package) through mateval on real mlearn Si: ``mateval bench
--model nequip --task mlearn_si`` in NequIP's own environment, on a small real subset for one epoch
with a small network, ends ok with every potential metric, its baseline, the parameter count and
the energy FLOPs."""

import pytest

from tests.integration.potential_bench import bench_small_mlearn_si

pytestmark = pytest.mark.slow


def test_bench_nequip_on_a_small_mlearn_si_subset(tmp_path):
    result = bench_small_mlearn_si(tmp_path, "nequip", ["num_features=8", "num_layers=2"], "nequip")
    assert "val_rmse_f_meV_per_A" in result["history"][0]
