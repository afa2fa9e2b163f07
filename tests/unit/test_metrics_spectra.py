"""Unit tests for metrics.spectra and runner.tasks.spectra, against values derived by hand."""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import integrate

from metrics import (
    DULONG_PETIT,
    HC_OVER_KB,
    heat_capacity,
    heat_capacity_mae,
    mean_wasserstein,
    spectra_metrics,
    spectrum_mae,
    spectrum_mse,
    spectrum_r2,
    spectrum_rmse,
    wasserstein,
)
from metrics.spectra import _einstein_function
from runner.tasks import spectra as driver

GRID = np.arange(0.0, 1001.0, 20.0)  # the task's grid: 51 frequencies, 0..1000 cm^-1
R = 8.31446261815324  # J/(K mol), molar gas constant (CODATA 2018, exact)
KEYS = ["MAE", "MSE", "RMSE", "R2", "Wasserstein", "Cv_300K_MAE"]


def delta(index: int, n: int = GRID.size) -> np.ndarray:
    v = np.zeros(n)
    v[index] = 1.0
    return v


def einstein(x: float) -> float:
    """E(x) = x^2 e^x / (e^x - 1)^2, written out directly (x > 0; expm1 keeps small x accurate)."""
    return x * x * math.exp(x) / math.expm1(x) ** 2


def some_spectra(n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = rng.random((n, GRID.size)) ** 3
    return s / s.max(axis=1, keepdims=True)


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------


def test_constants():
    # second radiation constant c2 = h c / k_B = 1.438776877e-2 m K (CODATA)
    assert HC_OVER_KB == pytest.approx(1.438776877, rel=1e-9)
    assert DULONG_PETIT == pytest.approx(3 * R) and DULONG_PETIT == pytest.approx(24.943, abs=5e-4)


# --------------------------------------------------------------------------
# Point-wise errors
# --------------------------------------------------------------------------


def test_identical_spectra_are_perfect():
    y = some_spectra()
    out = spectra_metrics(y, y.copy(), GRID)
    assert list(out) == KEYS
    assert out["MAE"] == 0.0 and out["MSE"] == 0.0 and out["RMSE"] == 0.0
    assert out["R2"] == 1.0
    assert out["Wasserstein"] == pytest.approx(0.0, abs=1e-9)
    assert out["Cv_300K_MAE"] == 0.0
    assert np.allclose(wasserstein(y, y, GRID), 0.0, atol=1e-9)


def test_small_example_by_hand():
    # y_true = [[0, 1, 0], [0, 1, 1]], y_pred = [[0, .5, 0], [0, 1, 0]]
    # |errors| flattened = [0, .5, 0, 0, 0, 1]
    #   MAE = 1.5 / 6 = 0.25;  MSE = (0.25 + 1) / 6 = 1.25 / 6
    #   mean(y_true) = 3 / 6 = 0.5, SS_tot = 6 * 0.25 = 1.5, SS_res = 1.25
    #   R2 = 1 - 1.25 / 1.5 = 1 / 6
    t = [[0, 1, 0], [0, 1, 1]]
    p = [[0, 0.5, 0], [0, 1, 0]]
    assert spectrum_mae(t, p) == pytest.approx(0.25)
    assert spectrum_mse(t, p) == pytest.approx(1.25 / 6)
    assert spectrum_rmse(t, p) == pytest.approx(math.sqrt(1.25 / 6))
    assert spectrum_r2(t, p) == pytest.approx(1 / 6)


def test_mae_is_mean_of_per_crystal_maes():
    t, p = some_spectra(5, 1), some_spectra(5, 2)
    assert spectrum_mae(t, p) == pytest.approx(np.mean([np.mean(np.abs(a - b)) for a, b in zip(t, p)]))


def test_r2_constant_truth_is_nan():
    assert math.isnan(spectrum_r2([[0.5, 0.5], [0.5, 0.5]], [[0.1, 0.2], [0.3, 0.4]]))
    assert math.isnan(spectra_metrics(np.ones((2, 51)), np.ones((2, 51)), GRID)["R2"])


# --------------------------------------------------------------------------
# Wasserstein distance
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5, 17, 50])
def test_shifted_delta_peak_moves_k_grid_steps(k):
    # all weight moves k grid steps of 20 cm^-1: W1 = 20 k
    start = 10 if 10 + k < GRID.size else 0
    t = delta(start)[None, :]
    p = delta(start + k)[None, :]
    assert wasserstein(t, p, GRID)[0] == pytest.approx(20.0 * k)
    assert wasserstein(p, t, GRID)[0] == pytest.approx(20.0 * k)  # symmetric


