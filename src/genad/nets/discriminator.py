"""A discriminator: a feature body and a linear head that gives one logit per sample."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Discriminator"]


class Discriminator(nn.Module):
    """``head(body(x))``: ``(n, *sample_shape) -> (n, 1)`` logits ("is this sample real?").

    :meth:`features` is the body's output, the discriminator's last hidden layer: the
    features that feature-matching losses and anomaly scores (f-AnoGAN, VAE-GAN) compare
    between a sample and its reconstruction.

    Parameters
    ----------
    body : nn.Module
        Maps a batch to ``(n, f)`` features.
    head : nn.Module
        Maps ``(n, f)`` features to ``(n, 1)`` logits (usually ``nn.Linear(f, 1)``).

    Examples
    --------
    >>> disc = Discriminator(nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU()), nn.Linear(3, 1))
    >>> x = torch.zeros(5, 4)
    >>> disc(x).shape, disc.features(x).shape
    (torch.Size([5, 1]), torch.Size([5, 3]))
    """

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, ``(n, f)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
