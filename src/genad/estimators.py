"""The public detectors: thin :class:`~genad.detector.Detector` subclasses, one model each."""

from __future__ import annotations

import inspect
import math
from typing import Any

from genad._params import AutoOr, CountOrFraction, Integer, OneOf, Real
from genad.data.base import Adapter
from genad.detector import Detector
from genad.errors import InvalidInputError
from genad.models.autoencoder import AutoEncoderModel
from genad.models.base import GenerativeModel
from genad.models.gan import SUGGESTED_PAUSE_BELOW
from genad.models.latent import LATENT_METRICS, MAX_CODES
from genad.models.pca import PCAConvAutoEncoderModel
from genad.models.ssim import SSIMDissimilarity
from genad.models.vae import VAEModel
from genad.nets import factory
from genad.nets.conv1d import Conv1dAutoEncoderNet
from genad.registry import load_class, names

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "VAE", "PCAConvAutoEncoder",
           "ConvAutoEncoder", "ConvVAE", "DRAEM", "MODELS"]

#: the parameters every detector shares (those of ``Detector.__init__``)
_COMMON = [name for name in inspect.signature(Detector.__init__).parameters if name != "self"]


def _common(local: dict[str, Any]) -> dict[str, Any]:
    return {k: local[k] for k in _COMMON}


class _LatentDistance:
    """Mixin of the detectors whose model can score by latent distance (``latent_neighbors``,
    ``latent_metric``): the parameters' constraints and the adapter check."""

    latent_neighbors: int
    latent_constraints = {"latent_neighbors": Integer(0),
                          "latent_metric": OneOf(LATENT_METRICS)}

    def _make_adapter(self, X: Any) -> Adapter:
        adapter = super()._make_adapter(X)  # type: ignore[misc]
        if self.latent_neighbors and adapter.scores_need_maps:
            raise InvalidInputError(
                f"latent_neighbors={self.latent_neighbors} makes the model's score a latent "
                f"distance, but the adapter scores from the anomaly map "
                f"(score={getattr(adapter, 'score', None)!r}); use "
                f"ImageAdapter(score=\"model\") with latent_neighbors")
        return adapter

    def _latent_capacity(self) -> int:
        """Codes the latent bank keeps at most: :data:`MAX_CODES` per unit of a sample
        (an image's tiles), from the fitted adapter. A bundle's bank loads at the size it
        was saved with, whatever this gives."""
        adapter = getattr(self, "adapter_", None)
        return MAX_CODES * (adapter.units_per_sample if adapter is not None else 1)


