"""1-D convolutional autoencoder network: shapes for any length, gradients flow."""

from __future__ import annotations

import pytest
import torch

from genad.nets.conv1d import Conv1dAutoEncoderNet


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 7, 8, 29, 30, 31, 122])
def test_output_has_input_shape_for_vectors(length):
    torch.manual_seed(0)
    net = Conv1dAutoEncoderNet(length, width=4, latent_dim=3)
    x = torch.randn(6, length)
    out = net(x)
    assert out.shape == x.shape
    assert torch.all(torch.isfinite(out))


@pytest.mark.parametrize("channels", [1, 3])
def test_output_has_input_shape_for_multichannel_series(channels):
    net = Conv1dAutoEncoderNet(17, channels=channels, width=4, latent_dim=2)
    x = torch.randn(5, channels, 17)
    assert net(x).shape == (5, channels, 17)


def test_latent_bottleneck_size():
    net = Conv1dAutoEncoderNet(30, width=4, latent_dim=5)
    assert net.to_latent.out_features == 5
    assert net.from_latent[0].in_features == 5


def test_gradients_reach_every_parameter():
    net = Conv1dAutoEncoderNet(13, width=4, latent_dim=2)
    x = torch.randn(8, 13)
    ((net(x) - x) ** 2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.any(p.grad != 0), name


def test_can_learn_to_reconstruct():
    torch.manual_seed(0)
    net = Conv1dAutoEncoderNet(16, width=8, latent_dim=4)
    base = torch.randn(4, 16)
    x = base[torch.randint(0, 4, (64,))]  # four prototypes: easy to reconstruct
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        opt.zero_grad()
        loss = ((net(x) - x) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert float(loss) < 0.2 * first
