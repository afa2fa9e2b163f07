"""SchNet (schnetpack, the authors' package) through mateval on real mlearn Si: ``mateval bench
--model schnet --task mlearn_si`` in SchNet's own environment, on a small real subset for one epoch with
small widths, ends ok with every potential metric, its baseline, the parameter count and the energy
FLOPs."""

import math

import pytest

from tests.integration.molecule_bench import bench_small_qm9
from tests.integration.potential_bench import bench_small_mlearn_si

pytestmark = pytest.mark.slow


def test_bench_schnet_on_a_small_mlearn_si_subset(tmp_path):
    result = bench_small_mlearn_si(tmp_path, "schnet", ["n_atom_basis=16", "n_interactions=2"], "schnetpack")
    assert math.isfinite(result["history"][0]["val_loss"])


def test_bench_schnet_on_qm9_molecules(tmp_path):
    result = bench_small_qm9(tmp_path, "schnet", ["n_atom_basis=16", "n_interactions=2", "epochs=2"])
    assert result["history"][0]["loss_name"] == "MSE of U0 (eV^2)"
