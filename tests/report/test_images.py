"""Anomaly-map overlays, side-by-side tiles, grids and PNG encoding, checked pixel by pixel."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from genad.errors import InvalidInputError
from genad.report import images


def _px(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(int)


def _colour(name: str, heat: float) -> np.ndarray:
    return np.asarray(colormaps[name](heat)[:3])


# --- overlay -----------------------------------------------------------------------------

def test_a_hot_pixel_is_coloured_and_cold_pixels_are_left_alone():
    image = np.zeros((3, 4), dtype=np.uint8)
    amap = np.zeros((3, 4))
    amap[1, 2] = 5.0
    out = images.overlay(image, amap, alpha=1.0)
    assert out.mode == "RGB" and out.size == (4, 3)
    px = _px(out)
    assert px[1, 2].tolist() == np.rint(_colour("inferno", 1.0) * 255).astype(int).tolist()
    px[1, 2] = 0
    assert not px.any()


def test_blend_weight_is_alpha_times_heat():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(2, 3, 3), dtype=np.uint8)
    amap = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, 2.0]])
    out = _px(images.overlay(image, amap, vmax=1.0, alpha=0.6, cmap="viridis"))
    heat = np.clip(amap, 0, 1)
    colours = colormaps["viridis"](heat)[:, :, :3]
    w = 0.6 * heat[:, :, None]
    expected = np.rint(((1 - w) * image / 255 + w * colours) * 255).astype(int)
    assert np.array_equal(out, expected)


def test_alpha_zero_leaves_the_image_unchanged():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    out = images.overlay(image, rng.random((5, 6)), alpha=0.0)
    assert np.array_equal(np.asarray(out), image)


def test_vmin_and_vmax_clip_the_map():
    image = np.full((1, 4), 0.2)
    amap = np.array([[-3.0, 1.0, 3.0, 100.0]])
    px = _px(images.overlay(image, amap, vmin=1.0, vmax=3.0, alpha=1.0, cmap="gray"))
    grey = round(0.2 * 255)
    assert px[0, 0].tolist() == [grey] * 3  # below vmin: no colour
    assert px[0, 1].tolist() == [grey] * 3  # at vmin: no colour
    assert px[0, 2].tolist() == [255] * 3  # at vmax: full colour (white in gray)
    assert px[0, 3].tolist() == px[0, 2].tolist()  # above vmax: clipped


def test_default_vmax_is_the_map_maximum_and_a_fixed_scale_keeps_a_normal_map_cold():
    rng = np.random.default_rng(2)
    image = rng.random((6, 6))
    low = rng.random((6, 6)) * 0.1  # a normal image's small errors
    own = images.overlay(image, low, alpha=1.0)
    assert np.array_equal(_px(own), _px(images.overlay(image, low, vmax=low.max(), alpha=1.0)))
    fixed = _px(images.overlay(image, low, vmax=10.0, alpha=1.0))
    plain = _px(images.overlay(image, low, alpha=0.0))
    assert np.abs(fixed - plain).max() <= 10 < np.abs(_px(own) - plain).max()


def test_flat_map_and_non_finite_values_give_clean_output():
    image = np.full((2, 2), 0.5)
    plain = _px(images.overlay(image, np.zeros((2, 2)), alpha=0.0))
    assert np.array_equal(_px(images.overlay(image, np.zeros((2, 2)), alpha=1.0)), plain)
    amap = np.array([[np.nan, -np.inf], [np.inf, 0.5]])
    px = _px(images.overlay(image, amap, alpha=1.0, cmap="gray"))
    assert px[0, 0].tolist() == px[0, 1].tolist() == plain[0, 0].tolist()  # NaN, -inf: cold
    assert px[1, 0].tolist() == [255] * 3  # +inf: as hot as the finite maximum
    assert px[1, 1].tolist() == [255] * 3
    assert np.array_equal(
        _px(images.overlay(image, np.full((2, 2), np.nan), alpha=1.0)), plain)


@pytest.mark.parametrize(
    ("image", "value"),
    [
        (np.full((2, 2), 65535, dtype=np.uint16), 255),
        (np.full((2, 2), 32768, dtype=np.uint16), 128),  # 32768 / 65535 * 255 = 127.5
        (np.full((2, 2, 1), 200, dtype=np.uint8), 200),
        (np.full((2, 2), 1.5), 255),  # floats are clipped to [0, 1]
        (np.full((2, 2), -0.5, dtype=np.float32), 0),
        (np.full((2, 2), np.nan), 0),
        (np.ones((2, 2), dtype=bool), 255),
    ],
)
def test_image_dtypes_and_gray_layouts(image, value):
    out = np.asarray(images.overlay(image, np.zeros((2, 2)), alpha=0.0))
    assert out.shape == (2, 2, 3)
    assert (out == value).all()


def test_uint16_full_range_maps_onto_uint8():
    image = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = np.asarray(images.overlay(image, np.zeros(image.shape), alpha=0.0))[..., 0]
    assert np.array_equal(out, np.rint(image / 65535 * 255))
    assert out[255, 127] == 255  # 65407 / 65535 * 255 = 254.502 (254.498 with 65536)


def test_rgba_input_drops_its_alpha_channel():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 10, 20, 30
    rgba[..., 3] = [[0, 128, 255], [255, 0, 7]]
    out = np.asarray(images.overlay(rgba, np.zeros((2, 3)), alpha=0.0))
    assert np.array_equal(out, rgba[..., :3])
    from_pil = images.overlay(Image.fromarray(rgba, "RGBA"), np.zeros((2, 3)), alpha=0.0)
    assert np.array_equal(np.asarray(from_pil), out)


def test_pil_images_are_accepted_palette_included():
    rgb = np.random.default_rng(3).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    amap = np.eye(4, 5)
    assert np.array_equal(_px(images.overlay(Image.fromarray(rgb), amap)),
                          _px(images.overlay(rgb, amap)))
    palette = Image.fromarray(rgb).convert("P")
    out = images.overlay(palette, amap, alpha=0.0)
    assert np.array_equal(np.asarray(out), np.asarray(palette.convert("RGB")))


def test_colormap_instance_and_name_agree():
    image, amap = np.zeros((2, 2)), np.array([[0.0, 0.3], [0.6, 1.0]])
    assert np.array_equal(_px(images.overlay(image, amap, cmap=colormaps["magma"])),
                          _px(images.overlay(image, amap, cmap="magma")))


def test_overlay_validation():
    both = r"map has shape \(4, 5\).*image has shape \(4, 4, 3\)"
    with pytest.raises(InvalidInputError, match=both):
        images.overlay(np.zeros((4, 4, 3)), np.zeros((4, 5)))
    with pytest.raises(InvalidInputError, match=r"channels last.*\(3, 8, 8\)"):
        images.overlay(np.zeros((3, 8, 8)), np.zeros((8, 8)))
    with pytest.raises(InvalidInputError, match="dtype int64"):
        images.overlay(np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="alpha"):
        images.overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=1.5)
    with pytest.raises(InvalidInputError, match="vmax"):
        images.overlay(np.zeros((2, 2)), np.zeros((2, 2)), vmin=1.0, vmax=1.0)
    with pytest.raises(InvalidInputError, match="vmin"):
        images.overlay(np.zeros((2, 2)), np.zeros((2, 2)), vmin=float("nan"))
    with pytest.raises(InvalidInputError, match="unknown colormap 'nope'"):
        images.overlay(np.zeros((2, 2)), np.zeros((2, 2)), cmap="nope")


# --- side_by_side and grid ------------------------------------------------------------------

def test_side_by_side_is_original_pad_overlay():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    amap = rng.random((5, 4))
    out = images.side_by_side(image, amap, vmax=1.0, alpha=0.7, pad=3)
    assert out.size == (4 + 3 + 4, 5)
    px = np.asarray(out)
    assert np.array_equal(px[:, :4], image)
    assert (px[:, 4:7] == 255).all()
    assert np.array_equal(px[:, 7:], np.asarray(images.overlay(image, amap, vmax=1.0, alpha=0.7)))


@pytest.mark.parametrize(
    ("n", "ncols", "shape"),
    [
        (1, None, (1, 1)),
        (4, None, (2, 2)),
        (5, None, (2, 3)),  # ceil(sqrt(5)) = 3 columns, 2 rows
        (10, None, (3, 4)),
        (7, 2, (4, 2)),
        (3, 8, (1, 3)),  # more columns than images: one row of 3
    ],
)
def test_grid_size_arithmetic(n, ncols, shape):
    h, w, pad = 5, 7, 2
    sheet = images.grid(np.zeros((n, h, w), dtype=np.uint8), ncols=ncols, pad=pad)
    rows, cols = shape
    assert sheet.size == (cols * w + (cols - 1) * pad, rows * h + (rows - 1) * pad)


def test_grid_places_tiles_row_by_row_and_leaves_empty_cells_white():
    stack = np.stack([np.full((2, 3), k / 10) for k in range(5)])  # floats in [0, 1]
    px = np.asarray(images.grid(stack, ncols=3, pad=1))
    assert px.shape == (2 * 2 + 1, 3 * 3 + 2, 3)
    for k in range(5):
        r, c = divmod(k, 3)
        tile = px[r * 3:r * 3 + 2, c * 4:c * 4 + 3]
        assert (tile == round(k / 10 * 255)).all()
    assert (px[2, :] == 255).all() and (px[:, 3] == 255).all()  # padding
    assert (px[3:, 8:] == 255).all()  # the sixth cell is empty


def test_grid_accepts_channels_last_lists_and_pil_images():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, size=(3, 4, 4, 3), dtype=np.uint8)
    sheet = np.asarray(images.grid(rgb, ncols=3, pad=0))
    assert np.array_equal(sheet, np.concatenate(list(rgb), axis=1))
    one = np.asarray(images.grid(rgb[..., :1], ncols=3, pad=0))
    assert np.array_equal(one[..., 1], np.concatenate(list(rgb[..., 0]), axis=1))
    mixed = images.grid([Image.fromarray(rgb[0]), rgb[1], rgb[2]], ncols=3, pad=0)
    assert np.array_equal(np.asarray(mixed), sheet)


def test_grid_validation():
    with pytest.raises(InvalidInputError, match=r"transpose\(0, 2, 3, 1\)"):
        images.grid(np.zeros((2, 3, 8, 8)))
    with pytest.raises(InvalidInputError, match=r"image 1 is 4x5 but image 0 is 4x4"):
        images.grid([np.zeros((4, 4)), np.zeros((4, 5))])
    with pytest.raises(InvalidInputError, match="no images"):
        images.grid([])
    with pytest.raises(InvalidInputError, match=r"got shape \(4, 4\)"):
        images.grid(np.zeros((4, 4)))
    with pytest.raises(InvalidInputError, match="ncols"):
        images.grid(np.zeros((2, 4, 4)), ncols=0)
    with pytest.raises(InvalidInputError, match="pad"):
        images.grid(np.zeros((2, 4, 4)), pad=-1)


# --- encoding ------------------------------------------------------------------------------

def test_png_bytes_and_data_uri_round_trip():
    rng = np.random.default_rng(6)
    img = images.overlay(rng.random((6, 7, 3)), rng.random((6, 7)))
    png = images.to_png_bytes(img)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(img))
    uri = images.to_data_uri(img)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
    array = rng.integers(0, 256, size=(3, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(images.to_png_bytes(array))))
    assert np.array_equal(decoded, np.repeat(array[:, :, None], 3, axis=2))


def test_module_does_not_import_torch():
    code = "import sys, genad.report.images; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
