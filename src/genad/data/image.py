"""The image adapter: folders, manifests, path lists and arrays of images as model input.

:class:`ImageAdapter` turns images into ``(C, H, W)`` float tensors of one size and turns
the model's per-pixel errors back into anomaly maps at each image's original size:

1. **Decode** (:mod:`genad.data.image_io`): PNG, JPEG, BMP, TIFF (16-bit too), DICOM;
   integers scaled by their bit depth, never by the image's own range.
2. **Crop** to the manifest's box, when it has one.
3. **Channels**: learned in ``fit``: one channel when every training image is gray (a
   3-channel image whose channels are equal counts as gray), else three; a colour image
   given to a gray model is converted to luminance, a gray one to a colour model
   repeated.
4. **Resize** to ``size`` with ``resize="stretch"`` (both sides scaled) or
   ``"letterbox"`` (aspect kept, the rest padded with black and ignored by the maps).
5. **Equalise** (optional, ``equalize=True``): each image's histogram, channel by
   channel: every pixel becomes its rank among the image's own pixels, in ``(0, 1)``
   (equal values stay equal), so exposure and contrast that vary from one radiograph to
   the next no longer count.
6. **Normalise** with the per-channel mean and standard deviation of the training
   images (learned in ``fit``, stored in the bundle).
7. **Tile** (optional): ``tile`` px squares with ``tile_overlap``; each tile is one unit
   of the model, its maps are stitched back by averaging the overlaps.

Maps: each unit's map is averaged over channels, stitched, smoothed (Gaussian,
``smoothing`` px at model resolution; letterbox padding first takes the values of the
image's edge, so its errors do not spread into the image) and standardised per pixel
with the mean and standard deviation of the training images' maps (so a normal image
stays cold, and a pixel that is always hard to reconstruct, such as an edge, is not hot
by itself; letterbox padding does not count in these statistics); then the letterbox
padding is cut off and the map is resized to the image's original size (of its crop
box, when the manifest gives one). The image score is chosen by ``score``:
``"model"`` (the model's own score; over an image's tiles, their maximum or, with
``tile_score="mean"``, their mean), ``"max"`` (the
map's maximum) or ``"top_k"`` (the default: the mean of its hottest ``top_k`` share of
pixels), both over the image's own pixels (never the padding).

Images are decoded lazily, a batch at a time, with a cache of prepared images when they
fit in ``cache_mb`` (so training epochs do not decode again); arrays are prepared at once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from genad._params import Constraint, Integer, OneOf, Real, plain, validate_params
from genad.data.base import Adapter, SampleSet, TensorSampleSet, register_adapter, renumber
from genad.data.image_io import (
    ImageList,
    decode_mask,
    decode_sized,
    is_image_source,
    read_source,
)
from genad.errors import GenadWarning, InvalidInputError

if TYPE_CHECKING:
    import torch

__all__ = ["ImageAdapter", "ImageSampleSet"]

#: luminance weights (ITU-R BT.601) for a colour image given to a gray model
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: images sampled in ``fit`` for the channel decision and the normalisation statistics
_STAT_IMAGES = 256
#: the longest side of the default model size
_DEFAULT_SIDE = 128
#: pixel maps' standard deviations are floored at this share of their median (a pixel
#: with no variation on the training images, such as letterbox padding, stays finite)
_STD_FLOOR = 0.1
#: augmentations ``augment`` may name
AUGMENTATIONS = ("hflip", "vflip", "rotate", "jitter")


# ------------------------------------------------------------- constraints
@dataclass(frozen=True)
class _Size(Constraint):
    """None, a side ``>= 1``, or ``(height, width)``."""

    def check(self, name: str, value: Any) -> None:
        if value is None:
            return
        sides = list(value) if isinstance(value, (list, tuple)) else [value]
        ok = len(sides) in (1, 2) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
            for s in sides)
        if not ok:
            raise InvalidInputError(f"{name} must be None, a side in pixels (>= 1) or "
                                    f"(height, width), got {plain(value)}")


@dataclass(frozen=True)
class _Window(Constraint):
    """None or ``(center, width)`` with a positive width."""

    def check(self, name: str, value: Any) -> None:
        if value is None:
            return
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float, np.integer, np.floating))
                      and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)
                      for v in value) and value[1] > 0)
        if not ok:
            raise InvalidInputError(f"{name} must be None or (center, width) with width > 0, "
                                    f"got {plain(value)}")


@dataclass(frozen=True)
class _Augment(Constraint):
    """None or a list of :data:`AUGMENTATIONS`."""

    def check(self, name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or any(
                v not in AUGMENTATIONS for v in value):
            raise InvalidInputError(f"{name} must be None or a list of "
                                    f"{', '.join(map(repr, AUGMENTATIONS))}, got {plain(value)}")


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, (list, tuple)):
        return (int(size[0]), int(size[-1]))
    return (int(size), int(size))


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins along one side: every ``stride``, the last flush with the end."""
    starts = list(range(0, max(1, length - tile + 1), stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


# -------------------------------------------------------------- sample set
class ImageSampleSet(SampleSet):
    """Images prepared lazily, one unit (an image, or a tile) per item.

    Parameters
    ----------
    adapter : ImageAdapter
        A fitted adapter (its size, channels, statistics and tiling).
    images : ImageList
        The images.
    cache : bool
        Keep each prepared image after its first use.
    """

    def __init__(self, adapter: ImageAdapter, images: ImageList, cache: bool,
                 units: np.ndarray | None = None) -> None:
        self.adapter = adapter
        self.images = images
        n_tiles = adapter.n_tiles_
        self.units = (np.arange(len(images) * n_tiles, dtype=np.int64) if units is None
                      else np.asarray(units, dtype=np.int64))
        image_of_unit = self.units // n_tiles
        self.owner, kept = renumber(image_of_unit)
        self.image_ids = kept  # position in ``images`` of each user sample
        self.n_samples = len(kept)
        self.sample_shape = adapter.sample_shape_
        self.meta = {"index": np.asarray([images.names[i] for i in kept], dtype=object)}
        self.cache = cache
        self._prepared: dict[int, torch.Tensor] = {}
        self.sizes: dict[int, tuple[int, int]] = {}
        #: augmentations applied by ``[i]`` (set on the training part by ``holdout``)
        self.augment: tuple[str, ...] = ()
        self._rng = np.random.default_rng(0)
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.units)

    def prepared(self, image: int) -> torch.Tensor:
        """Image ``image`` (a position in ``images``) at model size, normalised."""
        found = self._prepared.get(image)
        if found is not None:
            return found
        x, size = self.adapter._prepare(self.images, image)
        self.sizes[image] = size
        if self.cache:
            self._prepared[image] = x
        return x

    def _unit(self, i: int) -> torch.Tensor:
        unit = int(self.units[i])
        n_tiles = self.adapter.n_tiles_
        return self.adapter._tile(self.prepared(unit // n_tiles), unit % n_tiles)

    def __getitem__(self, i: int) -> torch.Tensor:
        """Unit ``i``, augmented when :attr:`augment` names augmentations (the training
        part of :meth:`ImageAdapter.holdout`)."""
        x = self._unit(i)
        if self.augment:
            from torch.utils.data import get_worker_info

            worker = get_worker_info()  # a DataLoader worker: its own stream each epoch
            if worker is not None and self._worker_seed != worker.seed:
                self._worker_seed = worker.seed
                self._rng = np.random.default_rng(worker.seed)
            x = _augmented(x, self.augment, self._rng)
        return x

    def stacked(self) -> torch.Tensor:
        """Every unit, never augmented: scoring and the model's set-up read the images as
        they are; only the training loop's batches (items read one at a time) are."""
        import torch

        if len(self) == 0:
            return torch.empty((0, *self.sample_shape))
        return torch.stack([self._unit(i) for i in range(len(self))])

    def subset(self, units: np.ndarray) -> ImageSampleSet:
        part = ImageSampleSet(self.adapter, self.images, self.cache,
                              self.units[np.asarray(units, dtype=np.int64)])
        part._prepared, part.sizes = self._prepared, self.sizes  # shared: decode once
        return part

    def original_size(self, sample: int) -> tuple[int, int]:
        """``(H, W)`` of user sample ``sample`` as decoded (after the crop box)."""
        image = int(self.image_ids[sample])
        if image not in self.sizes:
            self.prepared(image)
        return self.sizes[image]


def _augmented(x: torch.Tensor, kinds: tuple[str, ...], rng: np.random.Generator
               ) -> torch.Tensor:
    """A randomly flipped, rotated (up to 10 degrees) or intensity-jittered copy."""
    import torch

    if "hflip" in kinds and rng.random() < 0.5:
        x = torch.flip(x, dims=(-1,))
    if "vflip" in kinds and rng.random() < 0.5:
        x = torch.flip(x, dims=(-2,))
    if "rotate" in kinds:
        angle = math.radians(float(rng.uniform(-10.0, 10.0)))
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)[None]
        grid = torch.nn.functional.affine_grid(theta, [1, *x.shape], align_corners=False)
        x = torch.nn.functional.grid_sample(x[None], grid, padding_mode="border",
                                            align_corners=False)[0]
    if "jitter" in kinds:
        x = x * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.1, 0.1))
    return x


