"""The adversarial models (GANomaly, f-AnoGAN, VAE-GAN) and what they share.

Optimisers, the alternating step and its loss parts, f-AnoGAN's two phases, what each
model scores, sampling, and each health check on a case forced to fail it.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import genad
from genad.data.base import SampleSet
from genad.errors import TrainingDivergedError
from genad.models import (
    AutoEncoderModel,
    FAnoGANModel,
    GANomalyModel,
    VAEGANModel,
    VAEModel,
)
from genad.models.gan import COLLAPSE_RATIO, D_WON_LOSS, AdversarialModel
from genad.nets import factory
from genad.nets.mlp import mlp
from genad.training import TrainConfig, train_model

D = 5
LATENT = 3
OPTS = {"hidden": [12]}


def _data(n: int = 320, seed: int = 0) -> torch.Tensor:
    """Rows near a line through R^5 (something to learn) plus noise."""
    g = torch.Generator().manual_seed(seed)
    factor = torch.randn((n, 1), generator=g)
    return factor * torch.linspace(-1, 1, D) + 0.3 * torch.randn((n, D), generator=g)


def ganomaly(**kw) -> GANomalyModel:
    torch.manual_seed(0)
    return GANomalyModel(factory.encoder("mlp", (D,), LATENT, **OPTS),
                         factory.decoder("mlp", (D,), LATENT, **OPTS),
                         factory.encoder("mlp", (D,), LATENT, **OPTS),
                         factory.discriminator("mlp", (D,), **OPTS), LATENT, **kw)


def fanogan(**kw) -> FAnoGANModel:
    torch.manual_seed(0)
    return FAnoGANModel(factory.decoder("mlp", (D,), LATENT, **OPTS),
                        factory.discriminator("mlp", (D,), **OPTS),
                        factory.encoder("mlp", (D,), LATENT, **OPTS), LATENT, **kw)


def vaegan(**kw) -> VAEGANModel:
    torch.manual_seed(0)
    return VAEGANModel(factory.encoder("mlp", (D,), 2 * LATENT, **OPTS),
                       factory.decoder("mlp", (D,), LATENT, **OPTS),
                       factory.discriminator("mlp", (D,), **OPTS), LATENT, **kw)


BUILDERS = {"ganomaly": ganomaly, "fanogan": fanogan, "vaegan": vaegan}


def _config(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=64, learning_rate=1e-3, patience=50, verbose=0,
                random_state=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _stepped(model: AdversarialModel, x: torch.Tensor, steps: int = 5) -> AdversarialModel:
    """A few adversarial steps, then evaluation mode."""
    model.set_generator(torch.Generator().manual_seed(0))
    optimizers = model.configure_optimizers(1e-3, 0.0)
    model.train()
    for _ in range(steps):
        model.train_step(x, optimizers)
    return model.eval()


def _ids(params) -> set[int]:
    return {id(p) for p in params}


# ------------------------------------------------------------------ optimisers
@pytest.mark.parametrize("name", list(BUILDERS))
def test_two_adam_optimisers_generator_side_first_with_dcgan_betas(name):
    model = BUILDERS[name]()
    opt_g, opt_d = model.configure_optimizers(1e-3, 0.0)
    g = _ids(p for group in opt_g.param_groups for p in group["params"])
    d = _ids(p for group in opt_d.param_groups for p in group["params"])
    assert d == _ids(model.discriminator.parameters())
    assert g == _ids(p for m in model.generator_modules() for p in m.parameters())
    rest = _ids(model.parameters()) - g - d
    # f-AnoGAN's encoder is trained in its second phase only
    assert rest == (_ids(model.encoder.parameters()) if name == "fanogan" else set())
    for opt in (opt_g, opt_d):
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
        assert opt.param_groups[0]["lr"] == 1e-3


def test_the_objective_and_the_critic_steps_are_checked():
    disc = factory.discriminator("mlp", (D,), **OPTS)
    with pytest.raises(ValueError, match="objective"):
        AdversarialModel(disc, LATENT, objective="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        AdversarialModel(disc, LATENT, n_critic=0)


# ------------------------------------------------------------------- the step
PARTS = {
    "ganomaly": {"loss", "g_loss", "adv", "con", "lat", "d_loss", "fool", "d_reset"},
    "fanogan": {"loss", "g_loss", "adv", "d_loss", "wasserstein", "gp"},
    "vaegan": {"loss", "g_loss", "rec", "feat", "kl", "adv", "d_loss", "fool"},
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_step_returns_every_loss_part_detached_and_finite(name):
    model, x = BUILDERS[name](), _data(64)
    model.set_generator(torch.Generator().manual_seed(0))
    out = model.train_step(x, model.configure_optimizers(1e-3, 0.0))
    assert set(out) == PARTS[name]
    assert all(not v.requires_grad and v.dim() == 0 and math.isfinite(float(v))
               for v in out.values())
    assert torch.equal(out["loss"], out["g_loss"])


def test_n_critic_discriminator_steps_per_generator_step():
    model, x = fanogan(n_critic=3), _data(64)
    model.set_generator(torch.Generator().manual_seed(0))
    opt_g, opt_d = model.configure_optimizers(1e-3, 0.0)
    model.train_step(x, [opt_g, opt_d])
    model.train_step(x, [opt_g, opt_d])
    steps = {float(s["step"]) for s in opt_d.state.values()}
    assert steps == {6.0}
    assert {float(s["step"]) for s in opt_g.state.values()} == {2.0}


def test_the_generator_loss_of_ganomaly_weighs_its_three_parts():
    model, x = ganomaly(w_adv=2.0, w_con=3.0, w_lat=5.0), _data(64)
    model.set_generator(torch.Generator().manual_seed(0))
    with torch.no_grad():
        parts = model.generator_losses(x)
    expected = 2.0 * parts["adv"] + 3.0 * parts["con"] + 5.0 * parts["lat"]
    torch.testing.assert_close(parts["loss"], expected)


@pytest.mark.parametrize("name", ["ganomaly", "vaegan"])
def test_early_stopping_watches_the_generator_fit_not_the_moving_discriminator(name):
    model, x = BUILDERS[name]().eval(), _data(64)
    with torch.no_grad():
        before = model.validation_loss(x)
        for p in model.discriminator.parameters():
            p.add_(1.0)
        assert torch.equal(model.validation_loss(x), before)
        for p in model.decoder.parameters():
            p.add_(0.1)
        assert not torch.equal(model.validation_loss(x), before)


# ----------------------------------------------------------- f-AnoGAN's phases
def test_fanogan_trains_the_gan_every_epoch_then_the_encoder_with_the_gan_frozen():
    model, x = fanogan(n_critic=2), _data()
    encoder_start = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    seen: dict[str, dict] = {}
    configure = model.configure_optimizers

    def spy(learning_rate, weight_decay):
        if model.phase == "encoder":  # the GAN as the first phase left it
            seen["gan"] = {k: v.clone() for k, v in model.state_dict().items()
                           if not k.startswith("encoder.")}
            seen["encoder"] = {k: v.clone() for k, v in model.encoder.state_dict().items()}
        return configure(learning_rate, weight_decay)

    model.configure_optimizers = spy
    history = train_model(model, x[:256], x[256:], _config(epochs=3, patience=1))
    gan, encoder = history["phases"]
    assert (gan["name"], gan["epochs"], gan["stopped_early"]) == ("gan", 3, False)
    assert gan["best_epoch"] == 2  # no early stopping: the last weights are kept
    assert encoder["name"] == "encoder"
    for k, v in seen["encoder"].items():  # the encoder waited for its phase
        assert torch.equal(v, encoder_start[k]), k
    state = model.state_dict()
    for k, v in seen["gan"].items():  # the generator and critic stayed frozen
        assert torch.equal(state[k], v), k
    assert not all(torch.equal(model.encoder.state_dict()[k], v)
                   for k, v in seen["encoder"].items())
    parts = history["parts"]
    assert len(parts["wasserstein"]) == 3 and len(parts["gp"]) == 3
    assert parts["rec"][:3] == [None] * 3 and all(v is not None for v in parts["rec"][3:])


def test_fanogan_keeps_its_frozen_networks_in_evaluation_mode_in_the_encoder_phase():
    torch.manual_seed(0)
    shape = (1, 16, 16)
    model = FAnoGANModel(factory.decoder("conv2d", shape, LATENT, width=4),
                         factory.discriminator("conv2d", shape, width=4, batch_norm=False),
                         factory.encoder("conv2d", shape, LATENT, width=4), LATENT)
    model.train()
    assert model.decoder.training and model.discriminator.training
    model.phase = "encoder"
    model.configure_optimizers(1e-3, 0.0)
    model.train()
    assert model.encoder.training
    assert not model.decoder.training and not model.discriminator.training
    assert not any(p.requires_grad for p in model.decoder.parameters())
    bn = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)][0]
    before = bn.running_mean.clone()
    model.train_step(torch.randn(8, *shape), model.configure_optimizers(1e-3, 0.0))
    assert torch.equal(bn.running_mean, before)  # batch norm kept its statistics


# ------------------------------------------------------------------- scoring
def test_ganomaly_scores_the_latent_distance_and_maps_the_absolute_residual():
    x = _data(64)
    model = _stepped(ganomaly(), x)
    with torch.no_grad():
        z = model.encoder(x)
        x_hat = model.decoder(z)
        z_hat = model.encoder2(x_hat)
        score, amap = model.infer(x)
    assert not model.additive_map
    torch.testing.assert_close(score, ((z - z_hat) ** 2).sum(dim=1))
    torch.testing.assert_close(amap, (x - x_hat).abs())


def test_fanogan_score_is_the_izi_f_loss_and_its_map_sums_to_it():
    x = _data(64)
    model = fanogan(kappa=2.5)
    model.phase = "encoder"
    model = _stepped(model, x)
    with torch.no_grad():
        rec = model.decoder(model.encoder(x))
        feats = model.discriminator.features
        expected = ((x - rec) ** 2).mean(dim=1) + 2.5 * ((feats(x) - feats(rec)) ** 2).mean(dim=1)
        score, amap = model.infer(x)
    assert model.additive_map
    torch.testing.assert_close(score, expected)
    assert torch.equal(amap.sum(dim=1), score)
    ratio = amap / ((x - rec) ** 2)  # within a sample: the residual, rescaled
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


def test_vaegan_score_is_pixel_plus_weighted_feature_error_at_the_posterior_mean():
    x = _data(64)
    model = _stepped(vaegan(feature_weight=3.0), x)
    with torch.no_grad():
        mu = model.encoder(x)[:, :LATENT]
        rec = model.decoder(mu)
        feats = model.discriminator.features
        expected = ((x - rec) ** 2).sum(dim=1) + 3.0 * ((feats(x) - feats(rec)) ** 2).sum(dim=1)
        score, amap = model.infer(x)
    torch.testing.assert_close(score, expected)
    assert torch.equal(amap.sum(dim=1), score)


def _conv_vaegan() -> VAEGANModel:
    shape, opts = (1, 16, 16), {"width": 4}
    torch.manual_seed(0)
    return VAEGANModel(factory.encoder("conv2d", shape, 2 * LATENT, **opts),
                       factory.decoder("conv2d", shape, LATENT, **opts),
                       factory.discriminator("conv2d", shape, **opts), LATENT)


def _decoder_running_stats(model: VAEGANModel) -> list[torch.Tensor]:
    return [t.clone() for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize("step", ["fakes", "generator_losses"])
def test_vaegan_decoder_statistics_follow_posterior_decodes_only(step):
    """Scoring decodes posterior means in evaluation mode: the decoder's batch-norm
    running statistics must come from posterior decodes, not from prior draws."""
    model = _conv_vaegan().train()
    reference = copy.deepcopy(model)
    x = torch.rand((16, 1, 16, 16), generator=torch.Generator().manual_seed(1))
    initial = _decoder_running_stats(model)
    for m in (model, reference):
        m.set_generator(torch.Generator().manual_seed(0))
    with torch.no_grad():
        getattr(model, step)(x)  # a posterior decode and a prior decode
        reference.decoder(reference._posterior_draw(*reference.encode(x)))  # the first only
    after = _decoder_running_stats(model)
    assert not torch.equal(initial[0], after[0])
    for a, b in zip(after, _decoder_running_stats(reference), strict=True):
        torch.testing.assert_close(a, b)


def test_the_residual_map_of_an_exact_reconstruction_is_zero_and_finite():
    model, x = vaegan().eval(), _data(8)
    with torch.no_grad():
        amap = model.residual_map(x, x.clone(), 1.0, per_element_mean=True)
    assert torch.equal(amap, torch.zeros_like(x))


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("name", ["fanogan", "vaegan"])
def test_sample_decodes_prior_draws_reproducibly_in_evaluation_mode(name):
    model = BUILDERS[name]()
    model.train()
    a = model.sample(7, torch.Generator().manual_seed(1))
    b = model.sample(7, torch.Generator().manual_seed(1))
    assert a.shape == (7, D) and torch.equal(a, b) and not a.requires_grad
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        z = torch.randn((7, LATENT), generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, model.decoder(z))


def test_ganomaly_samples_from_the_gaussian_of_its_training_codes():
    x = _data()
    model = _stepped(ganomaly(), x)
    model.finalize(x)
    with torch.no_grad():
        z = model.encoder(x).double()
    torch.testing.assert_close(model.latent_mean, z.mean(dim=0).float())
    torch.testing.assert_close(model.latent_std, z.std(dim=0, unbiased=False).float())
    draws = model.sample(5, torch.Generator().manual_seed(2))
    with torch.no_grad():
        e = torch.randn((5, LATENT), generator=torch.Generator().manual_seed(2))
        expected = model.decoder(model.latent_mean + model.latent_std * e)
    assert torch.equal(draws, expected)


def test_the_vae_samples_decoder_means_and_the_autoencoder_refuses():
    torch.manual_seed(0)
    vae = VAEModel(mlp([D, 8, 2 * LATENT]), mlp([LATENT, 8, 2 * D]), latent_dim=LATENT,
                   n_features=D)
    draws = vae.sample(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = torch.randn((4, LATENT), generator=torch.Generator().manual_seed(0))
        assert torch.equal(draws, vae.decode(z)[0])
    ae = AutoEncoderModel(mlp([D, 3]), mlp([3, D]))
    with pytest.raises(NotImplementedError, match="autoencoder cannot generate samples"):
        ae.sample(4)


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_sample_needs_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        vaegan().sample(n)


# -------------------------------------------------------------------- health
class _Constant(nn.Module):
    """A last layer that outputs one constant row, whatever its input (no parameters)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.register_buffer("value", torch.full((D,), value))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.value + 0.0 * h[:, :1]  # a graph to the earlier layers, no gradient


