"""Anomaly maps drawn over their images, for the CLI and the HTML report.

Everything here is plain numpy, Pillow and a matplotlib colormap (no figure, no
``pyplot``, no torch), and returns :class:`PIL.Image.Image` objects in mode ``"RGB"``:
:func:`overlay` colours a map over its image, :func:`side_by_side` puts the original next
to the overlay, :func:`grid` tiles images into a near-square sheet, and
:func:`to_png_bytes` / :func:`to_data_uri` encode any of them as PNG.

Images may be ``(H, W)`` or ``(H, W, C)`` with ``C`` 1, 3 or 4 (channels last), of dtype
uint8 (0-255), uint16 (0-65535) or float (assumed in [0, 1], clipped), or a PIL image. An
alpha channel is dropped, as ``PIL.Image.convert("RGB")`` does; NaN pixels are drawn
black.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap
from PIL import Image

from genad.errors import InvalidInputError

__all__ = ["overlay", "side_by_side", "grid", "to_png_bytes", "to_data_uri"]

#: colour of the padding between the tiles of :func:`grid` and :func:`side_by_side`
_BACKGROUND = 255
#: PIL modes read as they are; any other mode (palette, CMYK, 1-bit, ...) is converted to RGB
_PIL_MODES = {"L", "RGB", "RGBA", "I;16", "F"}


def _rgb(image: Any, what: str = "image") -> np.ndarray:
    """``image`` as float64 ``(H, W, 3)`` in [0, 1], NaN-free."""
    if isinstance(image, Image.Image):
        if image.mode not in _PIL_MODES:
            image = image.convert("RGB")
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr[:, :, :3] if arr.shape[2] != 1 else arr[:, :, 0]
    elif arr.ndim != 2:
        raise InvalidInputError(
            f"{what} must be (H, W) or (H, W, C) with C 1, 3 or 4 (channels last); "
            f"got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        out = arr / 255.0
    elif arr.dtype == np.uint16:
        out = arr / 65535.0
    elif arr.dtype == bool or np.issubdtype(arr.dtype, np.floating):
        out = np.clip(np.nan_to_num(arr.astype(np.float64), nan=0.0), 0.0, 1.0)
    else:
        raise InvalidInputError(
            f"{what} has dtype {arr.dtype}; pass uint8, uint16 or floats in [0, 1]"
        )
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return out


def _to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8), "RGB")


def _colormap(cmap: str | Colormap) -> Colormap:
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return colormaps[cmap]
    except KeyError:
        raise InvalidInputError(f"unknown colormap {cmap!r}") from None


def _heat(amap: Any, shape: tuple[int, ...], vmin: float, vmax: float | None) -> np.ndarray:
    """The map scaled to [0, 1] between ``vmin`` and ``vmax``; NaN and -inf are cold."""
    arr = np.asarray(amap, dtype=np.float64)
    if arr.shape != shape[:2]:
        raise InvalidInputError(
            f"the map has shape {arr.shape} but the image has shape {shape}; "
            "they must have the same height and width"
        )
    vmin = float(vmin)
    if not math.isfinite(vmin):
        raise InvalidInputError(f"vmin must be finite, got {vmin}")
    if vmax is None:
        finite = arr[np.isfinite(arr)]
        top = float(finite.max()) if finite.size else vmin
    else:
        top = float(vmax)
        if not math.isfinite(top) or top <= vmin:
            raise InvalidInputError(f"vmax must be finite and above vmin={vmin}, got {vmax}")
    if top <= vmin:  # a map nowhere above vmin: all cold
        return np.zeros(arr.shape)
    arr = np.nan_to_num(arr, nan=vmin, posinf=top, neginf=vmin)
    return np.clip((arr - vmin) / (top - vmin), 0.0, 1.0)


def overlay(
    image: Any,
    amap: Any,
    *,
    vmin: float = 0.0,
    vmax: float | None = None,
    alpha: float = 0.5,
    cmap: str | Colormap = "inferno",
) -> Image.Image:
    """Colour an anomaly map over its image.

    The map is clipped to ``[vmin, vmax]``, scaled to [0, 1] (its *heat*) and coloured
    with ``cmap``; each pixel is then blended as ``(1 - w) * image + w * colour`` with
    ``w = alpha * heat``, so pixels at or below ``vmin`` keep the image as it is and the
    hottest pixels take ``alpha`` of their colour.

    Parameters
    ----------
    image : array-like or PIL.Image.Image
        ``(H, W)`` or ``(H, W, C)``, C 1, 3 or 4; uint8, uint16 or float in [0, 1].
    amap : array-like of shape (H, W)
        The anomaly map, higher = more anomalous; NaN and -inf are drawn cold, +inf hot.
    vmin : float, default=0.0
        Map value drawn coldest (no colour).
    vmax : float, optional
        Map value drawn hottest. The default, the map's own maximum, makes every map look
        hot somewhere, even a normal one: to compare images, pass one scale for all of
        them (for instance a high quantile of the maps of normal images, or the
        detector's threshold), so that a normal image stays cold.
    alpha : float, default=0.5
        Opacity of the hottest colour, in [0, 1]; 0 returns the image unchanged.
    cmap : str or matplotlib.colors.Colormap, default="inferno"
        A matplotlib colormap or its name.

    Returns
    -------
    PIL.Image.Image
        An RGB image of size ``(W, H)``.

    Raises
    ------
    InvalidInputError
        When the map's shape differs from the image's height and width (the message gives
        both), an argument is out of range, or the colormap is unknown.

    Examples
    --------
    >>> image = np.full((2, 2), 0.5)
    >>> amap = np.array([[0.0, 0.0], [0.0, 1.0]])
    >>> out = overlay(image, amap, alpha=1.0)
    >>> out.size, out.getpixel((0, 0)), out.getpixel((1, 1))
    ((2, 2), (128, 128, 128), (252, 255, 164))
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"alpha must be in [0, 1], got {alpha}")
    rgb = _rgb(image)
    shape = np.asarray(image).shape if not isinstance(image, Image.Image) else rgb.shape
    heat = _heat(amap, shape, vmin, vmax)
    colours = _colormap(cmap)(heat)[:, :, :3]
    weight = alpha * heat[:, :, None]
    return _to_image((1.0 - weight) * rgb + weight * colours)


