"""Autoencoder and denoising autoencoder objective (squared reconstruction error)."""

from __future__ import annotations

import torch
from torch import nn

from genad.models.base import GenerativeModel

__all__ = ["AutoEncoderModel"]


class AutoEncoderModel(GenerativeModel):
    """Deterministic autoencoder; with corruption it is a denoising autoencoder.

    Training minimises the squared error between the clean input and the
    reconstruction of its corrupted version (Vincent et al. 2008). Scoring uses the clean
    input: the element score is the squared reconstruction error of each feature.

    Parameters
    ----------
    encoder, decoder : nn.Module
        Maps ``(n, d) -> (n, k)`` and back.
    noise_std : float, default 0
        Standard deviation of additive Gaussian noise during training.
    mask_prob : float, default 0
        Probability that a feature is set to 0 (masking noise) during training.
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, noise_std: float = 0.0, mask_prob: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.noise_std = float(noise_std)
        self.mask_prob = float(mask_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        if self.mask_prob > 0:
            x = x * (torch.rand_like(x) >= self.mask_prob)
        return x

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        recon = self(self.corrupt(x))
        return {"loss": ((recon - x) ** 2).sum(dim=1).mean()}

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        return (self(x) - x) ** 2
