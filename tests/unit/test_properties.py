"""Property-based tests (hypothesis) of the metrics and of the ``model.yaml`` parser.

Random finite inputs of random lengths; each test's docstring names the property it checks.
Floating-point comparisons use tolerances derived from the magnitudes involved. The bugs these
tests found (unorderable int/str keys in model.yaml raised TypeError; C_V was NaN below ~1e-151 K)
are fixed; their minimal counterexamples stay as explicit examples.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from metrics import (
    DULONG_PETIT,
    accuracy,
    classification_details,
    classification_metrics,
    coverage,
    emd,
    f1,
    heat_capacity,
    heat_capacity_mae,
    max_error,
    mean_absolute_error,
    mean_squared_error,
    mean_wasserstein,
    optimization_success_rates,
    precision,
    r2_score,
    recall,
    regression_metrics,
    roc_auc,
    roc_curve_points,
    root_mean_squared_error,
    spectra_metrics,
    spectrum_mae,
    spectrum_mse,
    spectrum_r2,
    spectrum_rmse,
    wasserstein,
)
from runner.manifest import ManifestError, ModelManifest, load_manifest, load_schema

EPS = float(np.finfo(np.float64).eps)

# Moderate example counts: the whole file must stay well under a minute on a busy machine.
# database=None: no .hypothesis/ directory in the checkout.
PROPS = settings(max_examples=60, deadline=None, database=None)
FEW = settings(max_examples=30, deadline=None, database=None)
# For the tests of the fixed bugs: one clean exception type, not an ExceptionGroup of several bugs.
FIXED_BUG_PROPS = settings(max_examples=20, deadline=None, database=None, report_multiple_bugs=False)


def _nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ==========================================================================
# Regression
# ==========================================================================

REGRESSION_ERRORS = {
    "MAE": mean_absolute_error,
    "MSE": mean_squared_error,
    "RMSE": root_mean_squared_error,
    "MaxError": max_error,
}
REGRESSION_FUNCS = [*REGRESSION_ERRORS.values(), r2_score, regression_metrics]

# Finite values: 0 or 1e-100 <= |x| <= 1e100, so squared differences neither overflow nor
# underflow to 0 (IEEE limits, not properties of the metrics), plus a few small values so that
# equal pairs and ties are common.
_not_tiny = lambda x: x == 0.0 or abs(x) >= 1e-100  # noqa: E731
reg_value = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 3.0]),
    st.floats(min_value=-1e6, max_value=1e6).filter(_not_tiny),
    st.floats(min_value=-1e100, max_value=1e100).filter(_not_tiny),
)


@st.composite
def regression_pairs(draw, max_size=40):
    """``(y_true, y_pred)``: independent, identical, or differing in one sample."""
    n = draw(st.integers(min_value=1, max_value=max_size))
    t = draw(hnp.arrays(np.float64, n, elements=reg_value))
    mode = draw(st.sampled_from(["independent", "equal", "one_changed"]))
    if mode == "independent":
        p = draw(hnp.arrays(np.float64, n, elements=reg_value))
    else:
        p = t.copy()
        if mode == "one_changed":
            p[draw(st.integers(0, n - 1))] = draw(reg_value)
    return t, p


@PROPS
@given(regression_pairs())
def test_regression_errors_non_negative_and_zero_iff_equal(pair):
    """MAE, MSE, RMSE and MaxError are >= 0, and == 0 exactly when y_pred equals y_true."""
    t, p = pair
    equal = bool(np.array_equal(t, p))
    for name, func in REGRESSION_ERRORS.items():
        value = func(t, p)
        assert isinstance(value, float), name
        assert value >= 0.0, name
        assert (value == 0.0) == equal, (name, value)


@PROPS
@given(regression_pairs())
def test_regression_errors_symmetric(pair):
    """MAE, MSE, RMSE and MaxError are symmetric in (y_true, y_pred)."""
    t, p = pair
    for name, func in REGRESSION_ERRORS.items():
        assert func(t, p) == func(p, t), name


@PROPS
@given(regression_pairs(), st.data())
def test_regression_metrics_permutation_invariant(pair, data):
    """Every regression metric is unchanged when both arrays are permuted the same way."""
    t, p = pair
    perm = np.array(data.draw(st.permutations(range(t.size))))
    before, after = regression_metrics(t, p), regression_metrics(t[perm], p[perm])
    assert after["MaxError"] == before["MaxError"]
    for key in ("MAE", "MSE", "RMSE"):
        assert after[key] == pytest.approx(before[key], rel=1e-10, abs=1e-300), key
    assert math.isnan(after["R2"]) == math.isnan(before["R2"])
    # R2's SS_tot depends on mean(y_true), whose rounding varies with the summation order; that
    # only matters when y_true's spread is tiny compared with its magnitude (ill-conditioned).
    if not math.isnan(before["R2"]) and np.var(t) >= 1e-6 * float(np.max(t**2)):
        assert after["R2"] == pytest.approx(before["R2"], rel=1e-6, abs=1e-6)


@PROPS
@given(regression_pairs())
def test_regression_rmse_is_sqrt_mse_and_error_ordering(pair):
    """RMSE == sqrt(MSE) and MAE <= RMSE <= MaxError (within float tolerance)."""
    t, p = pair
    out = regression_metrics(t, p)
    assert out["RMSE"] == pytest.approx(math.sqrt(out["MSE"]), rel=1e-15, abs=0.0)
    tol = 1e-12 * out["MaxError"]
    assert out["MAE"] <= out["RMSE"] + tol
    assert out["RMSE"] <= out["MaxError"] + tol
    for name, func in REGRESSION_ERRORS.items():
        assert out[name] == func(t, p), name
    assert _nan_equal(out["R2"], r2_score(t, p))


@PROPS
@given(regression_pairs(), reg_value)
def test_regression_errors_translation_invariant(pair, shift):
    """Adding the same constant to y_true and y_pred leaves MAE, MSE, RMSE and MaxError unchanged."""
    t, p = pair
    # Each shifted difference fl(fl(t+c) - fl(p+c)) is off by at most ~3 eps * scale.
    scale = float(max(np.abs(t).max(), np.abs(p).max(), abs(shift)))
    lin = 8 * EPS * scale
    for name, func in REGRESSION_ERRORS.items():
        before, after = func(t, p), func(t + shift, p + shift)
        atol = 8 * lin * (scale + lin) if name == "MSE" else lin  # (d + e)^2 - d^2 <= (2|d| + e) e
        assert after == pytest.approx(before, rel=1e-9, abs=atol), name


@PROPS
@given(regression_pairs())
def test_r2_at_most_one_and_nan_iff_constant_truth(pair):
    """R2 <= 1 (== 1 for a perfect prediction) where defined, and NaN exactly when y_true is constant."""
    t, p = pair
    r2 = r2_score(t, p)
    if np.all(t == t[0]):
        assert math.isnan(r2)
    else:
        assert r2 <= 1.0
        assert r2_score(t, t) == 1.0


# ==========================================================================
# Binary classification
# ==========================================================================

CLASSIFICATION_FUNCS = [
    roc_auc, roc_curve_points, accuracy, precision, recall, f1,
    classification_metrics, classification_details,
]
THRESHOLD_FUNCS = {"Accuracy": accuracy, "Precision": precision, "Recall": recall, "F1": f1}

# Scores on a dyadic grid (k / 2**20): 1 - s is exact there. Values whose square underflows
# are left out of the general floats, so s -> s**2 keeps distinct scores distinct.
tie_prone = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
dyadic = st.integers(0, 2**20).map(lambda k: k / 2**20)
score_value = st.one_of(tie_prone, dyadic, st.floats(min_value=1e-100, max_value=1.0))


@st.composite
def labelled_scores(draw, both_classes=True, values=score_value, max_size=40):
    """``(y_true, scores)`` as int64 labels 0/1 and float64 scores in [0, 1]."""
    n = draw(st.integers(2 if both_classes else 1, max_size))
    if both_classes:
        n_pos = draw(st.integers(1, n - 1))
        y = np.array([1] * n_pos + [0] * (n - n_pos), dtype=np.int64)
        y = y[np.array(draw(st.permutations(range(n))))]
    else:
        y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    s = draw(hnp.arrays(np.float64, n, elements=values))
    return y, s


def _pair_count_auc(y, s):
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties counting 1/2."""
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def _same_strict_order(a, b):
    return bool(np.array_equal(np.sign(np.subtract.outer(a, a)), np.sign(np.subtract.outer(b, b))))


