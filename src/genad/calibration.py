"""Thresholds and p-values from scores of held-out normal samples.

A sample is flagged when its score is strictly above the threshold. All functions
are pure numpy and work per group when a group key is given. Every score and p-value
must be a finite number: a NaN or inf raises :class:`~genad.errors.InvalidInputError`
naming its position (p-values must also lie in [0, 1]); nothing is skipped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from genad._params import RATE
from genad.data.labels import check_labels
from genad.errors import CalibrationWarning, InvalidInputError

__all__ = [
    "threshold_at_fpr",
    "threshold_at_contamination",
    "f1_optimal_threshold",
    "conformal_p_values",
    "bh_select",
    "grouped_thresholds",
]


def _as_floats(values: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be numbers: {exc}") from None


def _finite_scores(
    scores: Any, what: str = "calibration scores", *, allow_empty: bool = False
) -> np.ndarray:
    s = _as_floats(scores, what)
    if s.size == 0 and not allow_empty:
        raise InvalidInputError(f"{what} are empty")
    if not np.all(np.isfinite(s)):
        bad = int(np.argmin(np.isfinite(s)))
        value = "NaN" if np.isnan(s[bad]) else f"{s[bad]}"
        raise InvalidInputError(f"{what} contain {value} at position {bad}; every value must "
                                "be a finite number")
    return s


def _check_p_values(p_values: Any) -> np.ndarray:
    p = _finite_scores(p_values, "p_values", allow_empty=True)
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        bad = int(np.argmax(outside))
        raise InvalidInputError(
            f"p_values must lie in [0, 1]; position {bad} holds {p[bad]:g}"
        )
    return p


def check_rate(value: float, name: str) -> float:
    """``value`` as a float after checking it is a rate in the open interval (0, 1)."""
    RATE.check(name, value)
    return float(value)


def threshold_at_fpr(
    normal_scores: Any, target_fpr: float, *, strict: bool = True, stacklevel: int = 2
) -> float:
    """Smallest threshold whose false-positive rate on ``normal_scores`` is <= ``target_fpr``.

    Parameters
    ----------
    normal_scores : array-like
        Scores of held-out normal samples.
    target_fpr : float
        Wanted false-positive rate, in (0, 1).
    strict : bool, default True
        When ``target_fpr < 1 / n`` the rate cannot be estimated from ``n`` scores: raise
        :class:`InvalidInputError` if True, else warn and return the largest score
        (empirical false-positive rate 0).
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`, so the warning points at the caller's code.

    Returns
    -------
    float
        The threshold; samples scoring strictly above it are anomalies.

    Examples
    --------
    >>> threshold_at_fpr([1.0, 2.0, 3.0, 4.0], 0.25)
    3.0
    """
    s = _finite_scores(normal_scores)
    fpr = check_rate(target_fpr, "target_fpr")
    n = s.size
    if fpr < 1.0 / n:
        msg = (
            f"target_fpr={fpr:g} is below 1/n = {1.0 / n:.3g} for the {n} held-out normal "
            f"scores: it cannot be estimated; use target_fpr >= {1.0 / n:.3g} or more "
            "calibration data"
        )
        if strict:
            raise InvalidInputError(msg)
        warnings.warn(msg + "; using the largest calibration score", CalibrationWarning,
                      stacklevel=stacklevel)
        return float(s.max())
    s = np.sort(s)
    # allowed number of normal scores strictly above the threshold
    k = int(np.floor(fpr * n + 1e-9))
    return float(s[n - 1 - k])


def threshold_at_contamination(scores: Any, contamination: float) -> float:
    """Threshold that flags the top ``contamination`` fraction of ``scores``."""
    s = _finite_scores(scores, "scores")
    c = check_rate(contamination, "contamination")
    return float(np.quantile(s, 1.0 - c, method="higher" if s.size < 2 else "linear"))


def f1_optimal_threshold(scores: Any, y: Any) -> float:
    """Threshold maximising F1 on labelled scores (y: 1 = anomaly).

    With no anomaly in ``y`` F1 is undefined: warns and returns ``nan``.
    """
    s = _finite_scores(scores, "scores")
    y = check_labels(y, s.size, "labels").astype(int)
    if y.sum() == 0:
        warnings.warn("validation labels hold no anomaly: an F1-optimal threshold cannot be "
                      "set", CalibrationWarning, stacklevel=2)
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    # only cut between distinct scores
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    # flag scores >= s_sorted[i]: threshold halfway to the next lower distinct score
    below = s_sorted[i + 1] if i + 1 < s.size else s_sorted[i] - 1.0
    return float((s_sorted[i] + below) / 2.0)


def conformal_p_values(calibration_scores: Any, scores: Any) -> np.ndarray:
    """Split-conformal p-values: ``(1 + #{calibration >= s}) / (n + 1)``.

    Under the null (the sample is normal and exchangeable with the calibration normals)
    the p-value is super-uniform, so ``p <= alpha`` flags at most a fraction ``alpha``
    of normals in expectation.
    """
    cal = np.sort(_finite_scores(calibration_scores))
    s = _finite_scores(scores, "scores", allow_empty=True)
    n_ge = cal.size - np.searchsorted(cal, s, side="left")
    return (1.0 + n_ge) / (cal.size + 1.0)


def bh_select(p_values: Any, fdr: float = 0.1) -> np.ndarray:
    """Benjamini-Hochberg selection at false-discovery rate ``fdr``.

    Returns a boolean mask of the rejected nulls (the samples declared anomalies).

    Examples
    --------
    >>> bh_select([0.001, 0.2, 0.03, 0.9], fdr=0.1).tolist()
    [True, False, True, False]
    """
    p = _check_p_values(p_values)
    q = check_rate(fdr, "fdr")
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= q * np.arange(1, m + 1) / m
    mask = np.zeros(m, dtype=bool)
    if passed.any():
        k = int(np.max(np.flatnonzero(passed)))
        mask[order[: k + 1]] = True
    return mask


def grouped_thresholds(
    normal_scores: Any, groups: Sequence[Any], target_fpr: float, *, strict: bool = True
) -> dict[Any, float]:
    """One :func:`threshold_at_fpr` per group key (a machine, a series)."""
    s = _finite_scores(normal_scores, "normal_scores")
    g = np.asarray(groups).ravel()
    if g.shape != s.shape:
        raise InvalidInputError(f"{g.size} group keys but {s.size} scores")
    return {key: threshold_at_fpr(s[g == key], target_fpr, strict=strict) for key in np.unique(g)}
