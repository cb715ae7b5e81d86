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


# --- pixel metrics of anomaly maps ------------------------------------------------------

def _brute_force_aupro(masks, maps, fpr_limit):
    """PRO curve threshold by threshold with explicit region masks, then a segment walk."""
    from scipy import ndimage

    regions, normals = [], []
    for mask in masks:
        labelled, n = ndimage.label(mask, structure=[[1, 1, 1], [1, 1, 1], [1, 1, 1]])
        regions.append([labelled == k for k in range(1, n + 1)])
        normals.append(labelled == 0)
    n_normal = sum(int(m.sum()) for m in normals)
    n_regions = sum(len(r) for r in regions)
    points = [(0.0, 0.0)]
    for t in sorted({float(v) for m in maps for v in np.ravel(m)}, reverse=True):
        predicted = [np.asarray(m) >= t for m in maps]
        fp = sum(int((p & n).sum()) for p, n in zip(predicted, normals, strict=True))
        overlap = sum((p & r).sum() / r.sum()
                      for p, rs in zip(predicted, regions, strict=True) for r in rs)
        points.append((fp / n_normal, overlap / n_regions))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        if x1 <= fpr_limit:
            area += (x1 - x0) * (y0 + y1) / 2
        elif x0 < fpr_limit:
            y_limit = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            area += (fpr_limit - x0) * (y0 + y_limit) / 2
    return area / fpr_limit, points


def _blobs(rng, shape, n_blobs):
    mask = np.zeros(shape, dtype=int)
    for _ in range(n_blobs):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[r:r + rng.integers(1, 4), c:c + rng.integers(1, 4)] = 1
    return mask


#: one row of 13 pixels: region A (1 pixel), region B (2 pixels), 10 normal pixels
_ROW_MASK = np.array([[[1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]])


def test_perfect_and_inverted_maps():
    rng = np.random.default_rng(0)
    masks = np.stack([_blobs(rng, (10, 12), 3) for _ in range(4)] + [np.zeros((10, 12), int)])
    assert metrics.pixel_auroc(masks, masks * 3.0) == 1.0
    assert metrics.aupro(masks, masks * 3.0) == 1.0
    assert metrics.pixel_auroc(masks, 1.0 - masks) == 0.0
    assert metrics.aupro(masks, 1.0 - masks) == 0.0
    # a constant map has one threshold: the curve is the straight line (0, 0) -> (1, 1)
    assert metrics.aupro(masks, np.zeros(masks.shape)) == pytest.approx(0.15)
    assert metrics.pixel_auroc(masks, np.zeros(masks.shape)) == 0.5


def test_pro_curve_of_two_regions_by_hand():
    # A = 0.9; a normal 0.85; B = 0.8 and 0.3; a normal 0.5; the 8 other normals 0
    scores = np.array([[[0.9, 0.85, 0.8, 0.3, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]]])
    fpr, pro = metrics.pro_curve(_ROW_MASK, scores)
    assert fpr.tolist() == pytest.approx([0, 0, 0.1, 0.1, 0.2, 0.2, 1.0])
    assert pro.tolist() == pytest.approx([0, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0])
    # area to 0.3 = 0.1 * 0.5 + 0.1 * 0.75 + 0.1 * 1
    assert metrics.aupro(_ROW_MASK, scores) == pytest.approx(0.225 / 0.3)
    # to 0.15, half-way along the flat PRO = 0.75 step
    assert metrics.aupro(_ROW_MASK, scores, fpr_limit=0.15) == pytest.approx(
        (0.05 + 0.05 * 0.75) / 0.15)
    assert metrics.aupro(_ROW_MASK, scores, fpr_limit=1.0) == pytest.approx(
        0.05 + 0.075 + 0.8)


def test_aupro_interpolates_a_sloped_segment_at_the_fpr_limit():
    # B's second pixel ties with a normal at 0.5: the curve goes straight (0.1, 0.75) -> (0.2, 1)
    scores = np.array([[[0.9, 0.85, 0.8, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]]])
    fpr, pro = metrics.pro_curve(_ROW_MASK, scores)
    assert fpr.tolist() == pytest.approx([0, 0, 0.1, 0.1, 0.2, 1.0])
    assert pro.tolist() == pytest.approx([0, 0.5, 0.5, 0.75, 1.0, 1.0])
    # PRO at 0.15 interpolates to 0.875
    expected = (0.1 * 0.5 + 0.05 * (0.75 + 0.875) / 2) / 0.15
    assert metrics.aupro(_ROW_MASK, scores, fpr_limit=0.15) == pytest.approx(expected)
    # exactly at a curve point: no interpolation
    assert metrics.aupro(_ROW_MASK, scores, fpr_limit=0.2) == pytest.approx(
        (0.05 + 0.1 * 0.875) / 0.2)


def test_regions_use_eight_connectivity():
    # the diagonal pair is one region of 3 pixels (two regions, 1 and 2 pixels, with 4-conn.)
    mask = np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]]])
    scores = np.where(mask == 1, 0.0, 0.5)
    scores[0, 0, 0] = 1.0
    assert metrics.aupro(mask, scores, fpr_limit=1.0) == pytest.approx(1 / 3)  # not 1/2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fpr_limit", [0.05, 0.3, 1.0])