@PROPS
@given(labelled_scores())
def test_roc_auc_in_unit_interval_and_is_pair_probability(data):
    """With both classes present, ROC-AUC is in [0, 1] and equals the Mann-Whitney pair probability."""
    y, s = data
    auc = roc_auc(y, s)
    assert 0.0 <= auc <= 1.0
    assert auc == pytest.approx(_pair_count_auc(y, s), abs=1e-12)


@PROPS
@given(labelled_scores(), st.data())
def test_roc_auc_invariant_to_sample_order(data, draw):
    """ROC-AUC is unchanged when the samples are permuted."""
    y, s = data
    perm = np.array(draw.draw(st.permutations(range(y.size))))
    assert roc_auc(y[perm], s[perm]) == pytest.approx(roc_auc(y, s), abs=1e-12)


MONOTONE = {
    "square": np.square,
    "cube": lambda s: s**3,
    "sqrt": np.sqrt,
    "smoothstep": lambda s: s * s * (3.0 - 2.0 * s),
    "exp": lambda s: np.expm1(s) / math.expm1(1.0),
}


@PROPS
@given(labelled_scores(), st.sampled_from(sorted(MONOTONE)))
def test_roc_auc_invariant_to_strictly_increasing_transform(data, name):
    """ROC-AUC is unchanged by a strictly increasing map of [0, 1] into [0, 1] (it only sees ranks)."""
    y, s = data
    g = np.clip(MONOTONE[name](s), 0.0, 1.0)
    # Rounding may merge two close scores into a tie; such draws test nothing about ranks.
    assume(_same_strict_order(s, g))
    assert roc_auc(y, g) == pytest.approx(roc_auc(y, s), abs=1e-12)


@PROPS
@given(labelled_scores(values=st.one_of(tie_prone, dyadic)))
def test_roc_auc_of_complement_scores_and_flipped_labels(data):
    """ROC-AUC(y, 1 - s) == 1 - ROC-AUC(y, s) == ROC-AUC(1 - y, s) (scores on a grid where 1 - s is exact)."""
    y, s = data
    auc = roc_auc(y, s)
    assert roc_auc(y, 1.0 - s) == pytest.approx(1.0 - auc, abs=1e-12)
    assert roc_auc(1 - y, s) == pytest.approx(1.0 - auc, abs=1e-12)