def _constant_decoder(model: AdversarialModel, value: float) -> AdversarialModel:
    """Every generated or reconstructed sample the same row ``value``."""
    model.decoder[-1] = _Constant(value)
    return model


def test_a_discriminator_that_wins_outright_is_reported_with_advice():
    model, x = _constant_decoder(vaegan(), 30.0), _data()  # fakes told at a glance
    with pytest.raises(TrainingDivergedError,
                       match=r"won outright.*pause_discriminator_below=0\.5.*lower learning_rate"):
        train_model(model, x[:256], x[256:], _config(epochs=30, batch_size=16,
                                                     learning_rate=1e-2))
    means = [(total / steps).tolist() for total, steps in model._duel.values()]
    assert means[0][0] > D_WON_LOSS  # not in the first epoch: it took some steps
    assert all(d < D_WON_LOSS for d, _ in means[15:])


def test_a_pause_too_low_to_help_is_reported_with_a_higher_one_first():
    # pausing only below 1e-4 leaves the discriminator free to win at 1e-3
    model = _constant_decoder(vaegan(pause_discriminator_below=1e-4), 30.0)
    with pytest.raises(TrainingDivergedError,
                       match=r"won outright.*Try a higher pause_discriminator_below than "
                             r"0\.0001 \(the discriminator waits sooner\), a lower"):
        train_model(model, _data()[:256], _data()[256:],
                    _config(epochs=30, batch_size=16, learning_rate=1e-2))


