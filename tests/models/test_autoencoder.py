"""AutoEncoderModel: squared-error objective, corruption only in training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genad.models.autoencoder import AutoEncoderModel
from genad.nets.mlp import mlp


def _identity_model(**kw):
    return AutoEncoderModel(nn.Identity(), nn.Identity(), **kw)


def test_element_scores_are_squared_reconstruction_errors():
    torch.manual_seed(0)
    model = AutoEncoderModel(mlp([4, 3, 2]), mlp([2, 3, 4])).eval()
    x = torch.randn(10, 4)
    with torch.no_grad():
        expected = (model(x) - x) ** 2
        torch.testing.assert_close(model.element_scores(x), expected)
        torch.testing.assert_close(model.score(x), expected.sum(dim=1))
        torch.testing.assert_close(model.validation_loss(x), expected.sum(dim=1).mean())


def test_perfect_reconstruction_scores_zero():
    x = torch.randn(5, 3)
    model = _identity_model()
    assert torch.all(model.element_scores(x) == 0)
    assert float(model.loss(x)["loss"]) == 0.0


def test_denoising_loss_corrupts_input_but_targets_clean_data():
    x = torch.randn(200, 6)
    noisy = _identity_model(noise_std=0.5)
    torch.manual_seed(0)
    loss = float(noisy.loss(x)["loss"])
    # identity reconstructs its (noisy) input: the loss is the noise energy, 6 * 0.25
    assert abs(loss - 6 * 0.25) < 0.2
    masked = _identity_model(mask_prob=1.0)
    torch.testing.assert_close(masked.loss(x)["loss"], (x**2).sum(dim=1).mean())
    # scoring never corrupts: deterministic and zero for identity
    assert torch.all(noisy.element_scores(x) == 0)
    assert torch.all(masked.element_scores(x) == 0)


def test_corrupt_is_identity_without_noise():
    x = torch.randn(4, 3)
    assert torch.equal(_identity_model().corrupt(x), x)
    masked = _identity_model(mask_prob=0.5).corrupt(torch.ones(1000, 10))
    frac_zero = float((masked == 0).float().mean())
    assert 0.45 < frac_zero < 0.55


def test_train_step_reduces_loss():
    torch.manual_seed(0)
    model = AutoEncoderModel(mlp([5, 8, 2]), mlp([2, 8, 5]))
    z = torch.randn(256, 2)
    x = torch.cat([z, z[:, :1] + z[:, 1:], z * 2], dim=1)
    (opt,) = model.configure_optimizers(1e-2, 0.0)
    first = float(model.train_step(x, [opt])["loss"])
    for _ in range(150):
        last = float(model.train_step(x, [opt])["loss"])
    assert last < 0.2 * first


def test_normalized_errors_divide_by_mean_training_error_per_feature():
    torch.manual_seed(0)
    model = AutoEncoderModel(mlp([4, 3, 2]), mlp([2, 3, 4]), n_features=4,
                             normalize_errors=True).eval()
    x = torch.randn(200, 4) * torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert torch.all(model.error_scale == 1)  # before finalize: plain errors
    model.finalize(x)
    with torch.no_grad():
        raw = (model(x) - x) ** 2
        torch.testing.assert_close(model.error_scale, raw.mean(dim=0), rtol=1e-4, atol=0)
        normalized = model.element_scores(x)
        torch.testing.assert_close(normalized, raw / raw.mean(dim=0), rtol=1e-4, atol=1e-6)
        # every feature's error is 1 on average over the training rows
        torch.testing.assert_close(normalized.mean(dim=0), torch.ones(4), rtol=1e-4, atol=0)
        # early stopping keeps using the raw error
        torch.testing.assert_close(model.validation_loss(x), raw.sum(dim=1).mean())


def test_normalized_error_scale_has_a_floor():
    model = _identity_model(n_features=3, normalize_errors=True)
    model.finalize(torch.randn(50, 3))  # identity: every error is 0
    assert torch.all(model.error_scale >= 1e-4)
    assert torch.all(torch.isfinite(model.element_scores(torch.randn(5, 3))))


def test_normalize_errors_needs_n_features():
    with pytest.raises(ValueError, match="n_features"):
        _identity_model(normalize_errors=True)