threshold_value = st.one_of(tie_prone, st.floats(min_value=-0.5, max_value=1.5))


@PROPS
@given(labelled_scores(both_classes=False), threshold_value)
def test_threshold_metrics_in_unit_interval_or_documented_nan(data, threshold):
    """Accuracy is in [0, 1]; precision/recall/F1 are in [0, 1], or NaN exactly when documented."""
    y, s = data
    pred = s >= threshold
    n_pred_pos, n_pos = int(pred.sum()), int(y.sum())
    nan_when = {
        "Accuracy": False,
        "Precision": n_pred_pos == 0,  # TP + FP = 0
        "Recall": n_pos == 0,  # TP + FN = 0
        "F1": n_pred_pos == 0 and n_pos == 0,  # 2 TP + FP + FN = 0
    }
    out = classification_metrics(y, s, threshold)
    for name, func in THRESHOLD_FUNCS.items():
        value = func(y, s, threshold)
        assert _nan_equal(value, out[name]), name
        if nan_when[name]:
            assert math.isnan(value), name
        else:
            assert 0.0 <= value <= 1.0, (name, value)


@PROPS
@given(labelled_scores(both_classes=False), threshold_value, st.data())
def test_threshold_metrics_invariant_to_sample_order(data, threshold, draw):
    """Accuracy, precision, recall and F1 are unchanged when the samples are permuted."""
    y, s = data
    perm = np.array(draw.draw(st.permutations(range(y.size))))
    for name, func in THRESHOLD_FUNCS.items():
        assert _nan_equal(func(y[perm], s[perm], threshold), func(y, s, threshold)), name


@FEW
@given(st.integers(0, 1), st.integers(1, 30), st.data())
def test_one_class_documented_behaviour(label, n, data):
    """With one class only, ROC-AUC is NaN, the ROC curve raises ValueError, and the summaries don't raise."""
    y = np.full(n, label)
    s = data.draw(hnp.arrays(np.float64, n, elements=score_value))
    assert math.isnan(roc_auc(y, s))
    with pytest.raises(ValueError, match=rf"y_true contains only one class \({label}\)"):
        roc_curve_points(y, s)
    assert math.isnan(classification_metrics(y, s)["ROC-AUC"])
    assert classification_details(y, s)["roc_curve"] is None
    if label == 0:
        assert math.isnan(recall(y, s))


# ==========================================================================
# Invalid input: ValueError naming the argument
# ==========================================================================


@st.composite
def invalid_pairs(draw, second, first_values, second_values):
    """An invalid ``(y_true, <second>)`` pair and the substrings its error message must contain."""
    kind = draw(st.sampled_from(["lengths", "empty", "nonfinite"]))
    if kind == "lengths":
        n1 = draw(st.integers(0, 30))
        n2 = draw(st.integers(0, 30).filter(lambda m: m != n1))
        a = draw(hnp.arrays(np.float64, n1, elements=first_values))
        b = draw(hnp.arrays(np.float64, n2, elements=second_values))
        expected = [f"y_true and {second} have different lengths", f"len(y_true)={n1}", f"len({second})={n2}"]
    elif kind == "empty":
        a, b = np.zeros(0), np.zeros(0)
        expected = [f"y_true and {second} are empty"]
    else:
        n = draw(st.integers(1, 30))
        a = draw(hnp.arrays(np.float64, n, elements=first_values))
        b = draw(hnp.arrays(np.float64, n, elements=second_values))
        which = draw(st.sampled_from(["y_true", second]))
        index = draw(st.integers(0, n - 1))
        (a if which == "y_true" else b)[index] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        expected = [f"{which} contains 1 non-finite value(s)", f"first at index {index}"]
    if draw(st.booleans()):  # array-likes, not only arrays
        a, b = a.tolist(), b.tolist()
    return a, b, expected


def assert_value_error_naming(func, case) -> None:
    """``func(a, b)`` raises exactly ValueError, and its message holds every expected part."""
    a, b, expected = case
    with pytest.raises(ValueError) as info:
        func(a, b)
    assert info.type is ValueError
    for part in expected:
        assert part in str(info.value)


@PROPS
@given(st.sampled_from(REGRESSION_FUNCS), invalid_pairs("y_pred", reg_value, reg_value))
def test_regression_invalid_input_raises_value_error_naming_argument(func, case):
    """Different lengths, empty input or NaN/inf raise ValueError whose message names the argument."""
    assert_value_error_naming(func, case)


@PROPS
@given(st.sampled_from(CLASSIFICATION_FUNCS),
       invalid_pairs("scores", st.sampled_from([0.0, 1.0]), score_value))
def test_classification_invalid_input_raises_value_error_naming_argument(func, case):
    """Different lengths, empty input or NaN/inf raise ValueError whose message names the argument."""
    assert_value_error_naming(func, case)


# ==========================================================================
# Spectra
# ==========================================================================

spectrum_value = st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e3))
signed_spectrum_value = st.one_of(spectrum_value, st.floats(min_value=-1e3, max_value=1e3))


