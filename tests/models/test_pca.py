"""PCAConvAutoEncoderModel: the PCA part against scikit-learn, scale normalisation, mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from genad.models.pca import PCAConvAutoEncoderModel
from genad.nets.conv1d import Conv1dAutoEncoderNet


def _data(n=300, d=8, rank=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + 0.01 * rng.normal(size=(n, d))
    return torch.from_numpy(x.astype(np.float32))


def _model(d=8, **kw):
    torch.manual_seed(0)
    return PCAConvAutoEncoderModel(Conv1dAutoEncoderNet(d, width=4, latent_dim=2), d, **kw)


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95, 0.999])
def test_variance_fraction_picks_the_same_k_as_sklearn(fraction):
    x = _data(rank=5)
    model = _model(n_components=fraction)
    model.setup(x)
    k = PCA(n_components=fraction, svd_solver="full").fit(x.numpy()).n_components_
    assert model.components_used == min(k, x.shape[1] - 1)


def test_components_span_the_sklearn_subspace_and_are_orthonormal():
    x = _data(rank=3)
    model = _model(n_components=3)
    model.setup(x)
    comps = model.pca_components[:3].double()
    torch.testing.assert_close(comps @ comps.T, torch.eye(3, dtype=torch.float64), atol=1e-5,
                               rtol=0)
    assert torch.all(model.pca_components[3:] == 0)
    ref = PCA(n_components=3, svd_solver="full").fit(x.numpy())
    # same subspace: projectors agree (component signs are arbitrary)
    p_ours = comps.T @ comps
    p_ref = torch.from_numpy(ref.components_.T @ ref.components_).double()
    torch.testing.assert_close(p_ours, p_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.pca_mean, x.mean(dim=0), atol=1e-5, rtol=0)


def test_pca_error_is_zero_in_the_subspace_and_large_off_it():
    x = _data(rank=2)
    model = _model(n_components=2)
    model.setup(x)
    inside = model._pca_error(x).sum(dim=1)
    off = x + 5.0 * torch.randn_like(x)
    assert float(inside.mean()) < 0.01
    assert float(model._pca_error(off).sum(dim=1).min()) > 10 * float(inside.max())


def test_integer_components_never_reach_full_rank():
    x = _data(d=6)
    model = _model(d=6, n_components=6)
    model.setup(x)
    assert model.components_used == 5  # all components would make the PCA error 0
    tiny = _model(d=6, n_components=10)
    tiny.setup(x[:3])
    assert tiny.components_used == 2


def test_part_scales_are_mean_training_errors():
    x = _data()
    model = _model(n_components=2)
    model.setup(x)
    assert float(model.part_scale[0]) == pytest.approx(
        float(model._pca_error(x).sum(dim=1).mean()), rel=1e-5)
    model.finalize(x)
    with torch.no_grad():
        cae = ((model.network(x) - x) ** 2).sum(dim=1).mean()
    assert float(model.part_scale[1]) == pytest.approx(float(cae), rel=1e-4)
    # after normalisation a typical training row scores about 1 (weights sum to 1)
    with torch.no_grad():
        assert float(model.score(x).mean()) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_element_scores_mix_the_two_normalised_errors(weight):
    x = _data()
    model = _model(n_components=2, pca_weight=weight)
    model.setup(x)
    model.finalize(x)
    with torch.no_grad():
        e_pca = model._pca_error(x) / model.part_scale[0]
        e_cae = (model.network(x) - x) ** 2 / model.part_scale[1]
        torch.testing.assert_close(model.element_scores(x), weight * e_pca + (1 - weight) * e_cae)
        torch.testing.assert_close(model.score(x), model.element_scores(x).sum(dim=1))


def test_pca_state_lives_in_buffers_for_the_bundle():
    model = _model()
    names = dict(model.named_buffers())
    assert {"pca_mean", "pca_components", "part_scale"} <= set(names)
    assert "pca_components" in model.state_dict()


def test_validation_loss_is_the_cae_loss():
    x = _data()
    model = _model()
    model.setup(x)
    with torch.no_grad():
        torch.testing.assert_close(model.validation_loss(x), model.loss(x)["loss"])


def test_non_finite_training_rows_give_advice_not_a_linalg_error():
    from genad.errors import TrainingDivergedError

    x = _data()
    x[3, 2] = float("nan")
    with pytest.raises(TrainingDivergedError, match=r"NaN or inf.*rescale"):
        _model().setup(x)


def test_a_failing_svd_becomes_a_genad_error_with_advice(monkeypatch):
    from genad.errors import GenadError

    def failing_svd(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "svd", failing_svd)
    with pytest.raises(GenadError, match=r"PCA failed.*failed to converge.*rescale"):
        _model().setup(_data())
