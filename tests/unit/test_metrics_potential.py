"""Unit tests of metrics/potential.py: values worked out by hand on tiny arrays, fairchem's
definitions checked against torch (which fairchem's evaluator calls), and the input checks."""

import math

import numpy as np
import pytest

from metrics import potential as pm

# two structures: 1 atom and 2 atoms
E_TRUE = np.array([-10.0, -20.0])
E_PRED = np.array([-10.01, -19.94])  # errors -0.01 and +0.06 eV
N_ATOMS = np.array([1, 2])
F_TRUE = np.array([[1.0, 0.0, 0.0],
                   [0.0, 3.0, 4.0],
                   [0.0, 0.0, 0.0]])
F_PRED = np.array([[1.0, 0.02, 0.0],   # errors 0, 0.02, 0
                   [0.0, 3.0, 4.1],    # errors 0, 0, 0.1
                   [0.0, 0.0, -0.2]])  # errors 0, 0, 0.2


def test_energy_errors_per_atom_by_hand():
    # per-atom errors: |-0.01|/1 = 0.01 and |0.06|/2 = 0.03
    assert pm.energy_mae_per_atom(E_TRUE, E_PRED, N_ATOMS) == pytest.approx((0.01 + 0.03) / 2)
    assert pm.energy_rmse_per_atom(E_TRUE, E_PRED, N_ATOMS) == pytest.approx(math.sqrt((0.01**2 + 0.03**2) / 2))


def test_force_errors_per_component_by_hand():
    # nine components, errors 0, 0.02, 0, 0, 0, 0.1, 0, 0, 0.2
    assert pm.force_mae(F_TRUE, F_PRED) == pytest.approx((0.02 + 0.1 + 0.2) / 9)
    assert pm.force_rmse(F_TRUE, F_PRED) == pytest.approx(math.sqrt((0.02**2 + 0.1**2 + 0.2**2) / 9))


def test_force_cosine_similarity_by_hand_with_a_zero_force():
    cos0 = 1.0 / math.sqrt(1.0 + 0.02**2)
    cos1 = (9.0 + 16.4) / (5.0 * math.sqrt(9.0 + 4.1**2))
    cos2 = 0.0  # the true force is zero: torch clamps its norm at eps, the dot product is 0
    assert pm.force_cosine_similarity(F_TRUE, F_PRED) == pytest.approx((cos0 + cos1 + cos2) / 3)


def test_force_magnitude_error_by_hand():
    m0 = abs(math.sqrt(1.0 + 0.02**2) - 1.0)
    m1 = abs(math.sqrt(9.0 + 4.1**2) - 5.0)
    m2 = 0.2
    assert pm.force_magnitude_error(F_TRUE, F_PRED) == pytest.approx((m0 + m1 + m2) / 3)


def test_efwt_by_hand_uses_total_energy_and_strict_thresholds():
    # structure 0: |dE| = 0.01 < 0.02, max |dF| = 0.02 < 0.03 -> within; structure 1: |dE| = 0.06 -> not
    assert pm.energy_forces_within_threshold(E_TRUE, E_PRED, F_TRUE, F_PRED, N_ATOMS) == pytest.approx(0.5)
    # the energy threshold is on the total energy: 0.03 eV over 2 atoms (0.015 eV/atom) fails
    assert pm.energy_forces_within_threshold([0.0], [0.03], np.zeros((2, 3)), np.zeros((2, 3)), [2]) == 0.0
    # one force component just over 0.03 eV/Å fails the structure; exactly 0 errors pass
    forces = np.zeros((2, 3))
    bad = forces.copy()
    bad[1, 2] = 0.0301
    assert pm.energy_forces_within_threshold([0.0], [0.0], forces, bad, [2]) == 0.0
    assert pm.energy_forces_within_threshold([0.0], [0.019], forces, forces, [2]) == 1.0