@st.composite
def grids(draw, n_grid):
    """A strictly increasing, non-negative grid of ``n_grid`` wavenumbers (cm^-1)."""
    start = draw(st.floats(min_value=0.0, max_value=500.0))
    steps = draw(hnp.arrays(np.float64, n_grid - 1, elements=st.floats(min_value=0.5, max_value=100.0)))
    return start + np.concatenate([[0.0], np.cumsum(steps)])


@st.composite
def spectra_case(draw, values=spectrum_value, allow_zero_rows=True, max_crystals=6, max_grid=30):
    """``(y_true, y_pred, grid)``: batches of spectra (n_crystals, n_grid) on a random grid."""
    n_cry = draw(st.integers(1, max_crystals))
    n_grid = draw(st.integers(2, max_grid))
    t = draw(hnp.arrays(np.float64, (n_cry, n_grid), elements=values))
    p = draw(hnp.arrays(np.float64, (n_cry, n_grid), elements=values))
    if not allow_zero_rows:  # a positive peak in every row, so every spectrum has a distribution
        for arr in (t, p):
            cols = draw(hnp.arrays(np.int64, n_cry, elements=st.integers(0, n_grid - 1)))
            arr[np.arange(n_cry), cols] = np.maximum(arr[np.arange(n_cry), cols], 1.0)
    return t, p, draw(grids(n_grid))


@PROPS
@given(spectra_case(values=signed_spectrum_value))
def test_spectrum_errors_non_negative_and_zero_for_identical(case):
    """Spectrum MAE/MSE/RMSE are >= 0 and 0 for identical spectra; RMSE == sqrt(MSE); R2 <= 1 or NaN."""
    t, p, _ = case
    for func in (spectrum_mae, spectrum_mse, spectrum_rmse):
        assert func(t, p) >= 0.0
        assert func(t, t) == 0.0
        assert func(p, p) == 0.0
    assert spectrum_rmse(t, p) == pytest.approx(math.sqrt(spectrum_mse(t, p)), rel=1e-15, abs=0.0)
    r2 = spectrum_r2(t, p)
    if np.all(t == t.flat[0]):
        assert math.isnan(r2)
    else:
        assert r2 <= 1.0
        assert spectrum_r2(t, t) == 1.0


@PROPS
@given(spectra_case())
def test_wasserstein_symmetric_non_negative_bounded_nan_for_zero_rows(case):
    """Wasserstein is >= 0, symmetric, at most the grid's span, and NaN exactly for an all-zero spectrum."""
    t, p, grid = case
    span = grid[-1] - grid[0]
    d, d_swapped = wasserstein(t, p, grid), wasserstein(p, t, grid)
    undefined = (t.sum(axis=1) == 0) | (p.sum(axis=1) == 0)
    assert np.array_equal(np.isnan(d), undefined)
    assert np.array_equal(np.isnan(d_swapped), undefined)
    ok = ~undefined
    assert np.all(d[ok] >= 0.0)
    assert np.all(d[ok] <= span * (1 + 1e-12))
    np.testing.assert_allclose(d_swapped[ok], d[ok], rtol=1e-9, atol=1e-12 * span)
    mean = mean_wasserstein(t, p, grid)
    if ok.any():
        assert mean == pytest.approx(float(np.mean(d[ok])), rel=1e-12)
    else:
        assert math.isnan(mean)


@PROPS
@given(spectra_case())
def test_wasserstein_zero_for_identical_spectra(case):
    """The Wasserstein distance of a spectrum to itself is 0 (NaN for an all-zero spectrum)."""
    t, _, grid = case
    d = wasserstein(t, t, grid)
    zero = t.sum(axis=1) == 0
    assert np.array_equal(np.isnan(d), zero)
    np.testing.assert_allclose(d[~zero], 0.0, atol=1e-12 * (grid[-1] - grid[0]))


@PROPS
@given(spectra_case(allow_zero_rows=False), st.data())
def test_wasserstein_invariant_to_positive_scaling(case, data):
    """Scaling each spectrum by its own positive factor leaves the Wasserstein distance unchanged."""
    t, p, grid = case
    factor = hnp.arrays(np.float64, (t.shape[0], 1), elements=st.floats(min_value=1e-3, max_value=1e3))
    ct, cp = data.draw(factor), data.draw(factor)
    np.testing.assert_allclose(
        wasserstein(ct * t, cp * p, grid), wasserstein(t, p, grid),
        rtol=1e-9, atol=1e-9 * (grid[-1] - grid[0]),
    )


@PROPS
@given(spectra_case(), st.data())
def test_wasserstein_and_spectra_metrics_invariant_to_crystal_order(case, data):
    """Permuting the crystals permutes the per-crystal distances and leaves the aggregates unchanged."""
    t, p, grid = case
    perm = np.array(data.draw(st.permutations(range(t.shape[0]))))
    d = wasserstein(t, p, grid)
    np.testing.assert_allclose(wasserstein(t[perm], p[perm], grid), d[perm], rtol=1e-12, atol=0.0)
    before, after = spectra_metrics(t, p, grid), spectra_metrics(t[perm], p[perm], grid)
    assert set(before) == set(after)
    for key in before:
        if math.isnan(before[key]):
            assert math.isnan(after[key]), key
        else:
            assert after[key] == pytest.approx(before[key], rel=1e-9, abs=1e-12), key


# Temperatures log-uniform over 1e-3 .. 1e5 K.
temperature = st.floats(min_value=-3.0, max_value=5.0).map(lambda e: 10.0**e)


