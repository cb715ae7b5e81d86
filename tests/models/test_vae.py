"""VAEModel: ELBO pieces, guarded log-variances, warm-up, deterministic scores, collapse."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import genad
from genad.errors import TrainingDivergedError
from genad.models.losses import gaussian_kl, gaussian_nll
from genad.models.vae import VAEModel
from genad.nets.mlp import mlp
from genad.training import TrainConfig, train_model


def _vae(d=4, latent=2, **kw):
    torch.manual_seed(0)
    return VAEModel(mlp([d, 8, 2 * latent]), mlp([latent, 8, 2 * d]), latent_dim=latent,
                    n_features=d, **kw)


class _Zeros(nn.Module):
    """An encoder that ignores its input: mu = 0, logvar = 0, the collapsed posterior."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, x):
        return torch.zeros(x.shape[0], self.width, dtype=x.dtype, device=x.device)


def test_guard_bounds_log_variance_and_is_monotone():
    v = torch.tensor([-float("inf"), -1e30, -1e3, -8.0, -1.0, 0.0, 1.0, 8.0, 1e3, 1e30,
                      float("inf")])
    g = VAEModel._guard(v)
    assert torch.all(torch.isfinite(g))
    assert torch.all(g >= -8.0) and torch.all(g <= 8.0)
    assert torch.all(g[1:] >= g[:-1])
    assert float(VAEModel._guard(torch.tensor(0.0))) == pytest.approx(0.0)
    # soft clamp: close to identity near zero
    assert float(VAEModel._guard(torch.tensor(1.0))) == pytest.approx(1.0, abs=0.05)


def test_kl_warmup_rises_from_near_zero_to_beta():
    model = _vae(beta=2.0, kl_warmup_epochs=10)
    weights = []
    for epoch in range(15):
        model.epoch = epoch
        weights.append(model.kl_weight())
    assert weights[0] <= 2.0 / 10 + 1e-12
    assert np.all(np.diff(weights) >= 0)
    assert weights[9] == pytest.approx(2.0)
    assert all(w == pytest.approx(2.0) for w in weights[9:])
    no_warmup = _vae(beta=0.5, kl_warmup_epochs=0)
    assert no_warmup.kl_weight() == 0.5


def test_loss_weights_kl_by_warmup():
    model = _vae(beta=1.0, kl_warmup_epochs=4)
    x = torch.randn(32, 4)
    model.epoch = 0
    torch.manual_seed(0)
    parts = model.loss(x)
    torch.testing.assert_close(parts["loss"], parts["nll"] + 0.25 * parts["kl"])


@pytest.mark.parametrize("method", ["elbo", "reconstruction_probability"])
def test_element_scores_sum_to_score_and_are_deterministic(method):
    model = _vae(score_method=method, n_samples=8).eval()
    x = torch.randn(20, 4)
    with torch.no_grad():
        e1, e2 = model.element_scores(x), model.element_scores(x)
        torch.testing.assert_close(model.score(x), e1.sum(dim=1))
    assert torch.equal(e1, e2)
    assert torch.all(torch.isfinite(e1))


def test_reconstruction_probability_leaves_global_rng_alone():
    model = _vae(score_method="reconstruction_probability").eval()
    x = torch.randn(5, 4)
    state = torch.get_rng_state()
    with torch.no_grad():
        model.element_scores(x)
    assert torch.equal(state, torch.get_rng_state())


def test_elbo_score_is_negative_elbo_at_posterior_mean_minus_baseline():
    model = _vae().eval()
    x = torch.randn(6, 4)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        mean, out_logvar = model.decode(mu)
        nll = gaussian_nll(x, mean, out_logvar)
        neg_elbo = nll.sum(dim=1) + gaussian_kl(mu, logvar)
        torch.testing.assert_close(model.validation_loss(x), neg_elbo.mean())
        assert torch.all(model.nll_baseline == 0)  # before finalize: the plain negative ELBO
        torch.testing.assert_close(model.score(x), neg_elbo)
        # after training the per-feature NLL is measured against its mean on the normals
        train = torch.randn(200, 4)
        model.finalize(train)
        mu_t, _ = model.encode(train)
        mean_t, lv_t = model.decode(mu_t)
        baseline = gaussian_nll(train, mean_t, lv_t).mean(dim=0)
        torch.testing.assert_close(model.nll_baseline, baseline, rtol=1e-4, atol=1e-5)
        # a constant shift: same ranking, and the map still sums to the score
        torch.testing.assert_close(model.score(x), neg_elbo - baseline.sum(), rtol=1e-4,
                                   atol=1e-4)
        torch.testing.assert_close(model.element_scores(x).sum(dim=1), model.score(x))


