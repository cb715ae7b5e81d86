"""Networks built from a backbone name and the sample shape: the same modules and seeded
weights as the detectors' own constructions, the shapes every model relies on, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genad.errors import InvalidInputError
from genad.nets import factory
from genad.nets.conv1d import Conv1dAutoEncoderNet, Conv1dDecoder, Conv1dEncoder
from genad.nets.factory import (
    BACKBONES,
    Backbone,
    decoder,
    default_backbone,
    discriminator,
    encoder,
    register_backbone,
    unregister_backbone,
)
from genad.nets.mlp import default_mlp_sizes, mlp
from genad.nets.noise import Dropout


def _assert_same_modules(got: list[nn.Module], expected: list[nn.Module]) -> None:
    """Same module trees, state dict keys in the same order, bit-equal tensors."""
    assert [repr(m) for m in got] == [repr(m) for m in expected]
    got_sd = [(k, v) for m in got for k, v in m.state_dict().items()]
    exp_sd = [(k, v) for m in expected for k, v in m.state_dict().items()]
    assert [k for k, _ in got_sd] == [k for k, _ in exp_sd]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got_sd, exp_sd, strict=True))


def _seeded(seed: int, build):
    torch.manual_seed(seed)
    modules = build()
    return modules, torch.rand(3)  # the RNG state after building: same number of draws


# ------------------------------------------------------------- same as the detectors


@pytest.mark.parametrize(("n", "hidden", "latent", "dropout"),
                         [(30, [60, 30], 10, 0.0), (7, [32, 16], 2, 0.2), (5, [], 3, 0.0),
                          (12, [40, 20, 10], 4, 0.5)])
def test_autoencoder_parts_match_the_autoencoders_construction(n, hidden, latent, dropout):
    expected, after = _seeded(3, lambda: [mlp([n, *hidden, latent], dropout=dropout),
                                          mlp([latent, *hidden[::-1], n], dropout=dropout)])
    got, got_after = _seeded(3, lambda: [
        encoder("mlp", (n,), latent, hidden=hidden, dropout=dropout),
        decoder("mlp", (n,), latent, hidden=hidden, dropout=dropout)])
    _assert_same_modules(got, expected)
    assert torch.equal(got_after, after)
    assert sum(isinstance(m, Dropout) for m in got[0]) == (len(hidden) if dropout else 0)


@pytest.mark.parametrize(("n", "hidden", "latent"), [(30, [60, 30], 10), (9, [32], 2)])
def test_vae_parts_match_the_vaes_construction(n, hidden, latent):
    expected, after = _seeded(5, lambda: [mlp([n, *hidden, 2 * latent]),
                                          mlp([latent, *hidden[::-1], 2 * n])])
    got, got_after = _seeded(5, lambda: [
        encoder("mlp", (n,), 2 * latent, hidden=hidden),
        decoder("mlp", (n,), latent, out_multiplier=2, hidden=hidden)])
    _assert_same_modules(got, expected)
    assert torch.equal(got_after, after)


@pytest.mark.parametrize("n", [3, 30, 200])
def test_mlp_hidden_sizes_default_to_default_mlp_sizes(n):
    hidden, latent = default_mlp_sizes(n)
    expected, _ = _seeded(0, lambda: [mlp([n, *hidden, latent]),
                                      mlp([latent, *hidden[::-1], n])])
    got, _ = _seeded(0, lambda: [encoder("mlp", (n,), latent), decoder("mlp", n, latent)])
    _assert_same_modules(got, expected)


@pytest.mark.parametrize(("n", "width", "latent"), [(30, 8, 10), (7, 32, 2), (13, 4, 5)])
def test_conv1d_parts_match_the_pca_conv_autoencoders_network(n, width, latent):
    (net,), after = _seeded(7, lambda: [Conv1dAutoEncoderNet(n, width=width, latent_dim=latent)])
    (enc, dec), got_after = _seeded(7, lambda: [encoder("conv1d", (n,), latent, width=width),
                                                decoder("conv1d", (n,), latent, width=width)])
    assert torch.equal(got_after, after)
    built = [*enc.state_dict().values(), *dec.state_dict().values()]
    assert all(torch.equal(a, b)
               for a, b in zip(built, net.state_dict().values(), strict=True))
    # composed, the halves are that network: keys, weights and outputs
    joined = Conv1dAutoEncoderNet.from_parts(enc, dec)
    _assert_same_modules([joined], [net])
    x = torch.randn(16, n)
    assert torch.equal(joined(x), net(x))
    assert torch.equal(dec(enc(x)), net(x))
    joined.eval()
    net.eval()
    with torch.no_grad():
        assert torch.equal(joined(x), net(x))


def test_conv1d_width_defaults_to_32():
    torch.manual_seed(0)
    enc = encoder("conv1d", (10,), 3)
    assert enc.conv[0].out_channels == 32
    assert decoder("conv1d", (10,), 3).deconv[0].out_channels == 32


# ------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("backbone", "shape"),
                         [("mlp", (11,)), ("conv1d", (11,)), ("conv1d", (3, 11)),
                          ("conv1d", (1, 4)), ("conv1d", (2, 1))])
def test_encoder_and_decoder_shapes(backbone, shape):
    x = torch.randn(6, *shape)
    enc = encoder(backbone, shape, 4)
    dec = decoder(backbone, shape, 4)
    z = enc(x)
    assert z.shape == (6, 4)
    assert dec(z).shape == x.shape
    ((dec(z) - x) ** 2).mean().backward()
    assert all(p.grad is not None for p in [*enc.parameters(), *dec.parameters()])
    enc.eval()
    dec.eval()
    with torch.no_grad():  # the scoring path (dense matrices for conv1d) keeps the shapes
        assert dec(enc(x)).shape == x.shape


@pytest.mark.parametrize(("backbone", "shape", "doubled"),
                         [("mlp", (11,), (22,)), ("conv1d", (11,), (22,)),
                          ("conv1d", (3, 11), (6, 11))])
def test_vae_decoder_doubles_the_first_sample_axis(backbone, shape, doubled):
    dec = decoder(backbone, shape, 4, out_multiplier=2)
    out = dec(torch.randn(6, 4))
    assert out.shape == (6, *doubled)
    mean, logvar = out.chunk(2, dim=1)
    assert mean.shape == logvar.shape == (6, *shape)
    assert not torch.equal(mean, logvar)


@pytest.mark.parametrize(("backbone", "shape", "hidden", "n_features"),
                         [("mlp", (11,), [16, 8], 8), ("mlp", (30,), None, 30),
                          ("mlp", (5,), [4], 4), ("conv1d", (11,), None, 2 * 32 * 3),
                          ("conv1d", (3, 20), None, 2 * 32 * 5)])
def test_discriminator_gives_one_logit_and_its_last_hidden_layer(backbone, shape, hidden,
                                                                 n_features):
    torch.manual_seed(0)
    disc = discriminator(backbone, shape, hidden=hidden)
    x = torch.randn(7, *shape)
    logits, feats = disc(x), disc.features(x)
    assert logits.shape == (7, 1)
    assert feats.shape == (7, n_features)
    assert torch.equal(logits, disc.head(feats))
    logits.sum().backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_mlp_discriminator_features_are_after_the_activation():
    disc = discriminator("mlp", (6,), hidden=[5], activation="relu")
    assert isinstance(disc.body[-1], nn.ReLU)
    assert bool((disc.features(torch.randn(50, 6)) >= 0).all())
    assert isinstance(disc.head, nn.Linear) and disc.head.out_features == 1


def test_mlp_options_reach_the_layers():
    enc = encoder("mlp", (6,), 2, hidden=[5, 4], activation="tanh", batch_norm=True)
    assert sum(isinstance(m, nn.Tanh) for m in enc) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in enc) == 2


def test_conv1d_rank_two_samples_are_channels_then_length():
    enc = encoder("conv1d", (3, 40), 2, width=4)
    dec = decoder("conv1d", (3, 40), 2, width=4)
    assert isinstance(enc, Conv1dEncoder) and (enc.channels, enc.length) == (3, 40)
    assert isinstance(dec, Conv1dDecoder) and (dec.channels, dec.length) == (3, 40)
    assert not dec.flatten


# ------------------------------------------------------------------------ choices


@pytest.mark.parametrize(("shape", "name"),
                         [((30,), "mlp"), (30, "mlp"), ((3, 128), "conv1d"),
                          (torch.Size([1, 5]), "conv1d"), ((3, 32, 32), "conv2d")])
def test_default_backbone_by_rank(shape, name):
    assert default_backbone(shape) == name


def test_default_backbone_of_an_unknown_rank_is_an_error():
    with pytest.raises(InvalidInputError, match=r"rank 4 .*defaults for ranks 1, 2, 3"):
        default_backbone((1, 2, 3, 4))


def test_the_image_default_is_the_registered_conv2d_backbone():
    name = default_backbone((3, 8, 8))
    assert name == "conv2d" and name in BACKBONES
    assert tuple(encoder(name, (3, 8, 8), 4)(torch.zeros(2, 3, 8, 8)).shape) == (2, 4)


def test_a_backbone_not_registered_yet_says_so_and_how_to_add_it():
    with pytest.raises(InvalidInputError) as info:
        encoder("lstm", (10, 3), 4)
    message = str(info.value)
    assert "no backbone named 'lstm' is registered;" in message  # no did-you-mean
    assert "'mlp', 'conv1d', 'conv2d'" in message and "register_backbone" in message


def test_unknown_backbone_suggests_and_lists_the_registered_ones():
    with pytest.raises(InvalidInputError,
                       match=r"'mpl' is registered \(did you mean 'mlp'\?\); registered "
                             r"backbones: 'mlp', 'conv1d'"):
        decoder("mpl", (4,), 2)


@pytest.mark.parametrize(("build", "match"), [
    (lambda: encoder("mlp", (3, 10), 2),
     r"'mlp' takes samples of rank 1, got sample_shape \(3, 10\) of rank 2; backbone "
     r"'conv1d' takes rank-2"),
    (lambda: decoder("conv1d", (3, 8, 8), 2),
     r"'conv1d' takes samples of rank 1 or 2, got sample_shape \(3, 8, 8\) of rank 3"),
    (lambda: discriminator("mlp", (1, 2, 3, 4, 5)), r"rank 5$"),
])
def test_a_sample_of_the_wrong_rank_is_refused(build, match):
    with pytest.raises(InvalidInputError, match=match):
        build()


@pytest.mark.parametrize(("build", "match"), [
    (lambda: encoder("conv1d", (8,), 2, widht=4),
     r"no option 'widht' \(did you mean 'width'\?\); its options: 'width'"),
    (lambda: encoder("mlp", (8,), 2, width=4), r"no option 'width'"),
    (lambda: encoder("conv1d", (8,), 2, hidden=[4]), "no hidden sizes"),
    (lambda: decoder("conv1d", (8,), 2, dropout=0.1), "no dropout"),
    (lambda: encoder("mlp", (8,), 0), "out_features must be a positive integer, got 0"),
    (lambda: decoder("mlp", (8,), 2, out_multiplier=0), "out_multiplier must be"),
    (lambda: decoder("mlp", (8,), 2.5), "in_features must be"),
    (lambda: encoder("mlp", (8,), 2, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (lambda: encoder("mlp", (8,), 2, hidden=[4, 0]), "every hidden size must be"),
    (lambda: encoder("mlp", (8,), 2, hidden="4"), "hidden must be a sequence"),
    (lambda: discriminator("mlp", (8,), hidden=[]), "at least one hidden layer"),
])
def test_bad_arguments_are_refused_with_the_reason(build, match):
    with pytest.raises(InvalidInputError, match=match):
        build()


@pytest.mark.parametrize("shape", [(), [0], (3, -1), "30", (2.5,), (True,), None])
def test_bad_sample_shapes_are_refused(shape):
    with pytest.raises(InvalidInputError, match="sample_shape must be a non-empty sequence"):
        encoder("mlp", shape, 2)


# ----------------------------------------------------------------------- registry


def _toy_backbone(calls: list) -> Backbone:
    """A rank-3 backbone that flattens: what a conv2d registration looks like."""

    def build_encoder(shape, out_features, *, hidden, dropout, scale=1):
        calls.append(("encoder", shape, out_features, hidden, dropout, scale))
        return nn.Sequential(nn.Flatten(), nn.Linear(shape[0] * shape[1] * shape[2],
                                                     out_features))

    def build_decoder(shape, in_features, *, out_multiplier, hidden, dropout, scale=1):
        calls.append(("decoder", shape, in_features, out_multiplier))
        c, h, w = shape
        return nn.Sequential(nn.Linear(in_features, out_multiplier * c * h * w),
                             nn.Unflatten(1, (out_multiplier * c, h, w)))

    def build_discriminator(shape, *, hidden, dropout, scale=1):
        calls.append(("discriminator", shape))
        return nn.Linear(1, 1)  # no features(x): refused

    return Backbone((3,), build_encoder, build_decoder, build_discriminator,
                    options=("scale",))


def test_one_registration_adds_a_backbone_for_every_part():
    calls: list = []
    spec = register_backbone("toy2d", _toy_backbone(calls))
    try:
        assert BACKBONES["toy2d"] is spec
        enc = encoder("toy2d", (3, 4, 5), 6, scale=2)
        dec = decoder("toy2d", [3, 4, 5], 6, out_multiplier=2)
        x = torch.randn(2, 3, 4, 5)
        assert dec(enc(x)).shape == (2, 6, 4, 5)
        assert calls == [("encoder", (3, 4, 5), 6, None, 0.0, 2),
                         ("decoder", (3, 4, 5), 6, 2)]
        with pytest.raises(InvalidInputError, match="has no features"):
            discriminator("toy2d", (3, 4, 5))
        with pytest.raises(InvalidInputError, match="already registered"):
            register_backbone("toy2d", spec)
        assert register_backbone("toy2d", spec, replace=True) is spec
    finally:
        assert unregister_backbone("toy2d") is spec
    assert "toy2d" not in BACKBONES
    with pytest.raises(InvalidInputError, match="no backbone named 'toy2d'"):
        unregister_backbone("toy2d")


@pytest.mark.parametrize(("name", "spec", "match"), [
    ("", None, "non-empty string"),
    ("x", object(), "must be described by a Backbone"),
    ("x", Backbone((), encoder, decoder, discriminator), "tuple of sample ranks"),
    ("x", Backbone((0,), encoder, decoder, discriminator), "tuple of sample ranks"),
    ("x", Backbone((1,), encoder, None, discriminator), "decoder builder .* not callable"),
])
def test_bad_registrations_are_refused(name, spec, match):
    with pytest.raises(InvalidInputError, match=match):
        register_backbone(name, spec)
    assert "x" not in BACKBONES


def test_registry_is_read_only_and_names_the_built_in_backbones():
    assert list(BACKBONES) == ["mlp", "conv1d", "conv2d"]
    assert BACKBONES["mlp"].ranks == (1,) and BACKBONES["conv1d"].ranks == (1, 2)
    with pytest.raises(TypeError):
        BACKBONES["conv2d"] = BACKBONES["mlp"]  # type: ignore[index]
    assert set(factory.DEFAULT_BACKBONES.values()) >= set(BACKBONES)
