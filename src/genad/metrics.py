"""Evaluation metrics: thin wrappers over scikit-learn with anomaly-detection conventions.

Labels are 1 = anomaly, 0 = normal; scores are higher = more anomalous. When a metric is
undefined because only one class is present, it returns ``nan`` and warns: it never
returns a misleading 0.

For images, :func:`pixel_auroc`, :func:`pro_curve`, :func:`aupro` and
:func:`evaluate_maps` compare anomaly maps with ground-truth defect masks pixel by pixel
(MVTec AD conventions); the image-level metrics are :func:`auroc` and :func:`auprc` of
the image scores.
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
    "pixel_auroc",
    "pro_curve",
    "aupro",
    "evaluate_maps",
]


def _labels(y: Any) -> np.ndarray:
    return check_labels(y).astype(np.int64)


def _pair(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y)
    s = np.asarray(scores, dtype=float).ravel()
    if s.shape != y.shape:
        raise InvalidInputError(f"{y.size} labels but {s.size} scores")
    return y, s


def _one_class(y: np.ndarray, name: str, stacklevel: int = 3) -> bool:
    if np.unique(y).size < 2:
        warnings.warn(
            f"{name} is undefined with one class present (all labels are {int(y[0])}); "
            "returning nan",
            GenadWarning,
            stacklevel=stacklevel,
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


# --- pixel-level metrics of anomaly maps (images) --------------------------------------

#: 8-connectivity, as ``structure = np.ones((3, 3))`` in MVTec AD's reference evaluation code:
#: two defect pixels that touch only at a corner belong to the same region
_REGION_STRUCTURE = np.ones((3, 3), dtype=bool)


def _as_image_list(value: Any, what: str) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        images = [np.asarray(v) for v in value]
        for i, image in enumerate(images):
            if image.ndim != 2:
                raise InvalidInputError(
                    f"{what} {i} has shape {image.shape}; each one must be a 2-D (H, W) array"
                )
        return images
    arr = np.asarray(value)
    if arr.ndim != 3:
        raise InvalidInputError(
            f"{what}s must be an array (N, H, W) or a list of 2-D arrays; got shape {arr.shape}"
        )
    return list(arr)


def _check_maps(masks: Any, maps: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate ground-truth masks and anomaly maps; return them as bool and float64 lists."""
    mask_list = _as_image_list(masks, "mask")
    map_list = _as_image_list(maps, "map")
    if len(mask_list) != len(map_list):
        raise InvalidInputError(f"{len(mask_list)} masks but {len(map_list)} maps")
    if not mask_list:
        raise InvalidInputError("masks and maps are empty")
    out_masks, out_maps = [], []
    for i, (mask, amap) in enumerate(zip(mask_list, map_list, strict=True)):
        if mask.shape != amap.shape:
            raise InvalidInputError(
                f"image {i}: the mask has shape {mask.shape} but the map has shape {amap.shape}"
            )
        if mask.size == 0:
            raise InvalidInputError(f"image {i} is empty (shape {mask.shape})")
        if mask.dtype != bool:
            try:
                bad = (mask != 0) & (mask != 1)
            except TypeError:  # strings, objects
                bad = np.ones(mask.shape, dtype=bool)
            if np.any(bad):
                value = mask[tuple(np.argwhere(bad)[0])]
                value = value.item() if isinstance(value, np.generic) else value
                raise InvalidInputError(
                    f"mask {i} must hold 0 (normal) or 1 (anomaly), found {value!r}"
                    + (" (divide 0/255 masks by 255)" if value == 255 else "")
                )
            mask = mask != 0
        try:
            amap = amap.astype(np.float64, copy=False)
        except (TypeError, ValueError):
            raise InvalidInputError(f"map {i} is not numeric (dtype {amap.dtype})") from None
        if not np.all(np.isfinite(amap)):
            raise InvalidInputError(f"map {i} holds NaN or infinite values")
        out_masks.append(mask)
        out_maps.append(amap)
    return out_masks, out_maps


