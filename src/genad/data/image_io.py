"""Reading images: files (PNG, JPEG, BMP, TIFF, DICOM), folders, manifests and arrays.

This module turns what a user hands to an image detector into an :class:`ImageList` (one
entry per image: where its pixels come from, its name, an optional label, mask, group and
crop box) and decodes one image at a time into a float32 array ``(C, H, W)`` in
``[0, 1]`` at its original size (:func:`decode`). The adapter
(:mod:`genad.data.image`) does the rest: channels, resizing, tiling, normalisation.

Decoding rules (``docs/images.md`` has the user-facing version):

- **Depth**: integers are divided by their type's maximum (255 for 8-bit, 65535 for
  16-bit), never by the image's own min and max, so a dark image stays dark; signed
  integers map their type's whole range to ``[0, 1]``. DICOM is divided by its
  ``BitsStored`` range after the modality rescale (slope and intercept) unless the file
  or the adapter gives a window. Float arrays are used as given.
- **Modes**: palette images are expanded to RGB; an alpha channel is dropped after
  compositing over black; 1-bit images become 0/1.
- **DICOM**: ``RescaleSlope`` / ``RescaleIntercept`` applied; windowing by the
  adapter's ``window`` or the file's first ``WindowCenter`` / ``WindowWidth``;
  ``MONOCHROME1`` (white = low) is inverted so that bright means dense, as in
  ``MONOCHROME2``. A file without pixel data is an error naming it.
- **Large images** are reduced by an integer factor while decoding when they are at
  least twice the size the adapter asks for: JPEG decodes at the reduced scale, other
  Pillow formats decode at their stored depth (one byte per pixel and channel for
  8-bit) and are reduced before any float copy, TIFF and DICOM are averaged over
  blocks a strip of rows at a time. So a 10,000 x 10,000 scan never becomes a 400 MB
  float array.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genad.errors import InvalidInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "NORMAL_FOLDERS",
    "ImageList",
    "read_source",
    "decode",
    "decode_sized",
    "decode_mask",
    "is_image_source",
]

#: file suffixes read as images (lower case); others in a folder are skipped with a warning
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm",
                            ".dicom", ".gif", ".webp", ".pgm", ".ppm", ".pbm"})
#: folder names (lower case) that mark normal images in a labelled folder tree; an image
#: under any other class folder of such a tree is an anomaly (label 1)
NORMAL_FOLDERS = frozenset({"good", "normal", "ok", "free", "negative", "nominal",
                            "no_defect", "no-defect", "nodefect", "no_threat", "no-threat"})
#: manifest columns that name each image's file (the first found is used)
_PATH_COLUMNS = ("path", "image", "image_path", "file", "filename")
_MASK_COLUMNS = ("mask_path", "mask")
_CROP_COLUMNS = ("crop_x", "crop_y", "crop_w", "crop_h")


@dataclass
class ImageList:
    """Images before decoding: one entry per image, in the user's order.

    Attributes
    ----------
    items : list of (str or ndarray)
        A file path, or the image's array ``(H, W)`` / ``(H, W, C)`` / ``(C, H, W)``.
    names : list of str
        How messages and results name each image (its path, or ``"image 3"``).
    labels : ndarray of int8 or None
        0/1 per image when the source carries labels (a manifest's ``label`` column, or
        class folders such as ``good/`` and ``crack/``).
    masks : list of (str or None) or None
        Ground-truth mask file per image (evaluation only).
    boxes : ndarray of int64 (n, 4) or None
        Crop box ``(x, y, w, h)`` per image, ``w = 0`` meaning no crop.
    groups, splits : list of str or None
        A manifest's ``group`` and ``split`` columns.
    channels_last : bool
        For array items: whether a 3-D array is ``(H, W, C)`` (else ``(C, H, W)``).
    """

    items: list[Any]
    names: list[str]
    labels: np.ndarray | None = None
    masks: list[str | None] | None = None
    boxes: np.ndarray | None = None
    groups: list[str] | None = None
    splits: list[str] | None = None
    channels_last: bool = True
    source: str = field(default="", repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def take(self, rows: np.ndarray) -> ImageList:
        """The images at positions (or where the boolean mask is true) ``rows``."""
        rows = np.asarray(rows)
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)

        def pick(values: Any) -> Any:
            if values is None:
                return None
            if isinstance(values, np.ndarray):
                return values[idx]
            return [values[i] for i in idx]

        return ImageList(pick(self.items), pick(self.names), pick(self.labels),
                         pick(self.masks), pick(self.boxes), pick(self.groups),
                         pick(self.splits), self.channels_last, self.source)


# ------------------------------------------------------------------ sources
def _is_path(X: Any) -> bool:
    return isinstance(X, (str, os.PathLike))


def is_image_source(X: Any) -> bool:
    """Whether ``X`` looks like images: an image array, an image file or folder, a
    manifest CSV with a path column, or a list of image paths.

    Examples
    --------
    >>> is_image_source(np.zeros((4, 8, 8))), is_image_source(np.zeros((4, 8)))
    (True, False)
    >>> is_image_source(["a.png", "b.jpg"]), is_image_source("table.csv")
    (True, False)
    """
    if isinstance(X, ImageList):
        return True
    if isinstance(X, np.ndarray):
        return X.ndim in (3, 4) and X.dtype.kind in "uif b" and X.dtype.kind != "c"
    if _is_path(X):
        path = Path(X)
        if path.is_dir():
            return True
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return True
        return suffix == ".csv" and path.is_file() and _manifest_path_column(path) is not None
    if isinstance(X, (list, tuple)) and X and all(_is_path(x) for x in X):
        return all(Path(x).suffix.lower() in IMAGE_SUFFIXES for x in X)
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, np.ndarray) for x in X):
        return all(x.ndim in (2, 3) for x in X)
    return False


def _manifest_path_column(path: Path) -> str | None:
    """The manifest's path column, or None when ``path`` is not a manifest: a CSV is one
    when a header names a path column and its first value is an image path (an image
    suffix, or a file that exists beside the CSV), so that a table with a ``file``
    column stays a table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            first = next(reader, None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    names = [h.strip().lower() for h in header]
    column = next((c for c in _PATH_COLUMNS if c in names), None)
    if column is None or first is None:  # a header alone: read_source says it is empty
        return column
    value = first[names.index(column)].strip() if names.index(column) < len(first) else ""
    if Path(value).suffix.lower() in IMAGE_SUFFIXES or (
            value and (path.parent / value).is_file()):
        return column
    return None


def read_source(X: Any, *, what: str = "images") -> ImageList:
    """An :class:`ImageList` from any supported input.

    Parameters
    ----------
    X : ndarray, path, or list
        An array ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (channels last
        when the last axis has 1 to 4 entries, else first); a folder (read recursively,
        sorted; files without an image suffix are skipped with a warning; with class
        folders such as ``good/`` and ``crack/``, images under a normal folder are
        labelled 0 and all others 1); a manifest CSV (a ``path`` column, relative to the
        CSV's folder, and optional ``label``, ``mask_path``, ``group``, ``split`` and
        ``crop_x/crop_y/crop_w/crop_h`` columns); one image file; or a list of image
        paths or of 2-D/3-D arrays.
    what : str
        How messages name the input.

    Returns
    -------
    ImageList

    Raises
    ------
    InvalidInputError
        An empty folder, a missing file, a manifest without a path column, with a bad
        label or crop value or a missing image (naming its line), an array of the wrong
        rank or dtype (a 2-D array is taken for a table).
    """
    if isinstance(X, ImageList):
        return X
    if isinstance(X, np.ndarray):
        return _from_array(X, what)
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, np.ndarray) for x in X):
        for i, x in enumerate(X):
            if x.ndim not in (2, 3):
                raise InvalidInputError(f"{what}: image {i} has shape {x.shape}; an image is "
                                        "(H, W) or (H, W, C)")
        return ImageList(list(X), [f"image {i}" for i in range(len(X))], source=what)
    if _is_path(X):
        path = Path(X)
        if path.is_dir():
            return _from_folder(path)
        if not path.exists():
            raise InvalidInputError(f"{path}: no such file or folder")
        if path.suffix.lower() == ".csv":
            return _from_manifest(path)
        return _from_paths([path], str(path))
    if isinstance(X, (list, tuple)):
        if not X:
            raise InvalidInputError(f"{what}: the list of images is empty")
        if all(_is_path(x) for x in X):
            return _from_paths([Path(x) for x in X], what)
    table = " (a table?)" if hasattr(X, "columns") or hasattr(X, "to_frame") else ""
    raise InvalidInputError(
        f"{what}: cannot read {type(X).__name__}{table} as images; give an array (N, H, W), "
        "(N, H, W, C) or (N, C, H, W), a folder, a manifest CSV or a list of image paths")


