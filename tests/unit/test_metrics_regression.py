"""Unit tests for metrics.regression, against values derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics import (
    max_error,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    regression_metrics,
    root_mean_squared_error,
)

ALL_FUNCS = [
    mean_absolute_error,
    mean_squared_error,
    root_mean_squared_error,
    r2_score,
    max_error,
    regression_metrics,
]


# --------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------

# y_true = [1, 2, 3], y_pred = [2, 2, 5]
# errors (pred - true) = [1, 0, 2]
#   MAE      = (1 + 0 + 2) / 3        = 1.0
#   MSE      = (1 + 0 + 4) / 3        = 5/3
#   RMSE     = sqrt(5/3)
#   MaxError = max(1, 0, 2)           = 2.0
#   mean(y_true) = 2, SS_tot = 1 + 0 + 1 = 2, SS_res = 5
#   R2       = 1 - 5/2                = -1.5
Y_TRUE_A = [1, 2, 3]
Y_PRED_A = [2, 2, 5]


def test_small_example_each_function():
    assert mean_absolute_error(Y_TRUE_A, Y_PRED_A) == pytest.approx(1.0)
    assert mean_squared_error(Y_TRUE_A, Y_PRED_A) == pytest.approx(5 / 3)
    assert root_mean_squared_error(Y_TRUE_A, Y_PRED_A) == pytest.approx(math.sqrt(5 / 3))
    assert r2_score(Y_TRUE_A, Y_PRED_A) == pytest.approx(-1.5)
    assert max_error(Y_TRUE_A, Y_PRED_A) == pytest.approx(2.0)


def test_second_example_with_negative_and_fractional_values():
    # y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0, 2, 8]
    # |errors| = [0.5, 0.5, 0, 1]
    #   MAE = 2 / 4 = 0.5;  MSE = (0.25 + 0.25 + 0 + 1) / 4 = 0.375
    #   MaxError = 1
    #   mean(y_true) = 11.5 / 4 = 2.875
    #   deviations = [0.125, -3.375, -0.875, 4.125]
    #   SS_tot = 0.015625 + 11.390625 + 0.765625 + 17.015625 = 29.1875
    #   SS_res = 1.5  ->  R2 = 1 - 1.5 / 29.1875
    y_true = [3, -0.5, 2, 7]
    y_pred = [2.5, 0, 2, 8]
    assert mean_absolute_error(y_true, y_pred) == pytest.approx(0.5)
    assert mean_squared_error(y_true, y_pred) == pytest.approx(0.375)
    assert root_mean_squared_error(y_true, y_pred) == pytest.approx(math.sqrt(0.375))
    assert max_error(y_true, y_pred) == pytest.approx(1.0)
    assert r2_score(y_true, y_pred) == pytest.approx(1 - 1.5 / 29.1875)


def test_perfect_prediction():
    # All errors 0 -> MAE = MSE = RMSE = MaxError = 0; SS_res = 0 -> R2 = 1.
    y = [0.5, -1.0, 4.0]
    assert regression_metrics(y, y) == {
        "MAE": 0.0,
        "MSE": 0.0,
        "RMSE": 0.0,
        "R2": 1.0,
        "MaxError": 0.0,
    }


def test_predicting_the_mean_gives_r2_zero():
    # y_true = [1, 2, 3] (mean 2), y_pred = [2, 2, 2] -> SS_res = SS_tot = 2 -> R2 = 0.
    assert r2_score([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)


def test_regression_metrics_dict():
    out = regression_metrics(Y_TRUE_A, Y_PRED_A)
    assert list(out) == ["MAE", "MSE", "RMSE", "R2", "MaxError"]
    assert all(type(v) is float for v in out.values())
    assert out == pytest.approx(
        {"MAE": 1.0, "MSE": 5 / 3, "RMSE": math.sqrt(5 / 3), "R2": -1.5, "MaxError": 2.0}
    )


@pytest.mark.parametrize("func", ALL_FUNCS[:-1])
def test_returns_python_float(func):
    assert type(func(Y_TRUE_A, Y_PRED_A)) is float


def test_accepts_numpy_arrays_and_tuples():
    assert mean_absolute_error(np.array(Y_TRUE_A, dtype=np.int32), tuple(Y_PRED_A)) == 1.0


# --------------------------------------------------------------------------
# Degenerate but valid input: R2 undefined -> NaN (sklearn would give 0 or 1)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y_pred",
    [[2, 2, 2], [1, 2, 3]],
    ids=["perfect", "imperfect"],
)
def test_r2_nan_when_y_true_constant(y_pred):
    # SS_tot = 0. scikit-learn returns 1.0 (perfect) / 0.0 (imperfect) here; we return NaN.
    assert math.isnan(r2_score([2, 2, 2], y_pred))


def test_single_sample():
    # y_true = [5], y_pred = [3]: |error| = 2 -> MAE = 2, MSE = 4, RMSE = 2, MaxError = 2;
    # a single sample is a constant y_true -> R2 NaN.
    out = regression_metrics([5], [3])
    assert out["MAE"] == 2.0 and out["MSE"] == 4.0 and out["RMSE"] == 2.0
    assert out["MaxError"] == 2.0
    assert math.isnan(out["R2"])


# --------------------------------------------------------------------------
# Invalid input: ValueError naming the argument
# --------------------------------------------------------------------------


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_length_mismatch(func):
    with pytest.raises(ValueError, match=r"len\(y_true\)=3, len\(y_pred\)=2"):
        func([1, 2, 3], [1, 2])


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_empty(func):
    with pytest.raises(ValueError, match="y_true and y_pred are empty"):
        func([], [])


@pytest.mark.parametrize("func", ALL_FUNCS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_y_pred(func, bad):
    with pytest.raises(ValueError, match=r"y_pred contains 1 non-finite value.*index 1"):
        func([1, 2, 3], [1, bad, 3])


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_nan_y_true(func):
    with pytest.raises(ValueError, match=r"y_true contains 2 non-finite"):
        func([math.nan, 2, math.nan], [1, 2, 3])


@pytest.mark.parametrize(
    "y_pred, shape",
    [([[1], [2], [3]], r"\(3, 1\)"), (2.0, r"\(\)")],
    ids=["column", "scalar"],
)
def test_wrong_ndim(y_pred, shape):
    with pytest.raises(ValueError, match=rf"y_pred must be 1-D.*shape {shape}"):
        mean_absolute_error([1, 2, 3], y_pred)


def test_wrong_ndim_y_true():
    with pytest.raises(ValueError, match=r"y_true must be 1-D.*ndim=2"):
        regression_metrics([[1, 2], [3, 4]], [1, 2])


def test_non_numeric():
    with pytest.raises(ValueError, match="y_true must contain real numbers"):
        mean_squared_error(["a", "b"], [1, 2])


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------

# hypothesis is an optional test dependency; without it these tests are not collected.
try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)

    @st.composite
    def paired(draw):
        n = draw(st.integers(min_value=1, max_value=40))
        a = draw(st.lists(finite, min_size=n, max_size=n))
        b = draw(st.lists(finite, min_size=n, max_size=n))
        perm = draw(st.permutations(range(n)))
        return np.array(a), np.array(b), np.array(perm)

    @settings(max_examples=200, deadline=None, database=None)
    @given(paired())
    def test_mae_symmetric_and_permutation_invariant(data):
        a, b, perm = data
        mae = mean_absolute_error(a, b)
        assert mean_absolute_error(b, a) == pytest.approx(mae, rel=1e-12, abs=1e-9)
        assert mean_absolute_error(a[perm], b[perm]) == pytest.approx(mae, rel=1e-12, abs=1e-9)

    @settings(max_examples=200, deadline=None, database=None)
    @given(paired())
    def test_error_ordering_and_rmse_definition(data):
        a, b, _ = data
        out = regression_metrics(a, b)
        tol = 1e-9 * max(1.0, out["MaxError"])
        assert 0.0 <= out["MAE"] <= out["RMSE"] + tol
        assert out["RMSE"] <= out["MaxError"] + tol
        assert out["RMSE"] == pytest.approx(math.sqrt(out["MSE"]), rel=1e-12, abs=1e-12)
        assert math.isnan(out["R2"]) or out["R2"] <= 1.0 + 1e-12