def _one_class_pixels(masks: list[np.ndarray], name: str, stacklevel: int = 4) -> bool:
    """:func:`_one_class` for pixels, without concatenating them."""
    n_defect = sum(int(np.count_nonzero(m)) for m in masks)
    n_total = sum(m.size for m in masks)
    if 0 < n_defect < n_total:
        return False
    return _one_class(np.array([int(n_defect > 0)]), name, stacklevel=stacklevel)


def pixel_auroc(masks: Any, maps: Any) -> float:
    """Area under the ROC curve over all pixels of all images.

    Every pixel is one sample: its ground truth from ``masks`` (1 = defect) and its score
    from ``maps`` (higher = more anomalous). Large defects therefore weigh more than small
    ones; :func:`aupro` weighs every defect region equally.

    Parameters
    ----------
    masks : array-like of shape (N, H, W), or list of N 2-D arrays
        Ground truth, 0 (normal) or 1 (defect), bool accepted. Images may differ in size
        when given as a list.
    maps : array-like of shape (N, H, W), or list of N 2-D arrays
        Anomaly maps, each of the same shape as its mask; finite floats.

    Returns
    -------
    float
        The pixel AUROC; ``nan`` (with a :class:`~genad.errors.GenadWarning`) when all
        pixels are normal or all are defects.

    Raises
    ------
    InvalidInputError
        When the counts differ, a mask and its map differ in shape (the message names the
        image and both shapes), a mask holds a value other than 0/1, or a map is not finite.

    Examples
    --------
    >>> masks = np.array([[[0, 0], [0, 1]]])
    >>> pixel_auroc(masks, np.array([[[0.1, 0.2], [0.3, 0.9]]]))
    1.0
    >>> pixel_auroc([np.zeros((2, 3)), np.ones((1, 1))],
    ...             [np.zeros((2, 3)), np.full((1, 1), 0.5)])
    1.0
    """
    return _pixel_auroc(*_check_maps(masks, maps))


#: positives ranked against the sorted normal pixels per step of :func:`_pixel_auroc`
_RANK_CHUNK = 1 << 20


def _pixel_auroc(mask_list: list[np.ndarray], map_list: list[np.ndarray]) -> float:
    """The Mann-Whitney form of the AUROC, ``P(defect > normal) + P(tie) / 2``: the same
    value as :func:`sklearn.metrics.roc_auc_score` on every pixel, in about 8 bytes a pixel
    beside the maps (scikit-learn's curve takes about ten times that, gigabytes for a few
    hundred megapixel-sized maps). The normal pixels' scores are sorted in place once, and
    the defect pixels are ranked against them by binary search in chunks."""
    # the warning points at the caller of pixel_auroc / evaluate_maps
    if _one_class_pixels(mask_list, "pixel AUROC", stacklevel=5):
        return float("nan")
    n_defect = [int(np.count_nonzero(m)) for m in mask_list]
    n_pos = sum(n_defect)
    n_neg = sum(m.size for m in mask_list) - n_pos
    neg, pos = np.empty(n_neg), np.empty(n_pos)
    i_neg = i_pos = 0
    for mask, amap, k in zip(mask_list, map_list, n_defect, strict=True):
        pos[i_pos:i_pos + k] = amap[mask]
        neg[i_neg:i_neg + mask.size - k] = amap[~mask]
        i_pos, i_neg = i_pos + k, i_neg + mask.size - k
    neg.sort()
    wins = 0.0  # normal pixels below each defect pixel, ties counted half
    for start in range(0, n_pos, _RANK_CHUNK):
        chunk = pos[start:start + _RANK_CHUNK]
        below = np.searchsorted(neg, chunk, side="left")
        not_above = np.searchsorted(neg, chunk, side="right")
        wins += float(below.sum()) + 0.5 * float((not_above - below).sum())
    return wins / (float(n_pos) * float(n_neg))


