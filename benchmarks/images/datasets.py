"""Loaders for the image benchmark: one array set per benchmark data set.

:func:`load_set` is the only loader. It returns an :class:`ImageSet`: train normals and test
images as ``uint8`` arrays at the data set's resolution (``(N, H, W)`` grayscale or
``(N, H, W, 3)`` RGB), test labels (1 = anomaly), test masks (``(N, H, W)``, 0/1) where
the data set has them, and metadata. Every contender receives the same arrays.

Images are decoded with Pillow, ``Image.open(path).convert("L" or "RGB")``, and resized
to the resolution with ``BILINEAR``; masks are binarised at > 127 and resized with
``NEAREST``. NumPy sets (MNIST, PneumoniaMNIST) are kept at their native 28 px. Nothing is
cached on disk.

Data sets (``group`` is the data folder; its README gives the protocol):

=========================  =======================  ====  ====================================
dataset                    group                    px    split
=========================  =======================  ====  ====================================
``xray-baggage``           ``xray-baggage``         64    manifest ``split``: 320 / 100 + 420
``xray-baggage-crop``      ``xray-baggage``         64    same, each image cut to its content
                                                          box (``content_x/y/w/h``) first
``xray-baggage-matched``   ``xray-baggage``         64    same train; test subsampled so both
                                                          classes share one mean-intensity
                                                          histogram (:func:`brightness_match`)
``gdxray``                 ``gdxray``               64    ``castings_manifest.csv`` split;
                                                          ``defect_mask`` masks
``chest-xray-pneumonia``   ``chest-xray-pneumonia`` 64    manifest split: 1,341 / 234 + 390
``pneumoniamnist``         ``pneumoniamnist``       28    train normals / whole test split
``magnetic-tile``          ``magnetic-tile``        128   manifest split; masks
``mvtec-ad-bottle``        ``mvtec-ad``             128   manifest split (RGB), no masks
``mnist-0`` .. ``mnist-9`` ``mnist``                28    digit d is the anomaly: train on the
                                                          other nine digits of
                                                          ``mnist_5k.npz``, test on all 10,000
=========================  =======================  ====  ====================================

Resolutions: the 28 px sets stay native (upsampling adds no information and costs five
times the compute on 10 MNIST runs per model and seed); the others are 64 px, except the
two sets where detail matters and the train set is small (magnetic-tile's thin cracks and
its pixel masks, 761 train images; bottle, 140 train images), at 128 px.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._shared import data_root, resolve_names

__all__ = [
    "DATASETS",
    "GROUPS",
    "MATCH_BIN_WIDTH",
    "MATCH_SEED",
    "RESOLUTION",
    "ImageSet",
    "brightness_match",
    "data_root",
    "group_of",
    "load_set",
    "mean_intensity",
    "resolve_sets",
]

#: The data folders, in the order they run.
GROUPS: tuple[str, ...] = (
    "xray-baggage", "gdxray", "chest-xray-pneumonia", "pneumoniamnist", "magnetic-tile",
    "mvtec-ad", "mnist",
)

MNIST_DIGITS: tuple[int, ...] = tuple(range(10))

#: Every data set, in run order.
DATASETS: tuple[str, ...] = (
    "xray-baggage", "xray-baggage-crop", "xray-baggage-matched", "gdxray",
    "chest-xray-pneumonia", "pneumoniamnist", "magnetic-tile", "mvtec-ad-bottle",
    *(f"mnist-{d}" for d in MNIST_DIGITS),
)

#: Side in pixels of every data set's square images (the model input size too).
RESOLUTION: dict[str, int] = {
    "xray-baggage": 64, "xray-baggage-crop": 64, "xray-baggage-matched": 64,
    "gdxray": 64, "chest-xray-pneumonia": 64, "pneumoniamnist": 28, "magnetic-tile": 128,
    "mvtec-ad-bottle": 128, **{f"mnist-{d}": 28 for d in MNIST_DIGITS},
}

#: Width of the mean-intensity bins of ``xray-baggage-matched`` (intensity in [0, 1]:
#: 100 equal bins, edges 0, 0.01, ..., 1.0).
MATCH_BIN_WIDTH = 0.01
#: Seed of the per-bin subsampling of ``xray-baggage-matched`` (fixed: every run seed is
#: evaluated on the same subset).
MATCH_SEED = 0


def group_of(dataset: str) -> str:
    """The data folder a data set comes from (``"mnist-3"`` -> ``"mnist"``)."""
    if dataset.startswith("xray-baggage"):
        return "xray-baggage"
    if dataset.startswith("mnist-"):
        return "mnist"
    if dataset == "mvtec-ad-bottle":
        return "mvtec-ad"
    if dataset in DATASETS:
        return dataset
    raise ValueError(f"unknown data set {dataset!r}")


#: the ``--sets`` token of the baggage full scans alone (``xray-baggage`` is also the name
#: of their group, which adds the crops and the brightness-matched subset)
FULL_SCANS = "xray-baggage-full"


def resolve_sets(tokens: Sequence[str] | None) -> list[str]:
    """Expand ``--sets`` tokens (group names, data set names, ``all``, and
    :data:`FULL_SCANS`) to data sets, in run order.

    Raises
    ------
    ValueError
        A token names neither a group nor a data set.
    """
    groups = {"all": DATASETS, **{g: [d for d in DATASETS if group_of(d) == g] for g in GROUPS},
              FULL_SCANS: ["xray-baggage"]}
    return resolve_names(tokens, DATASETS, groups, "set",
                         f"all, {', '.join(GROUPS)}, {FULL_SCANS}, or a data set: "
                         f"{', '.join(DATASETS)}")


@dataclass
class ImageSet:
    """One benchmark data set, as every contender receives it.

    Attributes
    ----------
    group, dataset : str
        Data folder and data set name.
    train : ndarray of uint8
        Train normals, ``(N, H, W)`` or ``(N, H, W, 3)``.
    test : ndarray of uint8
        Test images, same layout.
    y_test : ndarray of int64
        Test labels, 1 = anomaly.
    masks : ndarray of uint8 or None
        Test masks ``(N, H, W)`` with values 0/1 (all 0 for normal images), or None when
        the data set has no pixel ground truth.
    test_kind : ndarray of str or None
        Defect type of each test image (``"good"`` for normals) where the set has types.
    meta : dict
        JSON-ready description: resolution, channels, sizes, protocol notes.
    """

    group: str
    dataset: str
    train: np.ndarray
    test: np.ndarray
    y_test: np.ndarray
    masks: np.ndarray | None = None
    test_kind: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Sizes and resolution, for a results entry."""
        return {
            "resolution": int(self.train.shape[1]),
            "channels": 1 if self.train.ndim == 3 else int(self.train.shape[-1]),
            "n_train": int(len(self.train)),
            "n_test": int(len(self.test)),
            "n_test_anomalies": int(self.y_test.sum()),
            "has_masks": self.masks is not None,
        }


