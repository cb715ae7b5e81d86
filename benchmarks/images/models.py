"""Contenders of the image benchmark: genad's image detectors and pixel-space peers.

Every model is a :class:`Contender` with one interface: ``fit(train)`` on the train
normals, ``score(test) -> (N,)`` float64 (higher = more anomalous) and, where the model
has one, ``anomaly_map(test) -> (N, H, W)`` float64. Every contender receives the same
``uint8`` arrays (:mod:`benchmarks.images.datasets`); a contender that needs another
encoding (the peers' [0, 1] pixels) makes it itself. Adapters never repair a model's
output: a wrong shape raises, NaN / inf scores are passed on and the runner records them.

genad (family ``"genad"``): each preset class gets ``adapter=ImageAdapter(size=S)`` (``S``
= the data set's resolution), ``backbone="conv2d"``, ``epochs``, ``random_state=seed``,
``verbose=0`` and ``device``. A class or adapter that genad does not have yet fails at
build time, and the runner records ``status = "failed: ..."``.

Peers (family ``"peer"``), deterministic except IsolationForest's seed:

``pca``
    ``sklearn.decomposition.PCA(n_components=PCA_VARIANCE, svd_solver="full")`` on the
    flattened pixels scaled to [0, 1]; score = mean squared reconstruction error; map =
    squared residual per pixel (mean over channels). No component cap is needed: the
    train sets have 140 to 4,500 images, so the full SVD is at most 4,500 x 16,384.
``iforest``
    ``sklearn.ensemble.IsolationForest(n_estimators=200, random_state=seed)`` on the
    pixels downsampled (Pillow ``BILINEAR``) to ``IFOREST_SIDE`` px (kept as they are when
    smaller), scaled to [0, 1]; score = ``-score_samples``.
``mean-intensity``
    Score = mean pixel value in [0, 1], no training. The sign is fixed before looking at
    any test set: **brighter = more anomalous**, the convention of the data READMEs'
    figures (xray-baggage 0.933, gdxray 0.661). An AUROC below 0.5 is reported as it is
    (darker images were the anomalies); it is never flipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks._shared import as_scores, jsonable, resolve_specs
from benchmarks.images.datasets import mean_intensity

__all__ = [
    "EPOCHS",
    "IFOREST_SIDE",
    "MODEL_SPECS",
    "PCA_VARIANCE",
    "QUICK_EPOCHS",
    "BuildContext",
    "Contender",
    "IsolationForestContender",
    "MeanIntensityContender",
    "ModelSpec",
    "PCAContender",
    "resolve_models",
    "to_unit",
]

#: Epochs of every genad model unless ``--epochs`` says otherwise.
EPOCHS = 30
#: Epochs of every genad model under ``--quick``.
QUICK_EPOCHS = 2
#: Explained-variance fraction kept by the ``pca`` peer.
PCA_VARIANCE = 0.95
#: Side of the ``iforest`` peer's downsampled input.
IFOREST_SIDE = 32


@dataclass(frozen=True)
class BuildContext:
    """Run-wide settings a factory needs.

    Attributes
    ----------
    epochs : int
        Epochs of every genad model.
    device : str
        ``"auto"`` or a torch device string, passed to genad.
    """

    epochs: int = EPOCHS
    device: str = "auto"


def to_unit(images: np.ndarray) -> np.ndarray:
    """``uint8`` images ``(N, ...)`` as float64 rows ``(N, features)`` scaled to [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


class Contender:
    """One model under comparison, behind the interface the runner uses."""

    family = "peer"
    #: Whether :meth:`anomaly_map` gives a pixel map.
    has_map = False

    def __init__(self) -> None:
        self.epoch_seconds: list[float] | None = None
        self.n_epochs: int | None = None

    def fit(self, X: np.ndarray) -> None:
        """Fit on the train normals."""
        raise NotImplementedError

    def score(self, X: np.ndarray) -> np.ndarray:
        """One anomaly score per image, higher = more anomalous."""
        raise NotImplementedError

    def anomaly_map(self, X: np.ndarray) -> np.ndarray:
        """Per-pixel anomaly map ``(N, H, W)``; only where :attr:`has_map`."""
        raise NotImplementedError(f"{type(self).__name__} gives no pixel map")

    def params(self) -> dict[str, Any]:
        """Constructor parameters, for the results file."""
        return {}

    def extra(self) -> dict[str, Any]:
        """Fitted facts worth recording (e.g. PCA's component count)."""
        return {}

    def alternative_scores(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Other image scores the same fitted model gives (genad's image-score choices),
        recorded beside the default one; none for the peers."""
        return {}


# --------------------------------------------------------------------------- peers


class PCAContender(Contender):
    """PCA reconstruction error on [0, 1] pixels; the map is the squared residual."""

    has_map = True

    def __init__(self, n_components: float = PCA_VARIANCE) -> None:
        super().__init__()
        from sklearn.decomposition import PCA

        self.pca = PCA(n_components=n_components, svd_solver="full")

    def fit(self, X: np.ndarray) -> None:
        self.pca.fit(to_unit(X))

    def _residual(self, X: np.ndarray) -> np.ndarray:
        rows = to_unit(X)
        return (rows - self.pca.inverse_transform(self.pca.transform(rows))) ** 2

    def score(self, X: np.ndarray) -> np.ndarray:
        return as_scores(self._residual(X).mean(axis=1), len(X), "PCA")

    def anomaly_map(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        maps = self._residual(X).reshape(X.shape)
        return maps.mean(axis=-1) if maps.ndim == 4 else maps

    def params(self) -> dict[str, Any]:
        return jsonable(self.pca.get_params())

    def extra(self) -> dict[str, Any]:
        return {"pca_components": int(self.pca.n_components_)}


def downsample(images: np.ndarray, side: int) -> np.ndarray:
    """Resize a uint8 stack to ``side`` x ``side`` with Pillow ``BILINEAR`` when larger."""
    images = np.asarray(images)
    if images.shape[1] <= side and images.shape[2] <= side:
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BILINEAR))
                     for im in images])


class IsolationForestContender(Contender):
    """IsolationForest on downsampled [0, 1] pixels; score = ``-score_samples``."""

    def __init__(self, seed: int, side: int = IFOREST_SIDE, n_estimators: int = 200) -> None:
        super().__init__()
        from sklearn.ensemble import IsolationForest

        self.side = side
        self.det = IsolationForest(n_estimators=n_estimators, random_state=seed)

    def fit(self, X: np.ndarray) -> None:
        self.det.fit(to_unit(downsample(X, self.side)))

    def score(self, X: np.ndarray) -> np.ndarray:
        rows = to_unit(downsample(X, self.side))
        return as_scores(-self.det.score_samples(rows), len(X), "-score_samples")

    def params(self) -> dict[str, Any]:
        return {**jsonable(self.det.get_params()), "input_side": self.side}


class MeanIntensityContender(Contender):
    """Mean pixel value in [0, 1]; brighter = more anomalous (sign fixed a priori)."""

    def fit(self, X: np.ndarray) -> None:
        return None

    def score(self, X: np.ndarray) -> np.ndarray:
        return as_scores(mean_intensity(X), len(X), "mean intensity")

    def params(self) -> dict[str, Any]:
        return {"sign": "+1 (brighter = more anomalous)"}


# --------------------------------------------------------------------------- genad


class GenadContender(Contender):
    """A genad preset on images: ``cls(adapter=ImageAdapter(size=S), ...)`` (the conv2d
    backbone with the preset's ``conv_width``)."""

    family = "genad"
    has_map = True

    def __init__(self, class_name: str, size: int, seed: int, ctx: BuildContext,
                 extra: dict[str, Any] | None = None,
                 adapter_extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        import genad

        cls = getattr(genad, class_name, None)
        if cls is None:
            raise AttributeError(f"genad has no class {class_name!r} in this checkout")
        try:
            from genad.data import ImageAdapter
        except ImportError as exc:
            raise ImportError(f"genad.data has no ImageAdapter in this checkout ({exc})"
                              ) from None
        self.kwargs: dict[str, Any] = dict(
            adapter=ImageAdapter(size=size, **(adapter_extra or {})), epochs=ctx.epochs,
            random_state=seed, verbose=0, device=ctx.device, **(extra or {}))
        self.det = cls(**self.kwargs)

    def fit(self, X: np.ndarray) -> None:
        self.det.fit(X)
        history = getattr(self.det, "history_", None)
        if isinstance(history, dict) and history.get("epoch_seconds") is not None:
            self.epoch_seconds = [float(s) for s in history["epoch_seconds"]]
        n_epochs = getattr(self.det, "n_epochs_", None)
        if n_epochs is not None:
            self.n_epochs = int(n_epochs)
        elif self.epoch_seconds is not None:
            self.n_epochs = len(self.epoch_seconds)

    def score(self, X: np.ndarray) -> np.ndarray:
        return as_scores(self.det.anomaly_score(X), len(X), "anomaly_score")

    def anomaly_map(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.det.anomaly_map(X), dtype=np.float64)

    def extra(self) -> dict[str, Any]:
        """The weight-averaging span the fit used (epochs; None: off; absent in rows made
        before the option existed)."""
        return {"weight_averaging": getattr(self.det, "weight_averaging_", None)}

    def alternative_scores(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The image score under each ``ImageAdapter(score=...)`` choice, from the same
        fitted model (the adapter's choice only changes how maps become a score)."""
        adapter = self.det.adapter_
        default, out = adapter.score, {}
        try:
            for choice in ("model", "max", "top_k"):
                adapter.score = choice
                out[choice] = as_scores(self.det.anomaly_score(X), len(X), choice)
        finally:
            adapter.score = default
        return out

    def params(self) -> dict[str, Any]:
        try:
            return jsonable(self.det.get_params(deep=False))
        except Exception:  # noqa: BLE001 - params are informative only
            return jsonable(self.kwargs)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelSpec:
    """A named model of the benchmark.

    Attributes
    ----------
    name : str
        Name on the command line and in the results.
    family : {"genad", "peer"}
    description : str
        One line for the report.
    build : callable
        ``build(seed, ctx, size) -> Contender``; ``size`` is the data set's resolution.
    """

    name: str
    family: str
    description: str
    build: Callable[[int, BuildContext, int], Contender]


def _genad(class_name: str, extra: dict[str, Any] | None = None,
           adapter_extra: dict[str, Any] | None = None
           ) -> Callable[[int, BuildContext, int], Contender]:
    def build(seed: int, ctx: BuildContext, size: int) -> Contender:
        return GenadContender(class_name, size, seed, ctx, extra, adapter_extra)

    return build


_GENAD_ARGS = "adapter=ImageAdapter(size=S), epochs=E, random_state=seed, verbose=0"


def _cosine_knn_spec(name: str, class_name: str, code: str, codes: str,
                     k: int = 5, equalize: bool = False) -> ModelSpec:
    """A genad model scored by the cosine latent distance (``k`` neighbours, model score),
    on histogram-equalised images with ``equalize``."""
    nearest = "the nearest unit-length training " + codes[:-1] if k == 1 else (
        f"the {k} nearest unit-length training {codes}")
    return ModelSpec(
        name, "genad",
        f"genad.{class_name}(latent_neighbors={k}, latent_metric='cosine', "
        f"adapter=ImageAdapter(size=S, score='model'{', equalize=True' if equalize else ''}"
        f"), epochs=E, random_state=seed, verbose=0): score = "
        f"{'distance' if k == 1 else 'mean distance'} of the unit-length {code} to {nearest}"
        + (", each image histogram-equalised first" if equalize else ""),
        _genad(class_name, {"latent_neighbors": k, "latent_metric": "cosine"},
               {"score": "model", **({"equalize": True} if equalize else {})}))


def _tiled_cosine_knn(class_name: str) -> Callable[[int, BuildContext, int], Contender]:
    """The cosine latent distance (5 neighbours) on equalised images cut into half-size
    tiles overlapping by half, averaged over each image's tiles."""
    def build(seed: int, ctx: BuildContext, size: int) -> Contender:
        adapter = {"score": "model", "equalize": True, "tile": size // 2,
                   "tile_overlap": 0.5, "tile_score": "mean"}
        return GenadContender(class_name, size, seed, ctx,
                              {"latent_neighbors": 5, "latent_metric": "cosine"}, adapter)

    return build


def _members_spec(base: ModelSpec, k: int = 3) -> ModelSpec:
    """``base`` trained as a ``k``-member ensemble (``n_members=k``): ``k`` random starts on
    the same split, scores and maps averaged (each member's divided by its spread)."""
    def build(seed: int, ctx: BuildContext, size: int) -> Contender:
        contender = base.build(seed, ctx, size)
        assert isinstance(contender, GenadContender)
        contender.kwargs["n_members"] = k
        contender.det.set_params(n_members=k)
        return contender

    return ModelSpec(f"{base.name}-x{k}", "genad",
                     f"{base.name} with n_members={k}: {k} random starts on the same split, "
                     "each member's score and map divided by its training spread, averaged",
                     build)


_BASE_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("conv-ae", "genad", f"genad.ConvAutoEncoder({_GENAD_ARGS})",
              _genad("ConvAutoEncoder")),
    ModelSpec("conv-ae-knn", "genad",
              "genad.ConvAutoEncoder(latent_neighbors=5, adapter=ImageAdapter(size=S, "
              "score='model'), epochs=E, random_state=seed, verbose=0): score = mean "
              "distance to the 5 nearest training codes",
              _genad("ConvAutoEncoder", {"latent_neighbors": 5}, {"score": "model"})),
    _cosine_knn_spec("conv-ae-knn-cos", "ConvAutoEncoder", "code", "codes"),
    _cosine_knn_spec("conv-ae-knn1-cos", "ConvAutoEncoder", "code", "codes", k=1),
    ModelSpec("conv-ae-ssim", "genad",
              f"genad.ConvAutoEncoder(loss='ssim', {_GENAD_ARGS}): trained and scored by "
              "1 - SSIM per pixel (Bergmann et al. 2019)",
              _genad("ConvAutoEncoder", {"loss": "ssim"})),
    ModelSpec("conv-vae", "genad", f"genad.ConvVAE({_GENAD_ARGS})", _genad("ConvVAE")),
    _cosine_knn_spec("conv-vae-knn-cos", "ConvVAE", "posterior mean", "posterior means"),
    _cosine_knn_spec("conv-vae-knn-cos-eq", "ConvVAE", "posterior mean", "posterior means",
                     equalize=True),
    ModelSpec("conv-vae-knn-cos-eq-tiles", "genad",
              "genad.ConvVAE(latent_neighbors=5, latent_metric='cosine', "
              "adapter=ImageAdapter(size=S, score='model', equalize=True, tile=S // 2, "
              "tile_overlap=0.5, tile_score='mean'), epochs=E, random_state=seed, "
              "verbose=0): each image histogram-equalised, cut into 9 half-size tiles; "
              "score = the mean over the tiles of the mean distance of the unit-length "
              "posterior mean to the 5 nearest unit-length training tile posterior means",
              _tiled_cosine_knn("ConvVAE")),
    ModelSpec("ganomaly", "genad", f"genad.GANomaly({_GENAD_ARGS})", _genad("GANomaly")),
    ModelSpec("fanogan", "genad", f"genad.FAnoGAN({_GENAD_ARGS})", _genad("FAnoGAN")),
    ModelSpec("vaegan", "genad",
              f"genad.VAEGAN(pause_discriminator_below=None, {_GENAD_ARGS}): the "
              "discriminator never waits (the default until session 12; rerun after the "
              "session-16 fix of the decoder's statistics on baggage, castings and "
              "magnetic tile in session 18; the bottle, chest, PneumoniaMNIST and MNIST "
              "rows predate it)",
              _genad("VAEGAN", {"pause_discriminator_below": None})),
    ModelSpec("vaegan-pause", "genad",
              f"genad.VAEGAN(pause_discriminator_below=0.5, {_GENAD_ARGS}): the "
              "discriminator skips a step while its loss is below 0.5 (on images the "
              "default since session 12)",
              _genad("VAEGAN", {"pause_discriminator_below": 0.5})),
    ModelSpec("draem", "genad", f"genad.DRAEM({_GENAD_ARGS}): a U-Net segments simulated "
              "defects; map = defect probability", _genad("DRAEM")),
    ModelSpec("draem-rec", "genad",
              f"genad.DRAEM(reconstruction=True, {_GENAD_ARGS}): the segmenter also sees a "
              "reconstruction (DRAEM as published)", _genad("DRAEM", {"reconstruction": True})),
    ModelSpec("pca", "peer",
              f"sklearn PCA(n_components={PCA_VARIANCE}, svd_solver='full') on [0, 1] pixels; "
              "score = mean squared reconstruction error, map = squared residual",
              lambda seed, ctx, size: PCAContender()),
    ModelSpec("iforest", "peer",
              f"sklearn IsolationForest(n_estimators=200, random_state=seed) on pixels "
              f"downsampled to {IFOREST_SIDE}x{IFOREST_SIDE} (bilinear); score = "
              "-score_samples",
              lambda seed, ctx, size: IsolationForestContender(seed)),
    ModelSpec("mean-intensity", "peer",
              "mean pixel value, no training; brighter = more anomalous (sign fixed a priori, "
              "never flipped)", lambda seed, ctx, size: MeanIntensityContender()),
)


#: the contenders also benchmarked as three-member ensembles (seed stability)
_ENSEMBLED = ("conv-ae", "conv-vae", "conv-vae-knn-cos", "conv-vae-knn-cos-eq",
              "conv-ae-knn1-cos", "ganomaly", "fanogan", "vaegan-pause", "draem")
MODEL_SPECS: tuple[ModelSpec, ...] = (
    *_BASE_SPECS,
    *(_members_spec(spec) for spec in _BASE_SPECS if spec.name in _ENSEMBLED),
)


def resolve_models(tokens: Sequence[str] | None) -> list[ModelSpec]:
    """Resolve ``--models`` tokens (names, ``all``, ``genad``, ``peers``) to specs, in order.

    Raises
    ------
    ValueError
        A token matches no model.
    """
    return resolve_specs(tokens, MODEL_SPECS)
