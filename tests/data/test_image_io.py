"""genad.data.image_io: reading folders, manifests, path lists and arrays; decoding files.

Each bad input raises InvalidInputError whose message names the file (or the manifest
line), or follows the documented handling (a non-image file in a folder is skipped with
a warning naming it). Every image here is synthetic and written to ``tmp_path``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from genad.data.image_io import (
    decode,
    decode_mask,
    decode_sized,
    is_image_source,
    read_source,
)
from genad.errors import GenadWarning, InvalidInputError


def _png(path, array, mode=None):
    """Write ``array`` as an image file (format from the suffix); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def _gray(seed=0, shape=(6, 8)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _dicom(path, pixels=None, photometric="MONOCHROME2", bits=None, **attributes):
    """A minimal single-frame DICOM file; ``pixels`` None leaves out PixelData."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 8 * pixels.dtype.itemsize
        ds.BitsStored = bits or ds.BitsAllocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(pixels.dtype.kind == "i")
        ds.PixelData = pixels.tobytes()
    for name, value in attributes.items():
        setattr(ds, name, value)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- folders
def test_flat_folder_is_read_recursively_sorted_without_labels(tmp_path):
    for name in ("b.png", "a.png", "sub/c.png"):
        _png(tmp_path / name, _gray())
    images = read_source(tmp_path)
    assert images.names == ["a.png", "b.png", "sub/c.png"]
    assert images.items == [str(tmp_path / n) for n in images.names]
    assert images.labels is None and images.masks is None and images.groups is None


def test_class_folders_label_normal_folders_0_and_other_folders_1(tmp_path):
    for name in ("good/0.png", "good/1.png", "crack/0.png", "Scratch/0.png"):
        _png(tmp_path / name, _gray())
    images = read_source(tmp_path)
    labels = dict(zip(images.names, images.labels.tolist(), strict=True))
    assert labels == {"Scratch/0.png": 1, "crack/0.png": 1, "good/0.png": 0, "good/1.png": 0}
    assert images.labels.dtype == np.int8


def test_class_folders_without_a_normal_folder_have_no_labels(tmp_path):
    for name in ("crack/0.png", "scratch/0.png"):
        _png(tmp_path / name, _gray())
    assert read_source(tmp_path).labels is None


def test_a_non_image_file_in_a_folder_is_skipped_with_a_warning_naming_it(tmp_path):
    _png(tmp_path / "a.png", _gray())
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(GenadWarning, match=r"notes\.txt"):
        images = read_source(tmp_path)
    assert images.names == ["a.png"]


def test_hidden_files_and_folders_are_ignored_silently(tmp_path):
    _png(tmp_path / "a.png", _gray())
    _png(tmp_path / ".thumbs" / "b.png", _gray())
    (tmp_path / ".DS_Store").write_bytes(b"\0\1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_source(tmp_path).names == ["a.png"]


def test_empty_folder_raises_naming_it(tmp_path):
    with pytest.raises(InvalidInputError, match=rf"{tmp_path.name}.*no image files"):
        read_source(tmp_path)


def test_folder_of_only_other_files_raises_naming_one(tmp_path):
    (tmp_path / "readme.md").write_text("#")
    with pytest.raises(InvalidInputError, match=r"no image files \(1 other files, e\.g\. "
                                                 r"readme\.md\)"):
        read_source(tmp_path)


# --------------------------------------------------------------- manifests
def _manifest(folder, text):
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


def test_manifest_reads_every_column_with_paths_relative_to_it(tmp_path):
    _png(tmp_path / "img" / "a.png", _gray(0, (20, 30)))
    _png(tmp_path / "img" / "b.png", _gray(1, (20, 30)))
    _png(tmp_path / "masks" / "b.png", np.zeros((20, 30), np.uint8))
    path = _manifest(tmp_path, "path,label,mask_path,group,split,crop_x,crop_y,crop_w,crop_h\n"
                               "img/a.png,0,,g1,train,,,,\n"
                               "img/b.png,1,masks/b.png,g2,test,2,3,10,5\n")
    images = read_source(path)
    assert images.names == ["img/a.png", "img/b.png"]
    assert images.items == [str(tmp_path / "img" / "a.png"), str(tmp_path / "img" / "b.png")]
    assert images.labels.tolist() == [0, 1]
    assert images.masks == [None, str(tmp_path / "masks" / "b.png")]
    assert images.groups == ["g1", "g2"] and images.splits == ["train", "test"]
    assert images.boxes.tolist() == [[0, 0, 0, 0], [2, 3, 10, 5]]
    assert is_image_source(path) and is_image_source(str(path))


def test_manifest_path_column_may_have_another_name_and_case(tmp_path):
    _png(tmp_path / "a.png", _gray())
    path = _manifest(tmp_path, "Filename ,other\na.png,x\n")
    assert read_source(path).names == ["a.png"]


def test_manifest_bad_label_names_the_line(tmp_path):
    for name in ("a.png", "b.png"):
        _png(tmp_path / name, _gray())
    path = _manifest(tmp_path, "path,label\na.png,0\nb.png,bad\n")
    with pytest.raises(InvalidInputError, match=r"manifest\.csv, line 3: label must be 0 or 1, "
                                                r"got 'bad'"):
        read_source(path)


def test_manifest_bad_crop_value_names_the_line(tmp_path):
    _png(tmp_path / "a.png", _gray())
    path = _manifest(tmp_path, "path,crop_x,crop_y,crop_w,crop_h\na.png,0,0,-4,2\n")
    with pytest.raises(InvalidInputError, match=r"line 2: crop_w must be a whole number"):
        read_source(path)


def test_manifest_without_a_path_column_lists_its_columns(tmp_path):
    path = _manifest(tmp_path, "a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match=r"needs a path column.*it has a, b"):
        read_source(path)
    assert not is_image_source(path)  # a table, for the tabular adapter


def test_manifest_empty_path_and_missing_file_name_the_line(tmp_path):
    _png(tmp_path / "a.png", _gray())
    with pytest.raises(InvalidInputError, match=r"line 3: empty path"):
        read_source(_manifest(tmp_path, "path\na.png\n\"\"\n"))
    with pytest.raises(InvalidInputError, match=r"line 3: .*gone\.png.*no such"):
        read_source(_manifest(tmp_path, "path\na.png\ngone.png\n"))


def test_manifest_without_rows_raises(tmp_path):
    with pytest.raises(InvalidInputError, match="lists no images"):
        read_source(_manifest(tmp_path, "path,label\n"))


def test_a_table_with_a_path_like_column_is_not_a_manifest(tmp_path):
    path = _manifest(tmp_path, "file,amount\nrecord-1,3.5\nrecord-2,4.0\n")
    assert not is_image_source(path)


# ------------------------------------------------------------- path lists
def test_list_of_paths_keeps_the_given_order(tmp_path):
    paths = [_png(tmp_path / n, _gray()) for n in ("b.png", "a.jpg")]
    images = read_source(paths)
    assert images.items == [str(p) for p in paths] and images.labels is None
    assert is_image_source(paths) and is_image_source([str(p) for p in paths])
    assert read_source(paths[0]).items == [str(paths[0])]  # one file


def test_list_with_a_missing_file_names_it(tmp_path):
    good = _png(tmp_path / "a.png", _gray())
    with pytest.raises(InvalidInputError, match=r"gone\.png: no such image file"):
        read_source([good, tmp_path / "gone.png"])


def test_empty_list_and_other_objects_raise():
    with pytest.raises(InvalidInputError, match="list of images is empty"):
        read_source([])
    with pytest.raises(InvalidInputError, match="cannot read dict as images"):
        read_source({"a": 1})


# ------------------------------------------------------------------ arrays
def _values(layout, channels):
    """A (N, H, W) or (N, H, W, C) float image in [0, 1] with distinct channels."""
    rng = np.random.default_rng(3)
    base = rng.random((2, 5, 7))
    if channels == 1:
        return base
    return np.stack([base, 1.0 - base, base**2], axis=-1)


def _as_dtype(v, dtype):
    if dtype == np.uint8:
        return np.round(v * 255).astype(np.uint8), lambda a: a / 255.0
    if dtype == np.uint16:
        return np.round(v * 65535).astype(np.uint16), lambda a: a / 65535.0
    if dtype is bool:
        return v > 0.5, lambda a: a.astype(np.float64)
    return v.astype(np.float32), lambda a: a.astype(np.float64)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, bool])
@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_arrays_in_each_layout_and_dtype_decode_to_chw_in_unit_range(layout, dtype):
    v = _values(layout, 1 if layout == "NHW" else 3)
    X, scale = _as_dtype(v, dtype)
    if layout == "NCHW":
        X = np.ascontiguousarray(np.moveaxis(X, -1, 1))
    images = read_source(X)
    assert len(images) == 2 and images.names == ["image 0", "image 1"]
    assert is_image_source(X)
    got = decode(images.items[1], images.names[1], channels_last=images.channels_last)
    expected = scale(_as_dtype(v, dtype)[0][1])
    expected = expected[None] if layout == "NHW" else np.moveaxis(expected, -1, 0)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_arrays_of_other_ranks_or_types_raise():
    with pytest.raises(InvalidInputError, match=r"shape \(4, 5\), which looks like a table"):
        read_source(np.zeros((4, 5)))
    with pytest.raises(InvalidInputError, match="must hold numbers"):
        read_source(np.array([[["a"]]]))
    with pytest.raises(InvalidInputError, match="cannot tell the channel axis"):
        read_source(np.zeros((2, 5, 8, 8)))
    assert not is_image_source(np.zeros((4, 5)))
    assert not is_image_source(np.zeros((2, 4, 4), dtype=complex))


def test_list_of_arrays_may_differ_in_size():
    images = read_source([np.zeros((4, 5), np.uint8), np.zeros((6, 7, 3), np.uint8)])
    assert [decode(x, n).shape for x, n in zip(images.items, images.names, strict=True)] == [
        (1, 4, 5), (3, 6, 7)]
    with pytest.raises(InvalidInputError, match=r"image 1 has shape \(4,\)"):
        read_source([np.zeros((4, 5)), np.zeros(4)])


def test_non_finite_pixels_name_the_image():
    X = np.zeros((3, 4, 4), np.float32)
    X[2, 1, 1] = np.nan
    images = read_source(X)
    with pytest.raises(InvalidInputError, match="image 2: .*NaN"):
        decode(images.items[2], images.names[2])


# --------------------------------------------------------------- decoding
def test_corrupt_file_raises_naming_it(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not a png" * 20)
    with pytest.raises(InvalidInputError, match=r"junk\.png: not an image file"):
        decode(str(path), str(path))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_truncated_file_raises_naming_it(tmp_path, suffix):
    rng = np.random.default_rng(0)
    full = _png(tmp_path / f"full{suffix}", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match=rf"cut\{suffix}: cannot decode.*truncated"):
        decode(str(cut), str(cut))


def test_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(InvalidInputError, match=r"gone\.png: no such image file"):
        decode(str(tmp_path / "gone.png"), "gone.png")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_images_are_scaled_by_65535_so_a_dark_image_stays_dark(tmp_path, suffix):
    pixels = np.full((6, 8), 1000, np.uint16)
    pixels[2, 3] = 3000
    if suffix == ".tif":
        import tifffile

        path = tmp_path / "dark.tif"
        tifffile.imwrite(path, pixels)
    else:
        path = _png(tmp_path / "dark.png", pixels)
        assert Image.open(path).mode.startswith("I")  # really 16-bit on disk
    got = decode(str(path), "dark")
    assert got.shape == (1, 6, 8)
    np.testing.assert_allclose(got[0], pixels / 65535.0, rtol=1e-6)
    assert got.max() < 0.05  # not stretched to the image's own range


def test_16_bit_rgb_tiff_and_planar_tiff(tmp_path):
    import tifffile

    rgb = np.zeros((5, 6, 3), np.uint16)
    rgb[..., 0], rgb[..., 2] = 65535, 6553
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    got = decode(str(tmp_path / "rgb.tif"), "rgb")
    np.testing.assert_allclose(got[:, 0, 0], [1.0, 0.0, 0.1], atol=1e-4)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), planarconfig="separate",
                     photometric="rgb")
    np.testing.assert_allclose(decode(str(tmp_path / "planar.tif"), "planar"), got)


def test_rgba_png_is_composited_over_black_and_alpha_dropped(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[:2, :, 3] = 0  # transparent top half
    rgba[3, 3, 3] = 128
    got = decode(str(_png(tmp_path / "a.png", rgba, "RGBA")), "a")
    assert got.shape == (3, 4, 4)
    assert np.all(got[:, :2] == 0)
    np.testing.assert_allclose(got[:, 2, 0], [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(got[0, 3, 3], 200 / 255 * 128 / 255, atol=1e-6)


def test_gray_alpha_png_stays_one_channel(tmp_path):
    la = np.full((3, 3, 2), 255, np.uint8)
    la[0, 0, 1] = 0
    got = decode(str(_png(tmp_path / "la.png", la, "LA")), "la")
    assert got.shape == (1, 3, 3) and got[0, 0, 0] == 0 and got[0, 1, 1] == 1


def test_palette_png_is_expanded_to_its_colours(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(indices, "P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    got = decode(str(tmp_path / "p.png"), "p")
    assert got.shape == (3, 2, 2)
    np.testing.assert_array_equal(got[:, 0, 0], [1, 0, 0])
    np.testing.assert_array_equal(got[:, 1, 0], [0, 0, 1])
    img.save(tmp_path / "t.png", transparency=0)  # index 0 transparent: black
    np.testing.assert_array_equal(decode(str(tmp_path / "t.png"), "t")[:, 0, 0], [0, 0, 0])


def test_one_bit_image_becomes_zero_one(tmp_path):
    got = decode(str(_png(tmp_path / "b.png", np.eye(3, dtype=bool))), "b")
    np.testing.assert_array_equal(got[0], np.eye(3))


def test_one_pixel_image(tmp_path):
    image, size = decode_sized(str(_png(tmp_path / "one.png", np.full((1, 1), 51, np.uint8))),
                               "one", target=(64, 64))
    assert size == (1, 1) and image.shape == (1, 1, 1)
    assert image[0, 0, 0] == pytest.approx(0.2)


def test_other_formats_decode(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 255
    for suffix in (".bmp", ".gif", ".webp", ".ppm", ".jpg"):
        got = decode(str(_png(tmp_path / f"x{suffix}", rgb)), suffix)
        assert got.shape == (3, 8, 8)
        np.testing.assert_allclose(got[:, 4, 4], [0, 1, 0], atol=0.03)


def test_large_files_are_reduced_while_decoding_and_report_their_size(tmp_path):
    import tifffile

    big = np.zeros((400, 300), np.uint8)
    big[:200] = 255
    _png(tmp_path / "big.png", big)
    tifffile.imwrite(tmp_path / "big.tif", big)
    _dicom(tmp_path / "big.dcm", big.astype(np.uint16))
    for name in ("big.png", "big.tif", "big.dcm"):
        image, size = decode_sized(str(tmp_path / name), name, target=(50, 50))
        assert size == (400, 300)
        assert image.shape[1] < 200 and image.shape[2] < 150  # reduced by >= 2
        assert image[0, 0, 0] == pytest.approx(255 / 65535 if name == "big.dcm" else 1)
        assert image[0, -1, 0] == 0
        assert decode(str(tmp_path / name), name).shape == (1, 400, 300)  # no target: whole


# ----------------------------------------------------------------- masks
def test_mask_is_bool_and_its_size_is_checked(tmp_path):
    m = np.zeros((4, 6), np.uint8)
    m[1, 2] = 255
    path = str(_png(tmp_path / "m.png", m))
    got = decode_mask(path, "img.png", (4, 6))
    assert got.dtype == bool and got.sum() == 1 and got[1, 2]
    with pytest.raises(InvalidInputError, match=r"mask .*m\.png is 6 x 4 pixels but its image "
                                                r"img\.png is 5 x 4"):
        decode_mask(path, "img.png", (4, 5))
    assert not decode_mask(None, "img.png", (2, 3)).any()


# ----------------------------------------------------------------- DICOM
_PIXELS = np.array([[0, 1000], [2000, 4095]], np.uint16)


def test_dicom_without_pixel_data_names_the_file(tmp_path):
    path = _dicom(tmp_path / "empty.dcm")
    with pytest.raises(InvalidInputError, match=r"empty\.dcm: .*no pixel data"):
        decode(str(path), str(path))


def test_not_a_dicom_file_with_a_dicom_suffix_names_it(tmp_path):
    path = tmp_path / "bad.dcm"
    path.write_bytes(b"garbage" * 40)
    with pytest.raises(InvalidInputError, match=r"bad\.dcm: cannot read the DICOM file"):
        decode(str(path), str(path))


def test_dicom_is_scaled_by_bits_stored(tmp_path):
    got = decode(str(_dicom(tmp_path / "a.dcm", _PIXELS, bits=12)), "a")
    np.testing.assert_allclose(got.ravel(), _PIXELS.ravel() / 4095, rtol=1e-6)


def test_dicom_rescale_slope_and_intercept_apply_before_the_window(tmp_path):
    # stored 1000 -> 2 * 1000 - 1024 = 976 HU; window 976 +- 500 puts it at the centre
    path = _dicom(tmp_path / "ct.dcm", _PIXELS, bits=12, RescaleSlope=2, RescaleIntercept=-1024,
                  WindowCenter=976, WindowWidth=1000)
    got = decode(str(path), "ct").ravel()
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 1.0], atol=1e-6)
    # without a window, the full rescaled range of 12 bits maps to [0, 1]
    path = _dicom(tmp_path / "raw.dcm", _PIXELS, bits=12, RescaleSlope=2, RescaleIntercept=-1024)
    np.testing.assert_allclose(decode(str(path), "raw").ravel(), _PIXELS.ravel() / 4095,
                               rtol=1e-5)


def test_dicom_window_from_the_file_first_value_or_the_caller(tmp_path):
    path = str(_dicom(tmp_path / "w.dcm", _PIXELS, bits=12, WindowCenter=[1000, 50],
                      WindowWidth=[2000, 10]))
    np.testing.assert_allclose(decode(path, "w").ravel(), [0.0, 0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(decode(path, "w", window=(2000, 2000)).ravel(),
                               [0.0, 0.0, 0.5, 1.0], atol=1e-6)


def test_dicom_monochrome1_is_inverted(tmp_path):
    mono1 = decode(str(_dicom(tmp_path / "m1.dcm", _PIXELS, "MONOCHROME1", bits=12)), "m1")
    mono2 = decode(str(_dicom(tmp_path / "m2.dcm", _PIXELS, "MONOCHROME2", bits=12)), "m2")
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)
    assert mono1[0, 0, 0] == 1.0  # stored 0 is white in MONOCHROME1


def test_signed_dicom_and_a_dicom_without_suffix(tmp_path):
    signed = np.array([[-1024, 0], [40, 3071]], np.int16)
    path = _dicom(tmp_path / "scan", signed, WindowCenter=40, WindowWidth=400)
    got = decode(str(path), "scan").ravel()  # found by its DICM preamble
    np.testing.assert_allclose(got, [0.0, 0.4, 0.5, 1.0], atol=1e-6)
