"""The contract every model keeps with the detector, for each model x backbone pair.

``infer`` gives ``(score (n,), map shaped like x)`` from one pass, equal to ``score`` and
``element_scores``; scoring is deterministic in evaluation mode; an additive map sums to
the score exactly; a state dict restores the same scores in a freshly built model; one
optimisation step lowers the loss on its batch; extreme inputs still give finite scores.
Models with several phases (f-AnoGAN) go through each in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from genad.models import (
    AutoEncoderModel,
    DRAEMModel,
    FAnoGANModel,
    GANomalyModel,
    GenerativeModel,
    PCAConvAutoEncoderModel,
    VAEGANModel,
    VAEModel,
)
from genad.nets import factory
from genad.nets.conv1d import Conv1dAutoEncoderNet
from genad.nets.mlp import mlp
from genad.nets.unet import UNet

D = 6  # features of the vector cases
L = 8  # length of the series cases (a multiple of 4: the conv net needs no padding)
IMAGE = (2, 16, 16)  # the image cases: two channels, two halvings of the conv2d backbone
N = 48


@dataclass(frozen=True)
class Case:
    """A model on a backbone: ``build()`` makes it, ``shape`` is one sample's shape,
    ``phases`` the training phases it goes through (in order)."""

    build: Callable[[], GenerativeModel]
    shape: tuple[int, ...]
    phases: tuple[str, ...] = ("train",)


def _ae_mlp(**kw) -> AutoEncoderModel:
    return AutoEncoderModel(mlp([D, 8, 3]), mlp([3, 8, D]), **kw)


def _ae_conv1d(**kw) -> AutoEncoderModel:
    """Conv1dAutoEncoderNet's parts as encoder and decoder, on ``(n, 1, L)`` series."""
    net = Conv1dAutoEncoderNet(L, width=4, latent_dim=3)
    encoder = nn.Sequential(net.encoder, nn.Flatten(), net.to_latent)
    decoder = nn.Sequential(net.from_latent, nn.Unflatten(1, (8, L // 4)), net.decoder)
    return AutoEncoderModel(encoder, decoder, **kw)


def _vae_mlp(score_method: str) -> VAEModel:
    return VAEModel(mlp([D, 8, 4]), mlp([2, 8, 2 * D]), latent_dim=2, n_features=D,
                    kl_warmup_epochs=0, score_method=score_method, n_samples=4)


def _networks(backbone: str) -> dict:
    """Small builder options of a backbone: hidden sizes for mlp, a width for conv2d."""
    return {"hidden": [8]} if backbone == "mlp" else {"width": 4}


def _ganomaly(backbone: str, shape: tuple[int, ...]) -> GANomalyModel:
    opts = _networks(backbone)
    return GANomalyModel(factory.encoder(backbone, shape, 3, **opts),
                         factory.decoder(backbone, shape, 3, **opts),
                         factory.encoder(backbone, shape, 3, **opts),
                         factory.discriminator(backbone, shape, **opts), 3)


def _fanogan(backbone: str, shape: tuple[int, ...]) -> FAnoGANModel:
    opts = _networks(backbone)
    return FAnoGANModel(factory.decoder(backbone, shape, 3, **opts),
                        factory.discriminator(backbone, shape, **opts, batch_norm=False),
                        factory.encoder(backbone, shape, 3, **opts), 3, n_critic=2)


def _vaegan(backbone: str, shape: tuple[int, ...]) -> VAEGANModel:
    opts = _networks(backbone)
    return VAEGANModel(factory.encoder(backbone, shape, 6, **opts),
                       factory.decoder(backbone, shape, 3, **opts),
                       factory.discriminator(backbone, shape, **opts), 3)


CASES = {
    "ae-mlp": Case(lambda: _ae_mlp(), (D,)),
    "dae-mlp": Case(lambda: _ae_mlp(noise_std=0.1, mask_prob=0.1), (D,)),
    "ae-normalized-mlp": Case(lambda: _ae_mlp(n_features=D, normalize_errors=True), (D,)),
    "vae-elbo-mlp": Case(lambda: _vae_mlp("elbo"), (D,)),
    "vae-recprob-mlp": Case(lambda: _vae_mlp("reconstruction_probability"), (D,)),
    "pca-cae-conv1d": Case(lambda: PCAConvAutoEncoderModel(
        Conv1dAutoEncoderNet(D, width=4, latent_dim=2), D, n_components=3), (D,)),
    "ae-conv1d": Case(lambda: _ae_conv1d(), (1, L)),
    "dae-normalized-conv1d": Case(lambda: _ae_conv1d(noise_std=0.1, n_features=L,
                                                     normalize_errors=True), (1, L)),
    "ganomaly-mlp": Case(lambda: _ganomaly("mlp", (D,)), (D,)),
    "ganomaly-conv2d": Case(lambda: _ganomaly("conv2d", IMAGE), IMAGE),
    "fanogan-mlp": Case(lambda: _fanogan("mlp", (D,)), (D,), ("gan", "encoder")),
    "fanogan-conv2d": Case(lambda: _fanogan("conv2d", IMAGE), IMAGE, ("gan", "encoder")),
    "vaegan-mlp": Case(lambda: _vaegan("mlp", (D,)), (D,)),
    "vaegan-conv2d": Case(lambda: _vaegan("conv2d", IMAGE), IMAGE),
    "draem-unet": Case(lambda: DRAEMModel(UNet(IMAGE[0], 1, width=4)), IMAGE),
    "draem-reconstruction-unet": Case(lambda: DRAEMModel(
        UNet(2 * IMAGE[0], 1, width=4), UNet(IMAGE[0], IMAGE[0], width=4)), IMAGE),
}


def _data(shape, n=N, seed=0) -> torch.Tensor:
    """Correlated samples (something to learn): a shared factor plus noise."""
    g = torch.Generator().manual_seed(seed)
    factor = torch.randn((n,) + (1,) * len(shape), generator=g)
    return factor * torch.linspace(-1, 1, shape[-1]) + 0.3 * torch.randn((n, *shape), generator=g)


def _build(case: Case, seed: int = 0) -> GenerativeModel:
    torch.manual_seed(seed)
    return case.build()


def _enter(model: GenerativeModel, phase: str, learning_rate: float
           ) -> list[torch.optim.Optimizer]:
    """What the loop does before a phase: set it, then ask for its optimisers."""
    model.phase = phase
    optimizers = model.configure_optimizers(learning_rate, 0.0)
    model.train()
    return optimizers


def _fitted(case: Case) -> tuple[GenerativeModel, torch.Tensor]:
    """A model through the loop's life cycle: setup, a few steps per phase, finalize."""
    model, x = _build(case), _data(case.shape)
    model.setup(x)
    model.set_generator(torch.Generator().manual_seed(0))
    for phase in case.phases:
        optimizers = _enter(model, phase, 1e-2)
        for _ in range(3):
            model.train_step(x, optimizers)
    model.eval()
    model.finalize(x)
    return model, x


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]


def test_infer_gives_one_score_per_sample_and_a_map_shaped_like_the_input(case):
    model, x = _fitted(case)
    with torch.no_grad():
        score, amap = model.infer(x)
    assert score.shape == (N,) and amap.shape == x.shape
    assert score.dtype == amap.dtype == x.dtype


def test_scoring_is_deterministic_and_infer_equals_score_and_element_scores(case):
    model, x = _fitted(case)
    with torch.no_grad():
        score, amap = model.infer(x)
        again = model.infer(x)
        assert torch.equal(score, again[0]) and torch.equal(amap, again[1])
        assert torch.equal(score, model.score(x))
        assert torch.equal(amap, model.element_scores(x))


def test_an_additive_map_sums_to_the_score_exactly(case):
    model, x = _fitted(case)
    with torch.no_grad():
        score, amap = model.infer(x)
    if not model.additive_map:
        pytest.skip("the score is not the sum of the map")
    assert torch.equal(amap.flatten(1).sum(1), score)


def test_state_dict_restores_the_same_scores_in_a_freshly_built_model(case):
    model, x = _fitted(case)
    fresh = _build(case, seed=1)  # different initial weights
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    with torch.no_grad():
        expected, got = model.infer(x), fresh.infer(x)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])


