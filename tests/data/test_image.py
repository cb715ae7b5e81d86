"""ImageAdapter (genad.data.image): channels, size, letterbox, tiles, holdout, augmentation,
maps and scores, state, crop boxes, cache; and image detectors end to end.

Images are synthetic (written to ``tmp_path``) and small; models are tiny (the conv-ae
preset's test settings, one or two epochs). Real-data checks read ``GENAD_DATA`` and are
marked ``realdata``.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import genad
from genad import registry
from genad.bundle_schema import DocumentError
from genad.data.base import TensorSampleSet
from genad.data.image import ImageAdapter, ImageSampleSet
from genad.data.image_io import read_source
from genad.errors import GenadWarning, InvalidInputError

SIDE = 16
#: the bright square of :func:`_with_square`: rows and columns
SQUARE = (slice(4, 8), slice(9, 13))


def _normals(n=32, seed=0, side=SIDE):
    """Gray images of one horizontal ramp plus a little noise (uint8, n x side x side)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 160, side)[None, None, :]
    return np.clip(ramp + rng.normal(0, 3, size=(n, side, side)), 0, 255).astype(np.uint8)


def _with_square(images):
    out = images.copy()
    out[(slice(None), *SQUARE)] = 255
    return out


def _save(folder, images, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(images):
        paths.append(folder / f"{i:03d}{suffix}")
        Image.fromarray(a).save(paths[-1])
    return paths


def _conv_ae(**overrides):
    return genad.ConvAutoEncoder(**registry.preset("conv-ae").test_params(**overrides))


def _stack(samples):
    return torch.stack([samples[i] for i in range(len(samples))])


def _raw(adapter, samples):
    """Prepared units back in [0, 1] units (normalisation undone)."""
    x = samples.stacked().double()
    mean = torch.as_tensor(adapter.mean_).view(1, -1, 1, 1)
    std = torch.as_tensor(adapter.std_).view(1, -1, 1, 1)
    return (x * std + mean).numpy()


@pytest.fixture(scope="module")
def fitted():
    """A conv-ae fitted on 32 ramp images (score='max': image scores from the maps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _conv_ae(epochs=2, adapter=ImageAdapter(score="max")).fit(_normals())


# ------------------------------------------------------------------ channels
def test_gray_stored_as_rgb_counts_as_gray_and_one_colour_image_makes_three():
    gray = np.repeat(_normals(6)[..., None], 3, axis=-1)
    assert ImageAdapter().fit(gray).channels_ == 1
    colour = gray.copy()
    colour[2, ..., 0] = 255
    assert ImageAdapter().fit(colour).channels_ == 3
    assert ImageAdapter().fit(_normals(6)).sample_shape_ == (1, SIDE, SIDE)


def test_forced_channels_repeat_gray_and_take_luminance_of_colour():
    red = np.zeros((4, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    red[1, ..., 0] = 0
    adapter = ImageAdapter(channels=1).fit(red)
    np.testing.assert_allclose(_raw(adapter, adapter.samples(red))[0, 0], 0.299, atol=1e-5)
    gray = _normals(4)
    adapter = ImageAdapter(channels=3).fit(gray)
    x = _raw(adapter, adapter.samples(gray))
    assert x.shape == (4, 3, SIDE, SIDE)
    np.testing.assert_allclose(x[:, 0], x[:, 2], atol=1e-5)
    np.testing.assert_allclose(x[:, 1, 0, 0], gray[:, 0, 0] / 255.0, atol=1e-5)


def test_colour_given_to_a_gray_model_becomes_luminance_and_gray_to_colour_repeats():
    gray = _normals(4)
    adapter = ImageAdapter().fit(gray)
    green = np.zeros((1, SIDE, SIDE, 3), np.uint8)
    green[..., 1] = 200
    np.testing.assert_allclose(_raw(adapter, adapter.samples(green)), 0.587 * 200 / 255,
                               atol=1e-5)
    colour = np.random.default_rng(0).integers(0, 256, (4, SIDE, SIDE, 3), dtype=np.uint8)
    adapter = ImageAdapter().fit(colour)
    x = _raw(adapter, adapter.samples(gray[:1]))
    assert x.shape == (1, 3, SIDE, SIDE)
    np.testing.assert_allclose(x[0, 0], gray[0] / 255.0, atol=1e-5)
    np.testing.assert_allclose(x[0, 2], gray[0] / 255.0, atol=1e-5)


# ----------------------------------------------------------------------- size
def test_default_size_is_the_images_own_up_to_128_px():
    assert ImageAdapter().fit(np.zeros((3, 17, 23), np.uint8)).size_ == (17, 23)
    assert ImageAdapter().fit(np.zeros((2, 1, 1), np.uint8)).size_ == (1, 1)


def test_default_size_of_larger_or_mixed_images_is_128_on_the_long_side():
    assert ImageAdapter().fit(np.zeros((2, 200, 300), np.uint8)).size_ == (88, 128)
    assert ImageAdapter().fit(np.zeros((2, 300, 150), np.uint8)).size_ == (128, 64)
    mixed = [np.zeros((40, 80), np.uint8), np.zeros((20, 40), np.uint8),
             np.zeros((60, 60), np.uint8)]
    assert ImageAdapter().fit(mixed).size_ == (64, 128)  # median aspect 2


def test_given_size_int_or_pair():
    images = np.zeros((2, 30, 40), np.uint8)
    assert ImageAdapter(size=8).fit(images).sample_shape_ == (1, 8, 8)
    assert ImageAdapter(size=(8, 12)).fit(images).sample_shape_ == (1, 8, 12)


@pytest.mark.parametrize("params, match", [
    ({"resize": "crop"}, "resize must be"),
    ({"size": 0}, "size must be None"),
    ({"size": (8, 8, 8)}, "size must be None"),
    ({"tile": 0}, "tile must be"),
    ({"top_k": 0.0}, "top_k must be"),
    ({"window": (40, 0)}, "window must be"),
    ({"augment": ["blur"]}, "augment must be"),
    ({"channels": 2}, "channels must be"),
    ({"equalize": "yes"}, "equalize must be"),
    ({"size": 8, "tile": 16}, r"tile \(16 px\) is larger than the model size 8 x 8"),
])
def test_bad_parameters_raise_invalid_input_naming_them(params, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        ImageAdapter(**params).fit(_normals(2))
    assert not isinstance(info.value, DocumentError)


def test_numpy_numbers_are_valid_parameters():
    adapter = ImageAdapter(size=(np.int64(8), 8), window=(np.float32(40), np.int64(400)),
                           top_k=np.float64(0.5)).fit(_normals(2))
    assert adapter.size_ == (8, 8)


# ------------------------------------------------------------- equalisation
def test_equalize_replaces_each_pixel_by_its_mid_rank_in_its_image():
    images = np.array([[[10, 200], [200, 90]], [[0, 0], [0, 0]]], dtype=np.uint8)
    adapter = ImageAdapter(size=2, equalize=True).fit(images)
    raw = _raw(adapter, adapter.samples(images))[:, 0]
    # ranks (below + below-or-equal) / 2n: 10 -> 1/8, 90 -> 3/8, the two 200s -> 6/8
    np.testing.assert_allclose(raw[0], [[0.125, 0.75], [0.75, 0.375]], atol=1e-6)
    np.testing.assert_allclose(raw[1], 0.5, atol=1e-6)  # a flat image: every rank equal


def test_equalize_makes_exposure_and_contrast_not_count():
    images = _normals(8)
    # more contrast, darker: the same order of pixels, no two values merged
    changed = ((images.astype(np.int64) - 50) * 2).clip(0, 255).astype(np.uint8)
    assert images.min() >= 50 and images.max() <= 177
    plain = ImageAdapter().fit(images)
    assert not np.allclose(_raw(plain, plain.samples(images)),
                           _raw(plain, plain.samples(changed)))
    adapter = ImageAdapter(equalize=True).fit(images)
    np.testing.assert_allclose(_raw(adapter, adapter.samples(images)),
                               _raw(adapter, adapter.samples(changed)), atol=1e-6)


def test_equalize_works_on_each_colour_channel_and_only_inside_the_letterbox():
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 255, size=(2, 8, 16, 3), dtype=np.uint8)
    adapter = ImageAdapter(size=16, resize="letterbox", equalize=True).fit(wide)
    raw = _raw(adapter, adapter.samples(wide))
    top, left, h, w = adapter._content_box(8, 16)
    inside = raw[:, :, top : top + h, left : left + w]
    assert raw.shape[1] == 3 and np.all((inside > 0) & (inside < 1))
    np.testing.assert_allclose(inside.mean(axis=(2, 3)), 0.5, atol=1e-6)  # each channel
    assert top > 0
    np.testing.assert_allclose(raw[:, :, :top], 0, atol=1e-6)  # the padding stays black


def test_an_equalized_detector_keeps_its_setting_in_the_bundle(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(equalize=True)).fit(_normals())
    path = det.save(tmp_path / "eq.genad")
    again = genad.load(path)
    assert again.adapter_.equalize is True
    test = _with_square(_normals(4, seed=5))
    np.testing.assert_allclose(again.anomaly_score(test), det.anomaly_score(test), rtol=1e-6)


def test_a_bundle_without_equalize_loads_with_it_off():
    adapter, images = _state_adapter()
    doc, arrays = adapter.get_state()
    del doc["params"]["equalize"]  # written before the option existed
    again = ImageAdapter.from_state(doc, arrays)
    assert again.equalize is False
    torch.testing.assert_close(again.samples(images).stacked(),
                               adapter.samples(images).stacked(), rtol=0, atol=0)


# ----------------------------------------------------------- mixed folders
def test_a_folder_of_mixed_sizes_and_modes_is_resized_and_maps_come_back_at_each_size(
        tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(rng.integers(0, 256, (12, 12, 4), dtype=np.uint8), "RGBA").save(
        tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert(
        "P", colors=8).save(tmp_path / "d.png")
    Image.fromarray(rng.integers(0, 256, (9, 30), dtype=np.uint8)).save(tmp_path / "e.jpg")
    adapter = ImageAdapter(size=8, smoothing=0).fit(tmp_path)
    assert adapter.channels_ == 3 and adapter.sample_shape_ == (3, 8, 8)
    samples = adapter.samples(tmp_path)
    maps = adapter.to_map(np.zeros((len(samples), 3, 8, 8)), samples)
    assert isinstance(maps, list)
    assert [m.shape for m in maps] == [(16, 16), (20, 24), (12, 12), (16, 16), (9, 30)]
    assert list(adapter.index(samples)) == ["a.png", "b.png", "c.png", "d.png", "e.jpg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(size=8)).fit(tmp_path)
    maps = det.anomaly_map(tmp_path)
    assert [m.shape for m in maps] == [(16, 16), (20, 24), (12, 12), (16, 16), (9, 30)]
    assert det.anomaly_score(tmp_path).shape == (5,)


# ------------------------------------------------------------------ letterbox
def test_letterbox_keeps_the_aspect_and_cuts_the_padding_from_maps():
    images = np.full((3, 20, 40), 200, np.uint8)
    adapter = ImageAdapter(size=16, resize="letterbox").fit(images)
    assert adapter._content_box(20, 40) == (4, 0, 8, 16)
    samples = adapter.samples(images)
    x = _raw(adapter, samples)[0, 0]
    np.testing.assert_allclose(x[4:12], 200 / 255, atol=1e-5)
    np.testing.assert_allclose(x[:4], 0, atol=1e-5)
    np.testing.assert_allclose(x[12:], 0, atol=1e-5)
    unit_maps = np.full((3, 1, 16, 16), 1e6)
    unit_maps[:, :, 4:12] = 0.5  # the content; the padding's errors must not show, even
    # through the smoothing
    maps = adapter.to_map(unit_maps, samples)
    assert maps.shape == (3, 20, 40) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, 0.5, rtol=1e-6)


def test_letterbox_map_statistics_and_image_scores_ignore_the_padding():
    wide = [np.full((8, 16), 100, np.uint8)] * 4  # content rows 4-11 of 16
    square = [np.full((16, 16), 100, np.uint8)] * 4
    adapter = ImageAdapter(size=16, resize="letterbox", score="max", smoothing=0).fit(
        wide + square)
    samples = adapter.samples(wide + square)
    unit_maps = np.full((8, 1, 16, 16), 1e3)  # the padding: large errors
    rng = np.random.default_rng(0)
    unit_maps[:4, :, 4:12] = rng.normal(1.0, 0.1, size=(4, 1, 8, 16))
    unit_maps[4:] = rng.normal(1.0, 0.1, size=(4, 1, 16, 16))
    adapter.fit_maps(iter([(unit_maps, samples)]))
    assert np.all(np.abs(adapter.map_mean_ - 1.0) < 0.2)  # rows 0-3: square images only
    assert adapter.map_std_.max() < 0.3
    scores = adapter.reduce(np.zeros(8), samples, unit_maps)
    assert scores.max() < 10  # the padding's 1e3 is not the wide images' maximum


def test_letterbox_of_an_image_reduced_while_decoding_fills_the_box_the_maps_cut(tmp_path):
    # 64 x 75 at size 16 is decoded at half size (32 x 38), whose own box would be a row
    # shorter than the original's (13 rows, not 14): the content must fill the 14 rows
    Image.fromarray(np.full((64, 75), 255, np.uint8)).save(tmp_path / "a.png")
    adapter = ImageAdapter(size=16, resize="letterbox").fit([tmp_path / "a.png"] * 2)
    assert adapter._content_box(64, 75) == (1, 0, 14, 16)
    x = _raw(adapter, adapter.samples([tmp_path / "a.png"]))[0, 0]
    np.testing.assert_allclose(x[1:15], 1.0, atol=1e-5)
    np.testing.assert_allclose(x[[0, 15]], 0.0, atol=1e-5)


def test_stretch_fills_the_frame():
    images = np.full((2, 20, 40), 200, np.uint8)
    adapter = ImageAdapter(size=16).fit(images)
    np.testing.assert_allclose(_raw(adapter, adapter.samples(images)), 200 / 255, atol=1e-5)


# ---------------------------------------------------------------------- tiles
def test_tiles_are_units_of_their_image():
    images = _normals(3)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.5, smoothing=0).fit(images)
    assert adapter.tile_starts_ == ([0, 4, 8], [0, 4, 8]) and adapter.n_tiles_ == 9
    assert adapter.sample_shape_ == (1, 8, 8)
    samples = adapter.samples(images)
    assert len(samples) == 27 and samples.n_samples == 3
    assert samples.owner.tolist() == np.repeat([0, 1, 2], 9).tolist()
    whole = ImageAdapter(size=SIDE, smoothing=0).fit(images).samples(images).stacked()
    torch.testing.assert_close(samples[9 + 5], whole[1, :, 4:12, 8:16])  # image 1, tile (1, 2)


def test_tile_maps_are_stitched_by_averaging_the_overlaps():
    images = _normals(2)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.5, smoothing=0).fit(images)
    samples = adapter.samples(images)
    tile_of_unit = np.tile(np.arange(9.0), 2)
    unit_maps = np.broadcast_to(tile_of_unit[:, None, None, None], (18, 1, 8, 8)).copy()
    maps = adapter.to_map(unit_maps, samples)
    assert maps.shape == (2, SIDE, SIDE)
    assert maps[1, 0, 0] == 0  # only tile 0
    assert maps[1, 5, 5] == pytest.approx((0 + 1 + 3 + 4) / 4)
    assert maps[0, 15, 15] == 8  # only the last tile
    assert maps[0, 2, 13] == 2  # only tile (0, 2)


def test_tiles_without_overlap_end_flush_with_the_image():
    adapter = ImageAdapter(size=20, tile=8, tile_overlap=0.0).fit(np.zeros((2, 20, 20)))
    assert adapter.tile_starts_ == ([0, 8, 12], [0, 8, 12])


def test_model_score_of_a_tiled_image_is_its_hottest_tile():
    images = _normals(3)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.5).fit(images)
    samples = adapter.samples(images)
    unit_scores = np.random.default_rng(0).random(27)
    np.testing.assert_array_equal(adapter.reduce(unit_scores, samples),
                                  unit_scores.reshape(3, 9).max(axis=1))


def test_tile_score_mean_averages_an_images_tiles_even_in_a_subset():
    images = _normals(3)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.5, tile_score="mean",
                           score="model").fit(images)
    samples = adapter.samples(images)
    unit_scores = np.random.default_rng(0).random(27)
    np.testing.assert_allclose(adapter.reduce(unit_scores, samples),
                               unit_scores.reshape(3, 9).mean(axis=1))
    part = samples.subset(np.arange(9, 27))  # the last two images only
    np.testing.assert_allclose(adapter.reduce(unit_scores[9:], part),
                               unit_scores[9:].reshape(2, 9).mean(axis=1))
    with pytest.raises(InvalidInputError, match="tile_score must be"):
        ImageAdapter(tile=8, tile_score="median").fit(images)


def test_a_detector_scoring_by_the_mean_tile_keeps_it_in_its_bundle(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, latent_neighbors=2, latent_metric="cosine",
                       adapter=ImageAdapter(tile=8, tile_overlap=0.5, tile_score="mean",
                                            score="model")).fit(_normals())
    test = _with_square(_normals(4, seed=5))
    with torch.no_grad():
        per_tile = det.model_.eval().score(det.adapter_.samples(test).stacked()).numpy()
    np.testing.assert_allclose(det.anomaly_score(test), per_tile.reshape(4, 9).mean(axis=1),
                               rtol=1e-5)
    again = genad.load(det.save(tmp_path / "tiles.genad"))
    assert again.adapter_.tile_score == "mean"
    np.testing.assert_allclose(again.anomaly_score(test), det.anomaly_score(test), rtol=1e-6)


# --------------------------------------------------------------- score choices
def test_score_max_top_k_and_model():
    images = _normals(2)
    unit_maps = np.random.default_rng(1).random((2, 1, SIDE, SIDE))
    unit_scores = np.array([3.0, 4.0])
    flat = unit_maps.reshape(2, -1)
    for score, expected in (("max", flat.max(axis=1)),
                            ("top_k", np.sort(flat, axis=1)[:, -64:].mean(axis=1)),
                            ("model", unit_scores)):
        adapter = ImageAdapter(score=score, top_k=0.25, smoothing=0).fit(images)
        assert adapter.scores_need_maps == (score != "model")
        samples = adapter.samples(images)
        np.testing.assert_allclose(adapter.reduce(unit_scores, samples, unit_maps), expected)


def test_top_k_takes_at_least_one_pixel():
    adapter = ImageAdapter(score="top_k", top_k=1e-9, smoothing=0).fit(_normals(2))
    unit_maps = np.zeros((2, 1, SIDE, SIDE))
    unit_maps[1, 0, 3, 3] = 7.0
    samples = adapter.samples(_normals(2))
    assert adapter.reduce(np.zeros(2), samples, unit_maps).tolist() == [0.0, 7.0]


# -------------------------------------------------------------------- holdout
def _grouped_manifest(tmp_path, n_groups=4, per_group=3):
    paths = _save(tmp_path / "img", _normals(n_groups * per_group))
    rows = [f"img/{p.name},g{i // per_group}" for i, p in enumerate(paths)]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,group\n" + "\n".join(rows) + "\n")
    return manifest


def test_holdout_keeps_each_manifest_group_and_every_tile_on_one_side(tmp_path):
    manifest = _grouped_manifest(tmp_path)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.0).fit(manifest)
    samples = adapter.samples(manifest)
    groups = read_source(manifest).groups
    for seed in range(5):
        train, held = adapter.holdout(samples, 0.25, np.random.default_rng(seed))
        assert held.n_samples > 0 and train.n_samples > 0
        train_groups = {groups[i] for i in train.image_ids}
        held_groups = {groups[i] for i in held.image_ids}
        assert not train_groups & held_groups
        assert len(train) == 4 * train.n_samples and len(held) == 4 * held.n_samples
        assert train.n_samples + held.n_samples == 12


def test_holdout_without_groups_is_by_image():
    images = _normals(8)
    adapter = ImageAdapter(size=SIDE, tile=8, tile_overlap=0.0).fit(images)
    train, held = adapter.holdout(adapter.samples(images), 0.25, np.random.default_rng(0))
    assert (train.n_samples, held.n_samples) == (6, 2)
    assert len(held) == 2 * 4 and np.bincount(held.owner).tolist() == [4, 4]


# --------------------------------------------------------------- augmentation
def test_augmentation_applies_to_the_training_part_only():
    images = _normals(8)
    adapter = ImageAdapter(augment=["hflip", "jitter"]).fit(images)
    samples = adapter.samples(images)
    assert isinstance(samples, ImageSampleSet)  # lazy: fresh copies per read
    plain = samples.stacked()
    train, held = adapter.holdout(samples, 0.25, np.random.default_rng(0))
    assert held.augment == () and train.augment == ("hflip", "jitter")
    for part in (train, held):
        originals = plain[torch.as_tensor(part.image_ids)]
        torch.testing.assert_close(part.stacked(), originals)  # scoring: as they are
        if part is held:
            torch.testing.assert_close(_stack(part), originals)
        else:
            assert not torch.allclose(_stack(part), originals)


def test_an_augmented_detector_scores_its_training_images_as_they_are():
    images = _normals(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(augment=["hflip", "rotate", "jitter"])
                       ).fit(images)
    scores = det.anomaly_score(images)
    assert len(det.train_scores_) + len(det.calibration_scores_) == 12
    assert np.isin(det.train_scores_, scores).all()
    assert np.isin(det.calibration_scores_, scores).all()


def test_without_augmentation_reads_are_repeatable():
    images = _normals(4)
    adapter = ImageAdapter().fit(images)
    train, _ = adapter.holdout(adapter.samples(list(images)), 0.25, np.random.default_rng(0))
    torch.testing.assert_close(_stack(train), _stack(train))


def test_arrays_are_prepared_into_memory_once_read():
    images = _normals(4)
    adapter = ImageAdapter().fit(images)
    for X in (images, adapter.read(images), list(images)):  # the detector passes read data
        assert isinstance(adapter.samples(X), TensorSampleSet)
    assert isinstance(ImageAdapter(augment=["hflip"]).fit(images).samples(images),
                      ImageSampleSet)


# ------------------------------------------------------------------ cache
def test_cache_on_and_off_give_identical_tensors(tmp_path):
    _save(tmp_path, _normals(5))
    on = ImageAdapter(size=12).fit(tmp_path)
    off = ImageAdapter(size=12, cache_mb=0).fit(tmp_path)
    a, b = on.samples(tmp_path), off.samples(tmp_path)
    torch.testing.assert_close(_stack(a), _stack(b), rtol=0, atol=0)
    torch.testing.assert_close(_stack(a), _stack(a), rtol=0, atol=0)  # from the cache
    assert len(a._prepared) == 5 and len(b._prepared) == 0


# -------------------------------------------------------------------- crops
def test_crop_boxes_crop_images_maps_and_masks(tmp_path):
    image = np.zeros((16, 20), np.uint8)
    image[4:10, 2:12] = 200  # the crop box's content
    mask = np.zeros((16, 20), np.uint8)
    mask[5, 3] = 255
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,mask_path,crop_x,crop_y,crop_w,crop_h\n"
                        "a.png,a_mask.png,2,4,10,6\na.png,,,,,\n")
    adapter = ImageAdapter(size=8, smoothing=0).fit(manifest)
    samples = adapter.samples(manifest)
    np.testing.assert_allclose(_raw(adapter, samples)[0], 200 / 255, atol=1e-5)
    maps = adapter.to_map(np.zeros((2, 1, 8, 8)), samples)
    assert [m.shape for m in maps] == [(6, 10), (16, 20)]
    masks = adapter.load_masks(manifest)
    assert masks[0].shape == (6, 10) and masks[0][1, 1] and masks[0].sum() == 1
    assert masks[1].shape == (16, 20) and not masks[1].any()


def test_a_crop_box_outside_its_image_names_it(tmp_path):
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(tmp_path / "a.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,crop_x,crop_y,crop_w,crop_h\na.png,15,0,10,6\n")
    with pytest.raises(InvalidInputError, match=r"a\.png: crop box x=15 y=0 w=10 h=6 is outside "
                                                r"the 20 x 16 image"):
        ImageAdapter(size=8).fit(manifest)


def test_a_mask_of_another_size_than_its_image_names_both(tmp_path):
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "m.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,mask_path\na.png,m.png\n")
    with pytest.raises(InvalidInputError, match=r"m\.png is 8 x 8 pixels but its image a\.png "
                                                r"is 20 x 16"):
        ImageAdapter(size=8).load_masks(manifest)


# -------------------------------------------------------------------- state
def _state_adapter():
    images = _normals(6)
    adapter = ImageAdapter(size=(8, 12), tile=4, window=(40.0, 80.0), score="top_k").fit(images)
    samples = adapter.samples(images)
    rng = np.random.default_rng(0)
    adapter.fit_maps(iter([(rng.random((len(samples), 1, 4, 4)), samples)]))
    return adapter, images


def test_state_round_trip():
    adapter, images = _state_adapter()
    doc, arrays = adapter.get_state()
    doc = json.loads(json.dumps(doc))  # plain JSON
    assert set(arrays) == {"map_mean", "map_std"}
    shape, specs = ImageAdapter.check_state(doc)
    assert shape == (1, 4, 4) and specs["map_mean"] == (np.float64, (8, 12))
    again = ImageAdapter.from_state(doc, arrays)
    assert again.get_params() == adapter.get_params()
    torch.testing.assert_close(again.samples(images).stacked(), adapter.samples(images).stacked(),
                               rtol=0, atol=0)
    np.testing.assert_array_equal(again.map_std_, adapter.map_std_)
    assert again.map_hot_ == adapter.map_hot_


def _tamper(doc, arrays, where, value):
    doc, arrays = copy.deepcopy(doc), dict(arrays)
    if where in arrays:
        arrays[where] = value
    elif where.startswith("params."):
        doc["params"][where[7:]] = value
    else:
        doc[where] = value
    return doc, arrays


@pytest.mark.parametrize("where, value, match", [
    ("version", 2, "version must be 1"),
    ("size", [0, 12], "size must be"),
    ("size", [8.0, 12], "size must be"),
    ("channels", 2, "channels must be 1 or 3"),
    ("channels", True, "channels must be 1 or 3"),
    ("mean", [0.1, 0.2], "mean must be 1 finite numbers"),
    ("std", [0.0], "std must be positive"),
    ("std", [float("nan")], "std must be 1 finite"),
    ("map_hot", "hot", "map_hot must be"),
    ("map_hot", True, "map_hot must be"),
    ("params", [], "params must be an object"),
    ("params.colour", 1, "colour is not a parameter"),
    ("params.resize", "crop", "resize must be"),
    ("params.tile", 64, "tile 64 is larger than the size"),
    ("map_mean", np.zeros((8, 8)), "map_mean must be finite, shape"),
    ("map_std", np.full((8, 12), np.nan), "map_std must be finite"),
    ("map_std", np.zeros((8, 12)), "map_std must be positive"),
])
def test_a_tampered_state_raises_document_error_naming_the_field(where, value, match):
    adapter, _ = _state_adapter()
    doc, arrays = _tamper(*adapter.get_state(), where, value)
    with pytest.raises(DocumentError, match=match):
        ImageAdapter.from_state(doc, arrays)


def test_check_state_refuses_a_non_object():
    with pytest.raises(DocumentError, match="adapter must be an object"):
        ImageAdapter.check_state([])


# ---------------------------------------------------------------- map statistics
def test_a_normal_image_map_is_cold_and_a_bright_square_is_hot(fitted):
    normals = _normals(32)
    maps = fitted.anomaly_map(normals)
    assert maps.shape == (32, SIDE, SIDE)
    assert abs(float(maps.mean())) < 0.5  # standardised by the training maps
    odd = fitted.anomaly_map(_with_square(_normals(3, seed=5)))
    for m in odd:
        y, x = np.unravel_index(np.argmax(m), m.shape)
        assert SQUARE[0].start <= y < SQUARE[0].stop and SQUARE[1].start <= x < SQUARE[1].stop
        assert m[SQUARE].mean() > 5 + np.delete(m, np.s_[3:9], axis=0).mean()
    scores = fitted.anomaly_score(_with_square(_normals(3, seed=5)))
    assert scores.min() > fitted.anomaly_score(normals).max()


def test_explain_names_the_hottest_spot(fitted):
    table = fitted.explain(_with_square(_normals(1, seed=5)), top_k=2)
    assert list(table.index) == ["image 0"]
    first = table["top_features"].iloc[0].split(";")[0]
    x, y = (int(part.split("=")[1]) for part in first.split()[:2])
    assert SQUARE[1].start - 1 <= x <= SQUARE[1].stop and SQUARE[0].start - 1 <= y <= \
        SQUARE[0].stop


# ------------------------------------------------------------ detector boundary
def test_arrays_and_the_same_images_as_png_files_score_identically(fitted, tmp_path):
    images = np.concatenate([_normals(5, seed=9), _with_square(_normals(2, seed=9))])
    _save(tmp_path, images)
    from_arrays = fitted.anomaly_score(images)
    np.testing.assert_array_equal(fitted.anomaly_score(tmp_path), from_arrays)
    np.testing.assert_array_equal(fitted.anomaly_score(sorted(tmp_path.iterdir())), from_arrays)
    np.testing.assert_array_equal(fitted.anomaly_map(tmp_path), fitted.anomaly_map(images))


def test_scores_do_not_depend_on_how_many_images_are_scored_together(fitted):
    images = _normals(7, seed=4)
    whole = fitted.anomaly_score(images)
    np.testing.assert_array_equal(np.concatenate([fitted.anomaly_score(images[i : i + 1])
                                                  for i in range(7)]), whole)


def test_save_and_load_keep_scores_and_maps(fitted, tmp_path):
    fitted.save(tmp_path / "m.genad")
    again = genad.Detector.load(tmp_path / "m.genad")
    images = _with_square(_normals(2, seed=3))
    np.testing.assert_array_equal(again.anomaly_score(images), fitted.anomaly_score(images))
    np.testing.assert_array_equal(again.anomaly_map(images), fitted.anomaly_map(images))


def test_a_table_given_to_an_image_model_says_it_looks_like_a_table(fitted, tmp_path):
    table = np.random.default_rng(0).normal(size=(20, 4))
    pd.DataFrame(table, columns=list("abcd")).to_csv(tmp_path / "t.csv", index=False)
    for X in (table, pd.DataFrame(table), tmp_path / "t.csv"):
        for method in (fitted.anomaly_score, fitted.anomaly_map, fitted.predict):
            with pytest.raises(InvalidInputError, match="table"):
                method(X)
    with pytest.raises(InvalidInputError, match="takes image input, but this looks like "
                                                "tabular data"):
        _conv_ae(epochs=1).fit(table)


def test_images_given_to_a_table_model_raise_invalid_input(tmp_path):
    table = np.random.default_rng(0).normal(size=(60, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = genad.AutoEncoder(**registry.preset("ae").test_params(epochs=1)).fit(table)
    paths = _save(tmp_path / "img", _normals(3))
    for X in (_normals(3), tmp_path / "img", paths[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(InvalidInputError, match="table|folder"):
                det.anomaly_score(X)


def test_an_empty_image_set_raises(fitted):
    for method in (fitted.anomaly_score, fitted.anomaly_map):
        with pytest.raises(InvalidInputError, match=r"empty \(0 images\)"):
            method(np.zeros((0, SIDE, SIDE), np.uint8))


def test_one_pixel_images_train_and_score():
    images = np.random.default_rng(0).integers(0, 256, (8, 1, 1), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1).fit(images)
    assert det.anomaly_map(images[:2]).shape == (2, 1, 1)
    assert np.isfinite(det.anomaly_score(images)).all()


def test_fit_on_labelled_class_folders_warns_unless_given_the_labels(tmp_path):
    _save(tmp_path / "good", _normals(6))
    _save(tmp_path / "crack", _with_square(_normals(2)))
    with pytest.warns(GenadWarning, match=r"2 of the 8 training images are labelled anomalies "
                                          r"\(e\.g\. crack/000\.png\)"):
        ImageAdapter(size=8).fit(tmp_path)
    images = read_source(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GenadWarning)
        ImageAdapter(size=8).fit(images.take(images.labels == 0))


def test_tiled_detector_maps_are_at_the_original_size():
    images = _normals(12, side=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(size=16, tile=8)).fit(images)
    assert det.sample_shape_ == (1, 8, 8)
    assert det.anomaly_map(images[:2]).shape == (2, 24, 24)
    assert det.anomaly_score(images[:2]).shape == (2,)


# ------------------------------------------------------------ large images
def _memory_mb(key):
    """``VmRSS`` (now) or ``VmHWM`` (the peak since the last reset) of this process, MiB."""
    match = re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024


def _reset_peak_memory():
    """Restart the peak (``VmHWM``) from the current RSS; False where Linux does not allow
    it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory):
    """A 10,000 x 10,000 gray PNG (black, a white centre square): 0.4 MB on disk."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    a = np.zeros((10_000, 10_000), np.uint8)
    a[4_000:6_000, 4_000:6_000] = 255
    Image.fromarray(a).save(path, compress_level=1)
    return path


def test_a_10000_px_image_is_prepared_in_bounded_memory(huge_png):
    small = ImageAdapter(size=64).fit(np.zeros((2, 64, 64), np.uint8))
    small.samples([np.zeros((64, 64), np.uint8)])  # torch's resize and pad warmed up
    if not _reset_peak_memory():
        pytest.skip("the peak memory of a process cannot be reset here (Linux only)")
    before = _memory_mb("VmRSS")
    x = small.samples([huge_png]).stacked()
    default = ImageAdapter().fit([huge_png, huge_png])
    grown = _memory_mb("VmHWM") - before
    assert tuple(x.shape) == (1, 1, 64, 64) and default.size_ == (128, 128)
    assert x[0, 0, 32, 32] > x[0, 0, 2, 2]  # the white square is in the middle
    # a float32 copy would be 400 MB; the decoder holds the 100 MB 8-bit image at most
    assert grown < 200, f"decoding grew the peak memory by {grown:.0f} MB"


# ------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_mvtec_bottle_folders(data_dir):
    root = data_dir / "mvtec-ad" / "bottle"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    train = sorted((root / "train" / "good").glob("*.png"))[:16]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(size=32)).fit(train)
    assert det.adapter_.channels_ == 3
    test = read_source(root / "test")
    assert len(test) == 88 and test.labels.sum() == 63
    part = test.take(np.r_[0:3, 85:88])
    scores = det.anomaly_score(part)
    assert scores.shape == (6,) and np.isfinite(scores).all()
    assert det.anomaly_map(part).shape == (6, 256, 256)


@pytest.mark.realdata
def test_magnetic_tile_manifest_maps_and_masks_share_each_image_size(data_dir, tmp_path):
    source = data_dir / "magnetic-tile" / "manifest.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    rows = pd.read_csv(source, dtype=str, keep_default_na=False)
    rows = pd.concat([rows[rows["label"] == "0"].head(6), rows[rows["label"] == "1"].head(2)])
    for column in ("path", "mask_path"):
        rows[column] = [str(source.parent / p) if p else "" for p in rows[column]]
    manifest = tmp_path / "m.csv"
    rows[["path", "mask_path", "label"]].to_csv(manifest, index=False)
    images = read_source(manifest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = _conv_ae(epochs=1, adapter=ImageAdapter(size=32)).fit(manifest, images.labels)
    maps = det.anomaly_map(manifest)
    masks = det.adapter_.load_masks(manifest)
    assert len(maps) == len(masks) == 8
    assert [m.shape for m in maps] == [m.shape for m in masks]
    assert sum(int(m.any()) for m in masks) == 2