# ----------------------------------------------------------------- adapter
@register_adapter
class ImageAdapter(Adapter):
    """Images (folders, manifests, path lists, arrays) as model input, and maps back.

    Parameters
    ----------
    size : int or (int, int), optional
        The model's input size ``(height, width)`` (an int for a square). Default: the
        training images' size when they all share one whose longer side is at most
        128 px; else the longer side scaled to 128 px at the training images' median
        aspect ratio (sides rounded to multiples of 8).
    resize : {"stretch", "letterbox"}, default "stretch"
        ``"stretch"`` scales both sides to ``size``; ``"letterbox"`` keeps the aspect
        ratio and pads with black (the padding is cut from the maps).
    channels : {None, 1, 3}, default None
        None: one channel when every training image is gray, else three.
    tile : int, optional
        Cut each resized image into ``tile`` x ``tile`` squares, each a unit of the
        model (for large images with small defects); maps are stitched back.
    tile_overlap : float, default 0.25
        Share of a tile's side that neighbouring tiles overlap, in ``[0, 1)``.
    tile_score : {"max", "mean"}, default "max"
        With tiles and ``score="model"``, how an image's tile scores make its score: the
        highest (a small defect shows in one tile) or the mean (a change spread over the
        whole image, such as an opacity on a chest X-ray). Ignored otherwise.
    score : {"model", "max", "top_k"}, default "top_k"
        The image score: the model's own score (over tiles as ``tile_score`` says; the
        papers' scores, such as GANomaly's latent distance), the maximum of the normalised
        map, or the mean of its hottest ``top_k`` share of pixels (the default: the
        map discounts what varies among normal images, the model's score does not).
    top_k : float, default 0.01
        Share of pixels averaged by ``score="top_k"``, in ``(0, 1]``.
    smoothing : float, default 1.0
        Standard deviation (model pixels) of the Gaussian that smooths the maps; 0
        turns smoothing off.
    window : (float, float), optional
        DICOM window ``(center, width)`` in rescaled units, overriding the files'.
    equalize : bool, default False
        Equalise each image's histogram after resizing (each channel's pixels replaced by
        their mid-rank among the image's own pixels, in ``(0, 1)``): for radiographs
        whose exposure and contrast vary from image to image. It discards the image's
        overall brightness, so leave it off where brightness is the anomaly. Generated
        samples (:meth:`to_data`) are equalised images.
    augment : list of str, optional
        Training augmentations, off by default: ``"hflip"``, ``"vflip"``,
        ``"rotate"`` (up to 10 degrees), ``"jitter"`` (gain 0.9-1.1, offset +-0.1 in
        normalised units). The held-out images are never augmented.
    cache_mb : int, default 2048
        Keep prepared images in memory when a set fits in this many MiB (0: never).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).integers(0, 255, size=(8, 20, 30), dtype=np.uint8)
    >>> adapter = ImageAdapter(size=16).fit(images)
    >>> adapter.sample_shape_, len(adapter.samples(images))
    ((1, 16, 16), 8)
    """

    kind: ClassVar[str] = "image"
    parameter_constraints: ClassVar[dict[str, Any]] = {
        "size": _Size(),
        "resize": OneOf(("stretch", "letterbox")),
        "channels": OneOf((1, 3), allow_none=True),
        "tile": Integer(1, allow_none=True),
        "tile_overlap": Real(0.0, 1.0, high_open=True),
        "tile_score": OneOf(("max", "mean")),
        "score": OneOf(("model", "max", "top_k")),
        "top_k": Real(0.0, 1.0, low_open=True),
        "smoothing": Real(0.0),
        "window": _Window(),
        "equalize": OneOf((True, False)),
        "augment": _Augment(),
        "cache_mb": Integer(0),
    }
    score_batch_size: ClassVar[int] = 64
    score_chunk_size: ClassVar[int] = 512
    auto_weight_averaging: ClassVar[float | None] = 2.0
    data_noun: ClassVar[str] = "image set"
    sample_noun: ClassVar[str] = "image"

    def __init__(self, size: int | tuple[int, int] | None = None, resize: str = "stretch",
                 channels: int | None = None, tile: int | None = None,
                 tile_overlap: float = 0.25, tile_score: str = "max",
                 score: str = "top_k", top_k: float = 0.01,
                 smoothing: float = 1.0, window: tuple[float, float] | None = None,
                 equalize: bool = False, augment: list[str] | None = None,
                 cache_mb: int = 2048) -> None:
        self.size = size
        self.resize = resize
        self.channels = channels
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.tile_score = tile_score
        self.score = score
        self.top_k = top_k
        self.smoothing = smoothing
        self.window = window
        self.equalize = equalize
        self.augment = augment
        self.cache_mb = cache_mb

    # ------------------------------------------------------------- reading
    @classmethod
    def accepts(cls, X: Any) -> bool:
        return is_image_source(X)

    def read(self, X: Any) -> ImageList:
        return read_source(X)

    def n_samples(self, data: Any) -> int:
        return len(read_source(data))

    def take(self, data: Any, rows: np.ndarray) -> ImageList:
        return read_source(data).take(rows)

    def read_labelled(self, source: Any, label_column: str | None) -> tuple[Any, Any]:
        """``(images, labels)``: labels from the manifest's ``label`` column or class
        folders (``good/`` and the like are normal, other class folders anomalies);
        None when the source has none."""
        images = read_source(source)
        if label_column not in (None, "label"):
            raise InvalidInputError(f"{source}: image labels come from a manifest's 'label' "
                                    f"column or from class folders, not {label_column!r}")
        return images, images.labels

    # ------------------------------------------------------------- learning
    def _target(self) -> tuple[int, int] | None:
        return None if self.size is None else _pair(self.size)

    def fit(self, X: Any) -> ImageAdapter:
        """Learn the model size, channels and normalisation from training images.

        Up to 256 images, evenly spread over ``X``, are decoded for the statistics; each
        is kept at most at model size (or at most 128 px a side while the default size
        is not yet known), so memory does not grow with the images' size.

        Warns (:class:`~genad.errors.GenadWarning`) when ``X`` labels some images as
        anomalies (class folders, a manifest's ``label``): ``fit`` trains on every
        image it is given; the detector's ``fit(X, y)`` leaves out those with ``y == 1``.
        """
        validate_params(self.get_params(), self.parameter_constraints)
        images = read_source(X)
        if len(images) == 0:
            raise InvalidInputError("the training image set is empty (0 images)")
        if images.labels is not None and images.labels.any():
            first = images.names[int(np.argmax(images.labels))]
            warnings.warn(
                f"{int(images.labels.sum())} of the {len(images)} training images are "
                f"labelled anomalies (e.g. {first}) and are learnt as normal; pass the labels "
                "(fit(X, y)) or only the normal images", GenadWarning, stacklevel=2)
        picks = np.unique(np.linspace(0, len(images) - 1, min(len(images), _STAT_IMAGES))
                          .astype(np.int64))
        target = self._target()
        if target is not None:
            self.size_ = target
        gray, kept, sizes = True, [], []
        for i in picks:
            a, size = self._decode(images, int(i), target or (_DEFAULT_SIDE, _DEFAULT_SIDE))
            gray = gray and (a.shape[0] == 1 or bool(np.all(np.abs(a - a[:1]) <= 1.0 / 255)))
            kept.append(self._resized(a, size) if target is not None
                        else _shrunk(a, _DEFAULT_SIDE))
            sizes.append(size)
        self.channels_ = int(self.channels) if self.channels is not None else (1 if gray else 3)
        if target is None:
            self.size_ = self._default_size(sizes)
        self._set_tiles()
        self.mean_ = np.zeros(self.channels_, dtype=np.float64)
        self.std_ = np.ones(self.channels_, dtype=np.float64)
        prepared = np.stack([self._prepare_array(a, size)
                             for a, size in zip(kept, sizes, strict=True)])
        self.mean_ = prepared.mean(axis=(0, 2, 3), dtype=np.float64)
        std = prepared.std(axis=(0, 2, 3), dtype=np.float64)
        self.std_ = np.where(std > 1e-6, std, 1.0)
        self.map_mean_ = None
        self.map_std_ = None
        self.map_hot_ = None
        return self

    @staticmethod
    def _default_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
        if len(set(sizes)) == 1 and max(sizes[0]) <= _DEFAULT_SIDE:
            return sizes[0]
        aspect = float(np.median([w / h for h, w in sizes]))
        if aspect >= 1:
            h, w = _DEFAULT_SIDE / aspect, _DEFAULT_SIDE
        else:
            h, w = _DEFAULT_SIDE, _DEFAULT_SIDE * aspect
        return (max(8, int(round(h / 8)) * 8), max(8, int(round(w / 8)) * 8))

    def _set_tiles(self) -> None:
        h, w = self.size_
        if self.tile is None:
            self.tile_starts_ = ([0], [0])
            self.sample_shape_value = (self.channels_, h, w)
        else:
            t = int(self.tile)
            if t > min(h, w):
                raise InvalidInputError(f"tile ({t} px) is larger than the model size "
                                        f"{h} x {w}; use a smaller tile or a larger size")
            stride = max(1, int(round(t * (1.0 - float(self.tile_overlap)))))
            self.tile_starts_ = (_tile_starts(h, t, stride), _tile_starts(w, t, stride))
            self.sample_shape_value = (self.channels_, t, t)

    @property
    def sample_shape_(self) -> tuple[int, ...]:
        return self.sample_shape_value

    @property
    def n_tiles_(self) -> int:
        return len(self.tile_starts_[0]) * len(self.tile_starts_[1])

    @property
    def units_per_sample(self) -> int:
        return self.n_tiles_

    # ------------------------------------------------------------ preparing
    def _decode(self, images: ImageList, i: int, target: tuple[int, int] | None
                ) -> tuple[np.ndarray, tuple[int, int]]:
        """Image ``i`` decoded and cropped: ``(array (C, H, W), (H, W))``."""
        a, size = decode_sized(images.items[i], images.names[i],
                               channels_last=images.channels_last, target=target,
                               window=None if self.window is None else tuple(self.window))
        if images.boxes is not None and images.boxes[i, 2] > 0 and images.boxes[i, 3] > 0:
            x, y, w, h = (int(v) for v in images.boxes[i])
            if x + w > size[1] or y + h > size[0]:
                raise InvalidInputError(
                    f"{images.names[i]}: crop box x={x} y={y} w={w} h={h} is outside the "
                    f"{size[1]} x {size[0]} image")
            if a.shape[1:] != size:  # decoded smaller than the original: scale the box
                fy, fx = a.shape[1] / size[0], a.shape[2] / size[1]
                x, y, w, h = int(x * fx), int(y * fy), max(1, int(w * fx)), max(1, int(h * fy))
            a = a[:, y : y + h, x : x + w]
            size = (int(images.boxes[i, 3]), int(images.boxes[i, 2]))
        return a, size

    def _channels(self, a: np.ndarray) -> np.ndarray:
        c = a.shape[0]
        if c == self.channels_:
            return a
        if self.channels_ == 1:
            return np.tensordot(_LUMA, a, axes=1)[None].astype(np.float32)
        return np.repeat(a, 3, axis=0)

    def _content_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Where an ``height x width`` image lands in the model frame: ``(top, left, h,
        w)`` (the whole frame when stretched)."""
        th, tw = self.size_
        if self.resize == "stretch":
            return 0, 0, th, tw
        scale = min(th / height, tw / width)
        h, w = max(1, min(th, round(height * scale))), max(1, min(tw, round(width * scale)))
        return (th - h) // 2, (tw - w) // 2, h, w

    def _resized(self, a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A decoded ``(C, H, W)`` image whose original size is ``size`` (the decoder may
        have reduced it) resized to its content box in the model frame."""
        import torch

        _, _, h, w = self._content_box(*size)
        if (h, w) == tuple(a.shape[1:]):
            return a
        x = torch.from_numpy(np.ascontiguousarray(a))[None]
        return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                               align_corners=False)[0].numpy()

    def _prepare_array(self, a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A decoded ``(C, H, W)`` image of original size ``size`` at model size and
        channels, normalised: resized to its content box (computed from the original
        size, so that :meth:`to_map` cuts the same box), channels converted, equalised
        (with ``equalize``), padded."""
        import torch

        a = self._channels(self._resized(a, size))
        if self.equalize:
            a = _equalized(a)
        x = torch.from_numpy(np.ascontiguousarray(a))[None]
        top, left, h, w = self._content_box(*size)
        th, tw = self.size_
        if (h, w) != (th, tw):
            x = torch.nn.functional.pad(x, (left, tw - w - left, top, th - h - top))
        mean = torch.as_tensor(self.mean_, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std_, dtype=torch.float32).view(1, -1, 1, 1)
        return ((x - mean) / std)[0].numpy()

    def _prepare(self, images: ImageList, i: int) -> tuple[torch.Tensor, tuple[int, int]]:
        import torch

        a, size = self._decode(images, i, self.size_)
        return torch.from_numpy(self._prepare_array(a, size)), size

    def _tile(self, x: torch.Tensor, t: int) -> torch.Tensor:
        if self.tile is None:
            return x
        rows, cols = self.tile_starts_
        top, left, side = rows[t // len(cols)], cols[t % len(cols)], int(self.tile)
        return x[:, top : top + side, left : left + side]

    # ---------------------------------------------------------- sample sets
    def samples(self, X: Any) -> SampleSet:
        """The images of ``X`` as units: prepared at once into memory for arrays (unless
        ``augment`` asks for fresh copies), read lazily for files."""
        images = _nonempty(read_source(X))
        per_image = 4 * math.prod(self.sample_shape_) * self.n_tiles_
        cache = self.cache_mb > 0 and per_image * len(images) <= self.cache_mb * 2**20
        lazy = ImageSampleSet(self, images, cache)
        if not self.augment and all(isinstance(item, np.ndarray) for item in images.items):
            return _in_memory(lazy)
        return lazy

    def chunks(self, X: Any, size: int) -> Iterator[SampleSet]:
        images = _nonempty(read_source(X))
        step = max(1, size // self.n_tiles_)
        for start in range(0, len(images), step):
            part = images.take(np.arange(start, min(len(images), start + step)))
            yield _in_memory(ImageSampleSet(self, part, cache=False))

    def holdout(self, samples: SampleSet, fraction: float,
                rng: np.random.Generator) -> tuple[SampleSet, SampleSet]:
        """Hold out whole images (all their tiles), by manifest group when there is one;
        augmentation, when asked for, applies to the training part only."""
        groups = None
        if isinstance(samples, ImageSampleSet) and samples.images.groups is not None:
            groups = np.asarray([samples.images.groups[i] for i in samples.image_ids])
        if groups is None or len(set(groups.tolist())) < 2:
            train, held = super().holdout(samples, fraction, rng)
        else:
            names, group_of = np.unique(groups, return_inverse=True)
            order = rng.permutation(len(names))
            sizes = np.bincount(group_of)[order]
            n_held = int(np.searchsorted(np.cumsum(sizes), fraction * len(groups))) + 1
            held_groups = order[: min(len(names) - 1, max(1, n_held))]
            mask = np.isin(group_of, held_groups)[samples.owner]
            train, held = (samples.subset(np.flatnonzero(~mask)),
                           samples.subset(np.flatnonzero(mask)))
        if self.augment and isinstance(train, ImageSampleSet):
            train.augment = tuple(self.augment)
            train._rng = np.random.default_rng(rng.integers(2**32))
        return train, held

    # ------------------------------------------------------------- results
    learns_maps: ClassVar[bool] = True

    @property
    def scores_need_maps(self) -> bool:
        return self.score != "model"

    def _image_maps(self, unit_maps: np.ndarray, samples: SampleSet,
                    normalise: bool = True) -> np.ndarray:
        """Maps at model resolution ``(n_samples, H, W)``: channel mean, tiles stitched,
        letterbox padding replaced by the content's edge values (so that smoothing does
        not spread the padding's errors into the image), smoothed, and standardised per
        pixel once :meth:`fit_maps` has run."""
        m = unit_maps.reshape(len(unit_maps), *self.sample_shape_).mean(axis=1)
        if self.tile is not None:
            m = self._stitch(m, samples)
        if self.resize == "letterbox":
            th, tw = self.size_
            for s, (top, left, h, w) in enumerate(self._content_boxes(samples)):
                if (h, w) != (th, tw):
                    m[s] = np.pad(m[s, top : top + h, left : left + w],
                                  ((top, th - h - top), (left, tw - w - left)), mode="edge")
        if self.smoothing > 0:
            m = _gaussian(m, float(self.smoothing))
        if normalise and self.map_mean_ is not None:
            m = (m - self.map_mean_) / self.map_std_
        return m

    def _content_boxes(self, samples: SampleSet) -> list[tuple[int, int, int, int]]:
        """Each user sample's content box in the model frame (see :meth:`_content_box`)."""
        return [self._content_box(*_original_size(samples, s)) for s in range(samples.n_samples)]

    def _content_masks(self, samples: SampleSet) -> np.ndarray:
        """``(n_samples, H, W)`` bool: the pixels of the model frame that show the image
        (all of them unless letterboxed)."""
        out = np.zeros((samples.n_samples, *self.size_), dtype=bool)
        if self.resize != "letterbox":
            out[:] = True
            return out
        for s, (top, left, h, w) in enumerate(self._content_boxes(samples)):
            out[s, top : top + h, left : left + w] = True
        return out

    def _stitch(self, tiles: np.ndarray, samples: SampleSet) -> np.ndarray:
        h, w = self.size_
        side = int(self.tile)
        rows, cols = self.tile_starts_
        out = np.zeros((samples.n_samples, h, w))
        count = np.zeros((h, w))
        for t in range(self.n_tiles_):
            top, left = rows[t // len(cols)], cols[t % len(cols)]
            count[top : top + side, left : left + side] += 1
        units = _unit_positions(samples) % self.n_tiles_
        for u, (owner, t) in enumerate(zip(samples.owner, units, strict=True)):
            top, left = rows[t // len(cols)], cols[t % len(cols)]
            out[owner, top : top + side, left : left + side] += tiles[u]
        return out / np.maximum(count, 1)

    def fit_maps(self, parts: Iterator[tuple[np.ndarray, SampleSet]]) -> None:
        """Learn the per-pixel mean and standard deviation of the training maps, and
        ``map_hot_``: the 99.9th percentile of the standardised maps of (up to 256 of)
        the training images.

        Parameters
        ----------
        parts : iterable of (unit maps, sample set)
            The model's maps of the training images, a chunk at a time.
        """
        total = total_sq = count = None
        n = 0
        self.map_mean_ = self.map_std_ = self.map_hot_ = None
        kept = []  # the first _STAT_IMAGES maps, for the quantile (memory stays bounded)
        for unit_maps, samples in parts:
            m = self._image_maps(unit_maps, samples, normalise=False)
            inside = self._content_masks(samples)  # letterbox padding is not learnt
            part = ((m * inside).sum(axis=0), (m**2 * inside).sum(axis=0), inside.sum(axis=0))
            total, total_sq, count = part if total is None else (
                total + part[0], total_sq + part[1], count + part[2])
            if n < _STAT_IMAGES:
                kept.append((m[: _STAT_IMAGES - n], inside[: _STAT_IMAGES - n]))
            n += len(m)
        if n == 0:
            return
        seen = count > 0
        mean = np.where(seen, total / np.maximum(count, 1), 0.0)
        std = np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 0.0))
        floor = max(_STD_FLOOR * float(np.median(std[seen])), 1e-12)
        self.map_mean_, self.map_std_ = mean, np.where(seen, np.maximum(std, floor), floor)
        z = np.concatenate([((m - mean) / self.map_std_)[inside] for m, inside in kept])
        self.map_hot_ = float(np.quantile(z, 0.999))

    def reduce(self, unit_scores: np.ndarray, samples: SampleSet,
               unit_maps: np.ndarray | None = None) -> np.ndarray:
        """The image scores (see ``score``)."""
        if self.score == "model" or unit_maps is None:
            if self.n_tiles_ == 1:
                return super().reduce(unit_scores, samples)
            if self.tile_score == "mean":
                return (np.bincount(samples.owner, weights=unit_scores,
                                    minlength=samples.n_samples)
                        / np.bincount(samples.owner, minlength=samples.n_samples))
            out = np.full(samples.n_samples, -np.inf)
            np.maximum.at(out, samples.owner, unit_scores)
            return out
        maps = self._image_maps(unit_maps, samples)
        if self.resize == "letterbox":  # the content box only
            pixels = [m[top : top + h, left : left + w].ravel()
                      for m, (top, left, h, w) in zip(maps, self._content_boxes(samples),
                                                      strict=True)]
        else:
            pixels = list(maps.reshape(samples.n_samples, -1))
        if self.score == "max":
            return np.array([p.max() for p in pixels])
        out = np.empty(len(pixels))
        for s, p in enumerate(pixels):
            k = max(1, int(math.ceil(float(self.top_k) * p.size)))
            out[s] = np.partition(p, p.size - k)[-k:].mean()
        return out

    def to_map(self, unit_maps: np.ndarray, samples: SampleSet) -> np.ndarray | list[np.ndarray]:
        """Each image's map at its original size: an array ``(n, H, W)`` when the images
        share a size, else a list of 2-D arrays."""
        import torch

        maps = self._image_maps(unit_maps, samples)
        out = []
        for s in range(samples.n_samples):
            ch, cw = _original_size(samples, s)
            top, left, h, w = self._content_box(ch, cw)
            m = torch.from_numpy(np.ascontiguousarray(maps[s, top : top + h, left : left + w],
                                                      dtype=np.float32))
            if (h, w) != (ch, cw):
                m = torch.nn.functional.interpolate(m[None, None], size=(ch, cw),
                                                    mode="bilinear", align_corners=False)[0, 0]
            out.append(m.numpy())
        sizes = {o.shape for o in out}
        if len(sizes) == 1:
            return np.stack(out) if out else np.zeros((0, *self.size_), dtype=np.float32)
        return out

    def describe(self, maps: Any, k: int) -> list[str]:
        """The ``k`` hottest spots of each map: ``"x=120 y=45 (z 6.1)"``, at least an
        eighth of the image apart."""
        out = []
        for m in maps:
            spots = []
            work = np.array(m, dtype=np.float64)
            radius = max(1, min(work.shape) // 8)
            for _ in range(k):
                i = int(np.argmax(work))
                y, x = divmod(i, work.shape[1])
                if not np.isfinite(work[y, x]):
                    break
                spots.append(f"x={x} y={y} ({work[y, x]:.1f})")
                work[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = (
                    -np.inf)
            out.append("; ".join(spots))
        return out

    def load_masks(self, X: Any) -> list[np.ndarray] | None:
        """Ground-truth masks of ``X`` (bool, each image's size after its crop box), or
        None when ``X`` names no mask. Images without a mask get an all-normal one."""
        images = read_source(X)
        if images.masks is None:
            return None
        out = []
        for i, path in enumerate(images.masks):
            # the image's original size; target (1, 1) lets the decoder reduce it at once
            _, size = decode_sized(images.items[i], images.names[i],
                                   channels_last=images.channels_last, target=(1, 1))
            mask = decode_mask(path, images.names[i], size)
            if images.boxes is not None and images.boxes[i, 2] > 0 and images.boxes[i, 3] > 0:
                x, y, w, h = (int(v) for v in images.boxes[i])
                mask = mask[y : y + h, x : x + w]
            out.append(mask)
        return out

    # ------------------------------------------------------------- display
    def display_image(self, X: Any, i: int) -> np.ndarray:
        """Image ``i`` of ``X`` as a person sees it: ``(H, W)`` or ``(H, W, 3)`` float in
        ``[0, 1]`` at its original size (after its crop box), in the model's channels."""
        images = read_source(X)
        a, _ = self._decode(images, i, None)
        a = np.clip(self._channels(a), 0.0, 1.0)
        return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)

    def map_scale(self) -> tuple[float, float | None]:
        """The fixed colour scale of maps ``(vmin, vmax)``: from the hottest 0.1 % of the
        training images' pixels up to three times that, so that a normal image stays
        cold; ``(0, None)`` (each map's own maximum) before :meth:`fit_maps`."""
        if self.map_hot_ is None:
            return 0.0, None
        hot = max(float(self.map_hot_), 1e-6)
        return hot, 3.0 * hot

    def to_data(self, units: np.ndarray) -> np.ndarray:
        """Model units (normalised ``(n, C, H, W)``) back to images in ``[0, 1]``:
        ``(n, H, W)`` for one channel, ``(n, H, W, C)`` otherwise (tiles stay tiles)."""
        x = units * self.std_.reshape(1, -1, 1, 1) + self.mean_.reshape(1, -1, 1, 1)
        x = np.clip(x, 0.0, 1.0)
        return x[:, 0] if x.shape[1] == 1 else np.moveaxis(x, 1, -1)

    # --------------------------------------------------------------- state
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        doc = {
            "version": 1,
            "params": {k: list(v) if isinstance(v, tuple) else v
                       for k, v in self.get_params().items()},
            "size": list(self.size_),
            "channels": int(self.channels_),
            "mean": [float(v) for v in self.mean_],
            "std": [float(v) for v in self.std_],
            "map_hot": self.map_hot_,
        }
        arrays = {}
        if self.map_mean_ is not None:
            arrays = {"map_mean": np.asarray(self.map_mean_, dtype=np.float64),
                      "map_std": np.asarray(self.map_std_, dtype=np.float64)}
        return doc, arrays

    @classmethod
    def check_state(cls, doc: Any, where: str = "adapter"
                    ) -> tuple[tuple[int, ...], dict[str, tuple[str, tuple[int, ...]]]]:
        """Check a state document alone: the map size and the arrays it implies."""
        from genad.bundle_schema import DocumentError

        if not isinstance(doc, dict):
            raise DocumentError(f"{where} must be an object")
        if doc.get("version") != 1:
            raise DocumentError(f"{where}.version must be 1, got {doc.get('version')!r}")
        params = doc.get("params")
        if not isinstance(params, dict):
            raise DocumentError(f"{where}.params must be an object")
        cls.check_params(params, f"{where}.params")
        size = doc.get("size")
        if not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 65536
                for s in size)):
            raise DocumentError(f"{where}.size must be [height, width] in pixels")
        channels = doc.get("channels")
        if channels not in (1, 3) or isinstance(channels, bool):
            raise DocumentError(f"{where}.channels must be 1 or 3")
        for key in ("mean", "std"):
            values = doc.get(key)
            if not (isinstance(values, list) and len(values) == channels and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) for v in values)):
                raise DocumentError(f"{where}.{key} must be {channels} finite numbers")
        if any(v <= 0 for v in doc["std"]):
            raise DocumentError(f"{where}.std must be positive")
        hot = doc.get("map_hot")
        if hot is not None and not (isinstance(hot, (int, float)) and not isinstance(hot, bool)
                                    and math.isfinite(hot)):
            raise DocumentError(f"{where}.map_hot must be a finite number or null")
        specs = {}
        if hot is not None:
            specs = {name: (np.float64, tuple(size)) for name in ("map_mean", "map_std")}
        tile = params.get("tile")
        if tile is not None and tile > min(size):
            raise DocumentError(f"{where}.params.tile {tile} is larger than the size {size}")
        shape = (int(channels), *size) if tile is None else (int(channels), tile, tile)
        return shape, specs

    @classmethod
    def from_state(cls, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> ImageAdapter:
        from genad.bundle_schema import DocumentError

        cls.check_state(doc)
        params = {k: tuple(v) if isinstance(v, list) and k in ("size", "window") else v
                  for k, v in doc["params"].items()}
        adapter = cls(**params)
        adapter.size_ = (int(doc["size"][0]), int(doc["size"][1]))
        adapter.channels_ = int(doc["channels"])
        adapter.mean_ = np.asarray(doc["mean"], dtype=np.float64)
        adapter.std_ = np.asarray(doc["std"], dtype=np.float64)
        adapter._set_tiles()
        adapter.map_mean_ = adapter.map_std_ = None
        adapter.map_hot_ = doc.get("map_hot")
        if adapter.map_hot_ is not None:
            for name in ("map_mean", "map_std"):
                a = arrays.get(name)
                if a is None or a.shape != adapter.size_ or not np.all(np.isfinite(a)):
                    raise DocumentError(f"adapter.{name} must be finite, shape "
                                        f"{list(adapter.size_)}")
            if not np.all(arrays["map_std"] > 0):
                raise DocumentError("adapter.map_std must be positive")
            adapter.map_mean_ = arrays["map_mean"].astype(np.float64)
            adapter.map_std_ = arrays["map_std"].astype(np.float64)
            adapter.map_hot_ = float(adapter.map_hot_)
        return adapter


def _nonempty(images: ImageList) -> ImageList:
    if len(images) == 0:
        raise InvalidInputError(f"{images.source or 'images'}: the image set is empty "
                                "(0 images)")
    return images


def _shrunk(a: np.ndarray, side: int) -> np.ndarray:
    """``a`` ``(C, H, W)`` scaled down so that neither side exceeds ``side`` (each axis on
    its own; smaller images as they are)."""
    import torch

    h, w = min(a.shape[1], side), min(a.shape[2], side)
    if (h, w) == tuple(a.shape[1:]):
        return a
    x = torch.from_numpy(np.ascontiguousarray(a))[None]
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                           align_corners=False)[0].numpy()


