"""Structural dissimilarity of images, ``1 - SSIM`` per pixel (Bergmann et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual torch alias

__all__ = ["SSIMDissimilarity"]

#: SSIM's stabilising constants for images in [0, 1] (Wang et al. 2004: K1, K2 with L = 1)
_C1 = 0.01**2
_C2 = 0.03**2


class SSIMDissimilarity(nn.Module):
    """Per-pixel ``1 - SSIM`` between a reconstruction and its input.

    SSIM (Wang et al. 2004) compares the local means, contrasts and correlation of two
    images in a Gaussian window; an autoencoder trained and scored with it (Bergmann et
    al. 2019) is less sensitive to slight shifts of edges than the squared error, and
    more to a change of local structure (a scratch on a texture). The images arrive as
    the model sees them, standardised per channel; they are mapped back to ``[0, 1]``
    with the adapter's channel mean and standard deviation first, since SSIM's
    constants assume that range.

    The window is separable (one 1-D Gaussian along each axis) and the image is
    reflected at its borders, so every pixel has a value; a window wider than the image
    is narrowed to the largest odd width that fits.

    Parameters
    ----------
    channels : int
        The images' channels (SSIM is computed per channel).
    pixel_mean, pixel_std : sequence of float, optional
        Per-channel mean and standard deviation the inputs were standardised with
        (default 0 and 1: the inputs are already in ``[0, 1]``). Kept as buffers, so a
        saved model carries them.
    window : int, default 11
        Width of the Gaussian window (odd), as in Wang et al.
    sigma : float, default 1.5
        Its standard deviation in pixels.

    Examples
    --------
    >>> ssim = SSIMDissimilarity(1)
    >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x).abs().max().item() < 1e-5
    True
    >>> bool(ssim(x, 1 - x).mean() > 0.5)
    True
    """

    def __init__(self, channels: int, pixel_mean: list[float] | None = None,
                 pixel_std: list[float] | None = None, window: int = 11,
                 sigma: float = 1.5) -> None:
        super().__init__()
        if int(window) < 1 or int(window) % 2 == 0:
            raise ValueError(f"window must be a positive odd width, got {window}")
        channels = int(channels)
        mean = torch.zeros(channels) if pixel_mean is None else torch.tensor(
            [float(v) for v in pixel_mean])
        std = torch.ones(channels) if pixel_std is None else torch.tensor(
            [float(v) for v in pixel_std])
        if mean.shape != (channels,) or std.shape != (channels,):
            raise ValueError(f"pixel_mean and pixel_std need {channels} values each")
        self.window = int(window)
        self.sigma = float(sigma)
        self.register_buffer("pixel_mean", mean.view(1, channels, 1, 1))
        self.register_buffer("pixel_std", std.view(1, channels, 1, 1))

    def _kernel(self, width: int, like: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(width, dtype=torch.float32, device=like.device) - width // 2
        g = torch.exp(-steps.square() / (2.0 * self.sigma**2))
        return (g / g.sum()).to(like.dtype)

    def _blur(self, x: torch.Tensor, width: int) -> torch.Tensor:
        """Gaussian local mean of every channel of ``x`` (``(n, c, h, w)``)."""
        c, pad = x.shape[1], width // 2
        g = self._kernel(width, x)
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
        x = F.conv2d(x, g.view(1, 1, 1, width).expand(c, 1, 1, width), groups=c)
        return F.conv2d(x, g.view(1, 1, width, 1).expand(c, 1, width, 1), groups=c)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1 - SSIM`` per element: ``(n, C, H, W)``, each value in ``[0, 2]``."""
        a = reconstruction * self.pixel_std + self.pixel_mean
        b = target * self.pixel_std + self.pixel_mean
        side = min(a.shape[-2:])
        width = min(self.window, side if side % 2 else side - 1)
        c = a.shape[1]
        # one pass over the five local statistics: means, second moments, cross moment
        moments = self._blur(torch.cat([a, b, a * a, b * b, a * b], dim=1), width)
        mu_a, mu_b, aa, bb, ab = moments.split(c, dim=1)
        var_a = aa - mu_a * mu_a
        var_b = bb - mu_b * mu_b
        cov = ab - mu_a * mu_b
        ssim = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / (
            (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2))
        return (1.0 - ssim).clamp(0.0, 2.0)
