"""DPA-2 (deepmd-kit, the authors' package) through mateval on real mlearn Si: ``mateval bench
--model dpa2 --task mlearn_si`` in DPA-2's own environment, on a small real subset for one epoch
with a narrow model, ends ok with every potential metric, its baseline, the parameter count and
the energy FLOPs."""

import pytest

from tests.integration.potential_bench import bench_small_mlearn_si

pytestmark = pytest.mark.slow


def test_bench_dpa2_on_a_small_mlearn_si_subset(tmp_path):
    small = ["repformer_nlayers=1", "g1_dim=16", "g2_dim=8", "attn1_hidden=16", "attn2_hidden=8",
             "repinit_neuron='[4, 8, 16]'", "fitting_neuron='[16, 16]'"]
    bench_small_mlearn_si(tmp_path, "dpa2", small, "deepmd-kit")
