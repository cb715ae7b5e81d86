"""1-D convolutional autoencoder over a vector treated as a one-channel sequence."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Conv1dAutoEncoderNet"]


class Conv1dAutoEncoderNet(nn.Module):
    """Conv1d encoder/decoder for ``(n, length)`` vectors or ``(n, channels, length)`` series.

    Two strided convolutions halve the length twice; a linear bottleneck of size
    ``latent_dim`` sits between encoder and decoder; transposed convolutions restore the
    length (cropped back to the input length).

    Parameters
    ----------
    length : int
        Input length (number of features for a vector).
    channels : int, default 1
        Input channels.
    width : int, default 32
        Channels of the first convolution (the second has twice as many).
    latent_dim : int, default 8
        Bottleneck size.
    """

    def __init__(
        self, length: int, channels: int = 1, width: int = 32, latent_dim: int = 8
    ) -> None:
        super().__init__()
        self.length = int(length)
        self.channels = int(channels)
        padded = ((self.length + 3) // 4) * 4
        self.padded = padded
        self.encoder = nn.Sequential(
            nn.Conv1d(channels, width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.1),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.1),
        )
        flat = 2 * width * (padded // 4)
        self.to_latent = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.LeakyReLU(0.1))
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(2 * width, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            nn.ConvTranspose1d(width, channels, 4, stride=2, padding=1),
        )
        self._width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.dim() == 2
        h = x.unsqueeze(1) if squeeze else x
        if self.padded != self.length:
            h = nn.functional.pad(h, (0, self.padded - self.length))
        z = self.to_latent(self.encoder(h).flatten(1))
        h = self.from_latent(z).view(x.shape[0], 2 * self._width, self.padded // 4)
        out = self.decoder(h)[..., : self.length]
        return out.squeeze(1) if squeeze else out