@PROPS
@given(spectra_case(max_crystals=4), temperature)
def test_heat_capacity_between_zero_and_dulong_petit(case, temp):
    """C_V of any non-negative DOS is in [0, 3R] (NaN exactly for an all-zero DOS); the MAE is >= 0."""
    dos, other, grid = case
    cv = heat_capacity(dos, grid, temp)
    zero = dos.sum(axis=1) == 0
    assert np.array_equal(np.isnan(cv), zero)
    assert np.all(cv[~zero] >= 0.0)
    assert np.all(cv[~zero] <= DULONG_PETIT * (1 + 1e-12))
    mae = heat_capacity_mae(dos, other, grid, temp)
    assert math.isnan(mae) or 0.0 <= mae <= DULONG_PETIT * (1 + 1e-12)
    assert heat_capacity_mae(dos, dos, grid, temp) == 0.0 or zero.all()


@PROPS
@given(spectra_case(max_crystals=4, allow_zero_rows=False), temperature,
       st.floats(min_value=1e-3, max_value=1e3))
def test_heat_capacity_invariant_to_dos_normalisation(case, temp, factor):
    """C_V depends only on the shape of the DOS: scaling it by a positive constant leaves C_V unchanged."""
    dos, _, grid = case
    np.testing.assert_allclose(
        heat_capacity(factor * dos, grid, temp), heat_capacity(dos, grid, temp),
        rtol=1e-9, atol=1e-12 * DULONG_PETIT,
    )


@FIXED_BUG_PROPS
@example(temp=1e-160)
@given(temp=st.floats(min_value=5e-324, max_value=1e5))
def test_heat_capacity_bounded_for_every_documented_temperature(temp):
    """C_V is in [0, 3R] for every finite temperature > 0, as documented (not only physical ones)."""
    cv = heat_capacity([[0.0, 1.0, 0.5]], [0.0, 500.0, 1000.0], temp)
    assert 0.0 <= cv[0] <= DULONG_PETIT * (1 + 1e-12)


@st.composite
def invalid_spectra(draw):
    """A function, invalid arguments for it, and the substrings its ValueError message must contain."""
    t, p, grid = draw(spectra_case())
    kind = draw(st.sampled_from(["shape", "nonfinite", "negative", "grid", "empty"]))
    grid_funcs = [wasserstein, mean_wasserstein, heat_capacity_mae, spectra_metrics]
    if kind == "shape":
        func = draw(st.sampled_from([spectrum_mae, spectrum_mse, spectrum_rmse, spectrum_r2, *grid_funcs]))
        if t.shape[0] >= 2 and draw(st.booleans()):
            p = p[: draw(st.integers(1, t.shape[0] - 1))]  # fewer crystals (not none: that is "empty")
        else:
            p = p[:, :-1]  # fewer grid points
        return func, (t, p, grid), ["y_true and y_pred have different shapes", str(t.shape), str(p.shape)]
    if kind == "empty":
        func = draw(st.sampled_from([spectrum_mae, spectrum_mse, spectrum_rmse, spectrum_r2, *grid_funcs]))
        return func, (t[:0], p[:0], grid), ["y_true is empty"]
    if kind == "grid":
        func = draw(st.sampled_from(grid_funcs + [heat_capacity]))
        i = draw(st.integers(1, grid.size - 1))
        grid = grid.copy()
        grid[i] = grid[i - 1]  # not strictly increasing at i
        return func, (t, p, grid), [f"grid must be strictly increasing; grid[{i}]"]
    which = draw(st.sampled_from(["y_true", "y_pred"]))
    row, col = draw(st.integers(0, t.shape[0] - 1)), draw(st.integers(0, t.shape[1] - 1))
    arr = (t if which == "y_true" else p).copy()
    if kind == "nonfinite":
        func = draw(st.sampled_from([spectrum_mae, spectrum_mse, spectrum_rmse, spectrum_r2, *grid_funcs,
                                     heat_capacity]))
        arr[row, col] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        message = "contains 1 non-finite value(s)"
    else:
        func = draw(st.sampled_from([wasserstein, mean_wasserstein, heat_capacity_mae, heat_capacity]))
        arr[row, col] = -draw(st.floats(min_value=1e-6, max_value=1e3))
        message = "must be non-negative"
    if func is heat_capacity:
        which = "dos"
    t, p = (arr, p) if which in ("y_true", "dos") else (t, arr)
    return func, (t, p, grid), [f"{which} {message}", f"[{row}, {col}]"]


@PROPS
@given(invalid_spectra())
def test_spectra_invalid_input_raises_value_error_naming_argument(case):
    """Bad shapes, empty input, NaN/inf, negative values or a bad grid raise ValueError naming the argument."""
    func, (t, p, grid), expected = case
    with pytest.raises(ValueError) as info:
        if func is heat_capacity:
            func(t, grid)
        elif func in (spectrum_mae, spectrum_mse, spectrum_rmse, spectrum_r2):
            func(t, p)
        else:
            func(t, p, grid)
    assert info.type is ValueError
    for part in expected:
        assert part in str(info.value)


# ==========================================================================
# Generation (pure, array-only functions: coverage, EMD, success rates)
# ==========================================================================

fp_value = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(min_value=-5.0, max_value=5.0))
comp_value = st.one_of(fp_value, st.just(math.nan))  # raw Magpie fingerprints may contain NaN


