"""A small U-Net (Ronneberger et al. 2015): per-pixel outputs for an image.

Three halvings (2x2 max pooling), each level two 3x3 convolutions with group
normalisation and ReLU; the decoder upsamples (nearest) and concatenates the encoder's
features of the same size. Channels double from ``width`` at each level. Sides that are
not multiples of 8 are padded (edge values) before the network and the output is cropped
back, so any image of 8 px or more works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genad._params import positive_int

__all__ = ["UNet"]

_LEVELS = 3


def _block(c_in: int, c_out: int) -> nn.Sequential:
    groups = 4 if c_out % 4 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.ReLU(True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.ReLU(True))


class UNet(nn.Module):
    """Maps ``(n, in_channels, H, W)`` to ``(n, out_channels, H, W)``.

    Parameters
    ----------
    in_channels, out_channels : int
    width : int, default 16
        Channels of the first level (then 2x, 4x, and 8x at the bottom).

    Examples
    --------
    >>> net = UNet(2, 1, width=4)
    >>> net(torch.zeros(3, 2, 28, 30)).shape
    torch.Size([3, 1, 28, 30])
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 16) -> None:
        super().__init__()
        c_in, c_out = positive_int("in_channels", in_channels), positive_int(
            "out_channels", out_channels)
        w = positive_int("width", width)
        widths = [w * 2**level for level in range(_LEVELS + 1)]  # w, 2w, 4w, 8w
        self.down = nn.ModuleList(
            [_block(c_in if i == 0 else widths[i - 1], widths[i]) for i in range(_LEVELS + 1)])
        self.up = nn.ModuleList(
            [_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(_LEVELS))])
        self.head = nn.Conv2d(w, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        step = 2**_LEVELS
        pad_h, pad_w = -h % step, -w % step
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"),
                                 skips.pop()], 1))
        return self.head(x)[..., :h, :w]