def test_a_discriminator_that_does_not_win_every_epoch_is_not_reported():
    # the same run with a generator that learns: the duel goes on, no advice
    model, x = vaegan(), _data()
    train_model(model, x[:256], x[256:], _config(epochs=30, batch_size=16,
                                                 learning_rate=1e-2))
    assert model._duel and model._duel_advice() is None


def test_a_paused_discriminator_waits_instead_of_winning_outright():
    """The run that raises above trains on when the discriminator skips the steps it
    would take while already winning: it never wins outright, and the history says how
    many steps waited."""
    model, x = _constant_decoder(vaegan(pause_discriminator_below=0.5), 30.0), _data()
    model.health_samples = lambda real, generator: None  # one row: skip the collapse check
    history = train_model(model, x[:256], x[256:], _config(epochs=30, batch_size=16,
                                                           learning_rate=1e-2))
    pauses = history["parts"]["d_pause"]
    assert len(pauses) == 30 and pauses[0] < 1 and max(pauses) > 0.5
    means = [(total / steps).tolist() for total, steps in model._duel.values()]
    assert min(d for d, _ in means) > D_WON_LOSS
    assert model._duel_advice() is None


def test_a_paused_step_leaves_the_discriminator_and_its_optimiser_alone():
    model, x = vaegan(pause_discriminator_below=float("inf")), _data()  # every step waits
    before = copy.deepcopy(model.discriminator.state_dict())
    optimizers = model.configure_optimizers(1e-3, 0.0)
    model.set_generator(torch.Generator().manual_seed(0))
    model.train()
    parts = model.train_step(x, optimizers)
    assert float(parts["d_pause"]) == 1.0 and math.isfinite(float(parts["d_loss"]))
    assert not optimizers[1].state  # Adam never stepped
    for k, v in model.discriminator.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert any(optimizers[0].state.values())  # the generator side did step


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_a_pause_threshold_must_be_positive_and_needs_the_bce_objective(bad):
    disc = factory.discriminator("mlp", (D,), **OPTS)
    with pytest.raises(ValueError, match="pause_discriminator_below"):
        AdversarialModel(disc, LATENT, pause_discriminator_below=bad)
    with pytest.raises(ValueError, match="pause_discriminator_below"):
        AdversarialModel(disc, LATENT, objective="wasserstein", pause_discriminator_below=0.5)