@st.composite
def fingerprint_sets(draw):
    """Generated and reference structure/composition fingerprints (gs, gc, rs, rc) and a composition
    scaler (coverage's keyword arguments; CDVAE's own needs 132 Magpie features)."""
    d_s, d_c = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    n_gen, n_ref = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    gs = draw(hnp.arrays(np.float64, (n_gen, d_s), elements=fp_value))
    gc = draw(hnp.arrays(np.float64, (n_gen, d_c), elements=comp_value))
    rs = draw(hnp.arrays(np.float64, (n_ref, d_s), elements=fp_value))
    rc = draw(hnp.arrays(np.float64, (n_ref, d_c), elements=comp_value))
    scaler = {"composition_means": draw(hnp.arrays(np.float64, d_c, elements=fp_value)),
              "composition_stds": draw(hnp.arrays(np.float64, d_c, elements=st.floats(0.1, 10.0)))}
    return gs, gc, rs, rc, scaler


cutoff = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=10.0))


@PROPS
@given(fingerprint_sets(), cutoff, cutoff, cutoff, cutoff, st.integers(0, 5))
def test_coverage_in_unit_interval_and_monotone_in_cutoffs(fps, s1, s2, c1, c2, extra):
    """COV-R and COV-P are in [0, 1], non-decreasing in both cutoffs, and COV-P scales as 1/n_requested."""
    gs, gc, rs, rc, sc = fps
    (s_lo, s_hi), (c_lo, c_hi) = sorted((s1, s2)), sorted((c1, c2))
    lo, hi = coverage(gs, gc, rs, rc, s_lo, c_lo, **sc), coverage(gs, gc, rs, rc, s_hi, c_hi, **sc)
    for out in (lo, hi):
        assert set(out) == {"COV-R", "COV-P"}
        assert 0.0 <= out["COV-R"] <= 1.0 and 0.0 <= out["COV-P"] <= 1.0
    assert lo["COV-R"] <= hi["COV-R"] and lo["COV-P"] <= hi["COV-P"]
    n_gen = gs.shape[0]
    padded = coverage(gs, gc, rs, rc, s_lo, c_lo, n_requested=n_gen + extra, **sc)
    assert padded["COV-R"] == lo["COV-R"]
    assert padded["COV-P"] == pytest.approx(lo["COV-P"] * n_gen / (n_gen + extra), rel=1e-12)


@PROPS
@given(fingerprint_sets(), cutoff, cutoff, st.data())
def test_coverage_invariant_to_order_of_generated_crystals(fps, s_cut, c_cut, data):
    """COV-R and COV-P are unchanged when the generated crystals are permuted (same order in both arrays)."""
    gs, gc, rs, rc, sc = fps
    perm = np.array(data.draw(st.permutations(range(gs.shape[0]))))
    assert coverage(gs[perm], gc[perm], rs, rc, s_cut, c_cut, **sc) == coverage(gs, gc, rs, rc, s_cut, c_cut, **sc)


@PROPS
@given(fingerprint_sets())
def test_coverage_of_a_set_against_itself_is_one(fps):
    """A set of crystals fully covers itself (COV-R = COV-P = 1) even with zero cutoffs."""
    _, _, rs, rc, sc = fps
    assert coverage(rs, rc, rs, rc, 0.0, 0.0, **sc) == {"COV-R": 1.0, "COV-P": 1.0}


emd_values = hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(min_value=-1e3, max_value=1e3))


@PROPS
@given(emd_values, emd_values, st.floats(min_value=-1e3, max_value=1e3))
def test_emd_is_a_translation_invariant_distance(a, b, shift):
    """EMD is >= 0, symmetric, 0 for identical samples, equals |c| for a shift by c, and is shift-invariant."""
    d = emd(a, b)
    scale = 1.0 + max(np.abs(a).max(), np.abs(b).max(), abs(shift))
    atol = 1e-9 * scale
    assert d >= 0.0
    assert emd(b, a) == pytest.approx(d, abs=atol)
    assert emd(a, a) == pytest.approx(0.0, abs=atol)
    assert emd(a, a + shift) == pytest.approx(abs(shift), abs=atol)
    assert emd(a + shift, b + shift) == pytest.approx(d, abs=atol)


@PROPS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 10)),
                  elements=st.one_of(st.floats(-100, 100), st.just(math.nan))),
       hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-100, 100)))
def test_optimization_success_rates_are_ordered_fractions(values, reference):
    """SR5 <= SR10 <= SR15, each in [0, 1] (success at a higher percentile is easier)."""
    out = optimization_success_rates(values, reference)
    assert list(out) == ["SR5", "SR10", "SR15"]
    assert 0.0 <= out["SR5"] <= out["SR10"] <= out["SR15"] <= 1.0


# ==========================================================================
# runner.manifest: load_manifest never raises anything but ManifestError
# ==========================================================================

MODEL_SCHEMA = load_schema("model")
TOP_FIELDS = sorted(MODEL_SCHEMA["properties"])
REQUIRED_FIELDS = list(MODEL_SCHEMA["required"])
PAPER_FIELDS = sorted(MODEL_SCHEMA["properties"]["paper"]["properties"])
PAPER_REQUIRED = list(MODEL_SCHEMA["properties"]["paper"]["required"])
FOLDER = "mymodel"


