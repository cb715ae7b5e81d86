"""Simulated anomalies on normal images: the training signal of a model that learns what a
defect looks like without ever seeing one (DRAEM, Zavrtanik et al. 2021).

:func:`simulate_anomalies` pastes a random region into each image of the second half of
a batch and returns the altered batch with the region's mask. A region is either a
smooth blob (low-resolution uniform noise, upsampled and cut at a random quantile, as
DRAEM's thresholded Perlin noise) or a thin crack (a polyline 1 to 3 px wide). It is
filled with one of: another image of the batch, the image darkened or brightened, the
image with added noise, or a flat grey level, blended in with a random opacity. The
intensity changes work in each image's own range, so they mean the same whatever the
adapter's normalisation. Every random number comes from the caller's generator, so a
seeded fit is reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["simulate_anomalies"]

_BLOB_RESOLUTIONS = (2, 4, 8, 16)  # the noise's grid: large soft blobs to small spots
_BLOB_SHARE = 0.6  # the other regions are cracks
_MIN_OPACITY = 0.3


def _uniform(generator: torch.Generator | None, n: int, low: float, high: float,
             device: torch.device) -> list[float]:
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return (low + (high - low) * u).tolist()


def _blob(h: int, w: int, generator: torch.Generator | None, device: torch.device
          ) -> torch.Tensor:
    res_draw, q = _uniform(generator, 2, 0.0, 1.0, device)
    res = _BLOB_RESOLUTIONS[min(int(res_draw * len(_BLOB_RESOLUTIONS)),
                                len(_BLOB_RESOLUTIONS) - 1)]
    field = torch.rand((1, 1, res, res), generator=generator, device=device)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)[0, 0]
    cut = torch.quantile(field.flatten(), 0.90 + 0.095 * q)
    return (field > cut).float()


def _crack(h: int, w: int, generator: torch.Generator | None, device: torch.device
           ) -> torch.Tensor:
    side = min(h, w)
    n_segments = 2 + int(_uniform(generator, 1, 0, 4, device)[0])
    y, x, width = _uniform(generator, 3, 0.0, 1.0, device)
    y, x, half = y * h, x * w, 0.5 + int(width * 3) / 2  # 1 to 3 px wide
    rows = torch.arange(h, device=device, dtype=torch.float32)[:, None]
    cols = torch.arange(w, device=device, dtype=torch.float32)[None, :]
    mask = torch.zeros((h, w), device=device)
    draws = _uniform(generator, 2 * n_segments, 0.0, 1.0, device)
    for i in range(n_segments):
        angle, length = 2 * math.pi * draws[2 * i], 4 + (side / 3 - 4) * draws[2 * i + 1]
        dy, dx = length * math.sin(angle), length * math.cos(angle)
        # distance of every pixel to the segment (y, x) -> (y + dy, x + dx)
        t = (((rows - y) * dy + (cols - x) * dx) / max(dy * dy + dx * dx, 1e-9)).clamp(0, 1)
        dist = torch.hypot(rows - (y + t * dy), cols - (x + t * dx))
        mask = torch.maximum(mask, (dist <= half).float())
        y, x = y + dy, x + dx
    return mask


def simulate_anomalies(x: torch.Tensor, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a simulated defect into the second half of a batch of images.

    Parameters
    ----------
    x : Tensor
        Images ``(n, channels, height, width)``, in any units.
    generator : torch.Generator, optional
        Source of every random number (on ``x``'s device); the global RNG when None.

    Returns
    -------
    altered : Tensor
        ``x`` with the last ``n - n // 2`` images altered (the first half unchanged).
    mask : Tensor
        ``(n, 1, height, width)``: 1 where an image was altered, else 0.

    Examples
    --------
    >>> x = torch.rand(4, 1, 32, 32)
    >>> altered, mask = simulate_anomalies(x, torch.Generator().manual_seed(0))
    >>> altered.shape, mask.shape, bool(mask[:2].any()), bool(mask[2:].flatten(1).any(1).all())
    (torch.Size([4, 1, 32, 32]), torch.Size([4, 1, 32, 32]), False, True)
    """
    n, _, h, w = x.shape
    device = x.device
    mask = torch.zeros((n, 1, h, w), device=device, dtype=x.dtype)
    first = n // 2
    if first == n:
        return x.clone(), mask
    lo = x.flatten(1).amin(1)[:, None, None, None]
    span = (x.flatten(1).amax(1)[:, None, None, None] - lo).clamp_min(1e-6)
    unit = (x - lo) / span  # each image in [0, 1]
    out = x.clone()
    kinds = _uniform(generator, n - first, 0.0, 1.0, device)
    fills = _uniform(generator, n - first, 0.0, 1.0, device)
    amounts = _uniform(generator, n - first, 0.0, 1.0, device)
    opacities = _uniform(generator, n - first, _MIN_OPACITY, 1.0, device)
    for j, i in enumerate(range(first, n)):
        region = (_blob if kinds[j] < _BLOB_SHARE else _crack)(h, w, generator, device)
        image, a = unit[i], amounts[j]
        if fills[j] < 0.25:  # another image of the batch, mirrored
            fill = unit[(i + 1 + int(a * (n - 1))) % n].flip(-1)
        elif fills[j] < 0.5:  # darker, or brighter
            fill = image * (0.2 + 0.6 * a) if a < 0.7 else image + 0.2 + a * 0.3
        elif fills[j] < 0.75:  # noisy
            noise = torch.randn(image.shape, generator=generator, device=device,
                                dtype=x.dtype)
            fill = image + noise * (0.05 + 0.25 * a)
        else:  # a flat grey level
            fill = torch.full_like(image, a)
        blend = opacities[j] * region.to(x.dtype)
        altered = image * (1 - blend) + fill.clamp(0, 1) * blend
        out[i] = altered * span[i] + lo[i]
        mask[i, 0] = region
    return out, mask
