"""Unit tests for metrics.classification, against values derived by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from metrics import (
    accuracy,
    classification_details,
    classification_metrics,
    f1,
    precision,
    recall,
    roc_auc,
    roc_curve_points,
)

ALL_FUNCS = [
    roc_curve_points,
    roc_auc,
    accuracy,
    precision,
    recall,
    f1,
    classification_metrics,
    classification_details,
]
THRESHOLD_FUNCS = [accuracy, precision, recall, f1, classification_metrics, classification_details]


def _pair_count_auc(y, s):
    """Reference AUC: fraction of (positive, negative) pairs ranked correctly, ties 1/2."""
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    won = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return won / (len(pos) * len(neg))


# --------------------------------------------------------------------------
# Hand-worked 4-sample example
# --------------------------------------------------------------------------
#
#   index    0     1     2     3
#   y_true   0     0     1     1
#   score   0.1   0.4   0.35  0.8
#
# threshold 0.5 -> predicted [0, 0, 0, 1]
#   idx0 TN, idx1 TN, idx2 FN, idx3 TP  =>  TN=2, FP=0, FN=1, TP=1
#   Accuracy  = (TP+TN)/4      = 3/4
#   Precision = TP/(TP+FP)     = 1/1 = 1.0
#   Recall    = TP/(TP+FN)     = 1/2
#   F1        = 2TP/(2TP+FP+FN) = 2/3
#
# ROC-AUC by counting (positive, negative) pairs, positive scored higher:
#   (0.35, 0.1) yes   (0.35, 0.4) no   (0.8, 0.1) yes   (0.8, 0.4) yes
#   => 3 / 4 = 0.75
Y4 = [0, 0, 1, 1]
S4 = [0.1, 0.4, 0.35, 0.8]


def test_hand_example_default_threshold():
    assert accuracy(Y4, S4) == pytest.approx(0.75)
    assert precision(Y4, S4) == pytest.approx(1.0)
    assert recall(Y4, S4) == pytest.approx(0.5)
    assert f1(Y4, S4) == pytest.approx(2 / 3)
    assert roc_auc(Y4, S4) == pytest.approx(0.75)
    assert roc_auc(Y4, S4) == pytest.approx(_pair_count_auc(Y4, S4))


def test_hand_example_lower_threshold():
    # threshold 0.3 -> predicted [0, 1, 1, 1]: TN=1 (idx0), FP=1 (idx1), TP=2, FN=0
    #   Accuracy = 3/4, Precision = 2/3, Recall = 2/2 = 1, F1 = 4/(4+1+0) = 0.8
    assert accuracy(Y4, S4, threshold=0.3) == pytest.approx(0.75)
    assert precision(Y4, S4, threshold=0.3) == pytest.approx(2 / 3)
    assert recall(Y4, S4, threshold=0.3) == pytest.approx(1.0)
    assert f1(Y4, S4, threshold=0.3) == pytest.approx(0.8)
    cm = classification_details(Y4, S4, threshold=0.3)["confusion_matrix"]
    assert cm == {"tn": 1, "fp": 1, "fn": 0, "tp": 2}


def test_score_equal_to_threshold_is_positive():
    # threshold 0.8: idx3 has score exactly 0.8 -> predicted positive (>=), so TP=1.
    # With a strict '>' rule TP would be 0 and precision undefined.
    assert classification_details(Y4, S4, threshold=0.8)["confusion_matrix"]["tp"] == 1
    assert precision(Y4, S4, threshold=0.8) == 1.0
    # threshold 0.35: idx2 (0.35) and idx1 (0.4) and idx3 positive -> same as threshold 0.3
    assert recall(Y4, S4, threshold=0.35) == 1.0


def test_classification_metrics_dict():
    out = classification_metrics(Y4, S4)
    assert list(out) == ["ROC-AUC", "Accuracy", "Precision", "Recall", "F1"]
    assert all(type(v) is float for v in out.values())
    assert out == pytest.approx(
        {"ROC-AUC": 0.75, "Accuracy": 0.75, "Precision": 1.0, "Recall": 0.5, "F1": 2 / 3}
    )


def test_classification_details():
    d = classification_details(Y4, S4)
    assert set(d) == {"threshold", "roc_curve", "confusion_matrix", "n_positive", "n_negative"}
    assert d["threshold"] == 0.5 and type(d["threshold"]) is float
    assert d["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 1, "tp": 1}
    assert all(type(v) is int for v in d["confusion_matrix"].values())
    assert d["n_positive"] == 2 and d["n_negative"] == 2
    assert type(d["n_positive"]) is int and type(d["n_negative"]) is int
    assert d["roc_curve"] == roc_curve_points(Y4, S4)
    json.dumps(d, allow_nan=False)


def test_auc_ties_count_half():
    # y = [0, 0, 1, 1], s = [0.2, 0.6, 0.6, 0.9]
    # pairs: (0.6,0.2)=1  (0.6,0.6)=1/2  (0.9,0.2)=1  (0.9,0.6)=1  -> 3.5/4 = 0.875
    assert roc_auc([0, 0, 1, 1], [0.2, 0.6, 0.6, 0.9]) == pytest.approx(0.875)
    # all scores equal -> every pair a tie -> 0.5
    assert roc_auc([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.5)


def test_auc_perfect_and_inverted():
    assert roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.9]) == 0.0


def test_accepts_bool_and_float_labels():
    assert roc_auc(np.array([False, False, True, True]), S4) == pytest.approx(0.75)
    assert accuracy([0.0, 0.0, 1.0, 1.0], np.array(S4, dtype=np.float32)) == pytest.approx(0.75)


# --------------------------------------------------------------------------
# ROC curve points
# --------------------------------------------------------------------------


def test_roc_curve_points_hand_example():
    # Sweep the threshold down through the distinct scores (predict positive if s >= t),
    # 2 positives and 2 negatives:
    #   t > 0.8 : nothing positive                     -> (fpr, tpr) = (0,   0)
    #   t = 0.8 : idx3 (pos)                           -> (0,   1/2)
    #   t = 0.4 : + idx1 (neg)                         -> (1/2, 1/2)
    #   t = 0.35: + idx2 (pos)                         -> (1/2, 1)
    #   t = 0.1 : + idx0 (neg)                         -> (1,   1)
    pts = roc_curve_points(Y4, S4)
    assert set(pts) == {"fpr", "tpr", "thresholds"}
    assert pts["fpr"] == pytest.approx([0.0, 0.0, 0.5, 0.5, 1.0])
    assert pts["tpr"] == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    assert pts["thresholds"][1:] == pytest.approx([0.8, 0.4, 0.35, 0.1])
    # sklearn's leading +inf is replaced by the next float above max(scores)
    assert pts["thresholds"][0] == np.nextafter(0.8, np.inf)
    assert all(type(v) is float for key in pts for v in pts[key])
    json.dumps(pts, allow_nan=False)  # raises on inf/NaN


def test_roc_curve_points_consistent_with_threshold_rule():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    s = np.array([0.05, 0.9, 0.6, 0.6, 1.0, 0.3, 0.75, 0.2, 0.6, 0.0])
    pts = roc_curve_points(y, s)
    assert pts["thresholds"][0] > 1.0 and math.isfinite(pts["thresholds"][0])
    for fpr, tpr, t in zip(pts["fpr"], pts["tpr"], pts["thresholds"]):
        pred = s >= t
        assert tpr == pytest.approx(pred[y == 1].mean())
        assert fpr == pytest.approx(pred[y == 0].mean())
    assert pts["thresholds"] == sorted(pts["thresholds"], reverse=True)


# --------------------------------------------------------------------------
# Degenerate but valid data: NaN, never a silent 0
# --------------------------------------------------------------------------


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_only(label):
    y = [label] * 3
    s = [0.2, 0.7, 0.9]
    assert math.isnan(roc_auc(y, s))
    with pytest.raises(ValueError, match=rf"y_true contains only one class \({label}\)"):
        roc_curve_points(y, s)
    d = classification_details(y, s)
    assert d["roc_curve"] is None
    assert d["n_positive"] == 3 * label and d["n_negative"] == 3 * (1 - label)
    json.dumps(d, allow_nan=False)


def test_one_class_positive_other_metrics_still_reported():
    # y = [1, 1, 1], s = [0.2, 0.7, 0.9], threshold 0.5 -> predicted [0, 1, 1]
    #   TP=2, FN=1, FP=0, TN=0: Accuracy 2/3, Precision 2/2 = 1, Recall 2/3,
    #   F1 = 4/(4+0+1) = 0.8; ROC-AUC undefined -> NaN
    out = classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert math.isnan(out["ROC-AUC"])
    assert out["Accuracy"] == pytest.approx(2 / 3)
    assert out["Precision"] == pytest.approx(1.0)
    assert out["Recall"] == pytest.approx(2 / 3)
    assert out["F1"] == pytest.approx(0.8)
    cm = classification_details([1, 1, 1], [0.2, 0.7, 0.9])["confusion_matrix"]
    assert cm == {"tn": 0, "fp": 0, "fn": 1, "tp": 2}


def test_no_predicted_positives():
    # y = [0, 1, 0, 1], all scores < 0.5 -> predicted all 0
    #   TP=0, FP=0, FN=2, TN=2
    #   Precision = 0/0 -> NaN; Recall = 0/2 = 0; F1 = 0/(0+0+2) = 0 (well defined);
    #   Accuracy = 2/4
    y, s = [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]
    assert math.isnan(precision(y, s))
    assert recall(y, s) == 0.0
    assert f1(y, s) == 0.0
    assert accuracy(y, s) == 0.5
    # Same data, threshold above every score.
    assert math.isnan(precision(Y4, S4, threshold=0.9))


def test_no_actual_positives_but_predicted_positive():
    # y = [0, 0], s = [0.1, 0.9] -> predicted [0, 1]: TN=1, FP=1, TP=0, FN=0
    #   Recall = 0/0 -> NaN; Precision = 0/1 = 0; F1 = 0/(0+1+0) = 0; Accuracy 1/2
    y, s = [0, 0], [0.1, 0.9]
    assert math.isnan(recall(y, s))
    assert precision(y, s) == 0.0
    assert f1(y, s) == 0.0
    assert accuracy(y, s) == 0.5


def test_no_positives_anywhere_f1_nan():
    # y = [0, 0], s = [0.1, 0.2] -> predicted [0, 0]: TN=2, TP=FP=FN=0
    #   Precision 0/0, Recall 0/0, F1 0/0 -> all NaN; Accuracy 2/2 = 1; AUC NaN (one class)
    out = classification_metrics([0, 0], [0.1, 0.2])
    assert out["Accuracy"] == 1.0
    for key in ("ROC-AUC", "Precision", "Recall", "F1"):
        assert math.isnan(out[key]), key


def test_precision_and_recall_both_zero():
    # y = [1, 0], s = [0.2, 0.8] -> predicted [0, 1]: TP=0, FP=1, FN=1, TN=0
    #   Precision 0/1 = 0, Recall 0/1 = 0, F1 = 0/(0+1+1) = 0, Accuracy 0
    out = classification_metrics([1, 0], [0.2, 0.8])
    assert out == {"ROC-AUC": 0.0, "Accuracy": 0.0, "Precision": 0.0, "Recall": 0.0, "F1": 0.0}


# --------------------------------------------------------------------------
# Invalid input: ValueError naming the argument
# --------------------------------------------------------------------------


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_length_mismatch(func):
    with pytest.raises(ValueError, match=r"len\(y_true\)=4, len\(scores\)=3"):
        func(Y4, S4[:3])


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_empty(func):
    with pytest.raises(ValueError, match="y_true and scores are empty"):
        func([], [])


@pytest.mark.parametrize("func", ALL_FUNCS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_scores(func, bad):
    with pytest.raises(ValueError, match=r"scores contains 1 non-finite value.*index 2"):
        func(Y4, [0.1, 0.4, bad, 0.8])


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_nan_labels(func):
    with pytest.raises(ValueError, match=r"y_true contains 1 non-finite"):
        func([0, math.nan, 1, 1], S4)


@pytest.mark.parametrize("func", ALL_FUNCS)
@pytest.mark.parametrize(
    "labels, found, invalid",
    [
        ([-1, -1, 1, 1], r"\[-1, 1\]", r"\[-1\]"),
        ([0, 1, 2, 1], r"\[0, 1, 2\]", r"\[2\]"),
        ([0, 0.5, 1, 1], r"\[0, 0.5, 1\]", r"\[0.5\]"),
    ],
)
def test_labels_not_binary(func, labels, found, invalid):
    msg = rf"y_true must contain only .* 0 and 1.*found label values {found}, of which {invalid}"
    with pytest.raises(ValueError, match=msg):
        func(labels, S4)


@pytest.mark.parametrize("func", ALL_FUNCS)
@pytest.mark.parametrize(
    "scores, lo, hi",
    [([0.1, 0.4, 1.2, 0.8], "0.1", "1.2"), ([-0.5, 0.4, 0.35, 0.8], "-0.5", "0.8")],
)
def test_scores_outside_unit_interval(func, scores, lo, hi):
    msg = rf"scores must be .* within \[0, 1\]; found values in \[{lo}, {hi}\], 1 of them"
    with pytest.raises(ValueError, match=msg):
        func(Y4, scores)


def test_predict_proba_matrix_hint():
    proba = np.column_stack([1 - np.array(S4), S4])
    with pytest.raises(ValueError, match=r"scores must be 1-D.*shape \(4, 2\).*proba\[:, 1\]"):
        roc_auc(Y4, proba)


def test_wrong_ndim_labels():
    with pytest.raises(ValueError, match=r"y_true must be 1-D.*\(4, 1\).*ravel"):
        accuracy(np.array(Y4).reshape(-1, 1), S4)


@pytest.mark.parametrize("func", THRESHOLD_FUNCS)
@pytest.mark.parametrize("threshold", [math.nan, math.inf])
def test_nonfinite_threshold(func, threshold):
    with pytest.raises(ValueError, match="threshold must be finite"):
        func(Y4, S4, threshold=threshold)


@pytest.mark.parametrize("threshold", ["0.5", None, True])
def test_non_numeric_threshold(threshold):
    with pytest.raises(ValueError, match="threshold must be a real number"):
        f1(Y4, S4, threshold=threshold)


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------

# hypothesis is an optional test dependency; without it these tests are not collected.
try:
    from hypothesis import assume, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    # Mix arbitrary probabilities with a few repeated values so ties are common.
    prob = st.one_of(
        st.floats(min_value=0.0, max_value=1.0), st.sampled_from([0.0, 0.25, 0.5, 1.0])
    )

    @st.composite
    def labelled_scores(draw):
        n = draw(st.integers(min_value=1, max_value=30))
        y = draw(st.lists(st.integers(min_value=0, max_value=1), min_size=n, max_size=n))
        s = draw(st.lists(prob, min_size=n, max_size=n))
        return np.array(y), np.array(s)

    @settings(max_examples=200, deadline=None, database=None)
    @given(labelled_scores())
    def test_auc_bounds_and_label_flip(data):
        y, s = data
        assume(0 < y.sum() < y.size)
        auc = roc_auc(y, s)
        assert 0.0 <= auc <= 1.0
        assert auc == pytest.approx(_pair_count_auc(y, s), abs=1e-12)
        assert roc_auc(1 - y, s) == pytest.approx(1.0 - auc, abs=1e-12)
        # Reversing the scores reverses the ranking. 1 - s is exact only on a dyadic grid
        # (e.g. 1 - 1e-100 rounds to 1.0 and creates a tie), so test it there.
        g = np.round(s * 64) / 64
        assert roc_auc(y, 1.0 - g) == pytest.approx(1.0 - roc_auc(y, g), abs=1e-12)

    @settings(max_examples=200, deadline=None, database=None)
    @given(labelled_scores(), prob)
    def test_confusion_matrix_consistent(data, threshold):
        y, s = data
        d = classification_details(y, s, threshold)
        cm = d["confusion_matrix"]
        assert sum(cm.values()) == y.size
        assert cm["tp"] + cm["fn"] == d["n_positive"] == int(y.sum())
        assert cm["tn"] + cm["fp"] == d["n_negative"]
        assert cm["tp"] + cm["fp"] == int((s >= threshold).sum())
        out = classification_metrics(y, s, threshold)
        assert out["Accuracy"] == pytest.approx((cm["tp"] + cm["tn"]) / y.size)
        assert math.isnan(out["ROC-AUC"]) == (d["roc_curve"] is None)
        json.dumps(d, allow_nan=False)