def test_wasserstein_split_peak_and_scale_invariance():
    # half the weight stays, half moves 2 steps (40 cm^-1): W1 = 0.5 * 40 = 20
    t = delta(10)
    p = 0.5 * delta(10) + 0.5 * delta(12)
    # a scaled copy has the same distribution: W1 = 0
    d = wasserstein(np.stack([t, t]), np.stack([p, 3.0 * t]), GRID)
    assert d.tolist() == pytest.approx([20.0, 0.0])


def test_wasserstein_all_zero_is_nan_and_mean_ignores_it():
    t = np.stack([delta(0), delta(3), delta(7)])
    p = np.stack([delta(2), np.zeros(51), delta(7)])
    d = wasserstein(t, p, GRID)
    assert d[0] == pytest.approx(40.0) and math.isnan(d[1]) and d[2] == pytest.approx(0.0)
    assert mean_wasserstein(t, p, GRID) == pytest.approx(20.0)  # (40 + 0) / 2
    assert math.isnan(mean_wasserstein(np.zeros((2, 51)), np.zeros((2, 51)), GRID))


def test_wasserstein_negative_values_rejected():
    t = np.stack([delta(3)])
    p = t.copy()
    p[0, 5] = -0.01
    with pytest.raises(ValueError, match=r"y_pred must be non-negative.*\[0, 5\]"):
        wasserstein(t, p, GRID)
    with pytest.raises(ValueError, match="y_true must be non-negative"):
        mean_wasserstein(p, t, GRID)


# --------------------------------------------------------------------------
# Heat capacity
# --------------------------------------------------------------------------


def test_einstein_function():
    assert _einstein_function(np.array([0.0]))[0] == 1.0
    xs = np.array([1e-8, 5e-5, 1e-4, 2e-4, 0.1, 1.0, 5.0, 30.0])
    expected = [einstein(x) for x in xs]
    assert _einstein_function(xs) == pytest.approx(expected, rel=1e-9)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no 0/0
        big = _einstein_function(np.array([0.0, 800.0, 1e6]))
    assert big.tolist() == [1.0, 0.0, 0.0]


def test_heat_capacity_single_point_peak_is_einstein_value():
    # a DOS that is non-zero at one grid point only: the trapezoid weights cancel in the ratio, so
    # C_V = 3R E(x) exactly. Peak at 200 cm^-1, T = 300 K:
    #   x = 1.4387768775 * 200 / 300 = 0.95918458500
    #   E = x^2 e^x / (e^x - 1)^2 = 0.92003 * 2.60956 / 2.59077 = 0.9267326
    #   C_V = 24.94338785 * 0.9267326 = 23.11585 J/(K mol)
    cv = heat_capacity(delta(10)[None, :], GRID, 300.0)[0]
    assert cv == pytest.approx(23.11585, abs=1e-4)
    assert cv == pytest.approx(3 * R * einstein(HC_OVER_KB * 200.0 / 300.0), rel=1e-12)


@pytest.mark.parametrize("nu0,temperature", [(200.0, 300.0), (500.0, 300.0), (300.0, 100.0)])
def test_heat_capacity_einstein_like_gaussian_peak(nu0, temperature):
    # a narrow Gaussian (sigma = 2 cm^-1) on a fine grid (0.25 cm^-1): C_V -> 3R E(x0); the
    # deviation from the width is ~ 0.5 E''(x0) (x0 sigma / nu0)^2 < 1e-3 relative
    grid = np.arange(0.0, 1000.0 + 1e-9, 0.25)
    dos = np.exp(-0.5 * ((grid - nu0) / 2.0) ** 2)
    cv = heat_capacity(dos[None, :], grid, temperature)[0]
    assert cv == pytest.approx(3 * R * einstein(HC_OVER_KB * nu0 / temperature), rel=1e-3)


def debye_cv(temperature: float, nu_d: float) -> float:
    """Debye model: C_V = 9R (T/theta)^3 int_0^{theta/T} x^4 e^x / (e^x - 1)^2 dx (quad)."""
    theta = HC_OVER_KB * nu_d
    xd = theta / temperature
    val, _ = integrate.quad(lambda x: x**4 * math.exp(-x) / (-math.expm1(-x)) ** 2 if x > 0 else 0.0, 0, xd)
    return 9 * R * val / xd**3


