"""Thresholds, conformal p-values and BH selection; Detector.calibrate without retraining."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import genad
from genad import calibration as cal
from genad.errors import CalibrationWarning, InvalidInputError


def _fpr(scores, threshold):
    return float(np.mean(np.asarray(scores) > threshold))


# --------------------------------------------------------------- threshold_at_fpr
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.01, 0.05, 0.1, 0.25, 0.5, 0.9])
def test_threshold_at_fpr_empirical_rate_at_most_target(seed, target):
    rng = np.random.default_rng(seed)
    # rounding creates ties, the hard case for a quantile threshold
    scores = np.round(rng.gamma(2.0, size=rng.integers(100, 400)), 1)
    t = cal.threshold_at_fpr(scores, target)
    assert _fpr(scores, t) <= target + 1e-12
    # and it is the smallest such threshold among the observed scores (brute force)
    n = scores.size
    ok = [c for c in np.unique(scores) if np.sum(scores > c) <= target * n + 1e-9]
    assert t == min(ok)


def test_threshold_at_fpr_docstring_example():
    assert cal.threshold_at_fpr([1.0, 2.0, 3.0, 4.0], 0.25) == 3.0
    assert cal.threshold_at_fpr([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5, float("nan"), "abc"])
def test_threshold_at_fpr_target_outside_open_interval_raises(target):
    with pytest.raises(InvalidInputError, match="target_fpr"):
        cal.threshold_at_fpr(np.arange(100.0), target)


def test_threshold_at_fpr_below_one_over_n_raises_when_strict():
    scores = np.arange(50.0)
    with pytest.raises(InvalidInputError, match="1/n"):
        cal.threshold_at_fpr(scores, 0.01)


def test_threshold_at_fpr_below_one_over_n_warns_and_uses_max_when_not_strict():
    scores = np.arange(50.0)
    with pytest.warns(CalibrationWarning, match="1/n"):
        t = cal.threshold_at_fpr(scores, 0.01, strict=False)
    assert t == 49.0
    assert _fpr(scores, t) == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [1.0, np.inf]])
def test_threshold_at_fpr_rejects_empty_or_non_finite_scores(bad):
    with pytest.raises(InvalidInputError, match="calibration scores"):
        cal.threshold_at_fpr(bad, 0.5)


# ------------------------------------------------------- contamination, grouped
@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.3])
def test_contamination_flags_that_fraction(rng, contamination):
    scores = rng.normal(size=1000)
    t = cal.threshold_at_contamination(scores, contamination)
    flagged = int(np.sum(scores > t))
    assert abs(flagged - contamination * 1000) <= 1


def test_contamination_outside_open_interval_raises():
    with pytest.raises(InvalidInputError, match="contamination"):
        cal.threshold_at_contamination([1.0, 2.0], 1.0)


def test_grouped_thresholds_are_per_group(rng):
    a, b = rng.normal(size=200), 10 + rng.normal(size=200)
    scores = np.r_[a, b]
    groups = np.r_[np.zeros(200, int), np.ones(200, int)]
    out = cal.grouped_thresholds(scores, groups, 0.05)
    assert set(out) == {0, 1}
    assert out[0] == cal.threshold_at_fpr(a, 0.05)
    assert out[1] == cal.threshold_at_fpr(b, 0.05)
    with pytest.raises(InvalidInputError, match="group keys"):
        cal.grouped_thresholds(scores, groups[:10], 0.05)


# --------------------------------------------------------------- F1-optimal
def test_f1_optimal_threshold_separates_a_separable_case(rng):
    normal = rng.uniform(0, 1, size=80)
    anomalous = rng.uniform(2, 3, size=20)
    scores = np.r_[normal, anomalous]
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    t = cal.f1_optimal_threshold(scores, y)
    assert normal.max() < t < anomalous.min()
    np.testing.assert_array_equal((scores > t).astype(int), y)


def _f1(y, pred):
    tp = np.sum((pred == 1) & (y == 1))
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize("seed", range(4))
def test_f1_optimal_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(150) < 0.2).astype(int)
    scores = np.round(rng.normal(size=150) + 1.2 * y, 1)  # overlapping, with ties
    t = cal.f1_optimal_threshold(scores, y)
    best = max(_f1(y, (scores >= c).astype(int)) for c in np.unique(scores))
    assert _f1(y, (scores > t).astype(int)) == pytest.approx(best)


def test_f1_optimal_threshold_emits_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        t = cal.f1_optimal_threshold([3.0, 2.0, 1.0], [0, 1, 0])
    assert 1.0 < t < 2.0  # flag {3, 2}: F1 = 2/3 is the best cut


def test_f1_optimal_threshold_without_anomalies_warns_and_returns_nan():
    with pytest.warns(CalibrationWarning, match="no anomaly"):
        t = cal.f1_optimal_threshold([0.1, 0.5, 0.9], [0, 0, 0])
    assert math.isnan(t)


def test_f1_optimal_threshold_rejects_labels_other_than_zero_one():
    with pytest.raises(InvalidInputError):
        cal.f1_optimal_threshold([0.1, 0.5, 0.9, 0.7], [0, 1, 2, 0])


# ------------------------------------------------------------ conformal + BH
@pytest.mark.parametrize("seed", range(3))
def test_conformal_p_values_formula_brute_force(seed):
    rng = np.random.default_rng(seed)
    calib = np.round(rng.normal(size=97), 1)  # ties on purpose
    scores = np.r_[np.round(rng.normal(size=50), 1), calib[:5], -100.0, 100.0]
    p = cal.conformal_p_values(calib, scores)
    n = calib.size
    expected = np.array([(1 + sum(1 for c in calib if c >= s)) / (n + 1) for s in scores])
    np.testing.assert_array_equal(p, expected)
    assert p.min() == 1 / (n + 1) and p.max() == 1.0


def test_conformal_p_values_are_super_uniform_under_the_null():
    rng = np.random.default_rng(0)
    calib, null = rng.normal(size=500), rng.normal(size=4000)
    p = cal.conformal_p_values(calib, null)
    for alpha in (0.05, 0.1, 0.2):
        assert np.mean(p <= alpha) <= alpha + 0.02


def _bh_brute_force(p, q):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    k = 0
    for rank in range(1, m + 1):
        if p[order[rank - 1]] <= q * rank / m:
            k = rank
    mask = np.zeros(m, bool)
    for i in order[:k]:
        mask[i] = True
    return mask


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("q", [0.05, 0.1, 0.3])
def test_bh_select_matches_brute_force(seed, q):
    rng = np.random.default_rng(seed)
    p = np.r_[rng.uniform(size=80), rng.uniform(0, 0.01, size=rng.integers(0, 20))]
    rng.shuffle(p)
    np.testing.assert_array_equal(cal.bh_select(p, q), _bh_brute_force(p, q))


def test_bh_select_docstring_example_and_edges():
    assert cal.bh_select([0.001, 0.2, 0.03, 0.9], fdr=0.1).tolist() == [True, False, True, False]
    assert cal.bh_select([], 0.1).shape == (0,)
    assert not cal.bh_select([0.5, 0.9], 0.1).any()
    with pytest.raises(InvalidInputError, match="fdr"):
        cal.bh_select([0.1], 0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bh_select_refuses_a_non_finite_p_value_naming_its_position(bad):
    with pytest.raises(InvalidInputError, match=r"p_values contain (NaN|inf) at position 2"):
        cal.bh_select([0.001, 0.2, bad, 0.03], fdr=0.1)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bh_select_refuses_p_values_outside_the_unit_interval(bad):
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]; position 1"):
        cal.bh_select([0.001, bad], fdr=0.1)


def test_conformal_p_values_refuse_a_nan_score_naming_its_position():
    with pytest.raises(InvalidInputError, match=r"scores contain NaN at position 1"):
        cal.conformal_p_values([1.0, 2.0, 3.0], [0.5, np.nan])
    assert cal.conformal_p_values([1.0, 2.0], []).shape == (0,)


def test_grouped_thresholds_refuse_a_nan_score_naming_its_position():
    with pytest.raises(InvalidInputError, match=r"contain NaN at position 3"):
        cal.grouped_thresholds([1.0, 2.0, 3.0, np.nan], ["a", "a", "b", "b"], 0.5)


# ------------------------------------------------------- Detector.calibrate
def _state(det):
    return {k: v.clone() for k, v in det.model_.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_calibrate_target_fpr_changes_threshold_without_retraining(fitted_copy, table):
    det = fitted_copy
    before_state, before_scores = _state(det), det.anomaly_score(table)
    before_cal = det.calibration_scores_.copy()
    old = det.threshold_
    assert det.calibrate(target_fpr=0.25) is det
    assert det.threshold_ != old
    assert det.threshold_ == cal.threshold_at_fpr(det.calibration_scores_, 0.25)
    assert _fpr(det.calibration_scores_, det.threshold_) <= 0.25
    assert det.threshold_method_ == "target_fpr" and det.threshold_setting_ == 0.25
    assert _same_state(before_state, _state(det))
    np.testing.assert_array_equal(det.calibration_scores_, before_cal)
    np.testing.assert_array_equal(det.anomaly_score(table), before_scores)


def test_calibrate_with_labelled_anomalies_sets_f1_optimal_threshold(fitted_copy, table,
                                                                     outlier_table):
    det = fitted_copy
    X = pd.concat([table.iloc[:100], outlier_table], ignore_index=True)
    y = np.r_[np.zeros(100, int), np.ones(len(outlier_table), int)]
    before = _state(det)
    det.calibrate(X, y)
    scores = det.anomaly_score(X)
    assert det.threshold_method_ == "f1_optimal"
    assert det.threshold_ == cal.f1_optimal_threshold(scores, y)
    best = max(_f1(y, (scores >= c).astype(int)) for c in np.unique(scores))
    assert _f1(y, det.predict(X)) == pytest.approx(best)
    assert _same_state(before, _state(det))


def test_calibrate_on_new_normals_replaces_the_calibration_set(fitted_copy, table):
    det = fitted_copy
    new = table.iloc[:200]
    det.calibrate(new, target_fpr=0.1)
    np.testing.assert_array_equal(det.calibration_scores_, det.anomaly_score(new))
    assert _fpr(det.anomaly_score(new), det.threshold_) <= 0.1
    # p-values now refer to the new calibration set
    p = det.p_value(new)
    s = det.anomaly_score(new)
    np.testing.assert_array_equal(p, cal.conformal_p_values(s, s))


def test_calibrate_contamination_flags_that_fraction_of_x(fitted_copy, table):
    det = fitted_copy
    det.calibrate(table, contamination=0.1)
    assert det.threshold_method_ == "contamination"
    assert abs(det.predict(table).sum() - 40) <= 1


def test_calibrate_rejects_both_rates_and_bad_rates(fitted_copy, table):
    det = fitted_copy
    with pytest.raises(InvalidInputError, match="not both"):
        det.calibrate(table, target_fpr=0.1, contamination=0.1)
    with pytest.raises(InvalidInputError, match="not both"):
        det.calibrate(target_fpr=0.1, contamination=0.1)
    for bad in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(InvalidInputError, match="target_fpr"):
            det.calibrate(target_fpr=bad)
    n = det.calibration_scores_.size
    with pytest.raises(InvalidInputError, match="1/n"):
        det.calibrate(target_fpr=0.5 / n)
    with pytest.raises(InvalidInputError, match="contamination needs data"):
        det.calibrate(contamination=0.1)


def test_calibrate_with_only_anomalies_and_target_fpr_raises(fitted_copy, outlier_table):
    with pytest.raises(InvalidInputError, match="no normal row"):
        fitted_copy.calibrate(outlier_table, np.ones(len(outlier_table)), target_fpr=0.2)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.01])
def test_target_fpr_outside_interval_in_constructor_fails_at_fit(make_detector, table, bad):
    det = make_detector("ae", target_fpr=bad)
    with pytest.raises(InvalidInputError, match="target_fpr"):
        det.fit(table)
    assert not hasattr(det, "threshold_")


def test_fit_with_too_few_calibration_rows_warns_and_uses_max(make_detector, table):
    det = make_detector("ae", target_fpr=0.001)  # 40 held-out rows: 1/n = 0.025
    with pytest.warns(CalibrationWarning, match="1/n"):
        det.fit(table)
    assert det.threshold_ == det.calibration_scores_.max()


def test_fit_threshold_is_at_target_fpr_on_held_out_normals(fitted):
    assert fitted.threshold_method_ == "target_fpr"
    assert fitted.threshold_ == cal.threshold_at_fpr(fitted.calibration_scores_,
                                                     fitted.target_fpr)
    assert _fpr(fitted.calibration_scores_, fitted.threshold_) <= fitted.target_fpr


def test_fit_with_contamination_flags_that_fraction_of_training_normals(make_detector, table):
    det = make_detector("ae", contamination=0.1).fit(table)
    assert det.threshold_method_ == "contamination"
    assert abs(np.mean(det.train_scores_ > det.threshold_) - 0.1) <= 1 / len(det.train_scores_)


def test_fit_with_labelled_validation_set_uses_f1_optimal(make_detector, table, outlier_table):
    X_val = pd.concat([table.iloc[300:], outlier_table], ignore_index=True)
    y_val = np.r_[np.zeros(100, int), np.ones(len(outlier_table), int)]
    det = make_detector("ae").fit(table.iloc[:300], X_val=X_val, y_val=y_val)
    assert det.threshold_method_ == "f1_optimal"
    # calibration scores are the normal validation rows only
    np.testing.assert_array_equal(det.calibration_scores_,
                                  det.anomaly_score(table.iloc[300:]).astype(np.float64))
    assert det.threshold_ == cal.f1_optimal_threshold(det.anomaly_score(X_val), y_val)


def test_fit_with_unlabelled_y_val_warns_and_falls_back_to_target_fpr(make_detector, table):
    with pytest.warns(CalibrationWarning, match="no anomaly"):
        det = make_detector("ae").fit(table.iloc[:300], X_val=table.iloc[300:],
                                      y_val=np.zeros(100, int))
    assert det.threshold_method_ == "target_fpr"


def test_no_warning_when_calibration_set_is_large_enough(make_detector, table):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        det = make_detector("ae", target_fpr=0.05).fit(table)
    assert isinstance(det, genad.AutoEncoder)


def test_fit_with_y_val_all_anomalies_says_so_before_encoding(make_detector, table,
                                                               monkeypatch):
    def no_encoding(*args, **kwargs):
        raise AssertionError("the training table was encoded before y_val was checked")

    monkeypatch.setattr(genad.data.tabular.TabularAdapter, "fit", no_encoding)
    with pytest.raises(InvalidInputError,
                       match=r"y_val labels every X_val row 1: no normal validation rows to "
                             r"calibrate on"):
        make_detector("ae").fit(table.iloc[:300], X_val=table.iloc[300:],
                                y_val=np.ones(100, int))


def test_fit_with_y_val_but_no_x_val_raises(make_detector, table):
    with pytest.raises(InvalidInputError, match="y_val was given without X_val"):
        make_detector("ae").fit(table, y_val=np.zeros(len(table), int))


def test_array_validation_set_for_an_array_fit_gives_no_feature_name_warning(
        make_detector, normal_array):
    y_val = np.r_[np.zeros(90, int), np.ones(10, int)]
    X_val = normal_array[:100].copy()
    X_val[90:] += 8.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "training stopped at the epoch cap")
        det = make_detector("ae").fit(normal_array[100:], X_val=X_val, y_val=y_val)
    assert det.threshold_method_ == "f1_optimal"
