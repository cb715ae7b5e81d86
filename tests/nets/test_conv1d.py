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


@pytest.mark.parametrize(("length", "channels"), [(1, 1), (5, 1), (30, 1), (31, 1), (17, 3)])
def test_inference_matches_training_mode_output(length, channels):
    torch.manual_seed(0)
    net = Conv1dAutoEncoderNet(length, channels=channels, width=4, latent_dim=3)
    shape = (9, length) if channels == 1 else (9, channels, length)
    x = torch.randn(*shape)
    expected = net(x).detach()
    net.eval()
    with torch.inference_mode():
        got = net(x)
    assert net._dense is not None  # the dense path ran
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_inference_follows_weight_updates_and_loaded_weights():
    torch.manual_seed(0)
    net = Conv1dAutoEncoderNet(12, width=4, latent_dim=2).eval()
    x = torch.randn(7, 12)
    with torch.no_grad():
        before = net(x)
    # fused Adam updates in place without bumping the parameters' version counters
    opt = torch.optim.Adam(net.parameters(), lr=0.05, fused=True)
    with torch.enable_grad():
        ((net(x) - x) ** 2).mean().backward()
    opt.step()
    with torch.no_grad():
        after = net(x)
    net.train()
    expected = net(x).detach()
    net.eval()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)

    other = Conv1dAutoEncoderNet(12, width=4, latent_dim=2)
    other.load_state_dict(net.state_dict())
    net.load_state_dict(Conv1dAutoEncoderNet(12, width=4, latent_dim=2).state_dict())
    with torch.no_grad():
        changed = net(x)
    assert not torch.allclose(changed, after)
    net.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(net(x), after)


def test_long_series_keep_the_convolution(monkeypatch):
    monkeypatch.setattr("genad.nets.conv1d.DENSE_MAX_ELEMENTS", 100)
    net = Conv1dAutoEncoderNet(40, width=4, latent_dim=2).eval()
    x = torch.randn(3, 40)
    with torch.no_grad():
        out = net(x)
    assert net._dense is None
    assert out.shape == x.shape