def test_heat_capacity_debye_high_and_low_temperature():
    fine = np.arange(0.0, 1000.0 + 1e-9, 0.5)
    debye_fine = (fine**2)[None, :]
    # very high T: Dulong-Petit 3R within 0.5 %
    cv_hot = heat_capacity(debye_fine, fine, 1e5)[0]
    assert cv_hot == pytest.approx(3 * R, rel=5e-3) and cv_hot <= 3 * R
    cv_hot51 = heat_capacity((GRID**2)[None, :], GRID, 1e5)[0]
    assert cv_hot51 == pytest.approx(3 * R, rel=5e-3)
    # very low T: frozen out (first non-zero mode at 20 cm^-1: x = 28.8 at 1 K)
    assert heat_capacity((GRID**2)[None, :], GRID, 1.0)[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("temperature", [20.0, 300.0, 719.4, 2000.0])
def test_heat_capacity_matches_debye_function(temperature):
    # omega^2 DOS up to nu_D = 1000 cm^-1 (theta_D = 1438.8 K) is the Debye model
    fine = np.arange(0.0, 1000.0 + 1e-9, 0.1)
    cv = heat_capacity((fine**2)[None, :], fine, temperature)[0]
    assert cv == pytest.approx(debye_cv(temperature, 1000.0), rel=1e-4)


def test_heat_capacity_debye_t3_law():
    # T << theta_D: C_V = (12 pi^4 / 5) R (T / theta_D)^3; at 20 K, theta_D = 1438.78 K:
    # 233.78 * 8.3145 * 2.686e-6 = 5.22e-3 J/(K mol)
    fine = np.arange(0.0, 1000.0 + 1e-9, 0.1)
    theta = HC_OVER_KB * 1000.0
    expected = 12 * math.pi**4 / 5 * R * (20.0 / theta) ** 3
    assert expected == pytest.approx(5.22e-3, rel=1e-3)
    assert heat_capacity((fine**2)[None, :], fine, 20.0)[0] == pytest.approx(expected, rel=1e-3)


def test_heat_capacity_zero_frequency_and_all_zero():
    cv = heat_capacity(np.stack([delta(0), np.zeros(51)]), GRID, 300.0)
    assert cv[0] == pytest.approx(3 * R, rel=1e-15)  # E(0) = 1, no division by zero
    assert math.isnan(cv[1])


def test_heat_capacity_mae_by_hand_and_nan():
    # peaks at 0 and 200 cm^-1: |3R - 3R E(x_200)| = 24.94339 - 23.11585 = 1.82753
    t = np.stack([delta(0), delta(0), delta(4)])
    p = np.stack([delta(10), delta(0), np.zeros(51)])
    expected = 3 * R * (1 - einstein(HC_OVER_KB * 200.0 / 300.0)) / 2  # third crystal (NaN) ignored
    assert heat_capacity_mae(t, p, GRID) == pytest.approx(expected)
    assert heat_capacity_mae(t, p, GRID) == pytest.approx(1.82753 / 2, abs=1e-4)
    assert math.isnan(heat_capacity_mae(np.zeros((1, 51)), np.zeros((1, 51)), GRID))


def _subnormal_dos() -> np.ndarray:
    """The case hypothesis found in CI: one bin of 5e-324 (a subnormal float) in an otherwise zero DOS."""
    dos = np.zeros((3, 51))
    dos[0, 1] = 5e-324
    return dos


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (3, 51), elements=st.floats(0, 1)),
       st.floats(1.0, 5000.0), st.floats(1.0, 5000.0))
@example(_subnormal_dos(), 1.0, 10.0)
def test_heat_capacity_bounded_and_increasing_in_temperature(dos, t1, t2):
    lo, hi = sorted((t1, t2))
    c_lo, c_hi = heat_capacity(dos, GRID, lo), heat_capacity(dos, GRID, hi)
    ok = dos.sum(axis=1) > 0
    assert np.all(np.isnan(c_lo[~ok]))
    assert np.all((c_lo[ok] >= 0) & (c_hi[ok] <= 3 * R * (1 + 1e-12)))
    assert np.all(c_hi[ok] >= c_lo[ok] - 1e-9)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (2, 51), elements=st.floats(0.01, 1)),
       hnp.arrays(np.float64, (2, 51), elements=st.floats(0.01, 1)))
