"""Autoencoder and denoising autoencoder objective (squared error or, on images, SSIM)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genad.models.base import GenerativeModel, mean_over
from genad.models.latent import MAX_CODES, LatentDistanceScore
from genad.models.losses import reconstruction_loss, squared_error
from genad.models.ssim import SSIMDissimilarity
from genad.nets.noise import rand_like, randn_like

__all__ = ["AutoEncoderModel"]


class AutoEncoderModel(LatentDistanceScore, GenerativeModel):
    """Deterministic autoencoder; with corruption it is a denoising autoencoder.

    Training minimises the squared error (or, with ``ssim``, the summed ``1 - SSIM``)
    between the clean input and the reconstruction of its corrupted version (Vincent et
    al. 2008). Scoring uses the clean input: the element score is the reconstruction
    error of each feature (pixel).

    Parameters
    ----------
    encoder, decoder : nn.Module
        Maps ``(n, d) -> (n, k)`` and back.
    noise_std : float, default 0
        Standard deviation of additive Gaussian noise during training.
    mask_prob : float, default 0
        Probability that a feature is set to 0 (masking noise) during training.
    n_features : int, optional
        Elements per sample (the features of a vector, ``channels * length`` of a
        series); needed with ``normalize_errors``.
    normalize_errors : bool, default False
        After training, divide each feature's squared error by its mean on the training
        rows, so that a feature the model reconstructs well and a noisy one weigh the same
        at "typical" error (a diagonal Mahalanobis distance of the residuals).
    latent_neighbors : int, default 0
        0: the score is the reconstruction error. ``k > 0``: after training, the codes of
        the training units are kept (:class:`~genad.models.latent.LatentBank`) and the
        score is the mean distance of a unit's code to its ``k`` nearest training codes;
        the map stays the reconstruction error (:attr:`additive_map` is then False).
    latent_dim : int, optional
        Size of the encoder's codes; needed with ``latent_neighbors``.
    latent_metric : {"euclidean", "cosine"}, default "euclidean"
        How the latent bank compares codes (:class:`~genad.models.latent.LatentBank`).
    latent_capacity : int, default MAX_CODES
        Training codes the latent bank keeps at most.
    ssim : SSIMDissimilarity, optional
        On images: the reconstruction error is ``1 - SSIM`` per pixel instead of the
        squared error, in training, validation and scoring (Bergmann et al. 2019).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        noise_std: float = 0.0,
        mask_prob: float = 0.0,
        n_features: int | None = None,
        normalize_errors: bool = False,
        latent_neighbors: int = 0,
        latent_dim: int | None = None,
        latent_metric: str = "euclidean",
        latent_capacity: int = MAX_CODES,
        ssim: SSIMDissimilarity | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.noise_std = float(noise_std)
        self.mask_prob = float(mask_prob)
        self.normalize_errors = bool(normalize_errors)
        if self.normalize_errors and n_features is None:
            raise ValueError("normalize_errors needs n_features")
        self.register_buffer("error_scale", torch.ones(int(n_features or 1)))
        self.ssim = ssim
        self._init_latent_bank(latent_neighbors, latent_dim, latent_metric, latent_capacity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_std > 0:
            x = x + self.noise_std * randn_like(x, self.generator)
        if self.mask_prob > 0:
            x = x * (rand_like(x, self.generator) >= self.mask_prob)
        return x

    def _reconstruction_loss(self, reconstruction: torch.Tensor, x: torch.Tensor
                             ) -> torch.Tensor:
        if self.ssim is None:
            return reconstruction_loss(reconstruction, x)
        return self.ssim(reconstruction, x).flatten(1).sum(1).mean()

    def _raw_error(self, x: torch.Tensor, reconstruction: torch.Tensor, *,
                   inplace: bool = False) -> torch.Tensor:
        """The element error before ``normalize_errors``: squared error or ``1 - SSIM``."""
        if self.ssim is None:
            return squared_error(reconstruction, x, inplace=inplace)
        return self.ssim(reconstruction, x)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": self._reconstruction_loss(self(self.corrupt(x)), x)}

    def _error(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        # in place: the reconstruction is ours
        err = self._raw_error(x, reconstruction, inplace=True)
        if not self.normalize_errors:
            return err
        return err.div_(self.error_scale.view(err.shape[1:]))

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self._error(x, self(x))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.latent_bank is None:
            return super().infer(x)
        z = self.encoder(x)  # one encoding for both the distance and the residual
        return self.latent_bank.distance(z), self._error(x, self.decoder(z))

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        return self._reconstruction_loss(self(x), x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Not available: an autoencoder's latent codes follow no known distribution.

        Decoding arbitrary codes gives no sample of the data (a Gaussian fitted to the
        training codes would add fitted state to every bundle for a use detection does
        not need). Use a VAE or one of the GAN models to generate samples.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            "an autoencoder cannot generate samples: its latent codes follow no known "
            "distribution to draw from")

    def finalize(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """After training: each feature's mean squared error on the training rows
        becomes its ``error_scale`` (with ``normalize_errors``); the latent bank keeps
        the training codes (with ``latent_neighbors``)."""
        self._fit_latent_bank(x_train)
        if not self.normalize_errors:
            return
        total = mean_over(lambda xb: self._raw_error(xb, self(xb)).sum(dim=0), x_train)
        mean = total.float().flatten()
        # floor: a feature reconstructed (almost) perfectly must not blow up tiny errors
        self.error_scale.copy_(mean.clamp_min(max(1e-4, float(mean.mean()) * 1e-2)))
