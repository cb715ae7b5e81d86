"""Metrics follow the anomaly conventions (1 = anomaly, higher score = more anomalous)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from genad import metrics
from genad.errors import GenadWarning, InvalidInputError


@pytest.fixture
def labelled(rng):
    y = (rng.random(500) < 0.2).astype(int)
    scores = rng.normal(size=500) + 1.5 * y  # informative but not separable
    return y, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_auprc_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.1).astype(int)
    scores = rng.normal(size=300) + y
    assert metrics.auroc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert metrics.auprc(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_auroc_orientation_higher_score_is_anomaly():
    y = [0, 0, 0, 1, 1]
    assert metrics.auroc(y, [1, 2, 3, 4, 5]) == 1.0
    assert metrics.auroc(y, [5, 4, 3, 2, 1]) == 0.0


@pytest.mark.parametrize("fn", [metrics.auroc, metrics.auprc])
@pytest.mark.parametrize("only", [0, 1])
def test_one_class_present_gives_nan_and_warns_never_zero(fn, only):
    y = np.full(10, only)
    with pytest.warns(GenadWarning, match="one class"):
        value = fn(y, np.arange(10.0))
    assert math.isnan(value)


@pytest.mark.parametrize("bad", [[0, 1, 2, 0], ["a", "b", "a", "b"], [0, 1, -1, 0]])
def test_labels_must_be_zero_or_one(bad):
    with pytest.raises(InvalidInputError, match="0"):
        metrics.auroc(bad, [0.1, 0.2, 0.3, 0.4])


def test_length_mismatch_and_empty_labels_raise():
    with pytest.raises(InvalidInputError, match="3 labels but 2 scores"):
        metrics.auroc([0, 1, 0], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="empty"):
        metrics.auroc([], [])


def test_precision_recall_f1_counts_against_brute_force(rng):
    y = rng.integers(0, 2, size=200)
    pred = rng.integers(0, 2, size=200)
    out = metrics.precision_recall_f1(y, pred)
    tp = sum(1 for a, b in zip(y, pred, strict=True) if a == 1 and b == 1)
    fp = sum(1 for a, b in zip(y, pred, strict=True) if a == 0 and b == 1)
    fn = sum(1 for a, b in zip(y, pred, strict=True) if a == 1 and b == 0)
    tn = sum(1 for a, b in zip(y, pred, strict=True) if a == 0 and b == 0)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (tp, fp, fn, tn)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert out["precision"] == pytest.approx(precision)
    assert out["recall"] == pytest.approx(recall)
    assert out["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert out["false_positive_rate"] == pytest.approx(fp / (fp + tn))


def test_precision_recall_f1_zero_denominator_is_nan():
    out = metrics.precision_recall_f1([1, 0, 1], [0, 0, 0])  # nothing predicted
    assert math.isnan(out["precision"])
    assert out["recall"] == 0.0
    assert math.isnan(out["f1"])
    out = metrics.precision_recall_f1([0, 0], [1, 0])  # no anomaly present
    assert math.isnan(out["recall"])
    assert out["false_positive_rate"] == 0.5


def test_precision_recall_f1_rejects_non_binary_predictions():
    with pytest.raises(InvalidInputError):
        metrics.precision_recall_f1([0, 1], [0, 2])
    with pytest.raises(InvalidInputError, match="2 labels but 3 predictions"):
        metrics.precision_recall_f1([0, 1], [0, 1, 1])


def test_precision_at_k_against_brute_force(labelled):
    y, scores = labelled
    for k in (1, 5, 17, int(y.sum()), 500):
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        assert metrics.precision_at_k(y, scores, k) == pytest.approx(np.mean(y[top]))
    # default k = number of anomalies
    assert metrics.precision_at_k(y, scores) == metrics.precision_at_k(y, scores, int(y.sum()))


def test_precision_at_k_edge_cases():
    assert metrics.precision_at_k([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert metrics.precision_at_k([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2]) == 0.0
    with pytest.warns(GenadWarning):
        assert math.isnan(metrics.precision_at_k([0, 0, 0], [1.0, 2.0, 3.0]))
    for k in (0, 4):
        with pytest.raises(InvalidInputError, match="k must be"):
            metrics.precision_at_k([0, 1, 0], [1.0, 2.0, 3.0], k)


def test_evaluate_scores_combines_metrics(labelled):
    y, scores = labelled
    out = metrics.evaluate_scores(y, scores, threshold=1.0)
    assert out["n"] == 500
    assert out["n_anomalies"] == int(y.sum())
    assert out["auroc"] == pytest.approx(roc_auc_score(y, scores))
    assert out["auprc"] == pytest.approx(average_precision_score(y, scores))
    assert out["precision_at_k"] == metrics.precision_at_k(y, scores)
    assert out["threshold"] == 1.0
    expected = metrics.precision_recall_f1(y, (scores > 1.0).astype(int))
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, nan_ok=True)
    assert "threshold" not in metrics.evaluate_scores(y, scores)