# --------------------------------------------------------------------------- decoding


def _decode(path: Path, size: int, mode: str, box: tuple[int, int, int, int] | None = None
            ) -> np.ndarray:
    """Open one image with Pillow, convert to ``mode``, crop ``box`` (x, y, w, h), resize."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert(mode)
        if box is not None:
            x, y, w, h = box
            img = img.crop((x, y, x + w, y + h))
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def _decode_mask(path: Path, size: int) -> np.ndarray:
    """Open a 0/255 mask, binarise at > 127, resize with ``NEAREST``; return 0/1 uint8."""
    from PIL import Image

    with Image.open(path) as img:
        binary = Image.fromarray(
            (np.asarray(img.convert("L")) > 127).astype(np.uint8) * 255)
        if binary.size != (size, size):
            binary = binary.resize((size, size), Image.NEAREST)
        return (np.asarray(binary) > 127).astype(np.uint8)


def _resize_array(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a ``(N, h, w)`` uint8 stack with Pillow ``BILINEAR`` (no-op at the same size)."""
    if images.shape[1:3] == (size, size):
        return np.ascontiguousarray(images, dtype=np.uint8)
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
                     for im in images]).astype(np.uint8)


def _stack(paths: Sequence[Path], size: int, mode: str,
           boxes: Sequence[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    boxes = boxes if boxes is not None else [None] * len(paths)  # type: ignore[list-item]
    return np.stack([_decode(p, size, mode, b) for p, b in zip(paths, boxes, strict=True)])


def mean_intensity(images: np.ndarray) -> np.ndarray:
    """Mean pixel value of each image, scaled to [0, 1] (over every pixel and channel)."""
    flat = np.asarray(images).reshape(len(images), -1)
    return flat.mean(axis=1, dtype=np.float64) / 255.0


# --------------------------------------------------------------------------- matching


def brightness_match(intensity: np.ndarray, y: np.ndarray, bin_width: float = MATCH_BIN_WIDTH,
                     seed: int = MATCH_SEED) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices of a subset in which both classes have the same mean-intensity histogram.

    The intensities (in [0, 1]) are put in equal-width bins (edges ``0, bin_width, ...,
    1``). In each bin holding ``n0`` normals and ``n1`` anomalies, ``min(n0, n1)`` of each
    class are drawn without replacement (``numpy.random.default_rng(seed)``, bins in
    increasing order, normals drawn before anomalies); the other images are dropped. Both
    classes then have the same count in every bin.

    Parameters
    ----------
    intensity : ndarray of shape (n,)
        Mean intensity of each image, in [0, 1].
    y : ndarray of shape (n,)
        Labels, 1 = anomaly.
    bin_width : float
        Bin width (default :data:`MATCH_BIN_WIDTH`).
    seed : int
        Seed of the draw (default :data:`MATCH_SEED`).

    Returns
    -------
    keep : ndarray of int64
        Sorted indices of the kept images.
    info : dict
        ``bin_width``, ``n_bins``, ``seed``, and ``bins``: one ``[low, high, kept per
        class, normals, anomalies]`` row per bin that held any image.

    Examples
    --------
    >>> keep, info = brightness_match([0.105, 0.107, 0.108, 0.5, 0.9], [0, 1, 1, 0, 1])
    >>> len(keep), info["bins"][0][2]
    (2, 1)
    """
    intensity = np.asarray(intensity, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if intensity.shape != y.shape or intensity.ndim != 1:
        raise ValueError(f"intensity {intensity.shape} and labels {y.shape} must be the same "
                         "1-D shape")
    if not 0 < bin_width <= 1:
        raise ValueError(f"bin_width must be in (0, 1], got {bin_width}")
    n_bins = int(round(1.0 / bin_width))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, intensity, side="right") - 1, 0, n_bins - 1)
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    rows: list[list[float | int]] = []
    for b in np.unique(which):
        normals = np.flatnonzero((which == b) & (y == 0))
        anomalies = np.flatnonzero((which == b) & (y == 1))
        n = min(len(normals), len(anomalies))
        rows.append([round(float(edges[b]), 6), round(float(edges[b + 1]), 6), n,
                     len(normals), len(anomalies)])
        if n:
            keep.append(rng.choice(normals, n, replace=False))
            keep.append(rng.choice(anomalies, n, replace=False))
    kept = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    return kept.astype(np.int64), {"bin_width": bin_width, "n_bins": n_bins, "seed": seed,
                                   "bins": rows}


# --------------------------------------------------------------------------- loaders


def _content_boxes(frame: pd.DataFrame) -> list[tuple[int, int, int, int]]:
    cols = ["content_x", "content_y", "content_w", "content_h"]
    return [tuple(int(v) for v in row) for row in frame[cols].to_numpy()]


def _manifest_split(folder: Path, size: int, mode: str, name: str = "manifest.csv",
                    crop: bool = False) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Decode the train and test images a manifest lists (cut to their content boxes if
    ``crop``); return the test rows, the train and test stacks and the test labels."""
    m = pd.read_csv(folder / name, keep_default_na=False)
    train, test = m[m["split"] == "train"], m[m["split"] == "test"]
    X_tr = _stack([folder / p for p in train["path"]], size, mode,
                  _content_boxes(train) if crop else None)
    X_te = _stack([folder / p for p in test["path"]], size, mode,
                  _content_boxes(test) if crop else None)
    return test, X_tr, X_te, test["label"].to_numpy().astype(np.int64)


def _baggage(root: Path, dataset: str, size: int, mode: str) -> ImageSet:
    from genad.metrics import auroc

    crop = dataset == "xray-baggage-crop"
    _, X_tr, X_te, y = _manifest_split(root / "xray-baggage", size, mode, crop=crop)
    meta: dict[str, Any] = {
        "protocol": "train on the 320 train negatives, score every test scan "
                    "(100 negatives, 420 with a prohibited item)",
    }
    if crop:
        meta["protocol"] += ("; each scan cut to its content box (manifest content_x/y/w/h, "
                             "no white padding) and stretched to a square")
    if dataset == "xray-baggage-matched":
        intensity = mean_intensity(X_te)
        keep, info = brightness_match(intensity, y)
        if not len(keep):
            raise ValueError("no intensity bin holds both classes: the matched subset is empty")
        before = auroc(y, intensity)
        X_te, y = X_te[keep], y[keep]
        info["mean_intensity_auroc_before"] = before
        info["mean_intensity_auroc"] = auroc(y, intensity[keep])
        info["n_kept_per_class"] = int(len(keep) // 2)
        meta["matching"] = info
        meta["protocol"] += (
            f"; test subsampled so both classes have the same mean-intensity histogram "
            f"({info['n_bins']} bins of width {info['bin_width']} over [0, 1] on the "
            f"{size} px image, min(n0, n1) of each class per bin, seed {info['seed']}): "
            f"{len(keep)} test images; mean intensity AUROC there "
            f"{info['mean_intensity_auroc']:.3f} (full test: {before:.3f})")
    return ImageSet("xray-baggage", dataset, X_tr, X_te, y, meta=meta)


def _gdxray(root: Path, size: int, mode: str) -> ImageSet:
    folder = root / "gdxray"
    test, X_tr, X_te, y = _manifest_split(folder, size, mode, "castings_manifest.csv")
    masks = np.zeros((len(test), size, size), dtype=np.uint8)
    for i, mask_path in enumerate(test["mask_path"]):
        if mask_path:
            masks[i] = _decode_mask(folder / mask_path, size)
    return ImageSet("gdxray", "gdxray", X_tr, X_te, y, masks, None,
                    {"protocol": "castings manifest split (by source image); defect "
                                 "patches have a mask, normal patches an empty one"})


def _chest(root: Path, size: int, mode: str) -> ImageSet:
    test, X_tr, X_te, y = _manifest_split(root / "chest-xray-pneumonia", size, mode)
    return ImageSet("chest-xray-pneumonia", "chest-xray-pneumonia", X_tr, X_te, y,
                    test_kind=test["subtype"].to_numpy().astype(str),
                    meta={"protocol": "train on the 1,341 train normals, score the 624 "
                                      "test images"})


def _pneumoniamnist(root: Path, size: int) -> ImageSet:
    with np.load(root / "pneumoniamnist" / "pneumoniamnist.npz") as npz:
        tr_x, tr_y = npz["train_images"], npz["train_labels"].ravel()
        te_x, te_y = npz["test_images"], npz["test_labels"].ravel()
    y = te_y.astype(np.int64)
    return ImageSet("pneumoniamnist", "pneumoniamnist", _resize_array(tr_x[tr_y == 0], size),
                    _resize_array(te_x, size), y,
                    meta={"protocol": "train on the 1,214 train normals (val unused), "
                                      "score the 624 test images"})


def _magnetic(root: Path, size: int, mode: str) -> ImageSet:
    folder = root / "magnetic-tile"
    test, X_tr, X_te, y = _manifest_split(folder, size, mode)
    masks = np.stack([_decode_mask(folder / p, size) for p in test["mask_path"]])
    kind = np.where(y == 1, test["defect_type"].to_numpy().astype(str), "good")
    return ImageSet("magnetic-tile", "magnetic-tile", X_tr, X_te, y, masks, kind,
                    {"protocol": "manifest split: 761 train Free, test 191 Free + 392 "
                                 "defects; masks for every test image"})


def _bottle(root: Path, size: int, mode: str) -> ImageSet:
    test, X_tr, X_te, y = _manifest_split(root / "mvtec-ad", size, mode)
    return ImageSet("mvtec-ad", "mvtec-ad-bottle", X_tr, X_te, y,
                    test_kind=test["defect_type"].to_numpy().astype(str),
                    meta={"protocol": "manifest split: 140 train good, test 25 good + 63 "
                                      "defects (RGB; the copy has no masks)"})


def _mnist(root: Path, digit: int, size: int) -> ImageSet:
    folder = root / "mnist"
    with np.load(folder / "mnist_5k.npz") as npz:
        tr_x, tr_y = npz["images"], npz["labels"]
    with np.load(folder / "mnist_test.npz") as npz:
        te_x, te_y = npz["images"], npz["labels"]
    y = (te_y == digit).astype(np.int64)
    return ImageSet("mnist", f"mnist-{digit}", _resize_array(tr_x[tr_y != digit], size),
                    _resize_array(te_x, size), y,
                    meta={"protocol": f"digit {digit} is the anomaly: train on the 4,500 "
                                      f"mnist_5k images of the other digits, score the "
                                      f"10,000 test images", "digit": digit})


def load_set(dataset: str, root: Path | None = None, size: int | None = None,
             mode: str | None = None) -> ImageSet:
    """Load one benchmark data set.

    Parameters
    ----------
    dataset : str
        One of :data:`DATASETS`.
    root : Path, optional
        Data folder (default :func:`data_root`).
    size : int, optional
        Side of the square images in pixels (default ``RESOLUTION[dataset]``).
    mode : {"L", "RGB"}, optional
        Pillow mode the PNG sets are decoded in (default: ``"RGB"`` for bottle, ``"L"``
        elsewhere). The NumPy sets (MNIST, PneumoniaMNIST) are grayscale only.

    Returns
    -------
    ImageSet
        ``train`` / ``test`` uint8 arrays ``(N, H, W)`` (``(N, H, W, 3)`` for bottle),
        ``y_test``, ``masks`` (gdxray, magnetic-tile) or None, ``test_kind`` and ``meta``
        (which also records the resolution and the data folder).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    root = Path(root) if root is not None else data_root()
    size = int(size if size is not None else RESOLUTION[dataset])
    npz = dataset == "pneumoniamnist" or dataset.startswith("mnist-")
    mode = mode or ("RGB" if dataset == "mvtec-ad-bottle" else "L")
    if mode not in ("L", "RGB") or (npz and mode != "L"):
        raise ValueError(f"mode {mode!r} is not available for {dataset}")
    if dataset.startswith("xray-baggage"):
        out = _baggage(root, dataset, size, mode)
    elif dataset == "gdxray":
        out = _gdxray(root, size, mode)
    elif dataset == "chest-xray-pneumonia":
        out = _chest(root, size, mode)
    elif dataset == "pneumoniamnist":
        out = _pneumoniamnist(root, size)
    elif dataset == "magnetic-tile":
        out = _magnetic(root, size, mode)
    elif dataset == "mvtec-ad-bottle":
        out = _bottle(root, size, mode)
    else:
        out = _mnist(root, int(dataset.split("-")[1]), size)
    out.meta.update(out.describe())
    out.meta["group"] = out.group
    return out