def _from_array(X: np.ndarray, what: str) -> ImageList:
    if X.ndim == 2:
        raise InvalidInputError(
            f"{what}: got a 2-D array of shape {X.shape}, which looks like a table (rows x "
            "columns), not images; image input is an array (N, H, W), (N, H, W, C) or "
            "(N, C, H, W), a folder, a manifest CSV or a list of image paths")
    if X.ndim not in (3, 4):
        raise InvalidInputError(f"{what}: an image array must be (N, H, W), (N, H, W, C) or "
                                f"(N, C, H, W), got shape {X.shape}")
    if X.dtype.kind not in "uifb":
        raise InvalidInputError(f"{what}: image arrays must hold numbers, got dtype {X.dtype}")
    channels_last = True
    if X.ndim == 4:
        last, first = X.shape[3] in (1, 2, 3, 4), X.shape[1] in (1, 2, 3, 4)
        if not (last or first):
            raise InvalidInputError(
                f"{what}: cannot tell the channel axis of an array of shape {X.shape}; "
                "give (N, H, W, C) or (N, C, H, W) with 1 to 4 channels")
        channels_last = last
    return ImageList(list(X), [f"image {i}" for i in range(len(X))],
                     channels_last=channels_last, source=what)


def _label_from_parts(parts: Sequence[str]) -> int | None:
    lowered = [p.lower() for p in parts]
    return 0 if any(p in NORMAL_FOLDERS for p in lowered) else None