def side_by_side(
    image: Any,
    amap: Any,
    *,
    vmin: float = 0.0,
    vmax: float | None = None,
    alpha: float = 0.5,
    cmap: str | Colormap = "inferno",
    pad: int = 2,
) -> Image.Image:
    """The original image, then its :func:`overlay`, in one image (a gallery tile).

    Parameters
    ----------
    image, amap, vmin, vmax, alpha, cmap
        As for :func:`overlay`.
    pad : int, default=2
        White pixels between the two halves.

    Returns
    -------
    PIL.Image.Image
        An RGB image of size ``(2 * W + pad, H)``.

    Examples
    --------
    >>> side_by_side(np.zeros((4, 3)), np.ones((4, 3)), vmax=1.0).size
    (8, 4)
    """
    hot = overlay(image, amap, vmin=vmin, vmax=vmax, alpha=alpha, cmap=cmap)
    return grid([_to_image(_rgb(image)), hot], ncols=2, pad=pad)


def _tiles(images: Any) -> list[np.ndarray]:
    """Every image of ``images`` as float RGB ``(H, W, 3)``, all of one size."""
    if isinstance(images, np.ndarray):
        if images.ndim == 4 and images.shape[3] not in (1, 3, 4):
            raise InvalidInputError(
                f"images must be (N, H, W) or (N, H, W, C) with C 1, 3 or 4; got shape "
                f"{images.shape} (for channels-first arrays pass images.transpose(0, 2, 3, 1))"
            )
        if images.ndim not in (3, 4):
            raise InvalidInputError(
                f"images must be (N, H, W) or (N, H, W, C); got shape {images.shape}"
            )
    elif not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
        raise InvalidInputError(
            f"images must be an array or a list of images, got {type(images).__name__}"
        )
    tiles = [_rgb(image, what=f"image {i}") for i, image in enumerate(images)]
    if not tiles:
        raise InvalidInputError("no images to put in a grid")
    for i, tile in enumerate(tiles):
        if tile.shape != tiles[0].shape:
            raise InvalidInputError(
                f"image {i} is {tile.shape[0]}x{tile.shape[1]} but image 0 is "
                f"{tiles[0].shape[0]}x{tiles[0].shape[1]} (height x width); a grid needs "
                "images of one size"
            )
    return tiles


def grid(images: Any, ncols: int | None = None, pad: int = 2) -> Image.Image:
    """Tile images of one size row by row into a near-square sheet.

    Parameters
    ----------
    images : array-like of shape (N, H, W) or (N, H, W, C), or a list of images
        uint8, uint16 or float in [0, 1]; C is 1, 3 or 4 (channels last). A list may mix
        arrays and PIL images, all of one height and width.
    ncols : int, optional
        Number of columns; by default ``ceil(sqrt(N))``. More than ``N`` gives ``N``.
    pad : int, default=2
        White pixels between neighbouring tiles (none around the sheet).

    Returns
    -------
    PIL.Image.Image
        An RGB image ``ncols * W + (ncols - 1) * pad`` wide and
        ``nrows * H + (nrows - 1) * pad`` high, ``nrows = ceil(N / ncols)``; cells past
        the last image are white.

    Examples
    --------
    >>> sheet = grid(np.zeros((5, 8, 6), dtype=np.uint8))   # 5 tiles of 8x6: 3 columns
    >>> sheet.size
    (22, 18)
    """
    tiles = _tiles(images)
    n = len(tiles)
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise InvalidInputError(f"ncols must be a positive integer, got {ncols!r}")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise InvalidInputError(f"pad must be a non-negative integer, got {pad!r}")
    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    h, w = tiles[0].shape[:2]
    sheet = np.full(
        (nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, 3),
        _BACKGROUND / 255.0,
    )
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncols)
        sheet[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tile
    return _to_image(sheet)


def to_png_bytes(img: Any) -> bytes:
    """Encode an image as PNG.

    Parameters
    ----------
    img : PIL.Image.Image or array-like
        A PIL image is written in its own mode; an array is read as for :func:`overlay`'s
        ``image`` and written as RGB.

    Returns
    -------
    bytes
        The PNG file's content.

    Examples
    --------
    >>> to_png_bytes(np.zeros((2, 2)))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    if not isinstance(img, Image.Image):
        img = _to_image(_rgb(img))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def to_data_uri(img: Any) -> str:
    """Encode an image as a ``data:image/png;base64,...`` URI (self-contained HTML).

    Parameters
    ----------
    img : PIL.Image.Image or array-like
        As for :func:`to_png_bytes`.

    Returns
    -------
    str
        The PNG as a data URI, usable as an ``<img src>``.

    Examples
    --------
    >>> to_data_uri(np.zeros((2, 2))).startswith("data:image/png;base64,")
    True
    """
    return "data:image/png;base64," + base64.b64encode(to_png_bytes(img)).decode("ascii")
