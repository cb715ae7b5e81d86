"""DRAEM (Zavrtanik et al. 2021): learn to segment simulated defects on normal images.

Each training batch gets simulated anomalies (:mod:`genad.models.simulation`) pasted into
half its images. A reconstructive network learns to give back the clean image; a
segmentation network sees the altered image beside that reconstruction and learns to
mark the altered pixels. At scoring time the segmentation network's per-pixel probability
is the anomaly map: a real defect looks to it like the simulated ones (something that
does not belong to the surface), without any real defect in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genad.models.base import GenerativeModel
from genad.models.losses import dice_loss, focal_loss
from genad.models.simulation import simulate_anomalies

__all__ = ["DRAEMModel"]

_FOCAL_WEIGHT = 10.0  # the focal term is small per pixel: it is weighed up against dice
_RECONSTRUCTION_WEIGHT = 10.0
_VALIDATION_SEED = 0  # the held-out batches get the same simulated defects every epoch


class DRAEMModel(GenerativeModel):
    """Segment simulated defects; the anomaly map is the predicted defect probability.

    Parameters
    ----------
    segmenter : nn.Module
        ``(n, 2C, H, W) -> (n, 1, H, W)`` logits from the image and its reconstruction
        (``(n, C, H, W)``, the image alone, without a reconstructor).
    reconstructor : nn.Module, optional
        ``(n, C, H, W) -> (n, C, H, W)``: trained to undo the simulated defects (squared
        error to the clean image). None: the segmenter sees the image alone.

    Notes
    -----
    The element scores are the defect probability of each pixel, repeated over the
    channels, so the score (their sum) is ``C`` times the expected defect area.
    """

    def __init__(self, segmenter: nn.Module, reconstructor: nn.Module | None = None) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.reconstructor = reconstructor

    def _logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.reconstructor is None:
            return self.segmenter(x), None
        rec = self.reconstructor(x)
        return self.segmenter(torch.cat([x, rec], 1)), rec

    def _losses(self, x: torch.Tensor, generator: torch.Generator | None
                ) -> dict[str, torch.Tensor]:
        altered, mask = simulate_anomalies(x, generator)
        logits, rec = self._logits(altered)
        parts = {"focal": _FOCAL_WEIGHT * focal_loss(logits, mask),
                 "dice": dice_loss(torch.sigmoid(logits), mask)}
        if rec is not None:
            parts["reconstruction"] = _RECONSTRUCTION_WEIGHT * F.mse_loss(rec, x)
        parts["loss"] = sum(parts.values())
        return parts

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._losses(x, self.generator)

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training loss on held-out images with the same simulated defects each
        epoch (a generator seeded afresh), so epochs compare."""
        generator = torch.Generator(device=x.device).manual_seed(_VALIDATION_SEED)
        return self._losses(x, generator)["loss"]

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        logits, _ = self._logits(x)
        return torch.sigmoid(logits).expand_as(x).contiguous()
