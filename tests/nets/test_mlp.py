"""MLP builder and default sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genad.nets.mlp import ACTIVATIONS, default_mlp_sizes, mlp
from genad.nets.noise import Dropout


def _linears(net):
    return [m for m in net if isinstance(m, nn.Linear)]


def test_mlp_layer_sizes_and_last_layer_linear():
    net = mlp([30, 16, 8, 4])
    lin = _linears(net)
    assert [(m.in_features, m.out_features) for m in lin] == [(30, 16), (16, 8), (8, 4)]
    assert isinstance(net[-1], nn.Linear)  # the caller decides what the output means
    assert net(torch.zeros(5, 30)).shape == (5, 4)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_mlp_activation_between_hidden_layers_only(name):
    net = mlp([6, 5, 4, 3], activation=name)
    acts = [m for m in net if isinstance(m, ACTIVATIONS[name])]
    assert len(acts) == 2


def test_mlp_batch_norm_and_dropout():
    net = mlp([6, 5, 4, 3], batch_norm=True, dropout=0.5)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 2
    assert sum(isinstance(m, Dropout) for m in net) == 2
    assert isinstance(net[-1], nn.Linear)
    plain = mlp([6, 5, 3])
    assert not any(isinstance(m, (nn.BatchNorm1d, Dropout)) for m in plain)


def test_mlp_with_only_input_and_output_is_one_linear_layer():
    net = mlp([4, 2])
    assert len(net) == 1 and isinstance(net[0], nn.Linear)


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least input and output"):
        mlp([4])
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        mlp([4, 2], activation="swishy")


def test_mlp_is_trainable():
    torch.manual_seed(0)
    net = mlp([3, 8, 1])
    x = torch.randn(64, 3)
    y = x.sum(dim=1, keepdim=True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert float(loss) < 0.1 * first


@pytest.mark.parametrize("d", [1, 2, 5, 30, 64, 200, 1000])
def test_default_mlp_sizes_bounds(d):
    hidden, latent = default_mlp_sizes(d)
    assert len(hidden) == 2
    assert 32 <= hidden[0] <= 256 and 16 <= hidden[1] <= 128
    assert hidden[0] >= hidden[1]
    assert 2 <= latent <= 32


def test_default_mlp_sizes_docstring_example():
    assert default_mlp_sizes(30) == ([60, 30], 10)
