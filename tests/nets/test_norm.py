"""frozen_norm_statistics: batch statistics in use, running statistics untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genad.nets.norm import frozen_norm_statistics


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Flatten(), nn.LazyLinear(4), nn.BatchNorm1d(4, momentum=0.3)).train()


def _running(net: nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for t in (m.running_mean, m.running_var)]


def test_running_statistics_stay_while_the_batch_is_still_normalised_by_its_own():
    net, x = _net(), torch.randn(16, 1, 6, 6) * 4 + 7
    net(x)  # initialise the lazy layer
    before = _running(net)
    with frozen_norm_statistics(net):
        out = net(x)
    for a, b in zip(before, _running(net), strict=True):
        assert torch.equal(a, b)
    # training mode kept: the output is normalised by the batch (mean ~0 per feature)
    assert net.training and out.mean(dim=0).abs().max() < 1e-5
    net(x)  # outside the block the statistics move again
    assert not torch.equal(before[0], _running(net)[0])


def test_momenta_are_restored_also_after_an_error():
    net = _net()
    with pytest.raises(RuntimeError), frozen_norm_statistics(net):
        raise RuntimeError("boom")
    assert [m.momentum for m in net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)] == [0.1, 0.3]


def test_a_cumulative_average_layer_does_not_count_the_frozen_batches():
    """momentum=None averages every batch seen, weighted by the batch count: a frozen
    pass must leave the count too, or later batches would weigh less."""
    x, y = torch.randn(16, 4) * 3 + 2, torch.randn(16, 4) - 5
    plain, frozen = nn.BatchNorm1d(4, momentum=None), nn.BatchNorm1d(4, momentum=None)
    plain(x)
    frozen(x)
    with frozen_norm_statistics(frozen):
        frozen(y * 10)
    assert int(frozen.num_batches_tracked) == 1
    plain(y)
    frozen(y)
    assert torch.equal(plain.running_mean, frozen.running_mean)
    assert torch.equal(plain.running_var, frozen.running_var)
