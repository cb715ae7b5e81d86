"""Batch-norm statistics: keep a network's running statistics out of a forward pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["frozen_norm_statistics"]


@contextmanager
def frozen_norm_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in training mode without updating its batch-norm running statistics.

    Inside the block each batch-norm layer still normalises by the batch's own statistics
    (training mode is not changed), but its running mean and variance stay as they were
    (momentum 0), so a pass on inputs of another kind (a decoder fed prior draws rather
    than posterior codes) does not shift the statistics that evaluation mode will use.
    The momenta and batch counts are restored on exit, also after an error (the count
    weighs the cumulative average of a layer with ``momentum=None``).

    Parameters
    ----------
    module : nn.Module

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    >>> before = net[1].running_mean.clone()
    >>> with frozen_norm_statistics(net):
    ...     _ = net(torch.randn(8, 3) + 5)
    >>> bool(torch.equal(before, net[1].running_mean)), net[1].momentum
    (True, 0.1)
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None
              else m.num_batches_tracked.clone()) for m in norms]
    try:
        for m in norms:
            m.momentum = 0.0
        yield module
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)