def test_aupro_matches_brute_force(seed, fpr_limit):
    rng = np.random.default_rng(seed)
    masks = [_blobs(rng, (9, 11), 3), _blobs(rng, (7, 6), 2), np.zeros((8, 8), int),
             _blobs(rng, (12, 5), 4)]
    # rounded scores make ties, within and across images and classes
    maps = [np.round(rng.random(m.shape) + 0.4 * m, 1) for m in masks]
    expected, points = _brute_force_aupro(masks, maps, fpr_limit)
    assert metrics.aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(expected, abs=1e-12)
    fpr, pro = metrics.pro_curve(masks, maps)
    assert np.column_stack([fpr, pro]) == pytest.approx(np.array(points), abs=1e-12)


def test_pixel_auroc_pools_differently_sized_images():
    rng = np.random.default_rng(3)
    masks = [_blobs(rng, (6, 9), 2), _blobs(rng, (4, 4), 1), np.zeros((5, 7), int)]
    maps = [rng.normal(size=m.shape) + m for m in masks]
    y = np.concatenate([m.ravel() for m in masks])
    s = np.concatenate([m.ravel() for m in maps])
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    out = metrics.evaluate_maps(masks, maps, fpr_limit=0.2)
    assert out["pixel_auroc"] == metrics.pixel_auroc(masks, maps)
    assert out["aupro"] == metrics.aupro(masks, maps, fpr_limit=0.2)
    assert (out["n_images"], out["n_pixels"], out["n_defect_pixels"]) == (3, 105, int(y.sum()))


