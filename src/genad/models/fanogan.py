"""f-AnoGAN (Schlegl et al. 2019): a WGAN-GP, then an encoder trained with the GAN frozen."""

from __future__ import annotations

import torch
from torch import nn

from genad.models.base import Phase
from genad.models.gan import AdversarialModel

__all__ = ["FAnoGANModel"]


class FAnoGANModel(AdversarialModel):
    """f-AnoGAN with the izi_f encoder.

    Training has two phases (:meth:`phases`):

    1. ``"gan"``: a Wasserstein GAN with gradient penalty (Gulrajani et al. 2017): the
       generator maps standard normal draws ``z`` to samples, the critic (no batch norm:
       the penalty is per sample) takes ``n_critic`` steps per generator step. A GAN has
       no held-out criterion of progress, so this phase runs all its epochs and keeps
       the last weights; its recorded validation loss is the critic's estimate of the
       Wasserstein distance, ``mean D(x_val) - mean D(G(z))`` (fixed ``z``), for
       information.
    2. ``"encoder"``: the generator and critic are frozen (evaluation mode, no gradient)
       and an encoder ``E`` learns to invert the generator, minimising the izi_f loss

       ``||x - G(E(x))||^2 / n + kappa * ||f(x) - f(G(E(x)))||^2 / n_f``

       (``n`` elements per sample, ``n_f`` critic features ``f``; parts ``"rec"`` and
       ``"feat"``), with early stopping on the same loss held out.

    The anomaly score is that loss per sample. The anomaly map is additive: each
    element's squared residual over ``n`` plus a share of the feature term in
    proportion to that residual (see
    :meth:`~genad.models.gan.AdversarialModel.residual_map`), so it sums to the score.

    Parameters
    ----------
    decoder : nn.Module
        The generator ``G: z -> x``.
    discriminator : nn.Module
        The critic, ``x -> (n, 1)``, with ``features(x)``; without batch norm.
    encoder : nn.Module
        ``E: x -> z``.
    latent_dim : int
    kappa : float, default 1.0
        Weight of the feature residual (the paper's 1).
    n_critic : int, default 5
        Critic steps per generator step (the paper's 5).
    gp_weight : float, default 10.0
        Gradient-penalty weight (the paper's 10).
    """

    adversarial_phases = ("gan",)
    phase = "gan"

    def __init__(self, decoder: nn.Module, discriminator: nn.Module, encoder: nn.Module,
                 latent_dim: int, *, kappa: float = 1.0, n_critic: int = 5,
                 gp_weight: float = 10.0) -> None:
        super().__init__(discriminator, latent_dim, objective="wasserstein", n_critic=n_critic,
                         gp_weight=gp_weight)
        self.decoder = decoder
        self.encoder = encoder
        self.kappa = float(kappa)

    def phases(self) -> tuple[Phase, ...]:
        """The WGAN-GP (every epoch, last weights), then the encoder (early stopping)."""
        return (Phase("gan", early_stopping=False), Phase("encoder"))

    def train(self, mode: bool = True) -> FAnoGANModel:
        """As ``nn.Module.train``, but the frozen generator and critic stay in evaluation
        mode in the encoder phase (batch norm keeps its statistics)."""
        super().train(mode)
        if self.phase == "encoder":
            self.decoder.eval()
            self.discriminator.eval()
        return self

    # --------------------------------------------------------------- training
    def generator_modules(self) -> list[nn.Module]:
        return [self.decoder]

    def fakes(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.draw_latent(x.shape[0], x))

    def generator_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        adv = self.adversarial_loss(self.fakes(x))
        return {"loss": adv, "adv": adv}

    def configure_optimizers(
        self, learning_rate: float, weight_decay: float
    ) -> list[torch.optim.Optimizer]:
        """The GAN's two optimisers, or in the encoder phase one Adam optimiser for the
        encoder (the generator and critic frozen)."""
        frozen = self.phase == "encoder"
        self.decoder.requires_grad_(not frozen)
        self.discriminator.requires_grad_(not frozen)
        if not frozen:
            return super().configure_optimizers(learning_rate, weight_decay)
        fused = all(p.device.type in ("cpu", "cuda") for p in self.parameters())
        return [torch.optim.Adam(self.encoder.parameters(), lr=learning_rate,
                                 weight_decay=weight_decay, betas=self.betas, fused=fused)]

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The izi_f loss (encoder phase): ``"loss"``, ``"rec"`` and ``"feat"``."""
        reconstruction = self.decoder(self.encoder(x))
        rec = (reconstruction - x).square().flatten(1).mean(1).mean()
        feat = self.feature_error(x, reconstruction).mean(1).mean()
        return {"loss": rec + self.kappa * feat, "rec": rec, "feat": feat}

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        if self.phase != "gan":
            return self.score(x).mean()
        gen = torch.Generator(device=x.device).manual_seed(0)
        z = torch.randn((x.shape[0], self.latent_dim), generator=gen, device=x.device,
                        dtype=x.dtype)
        return self.discriminator(x).mean() - self.discriminator(self.decoder(z)).mean()

    # ---------------------------------------------------------------- scoring
    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The izi_f residual of each element (additive: sums to the score)."""
        return self.residual_map(x, self.decoder(self.encoder(x)), self.kappa,
                                 per_element_mean=True)

    def decode_prior(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
