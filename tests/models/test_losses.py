"""genad.models.losses: each loss against its textbook formula or torch's reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F  # noqa: N812

from genad.models.losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    dice_loss,
    focal_loss,
    gaussian_kl,
    gaussian_nll,
    gradient_penalty,
    reconstruction_loss,
    squared_error,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_squared_error_in_place_gives_the_same_values_in_the_callers_tensor():
    recon, x = _randn(5, 3), _randn(5, 3, seed=1)
    expected = (recon - x) ** 2
    assert torch.equal(squared_error(recon.clone(), x), expected)
    buf = recon.clone()
    out = squared_error(buf, x, inplace=True)
    assert torch.equal(out, expected)
    assert out.data_ptr() == buf.data_ptr()


def test_reconstruction_loss_sums_each_sample_then_averages():
    recon, x = _randn(4, 2, 3, 5), _randn(4, 2, 3, 5, seed=1)
    per_sample = ((recon - x) ** 2).reshape(4, -1).sum(dim=1)
    torch.testing.assert_close(reconstruction_loss(recon, x), per_sample.mean())
    # on vectors: the same reduction as sum(dim=1).mean(), bit for bit
    r2, x2 = _randn(300, 7), _randn(300, 7, seed=1)
    assert torch.equal(reconstruction_loss(r2, x2), ((r2 - x2) ** 2).sum(dim=1).mean())


def test_gaussian_nll_and_kl_match_torch_distributions():
    x, mean, logvar = _randn(7, 3), _randn(7, 3, seed=1), _randn(7, 3, seed=2)
    expected = -Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)
    torch.testing.assert_close(gaussian_nll(x, mean, logvar), expected)
    mu, lv = _randn(7, 2, seed=3), _randn(7, 2, seed=4)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * lv)), Normal(0.0, 1.0)).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, lv), kl)


def test_gaussian_kl_sums_over_every_non_batch_dimension():
    mu, lv = _randn(3, 2, 4), _randn(3, 2, 4, seed=1)
    assert gaussian_kl(mu, lv).shape == (3,)
    torch.testing.assert_close(gaussian_kl(mu, lv), gaussian_kl(mu.flatten(1), lv.flatten(1)))


def test_bce_losses_are_the_softplus_forms_and_stay_finite():
    real, fake = _randn(16, 1) * 3, _randn(16, 1, seed=1) * 3
    torch.testing.assert_close(bce_discriminator_loss(real, fake),
                               F.softplus(-real).mean() + F.softplus(fake).mean())
    torch.testing.assert_close(bce_generator_loss(fake), F.softplus(-fake).mean())
    # a confident, correct discriminator: loss near 0; the generator's loss is large
    # but finite (non-saturating: its gradient does not vanish)
    big = torch.full((4, 1), 1e4)
    assert float(bce_discriminator_loss(big, -big)) == pytest.approx(0.0, abs=1e-6)
    fake_logits = (-big).requires_grad_(True)
    g_loss = bce_generator_loss(fake_logits)
    g_loss.backward()
    assert float(g_loss.detach()) == pytest.approx(1e4)
    assert torch.all(fake_logits.grad < 0)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    assert float(wasserstein_critic_loss(real, fake)) == -3.0
    assert float(wasserstein_generator_loss(fake)) == 1.0


def test_gradient_penalty_of_a_linear_critic_is_its_norm_gap_squared():
    w = _randn(2, 3)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731 - gradient w everywhere
    real, fake = _randn(10, 2, 3, seed=1), _randn(10, 2, 3, seed=2)
    p = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    torch.testing.assert_close(p, (w.norm() - 1) ** 2)


def test_gradient_penalty_draws_from_the_generator_and_backpropagates():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = _randn(10, 2, 3, seed=1), _randn(10, 2, 3, seed=2)
    state = torch.get_rng_state()
    p1 = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(5))
    p2 = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(5))
    p3 = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(p1, p2) and not torch.equal(p1, p3)
    p1.backward()
    assert critic[1].weight.grad is not None and bool(critic[1].weight.grad.abs().sum() > 0)


def test_gradient_penalty_rejects_batches_of_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(lambda x: x.sum(1), torch.zeros(3, 2), torch.zeros(4, 2))


def test_focal_and_dice_are_low_for_a_right_answer_and_high_for_a_wrong_one():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:4, 2:4] = 1
    right, wrong = (target * 2 - 1) * 8, (1 - 2 * target) * 8
    assert focal_loss(right, target) < 1e-4 < focal_loss(wrong, target)
    assert dice_loss(torch.sigmoid(right), target) < 0.01
    assert dice_loss(torch.sigmoid(wrong), target) > 0.9