def test_ganomaly_resets_a_discriminator_that_wins_and_trains_on():
    """Feature matching keeps its gradient when D wins: no advice; as in the authors'
    code, D starts over from its initial weights once its loss falls below 1e-5."""
    model, x = _constant_decoder(ganomaly(), 30.0), _data()  # the run that raises for VAE-GAN
    # its loss falls below 0.01 after about ten epochs here (below 1e-5 takes longer)
    model.reset_discriminator_below = 1e-2
    history = train_model(model, x[:256], x[256:], _config(epochs=30, batch_size=16,
                                                           learning_rate=1e-2))
    resets = history["parts"]["d_reset"]  # the share of each epoch's steps that reset D
    assert len(resets) == 30 and resets[0] == 0 and 0 < max(resets) < 1
    assert model._duel_advice() is None


def test_a_reset_restores_the_initial_discriminator_and_its_optimiser():
    model, x = ganomaly(), _data()
    assert GANomalyModel.reset_discriminator_below == 1e-5  # the authors' threshold
    initial = copy.deepcopy(model.discriminator.state_dict())
    optimizers = model.configure_optimizers(1e-3, 0.0)
    model.set_generator(torch.Generator().manual_seed(0))
    model.train()
    model.train_step(x, optimizers)
    assert optimizers[1].state  # Adam's moments exist after a step
    model.reset_discriminator_below = float("inf")  # every step resets
    parts = model.train_step(x, optimizers)
    assert float(parts["d_reset"]) == 1.0
    assert not optimizers[1].state
    for k, v in model.discriminator.state_dict().items():
        torch.testing.assert_close(v, initial[k])


