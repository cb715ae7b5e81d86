"""1-D convolutional networks: shapes for any length, gradients flow, and the autoencoder
split into an encoder and a decoder without changing genad 0.1.0's keys, draws or bits."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genad.nets.conv1d import Conv1dAutoEncoderNet, Conv1dDecoder, Conv1dEncoder, Conv1dFeatures


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


# ---------------------------------------------------------------- the split into parts

#: the state dict of genad 0.1.0's network (bundles hold these keys): never change them
KEYS_0_1_0 = [
    ("encoder.0.weight", (4, 1, 5)), ("encoder.0.bias", (4,)),
    ("encoder.2.weight", (8, 4, 5)), ("encoder.2.bias", (8,)),
    ("to_latent.weight", (3, 24)), ("to_latent.bias", (3,)),
    ("from_latent.0.weight", (24, 3)), ("from_latent.0.bias", (24,)),
    ("decoder.0.weight", (8, 4, 4)), ("decoder.0.bias", (4,)),
    ("decoder.2.weight", (4, 1, 4)), ("decoder.2.bias", (1,)),
]


def _layers_0_1_0(length, channels, width, latent):
    """The layers of genad 0.1.0's network, built in its order (the seeded draws)."""
    flat = 2 * width * (((length + 3) // 4 * 4) // 4)
    return [nn.Conv1d(channels, width, 5, stride=2, padding=2),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.Linear(flat, latent), nn.Linear(latent, flat),
            nn.ConvTranspose1d(2 * width, width, 4, stride=2, padding=1),
            nn.ConvTranspose1d(width, channels, 4, stride=2, padding=1)]


def _forward_0_1_0(net, x):
    """genad 0.1.0's forward, both paths, on ``net``'s layers (a bit-exact reference)."""
    c, n, length, w = net.channels, net.padded, net.length, net._width
    if not net.training and not torch.is_grad_enabled():
        shapes = [(c, n), (w, n // 2), (2 * w, n // 4), (w, n // 2), (c, n)]
        layers = [net.encoder[0], net.encoder[2], net.decoder[0], net.decoder[2]]
        h = x.reshape(x.shape[0], c * length)
        for i, (layer, (ch, ln)) in enumerate(zip(layers, shapes[:4], strict=True)):
            real = length if i == 0 else ln
            eye = torch.eye(ch * real)
            basis = nn.functional.pad(eye.view(-1, ch, real), (0, ln - real))
            fn = (nn.functional.conv1d if isinstance(layer, nn.Conv1d)
                  else nn.functional.conv_transpose1d)
            out = fn(basis, layer.weight, None, layer.stride, layer.padding)
            if i == 3:
                out = out[..., :length]
            bias = layer.bias.repeat_interleave(out.shape[-1])
            if i == 2:
                h = net.from_latent(net.to_latent(h))
            h = torch.addmm(bias, h, out.flatten(1).contiguous())
            if i < 3:
                h = nn.functional.leaky_relu(h, 0.1, inplace=True)
        return h.reshape(x.shape)
    squeeze = x.dim() == 2
    h = x.unsqueeze(1) if squeeze else x
    if n != length:
        h = nn.functional.pad(h, (0, n - length))
    z = net.to_latent(net.encoder(h).flatten(1))
    h = net.from_latent(z).view(x.shape[0], 2 * w, n // 4)
    out = net.decoder(h)[..., :length]
    return out.squeeze(1) if squeeze else out


def test_state_dict_keys_and_shapes_are_those_of_genad_0_1_0():
    net = Conv1dAutoEncoderNet(12, width=4, latent_dim=3)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == KEYS_0_1_0
    parts = Conv1dAutoEncoderNet.from_parts(Conv1dEncoder(12, width=4, latent_dim=3),
                                            Conv1dDecoder(12, width=4, latent_dim=3))
    assert [(k, tuple(v.shape)) for k, v in parts.state_dict().items()] == KEYS_0_1_0


@pytest.mark.parametrize(("length", "channels", "width", "latent"),
                         [(12, 1, 4, 3), (31, 1, 8, 5), (17, 3, 4, 2)])
def test_seeded_build_draws_the_initial_weights_of_genad_0_1_0(length, channels, width, latent):
    torch.manual_seed(11)
    reference = [t for layer in _layers_0_1_0(length, channels, width, latent)
                 for t in (layer.weight, layer.bias)]
    torch.manual_seed(11)
    net = Conv1dAutoEncoderNet(length, channels=channels, width=width, latent_dim=latent)
    got = list(net.state_dict().values())
    assert len(got) == len(reference)
    assert all(torch.equal(a, b) for a, b in zip(got, reference, strict=True))


@pytest.mark.parametrize(("length", "channels"), [(1, 1), (5, 1), (12, 1), (31, 1), (17, 3)])
@pytest.mark.parametrize("mode", ["train", "eval-grad", "eval-no-grad", "inference"])
def test_outputs_are_bit_identical_to_genad_0_1_0(length, channels, mode):
    torch.manual_seed(2)
    net = Conv1dAutoEncoderNet(length, channels=channels, width=4, latent_dim=3)
    shapes = [(9, length), (9, 1, length)] if channels == 1 else [(9, channels, length)]
    net.train(mode == "train")
    context = {"eval-no-grad": torch.no_grad, "inference": torch.inference_mode}.get(
        mode, torch.enable_grad)
    for shape in shapes:
        x = torch.randn(*shape)
        with context():
            got, expected = net(x), _forward_0_1_0(net, x)
        assert got.shape == x.shape
        assert torch.equal(got, expected)


def test_parts_share_the_networks_layers_and_mode():
    net = Conv1dAutoEncoderNet(12, width=4, latent_dim=3)
    enc, dec = net.parts
    assert enc.conv is net.encoder and enc.to_latent is net.to_latent
    assert dec.from_latent is net.from_latent and dec.deconv is net.decoder
    assert not {id(p) for p in net.parameters()} ^ {
        id(p) for part in (enc, dec) for p in part.parameters()}
    net.eval()
    assert not enc.training and not dec.training
    net.train()
    assert enc.training and dec.training
    x = torch.randn(5, 12)
    assert torch.equal(dec(enc(x)), net(x).unsqueeze(1))


def test_parts_follow_copies_conversions_and_loaded_weights():
    net = Conv1dAutoEncoderNet(12, width=4, latent_dim=3)
    x = torch.randn(5, 12)
    twin = copy.deepcopy(net)
    assert twin.parts[0].conv is twin.encoder  # the copy's halves use the copy's layers
    assert twin.parts[0].conv is not net.encoder
    other = Conv1dAutoEncoderNet(12, width=4, latent_dim=3)
    other.load_state_dict(net.state_dict())
    enc, dec = other.parts
    assert torch.equal(dec(enc(x)).squeeze(1), net(x))
    other.double()
    assert enc.to_latent.weight.dtype == torch.float64
    assert dec(enc(x.double())).dtype == torch.float64


def test_from_parts_refuses_halves_that_do_not_fit():
    enc = Conv1dEncoder(12, width=4, latent_dim=3)
    with pytest.raises(ValueError, match="latent_dim 3 != 2"):
        Conv1dAutoEncoderNet.from_parts(enc, Conv1dDecoder(12, width=4, latent_dim=2))
    with pytest.raises(ValueError, match="channels 1 != 2"):
        Conv1dAutoEncoderNet.from_parts(enc, Conv1dDecoder(12, channels=2, width=4,
                                                           latent_dim=3))
    with pytest.raises(TypeError, match="Conv1dEncoder and a Conv1dDecoder"):
        Conv1dAutoEncoderNet.from_parts(enc, nn.Linear(3, 12))


@pytest.mark.parametrize(("length", "channels"), [(1, 1), (5, 1), (30, 1), (17, 3)])
def test_parts_scoring_path_matches_their_training_path(length, channels):
    torch.manual_seed(0)
    enc = Conv1dEncoder(length, channels, width=4, latent_dim=3)
    dec = Conv1dDecoder(length, 2 * channels, width=4, latent_dim=3)
    x, z = torch.randn(7, channels, length), torch.randn(7, 3)
    latent, out = enc(x), dec(z)
    enc.eval()
    dec.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(x), latent.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(dec(z), out.detach(), atol=1e-5, rtol=1e-5)
    assert enc._dense is not None and dec._dense is not None
    assert out.shape == (7, 2 * channels, length)


def test_flat_decoder_output_is_channel_after_channel():
    torch.manual_seed(0)
    dec = Conv1dDecoder(10, channels=2, width=4, latent_dim=3, flatten=True)
    z = torch.randn(4, 3)
    flat = dec(z)
    dec.flatten = False
    assert flat.shape == (4, 20)
    assert torch.equal(flat, dec(z).reshape(4, 20))


def test_parts_refuse_batches_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(n, 12\) or \(n, 1, 12\), got \(5, 13\)"):
        Conv1dEncoder(12, width=4, latent_dim=3)(torch.zeros(5, 13))
    with pytest.raises(ValueError, match=r"shape \(n, 2, 12\), got \(5, 12\)"):
        Conv1dEncoder(12, channels=2, width=4, latent_dim=3)(torch.zeros(5, 12))
    with pytest.raises(ValueError, match=r"shape \(n, 3\), got \(5, 4\)"):
        Conv1dDecoder(12, width=4, latent_dim=3)(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="width must be a positive integer, got 0"):
        Conv1dEncoder(12, width=0)


@pytest.mark.parametrize("length", range(1, 10))
def test_features_size_is_what_the_convolutions_give(length):
    feats = Conv1dFeatures(length, channels=2, width=3)
    assert feats(torch.zeros(4, 2, length)).shape == (4, feats.out_features)