def _in_memory(lazy: ImageSampleSet) -> TensorSampleSet:
    """A lazy set's units stacked into memory (arrays, score chunks), keeping what the
    adapter needs to map results back."""
    tensor = lazy.stacked()
    sizes = np.array([lazy.original_size(s) for s in range(lazy.n_samples)], dtype=np.int64)
    meta = dict(lazy.meta, per_sample={"size": sizes.reshape(-1, 2)},
                per_unit={"unit": lazy.units})
    return TensorSampleSet(tensor, lazy.owner, lazy.n_samples, meta)


def _equalized(a: np.ndarray) -> np.ndarray:
    """Histogram equalisation of a ``(C, H, W)`` image, channel by channel: each pixel's
    mid-rank among its channel's pixels, ``(below + below_or_equal) / (2 n)``, in
    ``(0, 1)``; equal values get equal ranks (a flat channel becomes 0.5).

    Examples
    --------
    >>> _equalized(np.array([[[0.0, 0.2], [0.2, 0.9]]], dtype=np.float32))
    array([[[0.125, 0.5  ],
            [0.5  , 0.875]]], dtype=float32)
    """
    out = np.empty(a.shape, dtype=np.float32)
    for c, plane in enumerate(a):
        flat = plane.ravel()
        ordered = np.sort(flat)
        rank = np.searchsorted(ordered, flat, "left") + np.searchsorted(ordered, flat, "right")
        out[c] = (rank / (2.0 * flat.size)).reshape(plane.shape)
    return out


def _unit_positions(samples: SampleSet) -> np.ndarray:
    """Each unit's number (image x tiles + tile) in its image list."""
    if isinstance(samples, ImageSampleSet):
        return samples.units
    return np.asarray(samples.meta["per_unit"]["unit"])


def _original_size(samples: SampleSet, s: int) -> tuple[int, int]:
    if isinstance(samples, ImageSampleSet):
        return samples.original_size(s)
    h, w = samples.meta["per_sample"]["size"][s]
    return int(h), int(w)


def _gaussian(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Each 2-D map smoothed by a Gaussian of ``sigma`` pixels (reflected borders)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(maps, sigma=(0, sigma, sigma), mode="reflect", truncate=3.0)