def _collapse(model: AdversarialModel) -> AdversarialModel:
    return _constant_decoder(model, 0.0)


@pytest.mark.parametrize("name", ["fanogan", "vaegan"])
def test_a_collapsed_generator_is_reported_and_a_fresh_one_is_not(name):
    x = _data()
    fresh = BUILDERS[name]().eval()
    assert fresh.check_health(x) is None  # freshly initialised samples are spread enough
    advice = _collapse(BUILDERS[name]()).eval().check_health(x)
    assert advice is not None
    assert "generator collapsed" in advice and "learning_rate" in advice
    assert f"{0:.1%}" in advice  # identical samples: 0.0 % of the data's spread
    assert COLLAPSE_RATIO < 0.05


def test_a_collapsed_generator_stops_the_fit_through_the_loop():
    model, x = _collapse(fanogan(n_critic=1)), _data()
    with pytest.raises(TrainingDivergedError, match="generator collapsed"):
        train_model(model, x[:256], x[256:], _config(epochs=2))


def test_the_collapse_check_reads_batches_and_a_tensor_alike():
    model, x = _collapse(vaegan()).eval(), _data()
    assert model.check_health(x) == model.check_health([x[:100], x[100:]])


def test_ganomaly_has_no_collapse_check():
    # an untrained encoder-decoder reconstructs everything alike; that is not a collapse
    model = _collapse(ganomaly()).eval()
    assert model.check_health(_data()) is None