def test_fixed_unit_variance_decoder_scores_scaled_squared_error():
    model = _vae(learn_variance=False).eval()
    x = torch.randn(6, 4)
    with torch.no_grad():
        mu, _ = model.encode(x)
        mean, logvar = model.decode(mu)
        assert torch.all(logvar == 0)
        nll = gaussian_nll(x, mean, logvar)
        torch.testing.assert_close(nll, 0.5 * (math.log(2 * math.pi) + (x - mean) ** 2))


def test_extreme_network_outputs_never_make_nan():
    model = _vae()
    with torch.no_grad():  # blow the log-variance heads up
        model.encoder[-1].bias[2:] = 1e30
        model.decoder[-1].bias[4:] = -1e30
    model.eval()
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.all(torch.isfinite(model.element_scores(x)))
        assert torch.isfinite(model.loss(x)["loss"])


@pytest.mark.parametrize("method", ["elbo", "reconstruction_probability"])
def test_vae_detector_scores_are_finite_for_huge_inputs(table, method, make_detector):
    det = make_detector("vae", score_method=method).fit(table)
    extreme = table.iloc[:4].assign(a=1e30, b=-1e30, c=[1e300, -1e300, 1e30, 0.0])
    s = det.anomaly_score(extreme)
    assert np.all(np.isfinite(s))
    assert np.all(s > det.threshold_)
    m = det.anomaly_map(extreme)
    assert np.all(np.isfinite(m.to_numpy()))


@pytest.mark.parametrize("method", ["elbo", "reconstruction_probability"])
def test_vae_detector_scores_deterministic(table, method, make_detector):
    det = make_detector("vae", score_method=method, n_samples=4).fit(table)
    np.testing.assert_array_equal(det.anomaly_score(table), det.anomaly_score(table))
    again = make_detector("vae", score_method=method, n_samples=4).fit(table)
    np.testing.assert_array_equal(det.anomaly_score(table), again.anomaly_score(table))


def test_score_methods_differ_but_agree_on_ranking(table, outlier_table, make_detector):
    X = pd.concat([table.iloc[:100], outlier_table], ignore_index=True)
    elbo = make_detector("vae").fit(table).anomaly_score(X)
    rp = make_detector("vae", score_method="reconstruction_probability").fit(table)
    rp = rp.anomaly_score(X)
    assert not np.array_equal(elbo, rp)
    assert np.corrcoef(elbo, rp)[0, 1] > 0.8


def test_check_health_flags_a_collapsed_posterior():
    d = 4
    collapsed = VAEModel(_Zeros(4), mlp([2, 8, 2 * d]), latent_dim=2, n_features=d)
    x = torch.randn(50, d)
    with torch.no_grad():
        assert collapsed.mean_kl(x) == pytest.approx(0.0, abs=1e-7)
        advice = collapsed.check_health(x)
    assert advice is not None and "collapsed" in advice and "beta" in advice
    healthy = _vae(d=d)
    with torch.no_grad():
        healthy.encoder[-1].bias[:2] = 3.0  # mu far from 0: KL > 0
        assert healthy.check_health(x) is None


def test_training_a_collapsed_posterior_raises_training_diverged():
    d = 4
    collapsed = VAEModel(_Zeros(4), mlp([2, 8, 2 * d]), latent_dim=2, n_features=d)
    x = torch.randn(64, d)
    with pytest.raises(TrainingDivergedError, match="posterior collapsed"):
        train_model(collapsed, x, x[:16], TrainConfig(epochs=2, verbose=0, random_state=0))


def test_huge_beta_on_structureless_data_collapses_and_raises(make_detector):
    # independent noise gives the latent code little to carry while beta * KL makes every
    # nat expensive: the posterior collapses, and fit must raise rather than return it
    X = np.random.default_rng(0).normal(size=(300, 3))
    det = make_detector("vae", beta=1e3, kl_warmup_epochs=0, epochs=20, learning_rate=1e-2)
    with pytest.raises(TrainingDivergedError, match="collapsed.*smaller beta"):
        det.fit(X)
    assert not hasattr(det, "model_")  # no half-fitted detector left behind


def test_vae_parameter_validation(table):
    with pytest.raises(genad.InvalidInputError, match="score_method"):
        genad.VAE(score_method="likelihood", epochs=1, verbose=0).fit(table)
    with pytest.raises(genad.InvalidInputError, match="beta"):
        genad.VAE(beta=0.0, epochs=1, verbose=0).fit(table)
    assert math.isfinite(genad.VAE().beta)
