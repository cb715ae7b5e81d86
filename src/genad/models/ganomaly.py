"""GANomaly (Akcay, Atapour-Abarghouei & Breckon 2018): an encoder-decoder-encoder GAN."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genad.models.base import mean_over
from genad.models.gan import AdversarialModel
from genad.models.losses import squared_error

__all__ = ["GANomalyModel"]


class GANomalyModel(AdversarialModel):
    """GANomaly: the generator encodes ``x`` to ``z``, decodes ``x_hat``, and re-encodes
    ``x_hat`` to ``z_hat`` with a second encoder; a discriminator tells ``x`` from
    ``x_hat``.

    The generator side minimises ``w_adv * L_adv + w_con * L_con + w_lat * L_lat``, each
    an element mean as in the authors' code:

    - ``L_adv`` (``"adv"``): feature matching, the squared difference of the
      discriminator's features of ``x`` and ``x_hat``;
    - ``L_con`` (``"con"``): contextual, the absolute difference of ``x`` and ``x_hat``;
    - ``L_lat`` (``"lat"``): the squared difference of ``z`` and ``z_hat``.

    The discriminator is trained with binary cross-entropy (real ``x``, fake ``x_hat``);
    as in the authors' code, it is reset to its initial weights after a step whose loss
    fell below 1e-5. A discriminator that wins is no failure here: the generator's
    adversarial loss is feature matching, whose gradient does not vanish, and the
    contextual loss trains the reconstruction regardless (so the "discriminator won
    outright" health check of :class:`~genad.models.gan.AdversarialModel` is off).
    Early stopping watches ``w_con * L_con + w_lat * L_lat`` on the held-out units (the
    adversarial part is measured by a discriminator that keeps changing).

    Scoring (deterministic in evaluation mode): the score is the latent distance
    ``||z - z_hat||^2`` (summed over the latent); the anomaly map is the absolute
    residual ``|x - x_hat|`` of each element (each pixel of an image). The map shows
    *where* the reconstruction fails but does not sum to the score
    (:attr:`additive_map` is False).

    :meth:`sample` decodes draws of a diagonal Gaussian fitted to the training codes
    ``z`` after training (GANomaly has no prior over its codes).

    Parameters
    ----------
    encoder, decoder, encoder2 : nn.Module
        ``G_E: x -> z``, ``G_D: z -> x_hat``, ``E: x_hat -> z_hat``.
    discriminator : nn.Module
        ``x -> (n, 1)`` logits, with ``features(x)``.
    latent_dim : int
    w_adv, w_con, w_lat : float, default 1, 50, 1
        The loss weights (the paper's defaults).
    """

    additive_map = False
    #: feature matching keeps its gradient when the discriminator wins (no health check)
    saturating_adversarial_loss = False
    #: as in the authors' code: a discriminator whose loss falls below 1e-5 starts over
    reset_discriminator_below = 1e-5

    def __init__(self, encoder: nn.Module, decoder: nn.Module, encoder2: nn.Module,
                 discriminator: nn.Module, latent_dim: int, *, w_adv: float = 1.0,
                 w_con: float = 50.0, w_lat: float = 1.0) -> None:
        super().__init__(discriminator, latent_dim, objective="bce")
        self.encoder = encoder
        self.decoder = decoder
        self.encoder2 = encoder2
        self.w_adv = float(w_adv)
        self.w_con = float(w_con)
        self.w_lat = float(w_lat)
        self.register_buffer("latent_mean", torch.zeros(self.latent_dim))
        self.register_buffer("latent_std", torch.ones(self.latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, x_hat, z_hat)``."""
        z = self.encoder(x)
        x_hat = self.decoder(z)
        return z, x_hat, self.encoder2(x_hat)

    # --------------------------------------------------------------- training
    def generator_modules(self) -> list[nn.Module]:
        return [self.encoder, self.decoder, self.encoder2]

    def fakes(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def generator_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, x_hat, z_hat = self(x)
        adv = self.feature_error(x, x_hat).mean()
        con = (x - x_hat).abs().mean()
        lat = squared_error(z_hat, z).mean()
        loss = self.w_adv * adv + self.w_con * con + self.w_lat * lat
        return {"loss": loss, "adv": adv, "con": con, "lat": lat}

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        z, x_hat, z_hat = self(x)
        return self.w_con * (x - x_hat).abs().mean() + self.w_lat * squared_error(z_hat, z).mean()

    def finalize(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """After training: the mean and standard deviation of the training codes, for
        :meth:`sample`."""
        def moments(xb: torch.Tensor) -> torch.Tensor:
            z = self.encoder(xb).double()
            return torch.stack([z.sum(dim=0), (z * z).sum(dim=0)])

        first, second = mean_over(moments, x_train)
        self.latent_mean.copy_(first.float())
        self.latent_std.copy_((second - first * first).clamp_min(0).sqrt().float())

    # ---------------------------------------------------------------- scoring
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The latent distance ``||z - z_hat||^2``, ``(n,)``."""
        z, _, z_hat = self(x)
        return squared_error(z_hat, z).flatten(1).sum(1)

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The absolute residual ``|x - x_hat|``, shaped like ``x``."""
        return (x - self.decoder(self.encoder(x))).abs()

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, x_hat, z_hat = self(x)
        return squared_error(z_hat, z).flatten(1).sum(1), (x - x_hat).abs()

    # --------------------------------------------------------------- sampling
    def decode_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Decodes ``latent_mean + latent_std * z``: draws of the training codes' Gaussian."""
        return self.decoder(self.latent_mean + self.latent_std * z)

    def health_samples(self, real: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor | None:
        """None: no collapse check. GANomaly's generator reconstructs its input (an L1
        loss of weight ``w_con`` ties ``x_hat`` to ``x``) instead of mapping noise to
        samples; a generator that ignores its input shows as a high held-out
        reconstruction loss, and nearly identical reconstructions are also what a barely
        trained autoencoder gives, so the check would only confuse the two."""
        return None
