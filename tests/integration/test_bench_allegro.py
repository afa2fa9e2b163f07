"""Allegro (nequip-allegro on nequip, the authors' packages) through mateval on real mlearn Si:
``mateval bench --model allegro --task mlearn_si`` in Allegro's own environment, on a small real
subset for one epoch with a small network, ends ok with every potential metric, its baseline, the
parameter count and the energy FLOPs."""

import pytest

from tests.integration.potential_bench import bench_small_mlearn_si

pytestmark = pytest.mark.slow


def test_bench_allegro_on_a_small_mlearn_si_subset(tmp_path):
    bench_small_mlearn_si(tmp_path, "allegro", ["num_scalar_features=16", "num_tensor_features=4", "num_layers=1"],
                          "nequip-allegro")
