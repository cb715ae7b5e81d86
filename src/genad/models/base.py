"""The model interface the training loop and the detector rely on."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GenerativeModel"]


class GenerativeModel(nn.Module):
    """An objective over networks.

    Subclasses implement :meth:`loss` (training objective on a batch) and
    :meth:`element_scores` (per-element anomaly contributions, deterministic, whose row
    sum is the anomaly score). Models that need more than one optimiser (GANs) override
    :meth:`configure_optimizers` and :meth:`train_step`; the loop stays the same.
    """

    #: set by the loop before each epoch (0-based), for schedules such as KL warm-up
    epoch: int = 0
    #: per-fit source of training noise (see :mod:`genad.nets.noise`); set by the loop
    generator: torch.Generator | None = None

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Draw every random number of training from ``generator`` (this model and every
        submodule with a ``generator`` attribute, such as :class:`genad.nets.noise.Dropout`).
        """
        for module in self.modules():
            if hasattr(module, "generator"):
                module.generator = generator

    def setup(self, x_train: torch.Tensor) -> None:  # noqa: B027 - optional hook
        """Data-dependent initialisation before training (e.g. fitting PCA)."""

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on a batch: a dict with key ``"loss"`` and optional parts."""
        raise NotImplementedError

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-element contributions ``(n, d)``; ``score = element_scores(x).sum(1)``."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """One anomaly score per row, higher = more anomalous."""
        return self.element_scores(x).sum(dim=1)

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic loss for early stopping; the mean score by default."""
        return self.score(x).mean()

    def configure_optimizers(
        self, learning_rate: float, weight_decay: float
    ) -> list[torch.optim.Optimizer]:
        fused = all(p.device.type in ("cpu", "cuda") for p in self.parameters())
        return [torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                 fused=fused)]

    def train_step(
        self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """One optimisation step on batch ``x``; returns the detached loss parts."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        parts = self.loss(x)
        parts["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in parts.items()}

    def finalize(self, x_train: torch.Tensor) -> None:  # noqa: B027 - optional hook
        """After training (best weights restored): data-dependent post-processing."""

    def check_health(self, x_val: torch.Tensor) -> str | None:
        """Return advice when the fitted model is degenerate (e.g. collapsed), else None."""
        return None