def _write_and_load(name: str, content: bytes | str) -> tuple[Path, ModelManifest | ManifestError]:
    """Write ``<tmp>/<name>/model.yaml`` and load it; returns (resolved path, manifest or ManifestError).

    Any exception other than ManifestError propagates and fails the test.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        path = folder / "model.yaml"
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        try:
            return path.resolve(), load_manifest(folder)
        except ManifestError as exc:
            return path.resolve(), exc


def _has_only_string_keys(node) -> bool:
    if isinstance(node, dict):
        return all(isinstance(k, str) and _has_only_string_keys(v) for k, v in node.items())
    if isinstance(node, list):
        return all(_has_only_string_keys(v) for v in node)
    return True


def _check_outcome(path: Path, outcome, text: bytes | str) -> None:
    if isinstance(outcome, ManifestError):
        assert str(path) in str(outcome)
    else:
        assert isinstance(outcome, ModelManifest)
        assert outcome.data == yaml.safe_load(text)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
)
string_keys = st.one_of(st.sampled_from(TOP_FIELDS + PAPER_FIELDS), st.text(max_size=8))
yaml_trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(string_keys, children, max_size=6),
    max_leaves=25,
)
yaml_documents = st.one_of(yaml_trees, st.dictionaries(string_keys, yaml_trees, max_size=10))


@PROPS
@given(yaml_documents)
def test_manifest_random_documents_load_or_raise_manifest_error(document):
    """A random YAML document (string keys) either loads as a manifest or raises ManifestError naming the file."""
    text = yaml.safe_dump(document, sort_keys=False)
    path, outcome = _write_and_load(FOLDER, text)
    _check_outcome(path, outcome, text)


@PROPS
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_manifest_random_text_loads_or_raises_manifest_error(content):
    """Arbitrary text or bytes as model.yaml either load or raise ManifestError naming the file."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    try:
        parsed = yaml.safe_load(content)
    except Exception:  # load_manifest must turn this into ManifestError; checked below
        parsed = None
    assume(_has_only_string_keys(parsed))  # other keys: see test_manifest_with_non_string_keys_raises_manifest_error
    path, outcome = _write_and_load(FOLDER, content)
    if isinstance(outcome, ManifestError):
        assert str(path) in str(outcome)


# --- valid manifests and mutations of them ---------------------------------

names = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
modules = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,10}", fullmatch=True)
short_text = st.text(max_size=20)
hp_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), short_text,
    st.lists(st.one_of(st.integers(), short_text), max_size=3),
)
hp_names = st.text(min_size=1, max_size=10)


@st.composite
def valid_manifests(draw):
    """A document that satisfies model.schema.json, with bench keys declared in hyperparameters."""
    hyper = draw(st.dictionaries(hp_names, hp_values, max_size=5))
    doc = {
        "name": draw(names),
        "display_name": draw(st.text(min_size=1, max_size=20)),
        "paper": {
            "title": draw(short_text), "authors": draw(short_text), "venue": draw(short_text),
            "year": draw(st.integers(min_value=1900, max_value=3000)),
        },
        "licence": draw(short_text),
        "entry_point": f"{draw(modules)}:{draw(identifiers)}",
        "task_types": draw(st.lists(
            st.sampled_from(["regression", "classification", "generation", "spectra"]),
            min_size=1, max_size=4, unique=True)),
        "default_tasks": draw(st.lists(short_text, min_size=1, max_size=4, unique=True)),
        "hyperparameters": hyper,
    }
    if draw(st.booleans()):
        doc["paper"]["url"] = draw(short_text)
    if draw(st.booleans()):
        doc["description"] = draw(short_text)
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(sorted(hyper)), unique=True)) if hyper else []
        doc["bench_hyperparameters"] = {k: draw(hp_values) for k in keys}
    if draw(st.booleans()):
        doc["timeout_s"] = draw(st.one_of(st.integers(1, 10**6), st.floats(min_value=1e-3, max_value=1e6)))
    return doc


@PROPS
@given(valid_manifests())
def test_valid_manifest_round_trips(document):
    """A valid model.yaml loads; its data equals the YAML loaded, its sha256 is that of the file's bytes."""
    text = yaml.safe_dump(document, sort_keys=False)
    path, outcome = _write_and_load(document["name"], text)
    assert isinstance(outcome, ModelManifest), outcome
    assert outcome.data == yaml.safe_load(text) == document
    assert outcome.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert outcome.path == path and outcome.name == document["name"]
    effective, _ = outcome.hyperparameters("bench")
    assert effective == document["hyperparameters"] | document.get("bench_hyperparameters", {})


def _values_not_of(types: set[str]):
    """Values whose JSON type is none of ``types`` (JSON Schema rules: a bool is not a number)."""
    by_type = {
        "string": st.text(max_size=5),
        "integer": st.integers(),
        "number": st.floats(allow_nan=False).filter(lambda x: not float(x).is_integer()),
        "boolean": st.booleans(),
        "null": st.none(),
        "array": st.lists(st.integers(), max_size=2),
        "object": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    }
    if "number" in types:
        types = types | {"integer"}
    if "integer" in types:
        types = types | {"number"}  # 2.0 is an integer in JSON Schema; skip floats altogether
    return st.one_of(*(s for t, s in by_type.items() if t not in types))


def _json_types(schema: dict) -> set[str]:
    kind = schema.get("type", "array" if "items" in schema else None)
    return {kind} if isinstance(kind, str) else set(kind)


