"""Fast tests of the image benchmark's loaders, matching, peers and runner (synthetic data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.images import datasets as ds
from benchmarks.images import models as md
from benchmarks.images import run as rn
from benchmarks.images.readme_check import agreement
from benchmarks.images.report import render

# --------------------------------------------------------------------------- matching


def _histogram(intensity, y, keep, width):
    idx = np.floor(intensity[keep] / width).astype(int)
    return (np.bincount(idx[y[keep] == 0], minlength=int(1 / width) + 1),
            np.bincount(idx[y[keep] == 1], minlength=int(1 / width) + 1))


def test_brightness_match_gives_both_classes_the_same_histogram():
    rng = np.random.default_rng(3)
    intensity = np.concatenate([rng.normal(0.45, 0.08, 300), rng.normal(0.6, 0.08, 500)])
    intensity = np.clip(intensity, 0, 0.999)
    y = np.r_[np.zeros(300, int), np.ones(500, int)]
    keep, info = ds.brightness_match(intensity, y, bin_width=0.02, seed=0)
    normals, anomalies = _histogram(intensity, y, keep, 0.02)
    np.testing.assert_array_equal(normals, anomalies)
    assert len(keep) == 2 * sum(row[2] for row in info["bins"])
    assert len(np.unique(keep)) == len(keep)
    # the matched subset no longer separates by brightness
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, intensity) > 0.85
    assert abs(roc_auc_score(y[keep], intensity[keep]) - 0.5) < 0.1


def test_brightness_match_is_seeded_and_keeps_only_shared_bins():
    rng = np.random.default_rng(0)
    intensity = rng.uniform(0.3, 0.5, 200)
    y = (rng.uniform(size=200) < 0.7).astype(int)
    intensity[:5] = 0.95  # a bin with normals only (y forced below) is dropped
    y[:5] = 0
    a, _ = ds.brightness_match(intensity, y, seed=1)
    b, _ = ds.brightness_match(intensity, y, seed=1)
    c, _ = ds.brightness_match(intensity, y, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not set(range(5)) & set(a.tolist())


@pytest.mark.parametrize("kwargs", [dict(bin_width=0), dict(bin_width=1.5)])
def test_brightness_match_rejects_bad_bins(kwargs):
    with pytest.raises(ValueError, match="bin_width"):
        ds.brightness_match([0.1, 0.2], [0, 1], **kwargs)


def test_brightness_match_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same"):
        ds.brightness_match([0.1, 0.2, 0.3], [0, 1])


# --------------------------------------------------------------------------- sets


def test_resolve_sets_expands_groups_in_run_order():
    assert ds.resolve_sets(["mnist", "xray-baggage-crop"]) == [
        "xray-baggage-crop", *[f"mnist-{d}" for d in range(10)]]
    assert ds.resolve_sets(["xray-baggage"])[:3] == [
        "xray-baggage", "xray-baggage-crop", "xray-baggage-matched"]
    assert ds.resolve_sets(None) == list(ds.DATASETS)
    assert ds.resolve_sets([ds.FULL_SCANS]) == ["xray-baggage"]
    with pytest.raises(ValueError, match="unknown set"):
        ds.resolve_sets(["cifar"])


def test_every_dataset_has_a_group_and_a_resolution():
    for name in ds.DATASETS:
        assert ds.group_of(name) in ds.GROUPS
        assert 28 <= ds.RESOLUTION[name] <= 128


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def _baggage_folder(root, overlap=False):
    """4 train + 2 normal + 2 threat scans, 192 px: dark content in a white letterbox.

    Threats have more padding, so they are brighter; with ``overlap`` one scan of each
    class has the other's shape and all content is 60, so the classes share two bins.
    """
    folder = root / "xray-baggage"
    rows = []
    for i, (split, label) in enumerate([("train", 0)] * 4 + [("test", 0)] * 2
                                       + [("test", 1)] * 2):
        img = np.full((192, 192), 255, np.uint8)
        h = 96 if label else 160
        if overlap and i in (5, 7):
            h = 256 - h
        y0 = (192 - h) // 2
        img[y0:y0 + h] = 60 if overlap else 40 + 10 * i
        path = f"{split}/{'threat' if label else 'good'}/x{i}.png"
        _png(folder / path, img)
        rows.append(dict(path=path, label=label, split=split, source_file=f"x{i}.jpg",
                         orig_width=800, orig_height=600, rotated90=0, content_x=0,
                         content_y=y0, content_w=192, content_h=h))
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)


def test_baggage_loader_resizes_and_crops_to_the_content_box(tmp_path):
    _baggage_folder(tmp_path)
    full = ds.load_set("xray-baggage", tmp_path)
    assert full.train.shape == (4, 64, 64) and full.train.dtype == np.uint8
    assert full.test.shape == (4, 64, 64)
    np.testing.assert_array_equal(full.y_test, [0, 0, 1, 1])
    assert full.masks is None and full.meta["resolution"] == 64
    assert full.train[:, 0].min() == 255  # the padding row
    crop = ds.load_set("xray-baggage-crop", tmp_path, size=32)
    assert crop.test.shape == (4, 32, 32)
    # only the content is left: each test scan is its constant content value
    np.testing.assert_allclose(ds.mean_intensity(crop.test) * 255, [80, 90, 100, 110],
                               atol=0.5)
    assert (ds.mean_intensity(crop.test) < ds.mean_intensity(full.test)).all()


def test_matched_baggage_records_its_bins_and_mean_intensity_auroc(tmp_path):
    _baggage_folder(tmp_path, overlap=True)
    matched = ds.load_set("xray-baggage-matched", tmp_path)
    info = matched.meta["matching"]
    assert info["mean_intensity_auroc_before"] == 0.5  # one dark and one bright per class
    assert info["n_kept_per_class"] == 2 and len(matched.test) == 4
    assert info["mean_intensity_auroc"] == 0.5
    assert "mean intensity AUROC there 0.500" in matched.meta["protocol"]


def test_matched_baggage_refuses_classes_that_never_share_a_bin(tmp_path):
    _baggage_folder(tmp_path)
    with pytest.raises(ValueError, match="no intensity bin"):
        ds.load_set("xray-baggage-matched", tmp_path)


def test_magnetic_tile_masks_are_binary_and_resized_nearest(tmp_path):
    folder = tmp_path / "magnetic-tile"
    rows = []
    for i, (split, label, kind) in enumerate([("train", 0, "Free")] * 3
                                             + [("test", 0, "Free"), ("test", 1, "Crack")]):
        image = np.full((128, 128), 100, np.uint8)
        mask = np.zeros((128, 128), np.uint8)
        if label:
            mask[40:60, 40:80] = 255
            mask[0, 0] = 120  # a JPEG-like grey value: binarised to 0
        _png(folder / f"images/{kind}/t{i}.png", image)
        _png(folder / f"masks/{kind}/t{i}.png", mask)
        rows.append(dict(path=f"images/{kind}/t{i}.png", mask_path=f"masks/{kind}/t{i}.png",
                         label=label, split=split, defect_type=kind, orig_width=128,
                         orig_height=128, orig_mask_pixels=0, mask_pixels_128=0))
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    data = ds.load_set("magnetic-tile", tmp_path, size=64)
    assert data.masks.shape == (2, 64, 64) and set(np.unique(data.masks)) == {0, 1}
    assert data.masks[0].sum() == 0 and data.masks[1].sum() == 10 * 20
    assert data.test_kind.tolist() == ["good", "Crack"]


def test_mnist_leaves_one_digit_out(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 3).astype(np.uint8)
    np.savez(folder / "mnist_5k.npz", images=rng.integers(0, 256, (30, 28, 28), np.uint8),
             labels=labels)
    np.savez(folder / "mnist_test.npz", images=rng.integers(0, 256, (20, 28, 28), np.uint8),
             labels=np.repeat(np.arange(10), 2).astype(np.uint8))
    data = ds.load_set("mnist-7", tmp_path)
    assert data.train.shape == (27, 28, 28) and data.test.shape == (20, 28, 28)
    assert data.y_test.sum() == 2 and data.y_test[14:16].tolist() == [1, 1]
    with pytest.raises(ValueError, match="mode"):
        ds.load_set("mnist-7", tmp_path, mode="RGB")


# --------------------------------------------------------------------------- peers


def test_pca_peer_map_is_the_squared_residual_behind_the_score():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    det = md.PCAContender(0.9)
    det.fit(train)
    maps = det.anomaly_map(test)
    assert maps.shape == (5, 8, 8)
    np.testing.assert_allclose(det.score(test), maps.mean(axis=(1, 2)))
    assert det.extra()["pca_components"] >= 1


def test_mean_intensity_peer_scores_brighter_images_higher():
    dark, bright = np.full((1, 4, 4), 10, np.uint8), np.full((1, 4, 4), 200, np.uint8)
    scores = md.MeanIntensityContender().score(np.concatenate([dark, bright]))
    np.testing.assert_allclose(scores, [10 / 255, 200 / 255])


def test_iforest_peer_downsamples_only_larger_images():
    big = np.zeros((3, 64, 64), np.uint8)
    assert md.downsample(big, 32).shape == (3, 32, 32)
    small = np.zeros((3, 28, 28), np.uint8)
    assert md.downsample(small, 32) is small


# --------------------------------------------------------------------------- runner


def _tiny_set(masks=True):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 120, (30, 8, 8), dtype=np.uint8)
    test = rng.integers(0, 120, (10, 8, 8), dtype=np.uint8)
    y = np.r_[np.zeros(5, int), np.ones(5, int)]
    test[5:, 2:4, 2:4] = 255
    m = np.zeros((10, 8, 8), np.uint8)
    m[5:, 2:4, 2:4] = 1
    return ds.ImageSet("g", "tiny", train, test, y, m if masks else None, None,
                       {"protocol": "synthetic"})


def _spec(name, build, family="peer"):
    return md.ModelSpec(name, family, "test", build)


def test_run_one_records_a_missing_genad_class_as_failed():
    spec = _spec("nope", lambda seed, ctx, size: md.GenadContender("NoSuchModel", size, seed,
                                                                   ctx), "genad")
    entry = rn.run_one(spec, _tiny_set(), 0, md.BuildContext(epochs=1), score_repeats=1)
    assert entry["status"].startswith("failed: AttributeError") and entry["stage"] == "build"
    assert set(rn.RUN_KEYS) <= set(entry)
    assert entry["image_auroc"] is None


def test_run_one_fills_image_and_pixel_metrics(monkeypatch):
    spec = _spec("pca", lambda seed, ctx, size: md.PCAContender(0.9))
    calls = {}

    def fake_pixel_auroc(masks, maps):
        calls["shape"] = maps.shape
        return 0.75

    monkeypatch.setattr(rn, "pixel_metric_functions",
                        lambda: {"pixel_auroc": fake_pixel_auroc, "aupro": None})
    entry = rn.run_one(spec, _tiny_set(), 0, md.BuildContext(), score_repeats=1)
    assert entry["status"] == "ok"
    assert entry["image_auroc"] == 1.0 and entry["pixel_auroc"] == 0.75
    assert calls["shape"] == (10, 8, 8)
    assert entry["aupro"] is None and "aupro: not available" in entry["pixel_status"]
    assert entry["images_per_s"] > 0 and entry["fit_seconds"] >= 0


def test_run_one_skips_pixel_metrics_without_masks_or_map():
    spec = _spec("mean", lambda seed, ctx, size: md.MeanIntensityContender())
    entry = rn.run_one(spec, _tiny_set(), 0, md.BuildContext(), score_repeats=1)
    assert entry["pixel_status"] == "the model gives no pixel map"
    entry = rn.run_one(_spec("pca", lambda s, c, z: md.PCAContender(0.9)),
                       _tiny_set(masks=False), 0, md.BuildContext(), score_repeats=1)
    assert entry["pixel_status"] == "no masks in this data set"


def test_run_one_fails_on_non_finite_scores():
    class NaNScorer(md.MeanIntensityContender):
        def score(self, X):
            out = super().score(X)
            out[0] = np.nan
            return out

    entry = rn.run_one(_spec("nan", lambda s, c, z: NaNScorer()), _tiny_set(), 0,
                       md.BuildContext(), score_repeats=1)
    assert entry["status"].startswith("failed: FloatingPointError: scores: non-finite")


def test_merge_keeps_the_later_run_and_every_command():
    def part(value, command, models, epochs=30):
        return {"meta": {"settings": {"sets": ["tiny"], "seeds": [0], "models": models,
                                      "epochs": epochs},
                         "invocations": [{"command": command}], "datasets": {"tiny": {}},
                         "model_info": {m: {"family": "peer"} for m in models}},
                "runs": [{"dataset": "tiny", "seed": 0, "model": "pca", "image_auroc": value,
                          "epoch_seconds": [1.0]}]}

    merged = rn.merge_results([part(0.1, "a", ["pca"]), part(0.2, "b", ["pca", "iforest"])],
                              ["a", "b"], "merge")
    assert [r["image_auroc"] for r in merged["runs"]] == [0.2]
    assert "epoch_seconds" not in merged["runs"][0]
    assert [i["command"] for i in merged["meta"]["invocations"]] == ["a", "b", "merge"]
    assert merged["meta"]["settings"]["models"] == ["pca", "iforest"]
    assert merged["meta"]["settings"]["epochs"] == 30  # one setting stays a number


def test_merge_lists_the_parts_different_epochs_in_the_header():
    def part(epochs):
        return {"meta": {"settings": {"sets": ["tiny"], "seeds": [0], "models": ["pca"],
                                      "epochs": epochs},
                         "invocations": [{"command": f"e{epochs}"}], "datasets": {"tiny": {}},
                         "model_info": {"pca": {"family": "peer"}}},
                "runs": [{"dataset": "tiny", "seed": 0, "model": "pca", "image_auroc": 0.5}]}

    merged = rn.merge_results([part(30), part(150), part(15)], ["a", "b", "c"], "merge")
    assert merged["meta"]["settings"]["epochs"] == [15, 30, 150]
    assert "genad epochs 15, 30, 150 (the parts differ" in render(merged)


def test_main_writes_json_and_markdown_and_report_renders(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "load_set", lambda name, root=None: _tiny_set())
    monkeypatch.setattr(ds, "resolve_sets", lambda tokens: ["gdxray"])
    out = tmp_path / "res"
    assert rn.main(["--models", "mean-intensity", "pca", "--seeds", "0", "1",
                    "--out", str(out), "--name", "t", "--score-repeats", "1"]) == 0
    data = json.loads((out / "t.json").read_text())
    assert {(r["model"], r["seed"]) for r in data["runs"]} == {
        ("pca", 0), ("pca", 1), ("mean-intensity", 0), ("mean-intensity", 1)}
    text = (out / "t.md").read_text()
    assert text.startswith("# `python -m benchmarks.images --models mean-intensity pca")
    assert "## `tiny`" in text and "Reference figures" not in text
    # MNIST rows collapse into one mean row
    runs = [dict(r, dataset=f"mnist-{d}", group="mnist") for d in range(10)
            for r in data["runs"]]
    mnist = render({"meta": data["meta"], "runs": runs})
    assert "`mnist` (mean of 10 digits)" in mnist and "**0.644**" in mnist


def test_published_references_are_never_rerun_and_name_their_source():
    from benchmarks.images.reference import REFERENCES
    from benchmarks.images.report import _ref_table
    assert {r.kind for r in REFERENCES} == {"README baseline", "published"}
    published = [r for r in REFERENCES if r.kind == "published"]
    assert published and all(r.check is None and r.source != "data README"
                             for r in published)
    chest = "\n".join(_ref_table("chest-xray-pneumonia"))
    assert "SQUID" in chest and "0.876" in chest and "IsolationForest" in chest


def test_agreement_rounds_at_the_readme_precision():
    assert agreement(0.8214, 0.82, digits=2) == "matches"
    assert agreement(0.8214, 0.820) == "close"
    assert agreement(None, 0.5) == "–"


@pytest.mark.parametrize("name, metric, k", [("conv-ae-knn", "euclidean", 5),
                                             ("conv-ae-knn-cos", "cosine", 5),
                                             ("conv-ae-knn1-cos", "cosine", 1),
                                             ("conv-vae-knn-cos", "cosine", 5),
                                             ("conv-vae-knn-cos-eq", "cosine", 5)])
def test_the_latent_knn_contenders_score_with_the_model_score(name, metric, k):
    (spec,) = md.resolve_models([name])
    contender = spec.build(0, md.BuildContext(epochs=1), 16)
    params = contender.det.get_params(deep=False)
    assert params["latent_neighbors"] == k and params["adapter"].score == "model"
    assert f"latent_neighbors={k}," in spec.description
    assert params["latent_metric"] == metric and params["adapter"].size == 16
    equalized = name.endswith("-eq")
    assert params["adapter"].equalize is equalized
    assert ("equalize=True" in spec.description) is equalized


def test_the_tiled_contender_averages_half_size_tiles_of_equalised_images():
    (spec,) = md.resolve_models(["conv-vae-knn-cos-eq-tiles"])
    adapter = spec.build(0, md.BuildContext(epochs=1), 64).det.get_params(deep=False)["adapter"]
    assert (adapter.tile, adapter.tile_overlap, adapter.tile_score) == (32, 0.5, "mean")
    assert adapter.equalize is True and adapter.score == "model"


@pytest.mark.parametrize("name", ["conv-vae-x3", "fanogan-x3", "conv-ae-knn1-cos-x3",
                                  "conv-vae-knn-cos-eq-x3"])
def test_the_ensemble_contenders_are_their_base_with_three_members(name):
    (spec,) = md.resolve_models([name])
    (base,) = md.resolve_models([name.removesuffix("-x3")])
    params = spec.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
    mine = base.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
    assert params.pop("n_members") == 3 and mine.pop("n_members") == 1
    assert params.pop("adapter").get_params() == mine.pop("adapter").get_params()
    assert params == mine
    assert "n_members=3" in spec.description


def test_the_ssim_contender_trains_the_conv_ae_with_ssim():
    (spec,) = md.resolve_models(["conv-ae-ssim"])
    params = spec.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
    assert params["loss"] == "ssim" and params["adapter"].size == 16


def test_the_paused_vaegan_contender_pauses_its_discriminator_at_half():
    (spec,) = md.resolve_models(["vaegan-pause"])
    params = spec.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
    assert params["pause_discriminator_below"] == 0.5 and params["adapter"].size == 16
    assert "pause_discriminator_below=0.5" in spec.description


def test_the_vaegan_contender_keeps_describing_the_fit_without_the_pause():
    """The published ``vaegan`` rows were fitted before the pause became the image default:
    the contender turns it off explicitly, so new rows mean the same."""
    (spec,) = md.resolve_models(["vaegan"])
    params = spec.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
    assert params["pause_discriminator_below"] is None
    assert "pause_discriminator_below=None" in spec.description


def test_a_genad_run_records_the_weight_averaging_its_fit_used():
    (spec,) = md.resolve_models(["conv-ae"])
    entry = rn.run_one(spec, _tiny_set(), 0, md.BuildContext(epochs=1, device="cpu"),
                       score_repeats=1)
    assert entry["status"] == "ok", entry["status"]
    assert entry["weight_averaging"] == 2.0  # weight_averaging="auto" on images


def test_the_weights_column_says_averaged_raw_or_peer():
    from benchmarks.images.report import _weights

    ok = {"family": "genad", "status": "ok"}
    assert _weights([{**ok, "weight_averaging": 2.0}] * 2) == "avg 2"
    assert _weights([ok, {**ok, "weight_averaging": 2.0}]
                    ) == "avg 2/raw"  # a row made before the option has no such key
    failed = {"family": "genad", "status": "failed: TrainingDivergedError: ..."}
    assert _weights([failed, {**ok, "weight_averaging": 2.0}]) == "avg 2"  # kept none
    assert _weights([failed]) == "–"
    assert _weights([{"family": "peer", "status": "ok"}]) == "–"


def test_the_draem_contenders_differ_only_in_the_reconstruction():
    plain, full = md.resolve_models(["draem", "draem-rec"])
    params = [s.build(0, md.BuildContext(epochs=1), 16).det.get_params(deep=False)
              for s in (plain, full)]
    assert params[0]["reconstruction"] is False and params[1]["reconstruction"] is True
    assert "reconstruction=True" in full.description


def test_the_supervised_ceiling_trains_on_one_half_of_each_kind_and_scores_the_other(
        tmp_path, monkeypatch):
    from benchmarks.images import supervised_ceiling as sc

    folder = tmp_path / "magnetic-tile"
    rows, rng = [], np.random.default_rng(0)
    layout = ([("train", 0, "Free")] * 4 + [("test", 0, "Free")] * 2
              + [("test", 1, "Crack")] * 3 + [("test", 1, "Uneven")] * 2)
    for i, (split, label, kind) in enumerate(layout):
        mask = np.zeros((128, 128), np.uint8)
        if label:
            mask[30:50, 20:90] = 255
        image = (rng.integers(60, 100, (128, 128)) + (mask > 0) * 80).astype(np.uint8)
        _png(folder / f"images/{kind}/t{i}.png", image)
        _png(folder / f"masks/{kind}/t{i}.png", mask)
        rows.append(dict(path=f"images/{kind}/t{i}.png", mask_path=f"masks/{kind}/t{i}.png",
                         label=label, split=split, defect_type=kind))
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    result = sc.run_fold(0, steps=2, width=2, root=folder)
    # fold 0 learns from positions 0, 2 of Crack and 0 of Uneven; scores the rest
    assert (result["n_train_defects"], result["n_scored_defects"]) == (3, 2)
    assert (result["n_train_normals"], result["n_scored_normals"]) == (4, 2)
    assert set(result["pixel_auroc_by_kind"]) == {"Crack", "Uneven"}
    assert 0.0 <= result["pixel_auroc"] <= 1.0
    monkeypatch.setattr(sc, "RESULTS", tmp_path)
    (tmp_path / f"{sc.STEM}-fold0.json").write_text(json.dumps(
        {"command": "python -m benchmarks.images.supervised_ceiling --fold 0",
         "result": result}))
    text = sc.write_markdown().read_text()
    assert "not a protocol result" in text and f"**{result['pixel_auroc']:.3f}**" in text