def _pro_curve(
    mask_list: list[np.ndarray], map_list: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact PRO curve, or None when there is no defect region or no normal pixel.

    Memory: every pixel's score and region weight, sorted by score (about 32 bytes a pixel
    at the peak, while the weights are reordered), then the curve's points.
    """
    from scipy import ndimage  # scipy comes with scikit-learn; imported only when used

    n_pixels = sum(m.size for m in mask_list)
    scores = np.empty(n_pixels)
    steps = np.empty(n_pixels)  # each defect pixel: 1 / (its region's size); normal: 0
    n_regions = n_normal = at = 0
    for mask, amap in zip(mask_list, map_list, strict=True):
        labelled, n = ndimage.label(mask, structure=_REGION_STRUCTURE)
        labelled = labelled.ravel()
        sizes = np.bincount(labelled, minlength=n + 1)
        weight = np.zeros(n + 1)
        weight[1:] = 1.0 / sizes[1:]
        steps[at:at + mask.size] = weight[labelled]
        scores[at:at + mask.size] = amap.ravel()
        at += mask.size
        n_regions += n
        n_normal += int(sizes[0])
    if n_regions == 0 or n_normal == 0:
        return None
    order = np.argsort(scores)[::-1]  # highest first; ties need no order: they enter together
    scores = scores[order]
    steps = steps[order]
    del order
    # one point per distinct threshold: the last of a run of equal scores
    last = np.empty(n_pixels, dtype=bool)
    np.not_equal(scores[1:], scores[:-1], out=last[:-1])
    last[-1] = True
    del scores
    fpr = np.cumsum(steps == 0)[last] / n_normal
    last_defect = n_pixels - 1 - int(np.argmax(steps[::-1] > 0))
    pro = np.cumsum(steps, out=steps)
    pro /= n_regions
    # the sum of fractions is off by rounding: once every defect pixel is in, PRO is 1
    pro[last_defect:] = 1.0
    fpr = np.concatenate(([0.0], fpr))
    pro = np.concatenate(([0.0], np.minimum(pro[last], 1.0)))
    return fpr, pro


def pro_curve(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap (PRO) curve of anomaly maps, at every distinct threshold.

    The defect regions are the connected components of each mask, with 8-connectivity
    (pixels touching at a corner are one region), as in MVTec AD's reference evaluation
    code (Bergmann et al., "Uninformed Students", CVPR 2020). At a threshold ``t`` a pixel
    is predicted anomalous when its score is ``>= t``; the PRO is the mean, over all regions
    of all images, of the fraction of the region predicted anomalous, and the false positive
    rate is the fraction of all normal pixels predicted anomalous.

    Parameters
    ----------
    masks, maps
        As for :func:`pixel_auroc`.

    Returns
    -------
    fpr, pro : ndarray
        The curve from ``(0, 0)`` to ``(1, 1)``, one point per distinct score (highest
        first), non-decreasing in both coordinates. Empty arrays, with a
        :class:`~genad.errors.GenadWarning`, when there is no defect region or no normal
        pixel.

    Examples
    --------
    >>> masks = np.array([[[1, 0, 1, 1, 0]]])          # two regions: 1 and 2 pixels
    >>> fpr, pro = pro_curve(masks, np.array([[[0.9, 0.5, 0.8, 0.2, 0.1]]]))
    >>> fpr.tolist()
    [0.0, 0.0, 0.0, 0.5, 0.5, 1.0]
    >>> pro.tolist()
    [0.0, 0.5, 0.75, 0.75, 1.0, 1.0]
    """
    mask_list, map_list = _check_maps(masks, maps)
    curve = None if _one_class_pixels(mask_list, "the PRO curve") else _pro_curve(
        mask_list, map_list
    )
    if curve is None:
        return np.empty(0), np.empty(0)
    return curve


