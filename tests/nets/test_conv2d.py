"""2-D convolutional networks: sized from the image, any channel count and side, the
``"conv2d"`` backbone of the factory, and they learn."""

from __future__ import annotations

import pytest
import torch

from genad.errors import InvalidInputError
from genad.nets import factory
from genad.nets.conv2d import Conv2dDecoder, Conv2dEncoder, Conv2dFeatures, conv2d_plan
from genad.nets.discriminator import Discriminator

SHAPES = [(1, 32, 32), (3, 64, 64), (1, 28, 28), (3, 100, 60)]


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("side", "k"), [(32, 3), (28, 3), (64, 4), (60, 4), (256, 6),
                                         (4, 1), (1, 1)])
def test_plan_halves_the_smaller_side_to_at_most_four(side, k):
    padded, _, depth, widths = conv2d_plan(side, 300, 8)
    assert depth == k and len(widths) == k
    assert padded % 2 ** k == 0 and side <= padded < side + 2 ** k
    assert padded // 2 ** k <= 4
    assert widths == [min(8 * 2 ** i, 64) for i in range(k)]


@pytest.mark.parametrize("shape", SHAPES)
def test_encoder_decoder_and_round_trip_shapes(shape):
    torch.manual_seed(0)
    enc = factory.encoder("conv2d", shape, 6, width=8)
    dec = factory.decoder("conv2d", shape, 6, width=8)
    x = torch.randn(3, *shape)
    z = enc(x)
    assert z.shape == (3, 6)
    out = dec(z)
    assert out.shape == x.shape
    assert torch.all(torch.isfinite(out))


@pytest.mark.parametrize("shape", SHAPES)
def test_decoder_out_multiplier_stacks_channels(shape):
    dec = factory.decoder("conv2d", shape, 4, out_multiplier=2, width=8)
    c, h, w = shape
    assert dec(torch.randn(2, 4)).shape == (2, 2 * c, h, w)


@pytest.mark.parametrize("shape", SHAPES)
def test_discriminator_gives_one_logit_and_flattened_features(shape):
    disc = factory.discriminator("conv2d", shape, width=8)
    assert isinstance(disc, Discriminator) and isinstance(disc.body, Conv2dFeatures)
    x = torch.randn(4, *shape)
    feats = disc.features(x)
    assert disc(x).shape == (4, 1)
    assert feats.shape == (4, disc.body.out_features)
    c, h, w = disc.body.map_shape
    assert feats.shape[1] == c * h * w and max(h, w) >= 4 and min(h, w) <= 4


def test_sides_that_are_not_powers_of_two_are_zero_padded_right_and_bottom():
    feats = Conv2dFeatures(2, 100, 60, base_width=4).eval()
    assert (feats.padded_height, feats.padded_width) == (112, 64)
    x = torch.randn(3, 2, 100, 60)
    padded = torch.zeros(3, 2, 112, 64)
    padded[:, :, :100, :60] = x
    with torch.no_grad():
        assert torch.allclose(feats(x), feats.conv(padded).flatten(1))


def test_batch_norm_option_and_first_layer_without_it():
    with_bn = factory.encoder("conv2d", (1, 32, 32), 4, width=8)
    without = factory.encoder("conv2d", (1, 32, 32), 4, width=8, batch_norm=False)
    kinds = [type(m).__name__ for m in with_bn.features.conv]
    assert kinds[:2] == ["Conv2d", "LeakyReLU"]  # no BatchNorm on the first layer
    assert kinds.count("BatchNorm2d") == 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())
    dec = factory.decoder("conv2d", (1, 32, 32), 4, width=8)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in dec.modules()) == 3
    assert isinstance(dec.deconv[-1], torch.nn.ConvTranspose2d)  # no output activation


def test_dropout_adds_dropout_layers():
    enc = factory.encoder("conv2d", (1, 32, 32), 4, width=8, dropout=0.25)
    drops = [m for m in enc.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.25 for d in drops)


def test_seeded_construction_is_deterministic():
    def build():
        torch.manual_seed(7)
        return factory.encoder("conv2d", (3, 64, 64), 5, width=8).state_dict()

    first, second = build(), build()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    torch.manual_seed(8)
    other = factory.encoder("conv2d", (3, 64, 64), 5, width=8).state_dict()
    assert not torch.equal(first["to_latent.weight"], other["to_latent.weight"])


def test_parameter_counts_stay_moderate_for_256_pixels():
    # six 4x4 convolutions, channels 32, 64, 128, 256, 256, 256 (capped at 8 * width):
    # 16 * (3*32 + 32*64 + 64*128 + 128*256 + 2 * 256*256) = 2.79 M weights, plus a
    # linear layer from the 256 x 4 x 4 map; a single dense layer from 3*256*256 pixels
    # to 32 units would already be 6.3 M
    shape, latent = (3, 256, 256), 16
    for net in (factory.encoder("conv2d", shape, latent),
                factory.decoder("conv2d", shape, latent, out_multiplier=2),
                factory.discriminator("conv2d", shape)):
        assert 2_700_000 < _n_params(net) < 3_000_000, type(net).__name__


@pytest.mark.parametrize(("build", "match"), [
    (lambda: factory.encoder("conv2d", (32,), 4),
     r"'conv2d' takes samples of rank 3, got sample_shape \(32,\) of rank 1; backbone "
     r"'mlp' takes rank-1"),
    (lambda: factory.discriminator("conv2d", (3, 32)), r"'conv2d' takes samples of rank 3"),
    (lambda: factory.encoder("conv2d", (1, 32, 32), 4, hidden=[8]), "no hidden sizes"),
    (lambda: factory.decoder("conv2d", (1, 32, 32), 4, widht=8),
     r"did you mean 'width'\?\); its options: 'width'"),
    (lambda: factory.encoder("conv2d", (1, 32, 32), 4, width=0), "width must be a positive"),
])
def test_factory_errors_name_the_reason(build, match):
    with pytest.raises(InvalidInputError, match=match):
        build()


def test_wrong_batch_shapes_are_refused():
    enc = Conv2dEncoder(3, 32, 32, base_width=4, latent_dim=2)
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\), got \(2, 1, 32, 32\)"):
        enc(torch.zeros(2, 1, 32, 32))
    dec = Conv2dDecoder(3, 32, 32, base_width=4, latent_dim=2)
    with pytest.raises(ValueError, match=r"\(n, 2\), got \(2, 3\)"):
        dec(torch.zeros(2, 3))


def test_default_backbone_for_images_is_registered():
    name = factory.default_backbone((3, 64, 64))
    assert name == "conv2d" and factory.BACKBONES[name].ranks == (3,)
    assert factory.encoder(name, (3, 64, 64), 4, width=4)(torch.zeros(1, 3, 64, 64)).shape \
        == (1, 4)


def test_a_few_adam_steps_lower_the_reconstruction_loss():
    torch.manual_seed(0)
    enc = factory.encoder("conv2d", (1, 32, 32), 8, width=8)
    dec = factory.decoder("conv2d", (1, 32, 32), 8, width=8)
    x = torch.randn(16, 1, 32, 32)
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = ((dec(enc(x)) - x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in params)
    assert losses[-1] < 0.9 * losses[0]