def test_one_train_step_lowers_the_loss_on_its_batch(case):
    # in the last phase (an adversarial model's early-stopping loss is its generator's fit)
    model, x = _build(case), _data(case.shape)
    model.setup(x)
    model.set_generator(torch.Generator().manual_seed(0))
    optimizers = _enter(model, case.phases[-1], 1e-3)
    # validation_loss is the deterministic loss (no corruption, no sampled latent)
    with torch.no_grad():
        before = float(model.validation_loss(x))
    parts = model.train_step(x, optimizers)
    assert "loss" in parts and not parts["loss"].requires_grad
    with torch.no_grad():
        after = float(model.validation_loss(x))
    assert after < before


@pytest.mark.parametrize("magnitude", [1e4, -1e4])
def test_extreme_inputs_give_finite_scores_and_maps(case, magnitude):
    model, x = _fitted(case)
    extreme = torch.where(x > 0, magnitude, -magnitude)
    extreme[::2] = magnitude
    with torch.no_grad():
        score, amap = model.infer(extreme)
    assert torch.isfinite(score).all() and torch.isfinite(amap).all()


def test_finalize_accepts_batches_as_well_as_a_tensor(case):
    model, x = _fitted(case)
    from_tensor = {k: v.clone() for k, v in model.state_dict().items()}
    model.finalize(iter([x]))  # one batch: the same float64 accumulation as the tensor
    for k, v in model.state_dict().items():
        assert torch.equal(v, from_tensor[k]), k