# ------------------------------------------------------------ images, read lazily
class _LazyImages(SampleSet):
    """Images read one by one (as from files): the loop must never stack them."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor_ = tensor
        self.sample_shape = tuple(tensor.shape[1:])
        self.owner = np.arange(len(tensor))
        self.n_samples = len(tensor)
        self.meta: dict = {}

    def __len__(self) -> int:
        return len(self.tensor_)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tensor_[i]

    def subset(self, units):
        return _LazyImages(self.tensor_[torch.from_numpy(np.asarray(units))])

    def stacked(self):
        raise AssertionError("a lazily read image set must not be stacked")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_models_train_on_lazily_read_images_through_the_loop(name):
    shape = (1, 16, 16)
    torch.manual_seed(0)
    opts = {"width": 4}
    disc = factory.discriminator("conv2d", shape, **opts, batch_norm=name != "fanogan")
    if name == "ganomaly":
        model = GANomalyModel(factory.encoder("conv2d", shape, LATENT, **opts),
                              factory.decoder("conv2d", shape, LATENT, **opts),
                              factory.encoder("conv2d", shape, LATENT, **opts), disc, LATENT)
    elif name == "fanogan":
        model = FAnoGANModel(factory.decoder("conv2d", shape, LATENT, **opts), disc,
                             factory.encoder("conv2d", shape, LATENT, **opts), LATENT,
                             n_critic=2)
    else:
        model = VAEGANModel(factory.encoder("conv2d", shape, 2 * LATENT, **opts),
                            factory.decoder("conv2d", shape, LATENT, **opts), disc, LATENT)
    g = torch.Generator().manual_seed(0)
    images = torch.rand((40, *shape), generator=g)
    history = train_model(model, _LazyImages(images[:32]), _LazyImages(images[32:]),
                          _config(epochs=1, batch_size=8))
    assert math.isfinite(history["train_loss"][-1])
    with torch.no_grad():
        score, amap = model.infer(images[:4])
    assert score.shape == (4,) and amap.shape == (4, *shape)
    assert torch.isfinite(score).all() and torch.isfinite(amap).all()


# ----------------------------------------------------------------- detectors
@pytest.mark.parametrize("cls", [genad.GANomaly, genad.FAnoGAN, genad.VAEGAN])
def test_on_images_the_detectors_build_conv2d_networks_of_conv_width(cls):
    det = cls(backbone="conv2d", conv_width=4, latent_dim=3)
    det.hidden_sizes_, det.latent_dim_ = None, 3
    model = det._build_model((1, 16, 16))
    first = next(m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == 4
    norms = [m for m in model.discriminator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert (not norms) == (cls is genad.FAnoGAN)  # a WGAN-GP critic has no batch norm
    assert model.sample(2).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("name", ["ganomaly", "fanogan", "vaegan"])
def test_the_detectors_pick_the_mlp_on_tables_and_keep_every_loss_part(name, make_detector,
                                                                       normal_array):
    det = make_detector(name, epochs=2).fit(normal_array)
    assert det._backbone() == "mlp"
    assert isinstance(det.model_.discriminator.head, nn.Linear)
    parts = set(det.history_["parts"])
    assert parts == PARTS[name] - {"loss"} | ({"rec", "feat"} if name == "fanogan" else set())
    scores = det.anomaly_score(normal_array)
    assert scores.shape == (len(normal_array),) and np.isfinite(scores).all()