def _from_folder(root: Path) -> ImageList:
    files, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            (files if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    if not files:
        extra = f" ({len(skipped)} other files, e.g. {skipped[0].name})" if skipped else ""
        raise InvalidInputError(f"{root}: the folder holds no image files{extra}; images are "
                                + ", ".join(sorted(IMAGE_SUFFIXES)))
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} file(s) that are not images, e.g. "
                      f"{skipped[0].relative_to(root)}", _warning(), stacklevel=3)
    rel = [f.relative_to(root).parts[:-1] for f in files]
    labels = None
    if any(_label_from_parts(parts) == 0 for parts in rel):
        labels = np.array([0 if _label_from_parts(p) == 0 else 1 for p in rel], dtype=np.int8)
    return ImageList([str(f) for f in files], [str(f.relative_to(root)) for f in files],
                     labels=labels, source=str(root))


def _from_paths(paths: list[Path], what: str) -> ImageList:
    for p in paths:
        if not p.is_file():
            raise InvalidInputError(f"{p}: no such image file")
    return ImageList([str(p) for p in paths], [str(p) for p in paths], source=what)


def _from_manifest(path: Path) -> ImageList:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any parse error becomes one clear message
        raise InvalidInputError(f"{path}: cannot read the manifest: {exc}") from None
    df.columns = [c.strip().lower() for c in df.columns]
    column = next((c for c in _PATH_COLUMNS if c in df.columns), None)
    if column is None:
        raise InvalidInputError(f"{path}: not an image manifest (a table?): a manifest needs "
                                f"a path column (one of {', '.join(_PATH_COLUMNS)}); it has "
                                f"{', '.join(df.columns)}")
    if len(df) == 0:
        raise InvalidInputError(f"{path}: the manifest lists no images")
    base = path.parent
    names = df[column].tolist()
    items = []
    for row, name in enumerate(names, start=2):
        if not name:
            raise InvalidInputError(f"{path}, line {row}: empty {column}")
        item = base / name
        if not item.is_file():
            raise InvalidInputError(f"{path}, line {row}: {name}: no such image file "
                                    f"(paths are relative to the manifest's folder)")
        items.append(str(item))
    labels = None
    if "label" in df.columns:
        raw = df["label"].str.strip()
        bad = ~raw.isin(["0", "1"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInputError(f"{path}, line {row + 2}: label must be 0 or 1, got "
                                    f"{raw.iloc[row]!r}")
        labels = raw.astype(np.int8).to_numpy()
    mask_col = next((c for c in _MASK_COLUMNS if c in df.columns), None)
    masks = ([str(base / m) if m else None for m in df[mask_col]] if mask_col else None)
    boxes = None
    if all(c in df.columns for c in _CROP_COLUMNS):
        boxes = np.zeros((len(df), 4), dtype=np.int64)
        for j, c in enumerate(_CROP_COLUMNS):
            values = pd.to_numeric(df[c].replace("", "0"), errors="coerce")
            if values.isna().any() or (values < 0).any():
                row = int(np.flatnonzero((values.isna() | (values < 0)).to_numpy())[0])
                raise InvalidInputError(f"{path}, line {row + 2}: {c} must be a whole number "
                                        f">= 0, got {df[c].iloc[row]!r}")
            boxes[:, j] = values.to_numpy(dtype=np.int64)
    groups = df["group"].tolist() if "group" in df.columns else None
    splits = df["split"].tolist() if "split" in df.columns else None
    return ImageList(items, names, labels, masks, boxes, groups, splits, source=str(path))


def _warning() -> type[Warning]:
    from genad.errors import GenadWarning

    return GenadWarning


# ----------------------------------------------------------------- decoding
def _bad(name: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"{name}: {why}")


def _is_dicom(path: str) -> bool:
    if Path(path).suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _scale_integers(a: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """Integers to ``[0, 1]`` by their type's range; floats as given; bool to 0/1.

    ``dtype``: the type the values were stored as, when ``a`` holds them already
    converted to float (a block mean of a large image).
    """
    dtype = np.dtype(a.dtype if dtype is None else dtype)
    if dtype.kind == "b":
        return a.astype(np.float32)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        if info.min < 0:
            return ((a.astype(np.float32) - info.min) / float(info.max - info.min))
        return a.astype(np.float32) / float(info.max)
    return a.astype(np.float32, copy=False)


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """``a`` ``(H, W)`` or ``(H, W, C)`` averaged over ``factor`` x ``factor`` blocks, as
    float32, a strip of rows at a time (memory: the result and one strip, never a float
    copy of the whole image). Rows and columns past the last whole block are dropped."""
    h, w = a.shape[0] // factor, a.shape[1] // factor
    rest = a.shape[2:]
    out = np.empty((h, w, *rest), dtype=np.float32)
    step = max(1, (1 << 22) // max(1, factor * factor * w * int(np.prod(rest, dtype=np.int64))))
    for top in range(0, h, step):
        rows = min(step, h - top)
        strip = a[top * factor : (top + rows) * factor, : w * factor].astype(np.float32)
        out[top : top + rows] = strip.reshape(rows, factor, w, factor, *rest).mean(axis=(1, 3))
    return out


def _to_chw(a: np.ndarray, channels_last: bool, name: str) -> np.ndarray:
    """An image array as ``(C, H, W)``; RGBA / LA composited over black (alpha dropped)."""
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3:
        if channels_last:
            a = np.moveaxis(a, -1, 0)
    else:
        raise _bad(name, f"an image has 2 or 3 axes, got shape {a.shape}")
    c = a.shape[0]
    if c not in (1, 2, 3, 4):
        raise _bad(name, f"{c} channels; images have 1 (gray), 3 (RGB) or with alpha 2 or 4")
    if c in (2, 4):
        a = a[:-1] * np.clip(a[-1:], 0.0, 1.0)
    return np.ascontiguousarray(a, dtype=np.float32)


def _reduce_factor(height: int, width: int, target: tuple[int, int] | None) -> int:
    if target is None:
        return 1
    return max(1, min(height // max(1, 2 * target[0]), width // max(1, 2 * target[1])))


def _decode_pil(path: str, name: str, target: tuple[int, int] | None
                ) -> tuple[np.ndarray, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path)
                factor = _reduce_factor(img.height, img.width, target)
                if factor > 1 and img.format == "JPEG":
                    img.draft(img.mode, (img.width // factor, img.height // factor))
                size = (img.height, img.width)
                img.load()
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise _bad(name, "not an image file genad can read (PNG, JPEG, BMP, TIFF, DICOM)"
                   ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _bad(name, f"cannot decode the image (corrupt or truncated?): {exc}") from None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    factor = _reduce_factor(img.height, img.width, target)
    if factor > 1 and img.mode in ("L", "RGB", "RGBA", "LA", "I", "F", "I;16"):
        img = img.reduce(factor)
    a = np.asarray(img)
    if img.mode in ("I;16", "I;16B", "I;16L"):
        a = a.astype(np.uint16)
    elif img.mode == "I":  # 32-bit integer PNGs hold 16-bit data
        a = a.astype(np.uint16) if a.size and a.max() <= 65535 and a.min() >= 0 else a
    return _to_chw(_scale_integers(a), True, name), size


def _decode_tiff(path: str, name: str, target: tuple[int, int] | None
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            a = page.asarray()
            planar_chw = getattr(page, "planarconfig", 1) == 2 and a.ndim == 3
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds
        raise _bad(name, f"cannot decode the TIFF image (corrupt or truncated?): {exc}"
                   ) from None
    if a.ndim == 3 and not planar_chw and a.shape[-1] not in (1, 2, 3, 4) \
            and a.shape[0] in (1, 2, 3, 4):
        planar_chw = True
    if a.ndim == 3 and planar_chw:
        a = np.moveaxis(a, 0, -1)  # a view: (H, W, C)
    size = (int(a.shape[0]), int(a.shape[1])) if a.ndim >= 2 else (0, 0)
    factor = _reduce_factor(size[0], size[1], target)
    scaled = (_scale_integers(_block_mean(a, factor), a.dtype) if factor > 1
              else _scale_integers(a))
    return _to_chw(scaled, True, name), size


def _decode_dicom(path: str, name: str, window: tuple[float, float] | None,
                  target: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, tuple[int, int]]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise _bad(name, f"cannot read the DICOM file: {exc}") from None
    if "PixelData" not in ds:
        raise _bad(name, "the DICOM file holds no pixel data (PixelData is missing)")
    try:
        raw = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - codecs raise many kinds
        raise _bad(name, f"cannot decode the DICOM pixel data: {exc}") from None
    if raw.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        raw = raw[0]  # a multi-frame file: the first frame
    size = (int(raw.shape[0]), int(raw.shape[1]))
    factor = _reduce_factor(size[0], size[1], target)
    # the modality rescale is linear: a block mean of the stored values first is exact
    a = _block_mean(raw, factor) if factor > 1 else raw.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    a = a * np.float32(slope) + np.float32(intercept)
    if window is None and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = ds.WindowCenter, ds.WindowWidth
        center = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        window = (center, width)
    if window is not None:
        center, width = window
        low = center - width / 2.0
        a = np.clip((a - np.float32(low)) / np.float32(max(width, 1e-12)), 0.0, 1.0)
    else:
        bits = int(getattr(ds, "BitsStored", 8 * raw.dtype.itemsize))
        signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
        low = (-(2 ** (bits - 1)) if signed else 0) * slope + intercept
        high = ((2 ** (bits - 1) - 1) if signed else (2 ** bits - 1)) * slope + intercept
        lo, hi = min(low, high), max(low, high)
        a = np.clip((a - np.float32(lo)) / np.float32(max(hi - lo, 1e-12)), 0.0, 1.0)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        a = 1.0 - a
    return _to_chw(a.astype(np.float32, copy=False), True, name), size


def decode(item: Any, name: str, *, channels_last: bool = True,
           target: tuple[int, int] | None = None,
           window: tuple[float, float] | None = None) -> np.ndarray:
    """One image as float32 ``(C, H, W)``: :func:`decode_sized` without the size.

    Examples
    --------
    >>> decode(np.full((2, 3), 255, dtype=np.uint8), "x").tolist()
    [[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]
    >>> decode(np.zeros((4, 4, 4), dtype=np.uint16), "rgba").shape
    (3, 4, 4)
    """
    return decode_sized(item, name, channels_last=channels_last, target=target,
                        window=window)[0]


def decode_sized(item: Any, name: str, *, channels_last: bool = True,
                 target: tuple[int, int] | None = None,
                 window: tuple[float, float] | None = None
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as float32 ``(C, H, W)`` in ``[0, 1]`` (floats as given), original size.

    Parameters
    ----------
    item : str or ndarray
        A file path or an image array.
    name : str
        The image's name for error messages.
    channels_last : bool, default True
        For a 3-D array: ``(H, W, C)`` (else ``(C, H, W)``).
    target : (int, int), optional
        The size the caller will resize to; a file at least twice as large is reduced by
        an integer factor while decoding (bounded memory).
    window : (float, float), optional
        DICOM window ``(center, width)`` in rescaled units, overriding the file's.

    Returns
    -------
    image : ndarray of float32, shape (C, H, W), C in {1, 3}
        Smaller than the original when ``target`` let the decoder reduce it.
    size : (int, int)
        The original ``(H, W)``.

    Raises
    ------
    InvalidInputError
        A corrupt, truncated or unreadable file, a DICOM file without pixel data, an
        array of the wrong shape, or non-finite pixel values; the message names the
        image.

    Examples
    --------
    >>> image, size = decode_sized(np.zeros((5, 7), dtype=np.uint8), "x")
    >>> image.shape, size
    ((1, 5, 7), (5, 7))
    """
    if isinstance(item, np.ndarray):
        a = _to_chw(_scale_integers(np.asarray(item)), channels_last, name)
        size = (int(a.shape[1]), int(a.shape[2]))
    else:
        path = str(item)
        if not os.path.isfile(path):
            raise _bad(name, "no such image file")
        if _is_dicom(path):
            a, size = _decode_dicom(path, name, window, target)
        elif Path(path).suffix.lower() in (".tif", ".tiff"):
            a, size = _decode_tiff(path, name, target)
        else:
            a, size = _decode_pil(path, name, target)
    if a.shape[1] == 0 or a.shape[2] == 0:
        raise _bad(name, f"the image is empty ({a.shape[2]} x {a.shape[1]} pixels)")
    if not np.all(np.isfinite(a)):
        raise _bad(name, "the image holds NaN or infinite pixel values")
    return a, size


def decode_mask(path: str | None, name: str, size: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask as bool ``(H, W)`` (nonzero = defect), checked against its
    image's ``size`` ``(H, W)``; no path means an all-normal mask.

    Raises
    ------
    InvalidInputError
        The mask cannot be read or its size differs from its image's (naming both).
    """
    if path is None or path == "":
        return np.zeros(size, dtype=bool)
    a = decode(path, f"mask {path}")
    mask = a.max(axis=0) > 0
    if mask.shape != tuple(size):
        raise InvalidInputError(
            f"mask {path} is {mask.shape[1]} x {mask.shape[0]} pixels but its image {name} is "
            f"{size[1]} x {size[0]}")
    return mask