def test_wasserstein_properties(t, p):
    d = wasserstein(t, p, GRID)
    assert np.all(d >= 0) and np.all(d <= 1000.0 + 1e-9)
    assert np.allclose(d, wasserstein(p, t, GRID))


# --------------------------------------------------------------------------
# Validation: errors name the argument
# --------------------------------------------------------------------------

ARRAY_FUNCS = [spectrum_mae, spectrum_mse, spectrum_rmse, spectrum_r2]
GRID_FUNCS = [wasserstein, mean_wasserstein, heat_capacity_mae, spectra_metrics]


@pytest.mark.parametrize("func", ARRAY_FUNCS + GRID_FUNCS)
def test_shape_and_value_errors_name_argument(func):
    def call(t, p, grid=GRID):
        return func(t, p, grid) if func in GRID_FUNCS else func(t, p)

    good = some_spectra(2)
    with pytest.raises(ValueError, match=r"y_true must be 2-D.*np.newaxis"):
        call(good[0], good)
    with pytest.raises(ValueError, match=r"y_pred must be 2-D"):
        call(good, good[None])
    with pytest.raises(ValueError, match=r"different shapes: y_true \(2, 51\), y_pred \(3, 51\)"):
        call(good, some_spectra(3))
    with pytest.raises(ValueError, match="y_true is empty"):
        call(np.zeros((0, 51)), np.zeros((0, 51)))
    bad = good.copy()
    bad[1, 7] = np.nan
    with pytest.raises(ValueError, match=r"y_pred contains 1 non-finite.*\[1, 7\]"):
        call(good, bad)
    with pytest.raises(ValueError, match="y_true contains 1 non-finite"):
        call(np.where(np.isnan(bad), np.inf, bad), good)
    with pytest.raises(ValueError, match="y_true must contain real numbers"):
        call([["a"] * 51] * 2, good)


@pytest.mark.parametrize("func", GRID_FUNCS)
def test_grid_errors_name_grid(func):
    good = some_spectra(2)
    with pytest.raises(ValueError, match=r"grid has 50 points but the spectra have n_grid=51"):
        func(good, good, GRID[:-1])
    with pytest.raises(ValueError, match="grid must be 1-D"):
        func(good, good, GRID[None, :])
    swapped = GRID.copy()
    swapped[[3, 4]] = swapped[[4, 3]]
    with pytest.raises(ValueError, match=r"grid must be strictly increasing; grid\[4\]"):
        func(good, good, swapped)
    with pytest.raises(ValueError, match="grid contains 1 non-finite"):
        func(good, good, np.where(GRID == 100.0, np.nan, GRID))


def test_heat_capacity_argument_errors():
    dos = some_spectra(2)
    with pytest.raises(ValueError, match="dos must be 2-D"):
        heat_capacity(dos[0], GRID)
    with pytest.raises(ValueError, match=r"dos must be non-negative"):
        heat_capacity(-dos, GRID)
    nan_dos = dos.copy()
    nan_dos[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"dos contains 1 non-finite.*\[1, 3\]"):
        heat_capacity(nan_dos, GRID)
    with pytest.raises(ValueError, match="grid has 50 points"):
        heat_capacity(dos, GRID[:-1])
    with pytest.raises(ValueError, match="grid must be non-negative"):
        heat_capacity(dos, GRID - 20.0)
    for bad_t in (0.0, -5.0, math.nan, math.inf, "300", True):
        with pytest.raises(ValueError, match="temperature must be"):
            heat_capacity(dos, GRID, bad_t)
    with pytest.raises(ValueError, match="y_pred must be non-negative"):
        heat_capacity_mae(dos, -dos, GRID)


# --------------------------------------------------------------------------
# Scoring driver
# --------------------------------------------------------------------------