def _area_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under ``(x, y)`` (x sorted) from ``x[0]`` to ``x_max``.

    When ``x_max`` falls between two points, ``y`` there is interpolated linearly between
    the last point with ``x <= x_max`` and the next one, as MVTec's reference code does.
    """
    i = int(np.searchsorted(x, x_max, side="right"))  # x[:i] <= x_max < x[i:]
    area = float(np.sum(0.5 * (y[1:i] + y[: i - 1]) * np.diff(x[:i])))
    if i < x.size and x[i - 1] < x_max:
        y_max = y[i - 1] + (y[i] - y[i - 1]) * (x_max - x[i - 1]) / (x[i] - x[i - 1])
        area += float(0.5 * (y[i - 1] + y_max) * (x_max - x[i - 1]))
    return area


def _check_fpr_limit(fpr_limit: float) -> float:
    value = float(fpr_limit)
    if not 0.0 < value <= 1.0:
        raise InvalidInputError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}")
    return value


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to a false positive rate (Bergmann et al., 2020).

    The per-region-overlap curve (:func:`pro_curve`) weighs every connected defect
    region equally, however small, unlike :func:`pixel_auroc` where a large defect
    dominates. Its area for false positive rates in ``[0, fpr_limit]`` is divided by
    ``fpr_limit``, so a perfect map scores 1 and a random one about ``fpr_limit / 2``.
    The curve is exact (every distinct score is a threshold, pixels of equal score enter
    together and the curve is linear between thresholds) and its value at ``fpr_limit``
    is interpolated linearly, as in MVTec AD's reference code; regions use
    8-connectivity, as there.

    Parameters
    ----------
    masks, maps
        As for :func:`pixel_auroc`.
    fpr_limit : float, default=0.3
        Upper end of the integration, in ``(0, 1]``; 0.3 is the MVTec AD convention.

    Returns
    -------
    float
        AUPRO in ``[0, 1]``; ``nan`` (with a :class:`~genad.errors.GenadWarning`) when no
        mask has a defect or no pixel is normal.

    Examples
    --------
    >>> masks = np.array([[[1, 0, 1, 1, 0]]])
    >>> aupro(masks, masks.astype(float))                # a perfect map
    1.0
    >>> aupro(masks, np.array([[[0.9, 0.5, 0.8, 0.2, 0.1]]]), fpr_limit=1.0)
    0.875
    """
    fpr_limit = _check_fpr_limit(fpr_limit)
    return _aupro(*_check_maps(masks, maps), fpr_limit)


def _aupro(
    mask_list: list[np.ndarray], map_list: list[np.ndarray], fpr_limit: float
) -> float:
    if _one_class_pixels(mask_list, "AUPRO", stacklevel=5):
        return float("nan")
    curve = _pro_curve(mask_list, map_list)
    assert curve is not None  # both classes present: a region and a normal pixel exist
    fpr, pro = curve
    return float(_area_to(fpr, pro, fpr_limit) / fpr_limit)


def evaluate_maps(masks: Any, maps: Any, fpr_limit: float = 0.3) -> dict[str, float]:
    """Pixel-level metrics of anomaly maps against ground-truth masks.

    Parameters
    ----------
    masks, maps
        As for :func:`pixel_auroc`.
    fpr_limit : float, default=0.3
        Passed to :func:`aupro`.

    Returns
    -------
    dict
        ``n_images``, ``n_pixels``, ``n_defect_pixels``, ``pixel_auroc`` and ``aupro``.

    Examples
    --------
    >>> masks = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    >>> evaluate_maps(masks, masks * 2.0)["aupro"]
    1.0
    """
    fpr_limit = _check_fpr_limit(fpr_limit)
    mask_list, map_list = _check_maps(masks, maps)
    return {
        "n_images": len(mask_list),
        "n_pixels": int(sum(m.size for m in mask_list)),
        "n_defect_pixels": int(sum(np.count_nonzero(m) for m in mask_list)),
        "pixel_auroc": _pixel_auroc(mask_list, map_list),
        "aupro": _aupro(mask_list, map_list, fpr_limit),
    }
