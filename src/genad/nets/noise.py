"""Training noise drawn from a per-fit ``torch.Generator``, never the process-global RNG.

Seeded fits must give the same model whether they run alone or in threads beside other
fits; the process-global torch RNG is shared by every thread, so every random draw made
while training (dropout masks, denoising noise, the VAE's reparameterisation) goes
through the generator the training loop hands to the model. With ``generator=None``
these functions fall back to the global RNG, exactly like their ``torch`` namesakes.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["randn_like", "rand_like", "Dropout"]


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``torch.randn_like(x)`` drawn from ``generator`` (same stream as the global RNG)."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def rand_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``torch.rand_like(x)`` drawn from ``generator``."""
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class Dropout(nn.Module):
    """``nn.Dropout`` whose masks come from ``self.generator`` when it is set.

    On the CPU it draws the same Bernoulli stream as ``nn.Dropout`` would from a global
    RNG in the same state, so seeded results do not change; it has no parameters or
    buffers, so state dicts are unchanged too.

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> drop = Dropout(0.5).train()
    >>> drop.generator = gen
    >>> drop(torch.ones(2, 4)).shape
    torch.Size([2, 4])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        keep.div_(1.0 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