def test_driver_score_structure_and_values():
    t = np.stack([delta(0), delta(10), delta(4)])
    p = np.stack([delta(2), delta(10), np.zeros(51)])
    scores, details = driver.score(t, p, GRID)
    assert scores == pytest.approx(spectra_metrics(t, p, GRID), nan_ok=True)
    assert list(scores) == KEYS
    assert scores["Wasserstein"] == pytest.approx(20.0)  # (40 + 0) / 2, third crystal NaN
    assert set(details) == {"grid", "grid_unit", "temperature_K", "per_crystal", "definition"}
    assert details["grid"] == GRID.tolist() and details["grid_unit"] == "cm^-1"
    assert details["temperature_K"] == 300.0
    pc = details["per_crystal"]
    assert set(pc) == {"MSE", "Wasserstein", "Cv_300K_true", "Cv_300K_pred"}
    assert pc["MSE"] == pytest.approx([2 / 51, 0.0, 1 / 51])
    assert pc["Wasserstein"][:2] == pytest.approx([40.0, 0.0]) and math.isnan(pc["Wasserstein"][2])
    assert pc["Cv_300K_true"][0] == pytest.approx(3 * R)
    assert pc["Cv_300K_pred"][1] == pytest.approx(pc["Cv_300K_true"][1])
    assert math.isnan(pc["Cv_300K_pred"][2])
    assert all(isinstance(v, float) for lst in pc.values() for v in lst)
    assert set(details["definition"]) == {"MAE", "Wasserstein", "Cv_300K_MAE"}


def test_driver_clips_negative_predictions_for_distribution_metrics_only():
    t = np.stack([delta(5), delta(6)])
    p = t.copy()
    p[0, 20] = -0.5  # clipped to 0 -> identical spectra for Wasserstein and C_V
    scores, details = driver.score(t, p, GRID)
    assert scores["MAE"] == pytest.approx(0.5 / 102)
    assert scores["Wasserstein"] == pytest.approx(0.0, abs=1e-9)
    assert scores["Cv_300K_MAE"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="y_true must be non-negative"):
        driver.score(p, t, GRID)


def test_driver_prediction_rows():
    t, p = some_spectra(2, 3), some_spectra(2, 4)
    rows = driver.prediction_rows(["mp-1", "mp-2"], t, p, GRID)
    assert list(rows) == ["id", "frequency", "target", "prediction"]
    assert all(len(col) == 102 for col in rows.values())
    assert rows["id"][:51] == ["mp-1"] * 51 and rows["id"][51:] == ["mp-2"] * 51
    assert rows["frequency"][51:] == GRID.tolist()
    assert rows["target"][51 + 7] == t[1, 7] and rows["prediction"][7] == p[0, 7]
    with pytest.raises(ValueError, match="ids has 1 entries"):
        driver.prediction_rows(["mp-1"], t, p, GRID)
    with pytest.raises(ValueError, match="grid has 50 points"):
        driver.prediction_rows(["mp-1", "mp-2"], t, p, GRID[1:])


# --------------------------------------------------------------------------
# Real spectra (Petretto et al. 2018, as processed by Chen et al. 2021)
# --------------------------------------------------------------------------

_DATA_CANDIDATES = [
    Path("/work/shared/data/phonon_dos_petretto/data.csv"),
    Path(__file__).resolve().parents[2] / "data" / "phonon_dos_petretto" / "data.csv",
]


def _real_spectra(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    path = next((p for p in _DATA_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("phonon_dos_petretto/data.csv not available")
    csv.field_size_limit(10**8)
    dos, grid = [], None
    with path.open(newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i >= n:
                break
            dos.append(ast.literal_eval(row["phdos"]))
            freq = ast.literal_eval(row["phfreq"])
            assert grid is None or freq == grid
            grid = freq
    return np.asarray(dos, dtype=np.float64), np.asarray(grid, dtype=np.float64)


def test_real_spectra():
    dos, grid = _real_spectra()
    assert grid.tolist() == GRID.tolist()
    cv = heat_capacity(dos, grid, 300.0)
    assert np.all(np.isfinite(cv)) and np.all((cv > 0) & (cv <= 3 * R))
    # C_V rises with T towards 3R
    assert np.all(heat_capacity(dos, grid, 3000.0) >= cv)
    # a prediction that is the truth shifted up by one grid step
    shifted = np.roll(dos, 1, axis=1)
    shifted[:, 0] = 0.0
    out = spectra_metrics(dos, shifted, grid)
    assert all(math.isfinite(v) for v in out.values())
    w = wasserstein(dos, shifted, grid)
    inside = dos[:, -1] == 0  # nothing rolled off the top of the grid: every state moves 20 cm^-1
    assert inside.any()
    assert w[inside] == pytest.approx(np.full(int(inside.sum()), 20.0))
    scores, details = driver.score(dos, shifted, grid)
    assert scores == pytest.approx(out)
    assert all(math.isfinite(v) for lst in details["per_crystal"].values() for v in lst)
    assert spectra_metrics(dos, dos, grid)["Wasserstein"] == pytest.approx(0.0, abs=1e-9)