def test_cosine_and_magnitude_match_torch_as_fairchem_calls_it():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ft = rng.normal(size=(50, 3))
    fp = ft + 0.3 * rng.normal(size=(50, 3))
    ft[3] = 0.0  # a zero force
    fp[7] = 1e-9  # a tiny one (below eps)
    expected_cos = torch.cosine_similarity(torch.tensor(fp), torch.tensor(ft)).mean().item()
    expected_mag = torch.abs(torch.norm(torch.tensor(fp), p=2, dim=-1)
                             - torch.norm(torch.tensor(ft), p=2, dim=-1)).mean().item()
    assert pm.force_cosine_similarity(ft, fp) == pytest.approx(expected_cos, rel=1e-12)
    assert pm.force_magnitude_error(ft, fp) == pytest.approx(expected_mag, rel=1e-12)


def test_potential_metrics_in_mev_and_per_group():
    values = pm.potential_metrics(E_TRUE, E_PRED, F_TRUE, F_PRED, N_ATOMS)
    assert set(values) == set(pm.METRIC_UNITS)
    assert values["energy_MAE"] == pytest.approx(1000 * 0.02)
    assert values["force_RMSE"] == pytest.approx(1000 * pm.force_rmse(F_TRUE, F_PRED))
    assert values["EFwT"] == pytest.approx(0.5)
    groups = pm.potential_metrics_by_group(E_TRUE, E_PRED, F_TRUE, F_PRED, N_ATOMS, ["bulk", "vacancy"])
    assert groups["bulk"]["n_structures"] == 1 and groups["vacancy"]["n_structures"] == 1
    assert groups["bulk"]["energy_MAE"] == pytest.approx(10.0)  # 0.01 eV/atom
    assert groups["vacancy"]["energy_MAE"] == pytest.approx(30.0)  # 0.06 eV / 2 atoms
    # the vacancy group holds force rows 1 and 2 only: errors 0.1 and 0.2 over six components
    assert groups["vacancy"]["force_MAE"] == pytest.approx(1000 * 0.3 / 6)
    assert groups["bulk"]["EFwT"] == 1.0 and groups["vacancy"]["EFwT"] == 0.0


def test_linear_reference_energies_recover_exact_per_element_energies():
    counts = pm.element_counts([["O", "H", "H"], ["O", "O", "H", "H"], ["H", "H"]], ["H", "O"])
    assert counts.tolist() == [[2, 1], [2, 2], [2, 0]]
    energies = counts @ np.array([-13.6, -432.0])
    assert pm.linear_reference_energies(counts, energies) == pytest.approx([-13.6, -432.0])
    assert pm.linear_reference_predict([[1, 1]], [-13.6, -432.0]) == pytest.approx([-445.6])
    # one element: the least-squares energy per atom is sum(E n) / sum(n^2)
    single = pm.linear_reference_energies([[2], [4]], [-10.0, -21.0])
    assert single == pytest.approx([(-20.0 - 84.0) / (4 + 16)])


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="forces_pred"):
        pm.force_mae(F_TRUE, F_PRED[:, :2])
    with pytest.raises(ValueError, match="energy_pred"):
        pm.energy_mae_per_atom(E_TRUE, [np.nan, 1.0], N_ATOMS)
    with pytest.raises(ValueError, match="n_atoms sums to 4"):
        pm.potential_metrics(E_TRUE, E_PRED, F_TRUE, F_PRED, [2, 2])
    with pytest.raises(ValueError, match="n_atoms"):
        pm.energy_rmse_per_atom(E_TRUE, E_PRED, [1, 0])
    with pytest.raises(ValueError, match="not among elements"):
        pm.element_counts([["Si", "Ge"]], ["Si"])
    with pytest.raises(ValueError, match="groups has 1"):
        pm.potential_metrics_by_group(E_TRUE, E_PRED, F_TRUE, F_PRED, N_ATOMS, ["a"])