class AutoEncoder(_LatentDistance, Detector):
    """Autoencoder on normal rows; score = squared reconstruction error (sum over features).

    Encoder ``d -> hidden_sizes -> latent_dim``, decoder mirrored, LeakyReLU activations.

    Parameters
    ----------
    normalize_errors : bool, default True
        Divide each feature's squared error by its mean on the training normals, so every
        feature's error is measured against what is typical for that feature.
    dropout : float, default 0.0
        Dropout after every hidden layer of the encoder and decoder, during training only.
        A regulariser that trades precision at the top of the ranking for a better overall
        ranking: on card fraud (train-split validation, 3 seeds) ``dropout=0.2`` raised
        AUROC from 0.945 to 0.955 and lowered AUPRC from 0.79 to 0.75 (see
        ``docs/decisions.md``).
    latent_neighbors : int, default 0
        0 scores by reconstruction error. ``k >= 1`` scores by the mean distance of the
        input's latent code to its ``k`` nearest codes of training normals (each code
        dimension scaled by the training codes' spread; up to 4,096 codes are kept in
        the model): an input unlike the training data in the encoder's space scores
        high even when the decoder draws it well. The anomaly map stays the
        reconstruction error, so explanations and maps still point at elements. On
        images, use it with ``ImageAdapter(score="model")`` (the image score is then
        the model's score, not the map's).
    latent_metric : {"euclidean", "cosine"}, default "euclidean"
        How ``latent_neighbors`` compares codes. ``"euclidean"``: each code dimension
        scaled by the training codes' spread, so a code far out in any direction scores
        high (a row ten times too large is an anomaly). ``"cosine"``: only the code's
        direction counts; on MNIST leave-one-digit-out it ranked unseen digits better
        (mean AUROC 0.93 against 0.91, ``docs/images.md``).
    loss : {"l2", "ssim"}, default "l2"
        The reconstruction error, in training and scoring. ``"l2"``: squared error.
        ``"ssim"`` (images only): ``1 - SSIM`` per pixel in an 11-pixel Gaussian window
        (Bergmann et al. 2019), computed on the images in ``[0, 1]``; it weighs local
        structure over exact intensities. It costs more to train, and on this project's
        benchmark sets it did not beat ``"l2"`` at 30 epochs (``docs/images.md``).

    Other parameters: see :class:`~genad.detector.Detector` (shared by every detector).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 5))
    >>> det = genad.AutoEncoder(epochs=5, random_state=0, verbose=0).fit(X)
    >>> det.predict(np.r_[X[:2], [[9.0, -9, 9, -9, 9]]]).tolist()
    [0, 0, 1]
    """

    model_name = "ae"
    backbones = ("mlp", "conv1d", "conv2d")
    parameter_constraints = {
        **Detector.parameter_constraints,
        "normalize_errors": OneOf((True, False)),
        "dropout": Real(0.0, 1.0, high_open=True),
        "loss": OneOf(("l2", "ssim")),
        **_LatentDistance.latent_constraints,
    }
    _noise_std: float = 0.0
    _mask_prob: float = 0.0

    def __init__(self, *, normalize_errors: bool = True, dropout: float = 0.0,
                 latent_neighbors: int = 0, latent_metric: str = "euclidean", loss: str = "l2",
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 256, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.normalize_errors = normalize_errors
        self.dropout = dropout
        self.latent_neighbors = latent_neighbors
        self.latent_metric = latent_metric
        self.loss = loss

    def _ssim(self, sample_shape: tuple[int, ...]) -> SSIMDissimilarity | None:
        """The SSIM error of ``loss="ssim"`` (None for ``"l2"``), in the adapter's scale."""
        if self.loss != "ssim":
            return None
        adapter = getattr(self, "adapter_", None)  # None while a bundle is read
        if len(sample_shape) != 3:
            raise InvalidInputError(
                f"loss='ssim' compares local image structure and needs images; this "
                f"{getattr(adapter, 'kind', 'non-image')} input's samples have shape "
                f"{tuple(sample_shape)}: use loss='l2'")
        mean, std = getattr(adapter, "mean_", None), getattr(adapter, "std_", None)
        return SSIMDissimilarity(
            sample_shape[0], None if mean is None else [float(v) for v in mean],
            None if std is None else [float(v) for v in std])

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        backbone, latent = self._backbone(), self.latent_dim_
        options: dict[str, Any] = {"dropout": float(self.dropout),
                                   **self._backbone_options(backbone)}
        return AutoEncoderModel(
            factory.encoder(backbone, sample_shape, latent, **options),
            factory.decoder(backbone, sample_shape, latent, **options),
            noise_std=self._noise_std, mask_prob=self._mask_prob,
            n_features=math.prod(sample_shape), normalize_errors=self.normalize_errors,
            latent_neighbors=int(self.latent_neighbors), latent_dim=latent,
            latent_metric=self.latent_metric, latent_capacity=self._latent_capacity(),
            ssim=self._ssim(sample_shape),
        )


class DenoisingAutoEncoder(AutoEncoder):
    """Autoencoder trained to undo input corruption (Vincent et al. 2008).

    Parameters
    ----------
    noise_std : float, default 0.1
        Gaussian noise added to the (scaled) inputs during training.
    mask_prob : float, default 0.1
        Probability of zeroing each input feature during training.
    normalize_errors, dropout, latent_neighbors, latent_metric, loss
        See :class:`AutoEncoder`.

    Other parameters: see :class:`~genad.detector.Detector`.
    """

    model_name = "dae"
    parameter_constraints = {
        **AutoEncoder.parameter_constraints,
        "noise_std": Real(0.0),
        "mask_prob": Real(0.0, 1.0, high_open=True),
    }

    def __init__(self, *, noise_std: float = 0.1, mask_prob: float = 0.1,
                 normalize_errors: bool = True, dropout: float = 0.0,
                 latent_neighbors: int = 0, latent_metric: str = "euclidean", loss: str = "l2",
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 256, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(normalize_errors=normalize_errors, dropout=dropout,
                         latent_neighbors=latent_neighbors, latent_metric=latent_metric,
                         loss=loss, **_common(locals()))
        self.noise_std = noise_std
        self.mask_prob = mask_prob


    @property
    def _noise_std(self) -> float:  # type: ignore[override]
        return float(self.noise_std)

    @property
    def _mask_prob(self) -> float:  # type: ignore[override]
        return float(self.mask_prob)


class VAE(_LatentDistance, Detector):
    """Variational autoencoder (Kingma & Welling 2014), Gaussian decoder with learned variance.

    Parameters
    ----------
    beta : float, default 1.0
        Weight of the KL term (after warm-up).
    kl_warmup_epochs : int, default 10
        Epochs over which the KL weight rises linearly from 0 to ``beta``.
    score_method : {"elbo", "reconstruction_probability"}, default "elbo"
        ``"elbo"``: negative ELBO at the posterior mean (deterministic).
        ``"reconstruction_probability"`` (An & Cho 2015): negative log-likelihood
        averaged over ``n_samples`` posterior samples drawn with a fixed seed.
    n_samples : int, default 16
    learn_variance : bool, default True
        Learn a per-feature decoder variance (Gaussian likelihood); False fixes it to 1,
        so the likelihood is a scaled squared error.
    latent_neighbors, latent_metric
        As for :class:`AutoEncoder`, on the posterior means: ``k >= 1`` scores by the
        distance of an input's posterior mean to the ``k`` nearest posterior means of
        the training normals (``score_method`` then only shapes the anomaly map).

    Other parameters: see :class:`~genad.detector.Detector`.
    """

    model_name = "vae"
    backbones = ("mlp", "conv2d")
    parameter_constraints = {
        **Detector.parameter_constraints,
        "beta": Real(0.0, low_open=True),
        "kl_warmup_epochs": Integer(0),
        "score_method": OneOf(("elbo", "reconstruction_probability")),
        "n_samples": Integer(1),
        "learn_variance": OneOf((True, False)),
        **_LatentDistance.latent_constraints,
    }

    def __init__(self, *, beta: float = 1.0, kl_warmup_epochs: int = 10,
                 score_method: str = "elbo", n_samples: int = 16, learn_variance: bool = True,
                 latent_neighbors: int = 0, latent_metric: str = "euclidean",
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 256, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.score_method = score_method
        self.n_samples = n_samples
        self.learn_variance = learn_variance
        self.latent_neighbors = latent_neighbors
        self.latent_metric = latent_metric

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        backbone, latent = self._backbone(), self.latent_dim_
        options = self._backbone_options(backbone)
        return VAEModel(factory.encoder(backbone, sample_shape, 2 * latent, **options),
                        factory.decoder(backbone, sample_shape, latent, out_multiplier=2,
                                        **options),
                        latent_dim=latent, n_features=math.prod(sample_shape),
                        beta=self.beta, kl_warmup_epochs=self.kl_warmup_epochs,
                        score_method=self.score_method, n_samples=self.n_samples,
                        learn_variance=self.learn_variance,
                        latent_neighbors=int(self.latent_neighbors),
                        latent_metric=self.latent_metric,
                        latent_capacity=self._latent_capacity())


class PCAConvAutoEncoder(Detector):
    """PCA reconstruction error combined with a 1-D convolutional autoencoder's error.

    The hybrid used for card fraud in the literature: PCA captures the linear structure,
    the convolutional autoencoder (over the feature vector as a 1-channel sequence) the
    non-linear part. Each part's per-feature squared error is divided by that part's
    mean error on the training normals, then
    ``score = pca_weight * e_pca + (1 - pca_weight) * e_cae``.

    Parameters
    ----------
    n_components : int or float, default 0.95
        PCA components, or the fraction of variance to keep.
    pca_weight : float, default 0.5
    conv_width : int, default 8
        Channels of the first convolution.

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` is not used).
    """

    model_name = "pca-cae"
    backbones = ("conv1d",)
    parameter_constraints = {
        **Detector.parameter_constraints,
        "n_components": CountOrFraction(),
        "pca_weight": Real(0.0, 1.0),
        "conv_width": Integer(1),
    }

    def __init__(self, *, n_components: int | float = 0.95, pca_weight: float = 0.5,
                 conv_width: int = 8,
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 256, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.n_components = n_components
        self.pca_weight = pca_weight
        self.conv_width = conv_width


    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        latent, width = self.latent_dim_, self.conv_width
        net = Conv1dAutoEncoderNet.from_parts(
            factory.encoder("conv1d", sample_shape, latent, width=width),
            factory.decoder("conv1d", sample_shape, latent, width=width))
        return PCAConvAutoEncoderModel(net, math.prod(sample_shape),
                                       n_components=self.n_components,
                                       pca_weight=self.pca_weight)


class _ConvImages:
    """Mixin of the image presets: the ``conv2d`` backbone with ``conv_width`` channels."""

    backbones = ("conv2d",)
    modalities = ("image",)
    conv_width: int

    def _backbone_options(self, backbone: str) -> dict[str, Any]:
        return {"width": int(self.conv_width)}


class ConvAutoEncoder(_ConvImages, AutoEncoder):
    """:class:`AutoEncoder` on images: DCGAN-style convolutional encoder and decoder.

    The score is the squared reconstruction error summed over the pixels (each pixel's
    error divided by its mean on the training normals with ``normalize_errors``); the
    anomaly map is the per-pixel error at each image's original size.

    Parameters
    ----------
    conv_width : int, default 16
        Channels of the first convolution (doubling at each halving, up to 8x). 16 keeps
        a 128 x 128 gray image at about 60 M multiply-adds per pass, so a 2-core CPU
        scores a few hundred images per second (32 costs four times as much).
    normalize_errors, dropout, latent_neighbors, latent_metric, loss
        See :class:`AutoEncoder`.

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` is not used).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 50, size=(64, 32, 32), dtype=np.uint8)
    >>> det = genad.ConvAutoEncoder(conv_width=4, epochs=2, random_state=0, verbose=0)
    >>> det.fit(images).anomaly_map(images[:2]).shape
    (2, 32, 32)
    """

    model_name = "conv-ae"
    parameter_constraints = {**AutoEncoder.parameter_constraints, "conv_width": Integer(1)}

    def __init__(self, *, conv_width: int = 16, normalize_errors: bool = True,
                 dropout: float = 0.0, latent_neighbors: int = 0,
                 latent_metric: str = "euclidean", loss: str = "l2",
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(normalize_errors=normalize_errors, dropout=dropout,
                         latent_neighbors=latent_neighbors, latent_metric=latent_metric,
                         loss=loss, **_common(locals()))
        self.conv_width = conv_width


class ConvVAE(_ConvImages, VAE):
    """:class:`VAE` on images: DCGAN-style convolutional encoder and decoder.

    Parameters
    ----------
    conv_width : int, default 16
        Channels of the first convolution (doubling at each halving, up to 8x). 16 keeps
        a 128 x 128 gray image at about 60 M multiply-adds per pass, so a 2-core CPU
        scores a few hundred images per second (32 costs four times as much).
    beta, kl_warmup_epochs, score_method, n_samples, learn_variance
        See :class:`VAE`.
    latent_neighbors, latent_metric
        See :class:`VAE` (on images, with ``ImageAdapter(score="model")``).

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` is not used).
    """

    model_name = "conv-vae"
    parameter_constraints = {**VAE.parameter_constraints, "conv_width": Integer(1)}

    def __init__(self, *, conv_width: int = 16, beta: float = 1.0, kl_warmup_epochs: int = 10,
                 score_method: str = "elbo", n_samples: int = 16, learn_variance: bool = True,
                 latent_neighbors: int = 0, latent_metric: str = "euclidean",
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(beta=beta, kl_warmup_epochs=kl_warmup_epochs,
                         score_method=score_method, n_samples=n_samples,
                         learn_variance=learn_variance, latent_neighbors=latent_neighbors,
                         latent_metric=latent_metric, **_common(locals()))
        self.conv_width = conv_width


# ------------------------------------------------------------------ the GAN models

__all__ += ["GANomaly", "FAnoGAN", "VAEGAN"]

class DRAEM(_ConvImages, Detector):
    """DRAEM (Zavrtanik et al. 2021): a network that learns, on normal images only, to
    segment simulated defects; its per-pixel defect probability is the anomaly map.

    Each training batch gets simulated defects (smooth blobs and thin cracks, filled with
    another image, a darker or brighter patch, noise or a flat level) pasted into half its
    images, and a segmentation U-Net learns to mark the altered pixels. It suits local
    defects (porosity, inclusions, cracks) on surfaces and parts; a global change (a
    diseased lung) does not look like a pasted defect. With ``reconstruction=True`` a
    reconstructive U-Net also learns to give back the clean image and the segmenter sees
    the image beside it, as in the paper. See :class:`genad.models.DRAEMModel`.

    Parameters
    ----------
    reconstruction : bool, default False
        Train the reconstructive network and show its output to the segmenter (DRAEM as
        published). Off by default: it doubles the compute, and in genad's probes
        (castings, magnetic tile) it scored no better (``docs/images.md``).
    conv_width : int, default 16
        Channels of the U-Nets' first level (doubling at each of three halvings).
    batch_size : int, default 16
    learning_rate : float, default 1e-3

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` and
    ``latent_dim`` are not used).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 50, size=(32, 16, 16), dtype=np.uint8)
    >>> det = genad.DRAEM(conv_width=4, epochs=1, random_state=0, verbose=0)
    >>> det.fit(images).anomaly_map(images[:2]).shape
    (2, 16, 16)
    """

    model_name = "draem"
    map_meaning = "the surer the model is that the spot is a defect"
    parameter_constraints = {**Detector.parameter_constraints,
                             "reconstruction": OneOf((True, False)),
                             "conv_width": Integer(1)}

    def __init__(self, *, reconstruction: bool = False, conv_width: int = 16,
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 16, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.reconstruction = reconstruction
        self.conv_width = conv_width

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        from genad.models.draem import DRAEMModel
        from genad.nets.unet import UNet

        channels, width = int(sample_shape[0]), int(self.conv_width)
        reconstructor = UNet(channels, channels, width) if self.reconstruction else None
        segmenter = UNet(2 * channels if self.reconstruction else channels, 1, width)
        return DRAEMModel(segmenter, reconstructor)

    def _network_summary(self) -> str | None:
        shape = getattr(self, "sample_shape_", None)
        if shape is None:
            return None
        return (("reconstructive U-Net, then segmenting U-Net, " if self.reconstruction
                 else "segmenting U-Net, ") + " \u00d7 ".join(str(v) for v in shape)
                + f" \u2192 defect map, {self.conv_width} channels at the first of 4 levels")


class _TablesOrImages:
    """Mixin of the GAN detectors: ``"mlp"`` on table rows, ``"conv2d"`` on images
    (``auto`` picks by the samples' rank), ``conv_width`` channels for the latter."""

    backbones = ("mlp", "conv2d")
    modalities = ("tabular", "image")
    conv_width: int

    def _backbone_options(self, backbone: str) -> dict[str, Any]:
        if backbone == "conv2d":
            return {"width": int(self.conv_width)}
        return super()._backbone_options(backbone)  # type: ignore[misc]


class GANomaly(_TablesOrImages, Detector):
    """GANomaly (Akcay et al. 2018): an encoder-decoder-encoder generator against a
    discriminator; score = the latent distance ``||z - z_hat||^2``.

    The generator encodes a sample to ``z``, reconstructs it, and encodes the
    reconstruction again to ``z_hat``; it learns, on normal data only, to make the two
    codes agree. The anomaly map is the absolute reconstruction residual of each column
    or pixel: it shows where the sample is not reconstructed, but does not sum to the
    score. See :class:`genad.models.GANomalyModel`.

    Parameters
    ----------
    adversarial_weight : float, default 1.0
        Weight of the feature-matching adversarial loss (the paper's ``w_adv``).
    contextual_weight : float, default 50.0
        Weight of the L1 reconstruction loss (``w_con``).
    latent_weight : float, default 1.0
        Weight of the latent L2 loss (``w_lat``).
    conv_width : int, default 16
        Channels of the first convolution on images (doubling at each halving, up to 8x).
    learning_rate : float, default 2e-4
        Both players' (Adam, betas (0.5, 0.999), as in DCGAN).
    batch_size : int, default 64

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` sizes the
    encoders, decoder and discriminator on tables).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    >>> det = genad.GANomaly(hidden_sizes=[16], epochs=3, random_state=0, verbose=0).fit(X)
    >>> scores = det.anomaly_score(np.r_[X[:5], [[20.0, -20, 20, -20]]])
    >>> scores.shape, bool(scores[-1] > scores[:5].max())
    ((6,), True)
    """

    model_name = "ganomaly"
    parameter_constraints = {
        **Detector.parameter_constraints,
        "adversarial_weight": Real(0.0),
        "contextual_weight": Real(0.0),
        "latent_weight": Real(0.0),
        "conv_width": Integer(1),
    }

    def __init__(self, *, adversarial_weight: float = 1.0, contextual_weight: float = 50.0,
                 latent_weight: float = 1.0, conv_width: int = 16,
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, learning_rate: float = 2e-4,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.adversarial_weight = adversarial_weight
        self.contextual_weight = contextual_weight
        self.latent_weight = latent_weight
        self.conv_width = conv_width

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        from genad.models.ganomaly import GANomalyModel

        backbone, latent = self._backbone(), self.latent_dim_
        options = self._backbone_options(backbone)
        return GANomalyModel(
            factory.encoder(backbone, sample_shape, latent, **options),
            factory.decoder(backbone, sample_shape, latent, **options),
            factory.encoder(backbone, sample_shape, latent, **options),
            factory.discriminator(backbone, sample_shape, **options),
            latent, w_adv=self.adversarial_weight, w_con=self.contextual_weight,
            w_lat=self.latent_weight)


class FAnoGAN(_TablesOrImages, Detector):
    """f-AnoGAN (Schlegl et al. 2019): a Wasserstein GAN of the normal data, then an
    encoder that maps a sample to the latent code the generator reconstructs it from.

    Training has two phases, each of up to ``epochs`` epochs: the WGAN-GP (generator and
    critic; every epoch runs, there is no held-out criterion of a GAN's progress), then
    the encoder with the GAN frozen (early stopping). The score is the izi_f loss:
    ``||x - G(E(x))||^2 / n + kappa * ||f(x) - f(G(E(x)))||^2 / n_f``, with ``f`` the
    critic's features; the anomaly map is each column's or pixel's squared residual
    plus its share (in proportion to it) of the feature term, so it sums to the score.
    See :class:`genad.models.FAnoGANModel`.

    Parameters
    ----------
    kappa : float, default 1.0
        Weight of the critic-feature residual in the encoder's loss and the score.
    n_critic : int, default 5
        Critic steps per generator step.
    gp_weight : float, default 10.0
        Weight of the gradient penalty (WGAN-GP).
    conv_width : int, default 16
        Channels of the first convolution on images (doubling at each halving, up to 8x).
    learning_rate : float, default 2e-4
        Every optimiser's (Adam, betas (0.5, 0.999)).
    batch_size : int, default 64

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` sizes the
    generator, critic and encoder on tables).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    >>> det = genad.FAnoGAN(hidden_sizes=[16], epochs=3, random_state=0, verbose=0).fit(X)
    >>> scores = det.anomaly_score(np.r_[X[:5], [[20.0, -20, 20, -20]]])
    >>> scores.shape, bool(scores[-1] > scores[:5].max())
    ((6,), True)
    """

    model_name = "fanogan"
    parameter_constraints = {
        **Detector.parameter_constraints,
        "kappa": Real(0.0),
        "n_critic": Integer(1),
        "gp_weight": Real(0.0),
        "conv_width": Integer(1),
    }

    def __init__(self, *, kappa: float = 1.0, n_critic: int = 5, gp_weight: float = 10.0,
                 conv_width: int = 16,
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, learning_rate: float = 2e-4,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.kappa = kappa
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.conv_width = conv_width

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        from genad.models.fanogan import FAnoGANModel

        backbone, latent = self._backbone(), self.latent_dim_
        options = self._backbone_options(backbone)
        # the critic has no batch norm: the gradient penalty is taken per sample
        critic = factory.discriminator(backbone, sample_shape, **options, batch_norm=False)
        return FAnoGANModel(factory.decoder(backbone, sample_shape, latent, **options), critic,
                            factory.encoder(backbone, sample_shape, latent, **options), latent,
                            kappa=self.kappa, n_critic=self.n_critic, gp_weight=self.gp_weight)


class VAEGAN(_TablesOrImages, Detector):
    """VAE-GAN (Larsen et al. 2016): a VAE whose decoder is also trained against a
    discriminator, reconstruction measured in pixels and in the discriminator's features.

    The score decodes the posterior mean: ``||x - x_rec||^2 + feature_weight *
    ||f(x) - f(x_rec)||^2`` with ``f`` the discriminator's features (both sums). The
    anomaly map is each column's or pixel's squared residual plus its share (in
    proportion to it) of the feature term, so it sums to the score. See
    :class:`genad.models.VAEGANModel`.

    Parameters
    ----------
    beta : float, default 1.0
        Weight of the KL term.
    feature_weight : float, default 1.0
        Weight of the discriminator-feature error, in training and in the score.
    adversarial_weight : float, default 1.0
        Weight of the adversarial loss of the encoder and decoder.
    pause_discriminator_below : float, "auto" or None, default "auto"
        Skip a discriminator step whose loss on the batch (real plus fake binary
        cross-entropy; about 1.39 when it cannot tell them apart) is already below this:
        a discriminator that is winning waits for the decoder instead of winning outright,
        which otherwise stops the fit with ``TrainingDivergedError``. ``"auto"`` is 0.5
        on images (the ``conv2d`` backbone: there it was measured, ``docs/images.md``) and
        off on tables; None never skips. The value in use is ``model_.pause_discriminator_below``.
    conv_width : int, default 16
        Channels of the first convolution on images (doubling at each halving, up to 8x).
    learning_rate : float, default 2e-4
        Both players' (Adam, betas (0.5, 0.999)).
    batch_size : int, default 64

    Other parameters: see :class:`~genad.detector.Detector` (``hidden_sizes`` sizes the
    encoder, decoder and discriminator on tables).

    Examples
    --------
    >>> import numpy as np, genad
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    >>> det = genad.VAEGAN(hidden_sizes=[16], epochs=3, random_state=0, verbose=0).fit(X)
    >>> scores = det.anomaly_score(np.r_[X[:5], [[20.0, -20, 20, -20]]])
    >>> scores.shape, bool(scores[-1] > scores[:5].max())
    ((6,), True)
    """

    model_name = "vaegan"
    parameter_constraints = {
        **Detector.parameter_constraints,
        "beta": Real(0.0),
        "feature_weight": Real(0.0),
        "adversarial_weight": Real(0.0),
        "pause_discriminator_below": AutoOr(Real(0.0, low_open=True, allow_none=True)),
        "conv_width": Integer(1),
    }
    #: older bundles lack the parameter: they were trained without the pause
    params_before = {**Detector.params_before, "pause_discriminator_below": None}

    def __init__(self, *, beta: float = 1.0, feature_weight: float = 1.0,
                 adversarial_weight: float = 1.0,
                 pause_discriminator_below: float | str | None = "auto",
                 conv_width: int = 16,
                 adapter: Adapter | None = None, backbone: str = "auto",
                 hidden_sizes: list[int] | None = None, latent_dim: int | None = None,
                 epochs: int | None = None, batch_size: int = 64, learning_rate: float = 2e-4,
                 weight_decay: float = 1e-5, patience: int = 10,
                 weight_averaging: float | str | None = "auto", n_members: int = 1,
                 validation_fraction: float = 0.1, target_fpr: float = 0.01,
                 contamination: float | None = None,
                 categorical_columns: list[str] | None = None, missing: str | None = None,
                 scaling: str | None = None, device: str = "auto",
                 random_state: int | None = None, verbose: int = 1) -> None:
        super().__init__(**_common(locals()))
        self.beta = beta
        self.feature_weight = feature_weight
        self.adversarial_weight = adversarial_weight
        self.pause_discriminator_below = pause_discriminator_below
        self.conv_width = conv_width

    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        from genad.models.vaegan import VAEGANModel

        backbone, latent = self._backbone(), self.latent_dim_
        options = self._backbone_options(backbone)
        return VAEGANModel(factory.encoder(backbone, sample_shape, 2 * latent, **options),
                           factory.decoder(backbone, sample_shape, latent, **options),
                           factory.discriminator(backbone, sample_shape, **options), latent,
                           beta=self.beta, feature_weight=self.feature_weight,
                           adversarial_weight=self.adversarial_weight,
                           pause_discriminator_below=self._pause_below(backbone))

    def _pause_below(self, backbone: str) -> float | None:
        """The pause threshold that ``pause_discriminator_below`` means with ``backbone``."""
        if isinstance(self.pause_discriminator_below, str):  # "auto"
            return SUGGESTED_PAUSE_BELOW if backbone == "conv2d" else None
        return self.pause_discriminator_below


#: CLI name -> detector class, for every preset of :mod:`genad.registry` (in its order)
MODELS: dict[str, type[Detector]] = {name: load_class(name) for name in names()}
