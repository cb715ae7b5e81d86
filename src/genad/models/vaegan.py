"""VAE-GAN (Larsen et al. 2016): a VAE whose decoder also plays against a discriminator."""

from __future__ import annotations

import torch
from torch import nn

from genad.models.gan import AdversarialModel
from genad.models.losses import gaussian_kl, squared_error
from genad.models.vae import guard_logvar
from genad.nets.noise import randn_like
from genad.nets.norm import frozen_norm_statistics

__all__ = ["VAEGANModel"]


class VAEGANModel(AdversarialModel):
    """VAE-GAN: a VAE (Gaussian posterior, standard normal prior) and a discriminator that
    tells real samples from reconstructions and prior samples.

    The encoder and decoder minimise, per sample and averaged over the batch,

    ``rec + feature_weight * feat + beta * kl + adversarial_weight * adv``

    - ``rec`` (``"rec"``): the squared error between ``x`` and its reconstruction
      ``x_tilde = decoder(z)``, ``z`` drawn from the posterior, summed over elements;
    - ``feat`` (``"feat"``): the squared error between the discriminator's features of
      ``x`` and ``x_tilde``, summed (Larsen et al.'s learned similarity; the pixel term
      is kept beside it, which steadies training on tables and small images);
    - ``kl`` (``"kl"``): the KL divergence of the posterior from the prior;
    - ``adv`` (``"adv"``): the non-saturating ``-log D`` of reconstructions and of prior
      samples ``decoder(z_p)``.

    The discriminator is trained with binary cross-entropy: real ``x`` against the
    reconstructions and prior samples together. (Larsen et al. keep the adversarial loss
    out of the encoder's update and weight the feature loss differently for encoder and
    decoder; here one optimiser trains both on the sum above.)

    Scoring (deterministic in evaluation mode) decodes the posterior mean ``mu``: the
    score is ``||x - decoder(mu)||^2 + feature_weight * ||f(x) - f(decoder(mu))||^2``
    (sums over elements and features; no KL term). The anomaly map is additive: each
    element's squared residual plus a share of the feature term in proportion to it
    (:meth:`~genad.models.gan.AdversarialModel.residual_map`). Early stopping watches
    the held-out ``rec + kl`` at the posterior mean (the feature term is measured by a
    discriminator that keeps changing).

    Parameters
    ----------
    encoder : nn.Module
        ``x -> (n, 2 * latent_dim)``: the posterior's means and log-variances (softly
        clamped to ``[-8, 8]``).
    decoder : nn.Module
        ``z -> x``.
    discriminator : nn.Module
        ``x -> (n, 1)`` logits, with ``features(x)``.
    latent_dim : int
    beta : float, default 1.0
        Weight of the KL term.
    feature_weight : float, default 1.0
        Weight of the discriminator-feature error, in training and in the score.
    adversarial_weight : float, default 1.0
        Weight of the adversarial term.
    pause_discriminator_below : float, optional
        Skip a discriminator step whose loss is already below this (see
        :class:`~genad.models.gan.AdversarialModel`); None never skips.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module,
                 latent_dim: int, *, beta: float = 1.0, feature_weight: float = 1.0,
                 adversarial_weight: float = 1.0,
                 pause_discriminator_below: float | None = None) -> None:
        super().__init__(discriminator, latent_dim, objective="bce",
                         pause_discriminator_below=pause_discriminator_below)
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.feature_weight = float(feature_weight)
        self.adversarial_weight = float(adversarial_weight)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's means and (guarded) log-variances."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, guard_logvar(logvar)

    def _posterior_draw(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * randn_like(mu, self.generator)

    # --------------------------------------------------------------- training
    def generator_modules(self) -> list[nn.Module]:
        return [self.encoder, self.decoder]

    def _decode_prior_draws(self, like: torch.Tensor) -> torch.Tensor:
        """The decoder on fresh prior draws, one per row of ``like``, in training mode but
        leaving the decoder's batch-norm running statistics alone: those serve scoring,
        which decodes posterior means, and prior draws decode differently (mixing both
        kinds into the statistics ruined the evaluation-mode reconstructions)."""
        with frozen_norm_statistics(self.decoder):
            return self.decoder(self.draw_latent(like.shape[0], like))

    def fakes(self, x: torch.Tensor) -> torch.Tensor:
        reconstruction = self.decoder(self._posterior_draw(*self.encode(x)))
        return torch.cat([reconstruction, self._decode_prior_draws(x)])

    def generator_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        reconstruction = self.decoder(self._posterior_draw(mu, logvar))
        prior = self._decode_prior_draws(x)
        rec = squared_error(reconstruction, x).flatten(1).sum(1).mean()
        feat = self.feature_error(x, reconstruction).sum(1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        adv = self.adversarial_loss(torch.cat([reconstruction, prior]))
        loss = (rec + self.feature_weight * feat + self.beta * kl
                + self.adversarial_weight * adv)
        return {"loss": loss, "rec": rec, "feat": feat, "kl": kl, "adv": adv}

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode(x)
        rec = squared_error(self.decoder(mu), x).flatten(1).sum(1)
        return (rec + gaussian_kl(mu, logvar)).mean()

    # ---------------------------------------------------------------- scoring
    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Squared residual of each element plus its share of the feature error."""
        mu, _ = self.encode(x)
        return self.residual_map(x, self.decoder(mu), self.feature_weight,
                                 per_element_mean=False)

    def decode_prior(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