@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_pixel_auroc_matches_sklearn_with_ties_in_any_chunking(chunk, monkeypatch):
    monkeypatch.setattr(metrics, "_RANK_CHUNK", chunk)
    rng = np.random.default_rng(5)
    masks = [_blobs(rng, (9, 11), 3), np.zeros((4, 4), int), _blobs(rng, (12, 5), 4)]
    # rounded scores tie within and across images and classes
    maps = [np.round(rng.random(m.shape) + 0.3 * m, 1) for m in masks]
    y = np.concatenate([m.ravel() for m in masks])
    s = np.concatenate([m.ravel() for m in maps])
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(("metric", "bytes_a_pixel"), [("pixel_auroc", 12), ("aupro", 40)])
def test_pixel_metrics_memory_stays_a_few_floats_a_pixel(metric, bytes_a_pixel):
    """Memory, not time: the peak of what numpy allocates on 4 megapixels (traced, so the
    figure does not depend on the machine). Pixel AUROC keeps one sorted copy of the
    scores (8 bytes a pixel; scikit-learn's curve took 89); AUPRO sorts scores and region
    weights together (about 33; it took 75 before its arrays were reused)."""
    import tracemalloc

    rng = np.random.default_rng(6)
    masks = [rng.random((256, 256)) < 0.05 for _ in range(64)]
    maps = [rng.random(m.shape) + m for m in masks]
    n_pixels = 64 * 256 * 256
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        value = getattr(metrics, metric)(masks, maps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0.5 < value <= 1.0
    assert peak < bytes_a_pixel * n_pixels, f"{peak / n_pixels:.1f} bytes a pixel"


def test_array_and_list_inputs_agree_and_bool_masks_accepted():
    rng = np.random.default_rng(4)
    masks = np.stack([_blobs(rng, (8, 8), 2) for _ in range(3)])
    maps = rng.random(masks.shape) + masks
    assert metrics.aupro(masks, maps) == metrics.aupro(list(masks.astype(bool)), list(maps))
    assert metrics.pixel_auroc(masks, maps) == metrics.pixel_auroc(masks.astype(bool), maps)


@pytest.mark.parametrize("fn", [metrics.pixel_auroc, metrics.aupro])
@pytest.mark.parametrize("only", [0, 1])
def test_one_class_of_pixels_gives_nan_and_warns(fn, only):
    masks = [np.full((3, 4), only), np.full((2, 2), only)]
    with pytest.warns(GenadWarning, match="one class") as record:
        value = fn(masks, [np.ones((3, 4)), np.zeros((2, 2))])
    assert math.isnan(value)
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.warns(GenadWarning, match="one class"):
        fpr, pro = metrics.pro_curve(masks, [np.ones((3, 4)), np.zeros((2, 2))])
    assert fpr.size == pro.size == 0


def test_evaluate_maps_with_one_class_is_nan_for_both():
    with pytest.warns(GenadWarning, match="one class") as record:
        out = metrics.evaluate_maps(np.zeros((2, 3, 3)), np.ones((2, 3, 3)))
    assert math.isnan(out["pixel_auroc"]) and math.isnan(out["aupro"])
    assert {r.filename for r in record} == {__file__}


@pytest.mark.parametrize("fn", [metrics.pixel_auroc, metrics.aupro, metrics.evaluate_maps])
def test_map_validation_names_the_image(fn):
    with pytest.raises(InvalidInputError, match=r"image 1: .*\(4, 4\).*\(4, 5\)"):
        fn([np.zeros((3, 3)), np.zeros((4, 4))], [np.zeros((3, 3)), np.zeros((4, 5))])
    with pytest.raises(InvalidInputError, match="2 masks but 3 maps"):
        fn(np.zeros((2, 3, 3)), np.zeros((3, 3, 3)))
    with pytest.raises(InvalidInputError, match=r"mask 0 .* found 255 \(divide"):
        fn(np.full((1, 2, 2), 255, dtype=np.uint8), np.zeros((1, 2, 2)))
    with pytest.raises(InvalidInputError, match="map 0 holds NaN"):
        fn(np.eye(3)[None], np.full((1, 3, 3), np.nan))
    with pytest.raises(InvalidInputError, match=r"got shape \(3, 3\)"):
        fn(np.eye(3), np.eye(3))
    with pytest.raises(InvalidInputError, match="mask 1 has shape"):
        fn([np.eye(3), np.ones((1, 3, 3))], [np.eye(3), np.ones((1, 3, 3))])
    with pytest.raises(InvalidInputError, match="empty"):
        fn([], [])


@pytest.mark.parametrize("limit", [0, -0.1, 1.5, float("nan")])
def test_aupro_fpr_limit_must_be_in_unit_interval(limit):
    with pytest.raises(InvalidInputError, match="fpr_limit"):
        metrics.aupro(_ROW_MASK, _ROW_MASK * 1.0, fpr_limit=limit)