WRONG_TYPE = {field: _values_not_of(_json_types(MODEL_SCHEMA["properties"][field])) for field in TOP_FIELDS}
WRONG_TYPE.update({
    f"paper.{field}": _values_not_of(_json_types(MODEL_SCHEMA["properties"]["paper"]["properties"][field]))
    for field in PAPER_FIELDS
})


@st.composite
def mutated_manifests(draw):
    """A valid document with one mutation, and the field the error message must name."""
    doc = draw(valid_manifests())
    kind = draw(st.sampled_from(["drop", "retype", "unknown"]))
    if kind == "drop":
        field = draw(st.sampled_from(REQUIRED_FIELDS + [f"paper.{f}" for f in PAPER_REQUIRED]))
        if field.startswith("paper."):
            del doc["paper"][field[6:]]
        else:
            del doc[field]
    elif kind == "retype":
        field = draw(st.sampled_from(sorted(WRONG_TYPE)))
        value = draw(WRONG_TYPE[field])
        if field.startswith("paper."):
            doc["paper"][field[6:]] = value
        else:
            doc[field] = value
    else:
        where = draw(st.sampled_from(["top", "paper"]))
        known = TOP_FIELDS if where == "top" else PAPER_FIELDS
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in known))
        (doc if where == "top" else doc["paper"])[key] = draw(scalars)
        field = key if where == "top" else f"paper.{key}"
    return doc, field


@PROPS
@given(mutated_manifests())
def test_mutated_manifest_raises_manifest_error_naming_file_and_field(case):
    """Dropping a required field, mistyping a field or adding an unknown one gives ManifestError naming file and field."""
    document, field = case
    name = document.get("name")
    folder = name if isinstance(name, str) else FOLDER  # a string name is always a valid one here
    path, outcome = _write_and_load(folder, yaml.safe_dump(document, sort_keys=False))
    assert isinstance(outcome, ManifestError)
    assert str(path) in str(outcome)
    assert f"field '{field}'" in str(outcome)


@FIXED_BUG_PROPS
@example(document={1: 0, "zzz": 0})
@given(document=st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.text(max_size=4)),
                                yaml_trees, max_size=6))
def test_manifest_with_non_string_keys_raises_manifest_error(document):
    """A document with non-string keys (valid YAML) loads or raises ManifestError, never another exception."""
    text = yaml.safe_dump(document, sort_keys=False)
    path, outcome = _write_and_load(FOLDER, text)
    _check_outcome(path, outcome, text)


@pytest.mark.parametrize("where", ["hyperparameters", "bench_hyperparameters"])
@FIXED_BUG_PROPS
@example(key=1)
@given(key=st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False)))
def test_manifest_with_mixed_hyperparameter_keys_raises_manifest_error(where, key):
    """Mixed int/str keys in (bench_)hyperparameters give ManifestError naming the file, not TypeError."""
    document = {
        "name": FOLDER, "display_name": "x",
        "paper": {"title": "t", "authors": "a", "venue": "v", "year": 2020},
        "licence": "MIT", "entry_point": "m:C", "task_types": ["regression"], "default_tasks": ["t"],
        # hyperparameters: values of a forbidden type ({}), so the schema reports both keys
        "hyperparameters": {"a": {}, key: {}} if where == "hyperparameters" else {},
        "bench_hyperparameters": {key: 0, "a": 0} if where == "bench_hyperparameters" else {},
    }
    text = yaml.safe_dump(document, sort_keys=False)
    path, outcome = _write_and_load(FOLDER, text)
    assert isinstance(outcome, ManifestError)
    assert str(path) in str(outcome)


# --- hyperparameter_types: the declared ranges, checked before the adapter starts ------------------

@PROPS
@given(kind=st.sampled_from(["integer", "number"]), low=st.one_of(st.none(), st.integers(-50, 50)),
       high=st.one_of(st.none(), st.floats(-50, 50)), exclusive=st.booleans(), nullable=st.booleans(),
       value=st.one_of(st.integers(-100, 100), st.floats(), st.booleans(), st.text(max_size=3), st.none()))
def test_declared_ranges_accept_exactly_the_values_within_them(kind, low, high, exclusive, nullable, value):
    """A value passes ``check_hyperparameters`` iff it has the declared type (bools are not numbers,
    2.0 is not an integer, NaN and infinities are not numbers) and lies within the bounds; otherwise
    ManifestError names model.yaml and ``hyperparameters.<name>``."""
    declaration = {"type": kind, "nullable": nullable}
    if low is not None:
        declaration["exclusive_minimum" if exclusive else "minimum"] = low
    if high is not None:
        declaration["maximum"] = high
    path = Path("/models/mymodel/model.yaml")
    manifest = ModelManifest(folder=path.parent, path=path, data={"hyperparameter_types": {"x": declaration}},
                             sha256="")
    if value is None:
        fits = nullable
    else:
        fits = type(value) is int or (kind == "number" and type(value) is float and math.isfinite(value))
        fits = fits and (low is None or (value > low if exclusive else value >= low))
        fits = fits and (high is None or value <= high)
    if fits:
        manifest.check_hyperparameters({"x": value, "undeclared": object()})
    else:
        with pytest.raises(ManifestError) as info:
            manifest.check_hyperparameters({"x": value})
        assert str(path) in str(info.value) and "field 'hyperparameters.x': expected" in str(info.value)
