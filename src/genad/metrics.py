"""Evaluation metrics: thin wrappers over scikit-learn with anomaly-detection conventions.

Labels are 1 = anomaly, 0 = normal; scores are higher = more anomalous. When a metric is
undefined because only one class is present, it returns ``nan`` and warns: it never
returns a misleading 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from genad.data.labels import check_labels
from genad.errors import GenadWarning, InvalidInputError

__all__ = [
    "auroc",
    "auprc",
    "precision_recall_f1",
    "precision_at_k",
    "evaluate_scores",
]


def _labels(y: Any) -> np.ndarray:
    return check_labels(y).astype(np.int64)


def _pair(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y)
    s = np.asarray(scores, dtype=float).ravel()
    if s.shape != y.shape:
        raise InvalidInputError(f"{y.size} labels but {s.size} scores")
    return y, s


def _one_class(y: np.ndarray, name: str) -> bool:
    if np.unique(y).size < 2:
        warnings.warn(
            f"{name} is undefined with one class present (all labels are {int(y[0])}); "
            "returning nan",
            GenadWarning,
            stacklevel=3,
        )
        return True
    return False


def auroc(y: Any, scores: Any) -> float:
    """Area under the ROC curve; ``nan`` (with a warning) when one class is present."""
    y, s = _pair(y, scores)
    if _one_class(y, "AUROC"):
        return float("nan")
    return float(roc_auc_score(y, s))


def auprc(y: Any, scores: Any) -> float:
    """Average precision (area under the precision-recall curve), anomaly = positive."""
    y, s = _pair(y, scores)
    if _one_class(y, "AUPRC"):
        return float("nan")
    return float(average_precision_score(y, s))


def precision_recall_f1(y: Any, predicted: Any) -> dict[str, float]:
    """Precision, recall and F1 of 0/1 predictions; a ratio with a zero denominator is nan."""
    y = _labels(y)
    p = _labels(predicted)
    if p.shape != y.shape:
        raise InvalidInputError(f"{y.size} labels but {p.size} predictions")
    tp = int(np.sum((p == 1) & (y == 1)))
    fp = int(np.sum((p == 1) & (y == 0)))
    fn = int(np.sum((p == 0) & (y == 1)))
    tn = int(np.sum((p == 0) & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    if np.isnan(precision) or np.isnan(recall) or precision + recall == 0:
        f1 = float("nan") if (np.isnan(precision) or np.isnan(recall)) else 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    fpr = fp / (fp + tn) if fp + tn else float("nan")
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_positive_rate": fpr,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def precision_at_k(y: Any, scores: Any, k: int | None = None) -> float:
    """Fraction of anomalies among the ``k`` highest scores (default k = number of anomalies)."""
    y, s = _pair(y, scores)
    if k is None:
        k = int(y.sum())
        if k == 0:
            warnings.warn("precision@k with no anomalies present; returning nan", GenadWarning,
                          stacklevel=2)
            return float("nan")
    if not 1 <= k <= y.size:
        raise InvalidInputError(f"k must be between 1 and {y.size}, got {k}")
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean())


def evaluate_scores(y: Any, scores: Any, threshold: float | None = None) -> dict[str, float]:
    """All ranking metrics, plus the threshold metrics when ``threshold`` is given."""
    y, s = _pair(y, scores)
    out: dict[str, float] = {
        "n": int(y.size),
        "n_anomalies": int(y.sum()),
        "auroc": auroc(y, s),
        "auprc": auprc(y, s),
    }
    if y.sum() > 0:
        out["precision_at_k"] = precision_at_k(y, s)
    if threshold is not None:
        out["threshold"] = float(threshold)
        out.update(precision_recall_f1(y, (s > threshold).astype(int)))
    return out
