"""The latent bank (``genad.models.latent``) and the autoencoders' ``latent_neighbors``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genad
from genad.data import ImageAdapter
from genad.errors import InvalidInputError
from genad.models.latent import MAX_CODES, QUERY_CHUNK, LatentBank
from tests.conftest import scores_in_fresh_interpreter


def _codes(n: int, d: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, d), generator=g) * torch.tensor([1.0, 3.0, 0.5, 10.0])[:d] + 2.0


@pytest.mark.parametrize("k", [1, 3])
def test_the_distance_is_the_mean_over_the_k_nearest_scaled_codes(k):
    train, query = _codes(200), _codes(30, seed=1)
    bank = LatentBank(4, neighbors=k)
    bank.fit(train.split(64))  # batches, as the training loop gives them
    t = train.double().numpy()
    mean, std = t.mean(axis=0), t.std(axis=0)
    a, b = (t - mean) / std, (query.double().numpy() - mean) / std
    dist = np.sqrt(((b[:, None, :] - a[None, :, :]) ** 2).sum(axis=2))
    expected = np.sort(dist, axis=1)[:, :k].mean(axis=1)
    np.testing.assert_allclose(bank.distance(query).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert bank.distance(train[:5]).shape == (5,)


@pytest.mark.parametrize("k", [1, 3])
def test_the_cosine_distance_compares_unit_length_codes(k):
    train, query = _codes(200), _codes(30, seed=1)
    bank = LatentBank(4, neighbors=k, metric="cosine")
    bank.fit(train.split(64))
    a = train.double().numpy()
    b = query.double().numpy()
    a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    chord = np.sqrt(np.clip(2 - 2 * b @ a.T, 0, None))  # |u - v| of unit vectors
    expected = np.sort(chord, axis=1)[:, :k].mean(axis=1)
    np.testing.assert_allclose(bank.distance(query).numpy(), expected, rtol=1e-4, atol=1e-4)
    # only the direction counts: a code scaled by 7 scores as the code itself
    np.testing.assert_allclose(bank.distance(7 * query), bank.distance(query), atol=1e-5)


def test_a_code_scores_the_same_alone_and_in_any_batch():
    bank = LatentBank(4, neighbors=5)
    bank.fit([_codes(300)])
    query = _codes(QUERY_CHUNK + 37, seed=2)  # more than one query chunk
    together = bank.distance(query)
    alone = torch.cat([bank.distance(q[None]) for q in query[:: 50]])
    assert torch.equal(together[:: 50], alone)


def test_at_most_max_codes_are_kept_evenly_spaced():
    bank = LatentBank(1, neighbors=1)
    codes = torch.arange(MAX_CODES * 2 + 1, dtype=torch.float32)[:, None]
    bank.fit([codes])
    assert int(bank.n_codes) == MAX_CODES
    kept = bank.codes[:, 0] * bank.std + bank.mean
    assert float(kept[0]) == pytest.approx(0.0, abs=1e-2)
    assert float(kept[-1]) == pytest.approx(MAX_CODES * 2, rel=1e-5)
    assert float(kept.diff().min()) > 1.5  # every second code, none twice


def test_a_bank_keeps_at_most_its_capacity_and_loads_at_its_saved_size():
    bank = LatentBank(1, neighbors=1, capacity=10)
    bank.fit([torch.arange(25, dtype=torch.float32)[:, None]])
    assert tuple(bank.codes.shape) == (10, 1) and int(bank.n_codes) == 10
    few = LatentBank(1, neighbors=1, capacity=10)
    few.fit([torch.arange(7, dtype=torch.float32)[:, None]])
    assert tuple(few.codes.shape) == (7, 1)  # only the kept codes: a small bundle
    # a bank built with another capacity takes the saved one's rows
    bigger = LatentBank(1, neighbors=1, capacity=40)
    bigger.load_state_dict(bank.state_dict(), strict=True)
    assert tuple(bigger.codes.shape) == (10, 1)
    query = torch.tensor([[3.3], [30.0]])
    assert torch.equal(bigger.distance(query), bank.distance(query))
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        LatentBank(1, neighbors=1, capacity=0)


def test_the_bank_travels_in_the_state_dict():
    bank = LatentBank(4, neighbors=2)
    bank.fit([_codes(100)])
    fresh = LatentBank(4, neighbors=2)
    fresh.load_state_dict(bank.state_dict(), strict=True)
    query = _codes(10, seed=3)
    assert torch.equal(fresh.distance(query), bank.distance(query))


def test_neighbors_must_be_positive_and_the_bank_needs_codes():
    with pytest.raises(ValueError, match="neighbors must be at least 1"):
        LatentBank(4, neighbors=0)
    with pytest.raises(ValueError, match="metric must be one of"):
        LatentBank(4, neighbors=1, metric="manhattan")
    with pytest.raises(ValueError, match="no training code"):
        LatentBank(4, neighbors=1).fit([torch.zeros(0, 4)])


# ------------------------------------------------------------------ detectors
def _table(n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return np.c_[z, z @ [[1.0, -1.0], [0.5, 2.0]], 0.1 * rng.normal(size=(n, 2))]


def test_the_autoencoder_scores_by_latent_distance_and_maps_by_residual():
    X = _table()
    det = genad.AutoEncoder(latent_neighbors=3, epochs=5, random_state=0, verbose=0).fit(X)
    model = det.model_
    assert model.additive_map is False and int(model.latent_bank.n_codes) > 0
    units = det.adapter_.samples(X[:20]).stacked()
    with torch.no_grad():
        expected = model.latent_bank.distance(model.encoder(units)).double().numpy()
    np.testing.assert_allclose(det.anomaly_score(X[:20]), expected, rtol=1e-5)
    outlier = [[12.0, -12.0, 0.0, 0.0, 3.0, -3.0]]
    assert det.anomaly_score(outlier)[0] > det.anomaly_score(X).max()
    assert det.anomaly_map(X[:3]).shape == (3, X.shape[1])  # per-feature residuals
    assert len(det.explain(X[:3])) == 3


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_saved_latent_model_scores_the_same_in_a_fresh_interpreter(tmp_path, metric):
    X = _table()
    det = genad.AutoEncoder(latent_neighbors=3, latent_metric=metric, epochs=3,
                            random_state=0, verbose=0).fit(X)
    assert det.model_.latent_bank.metric == metric
    path = det.save(tmp_path / "m.genad")
    assert scores_in_fresh_interpreter(
        path, X[:7], tmp_path, f"d.model_.latent_bank.metric == {metric!r}"
    ) == det.anomaly_score(X[:7]).tolist()


def test_on_images_the_latent_score_needs_the_model_score():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, size=(48, 16, 16), dtype=np.uint8)
    kw = dict(latent_neighbors=2, conv_width=4, epochs=1, random_state=0, verbose=0)
    with pytest.raises(InvalidInputError, match=r'ImageAdapter\(score="model"\)'):
        genad.ConvAutoEncoder(**kw).fit(images)  # the default image score is the map's
    det = genad.ConvAutoEncoder(adapter=ImageAdapter(score="model"), **kw).fit(images)
    units = det.adapter_.samples(images[:4]).stacked()
    with torch.no_grad():
        expected = det.model_.latent_bank.distance(det.model_.encoder(units)).double().numpy()
    np.testing.assert_allclose(det.anomaly_score(images[:4]), expected, rtol=1e-5)
    assert det.anomaly_map(images[:2]).shape == (2, 16, 16)


def _tiled_latent_ae(**kw):
    return genad.ConvAutoEncoder(
        adapter=ImageAdapter(score="model", tile=8, tile_overlap=0.5), latent_neighbors=2,
        conv_width=4, epochs=1, random_state=0, verbose=0, **kw)


def test_a_tiled_images_bank_holds_max_codes_per_tile(tmp_path):
    images = np.random.default_rng(0).integers(0, 60, size=(24, 16, 16), dtype=np.uint8)
    det = _tiled_latent_ae().fit(images)
    bank = det.model_.latent_bank
    assert det.adapter_.units_per_sample == 9 and bank.capacity == 9 * MAX_CODES
    # fewer training tiles than the capacity: every one's code, and only those, kept
    n_kept = 9 * (len(images) - round(0.1 * len(images)))
    assert int(bank.n_codes) == n_kept and bank.codes.shape[0] == n_kept
    path = det.save(tmp_path / "tiled.genad")
    assert scores_in_fresh_interpreter(
        path, images[:5], tmp_path, f"d.model_.latent_bank.codes.shape[0] == {n_kept}"
    ) == det.anomaly_score(images[:5]).tolist()


def _zero_padded_fit(self, batches):
    """LatentBank.fit before session 17: MAX_CODES rows, the kept codes first."""
    n = torch.cat(list(batches)).shape[0]
    self.codes = torch.zeros(MAX_CODES, self.codes.shape[1])
    kept = torch.linspace(-1.0, 1.0, n * self.codes.shape[1]).reshape(n, -1)
    self.codes[:n] = self._scale(kept)
    self.n_codes.fill_(n)


def test_a_tiled_bundle_saved_with_the_old_fixed_bank_still_loads(tmp_path, monkeypatch):
    images = np.random.default_rng(1).integers(0, 60, size=(24, 16, 16), dtype=np.uint8)
    # before session 17 every bank held MAX_CODES zero-padded rows, whatever the tiling
    monkeypatch.setattr(LatentBank, "fit", _zero_padded_fit)
    det = _tiled_latent_ae().fit(images)
    assert det.model_.latent_bank.codes.shape[0] == MAX_CODES
    path = det.save(tmp_path / "old.genad")
    monkeypatch.undo()
    again = genad.load(path)
    assert again.model_.latent_bank.codes.shape[0] == MAX_CODES
    assert int(again.model_.latent_bank.n_codes) == int(det.model_.latent_bank.n_codes)
    np.testing.assert_array_equal(again.anomaly_score(images[:5]),
                                  det.anomaly_score(images[:5]))
    np.testing.assert_array_equal(again.anomaly_score(images[:5]),
                                  det.anomaly_score(images[:5]))


def test_an_unknown_latent_metric_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="latent_metric must be .euclidean. or .cosine."):
        genad.AutoEncoder(latent_neighbors=2, latent_metric="manhattan", epochs=1,
                          verbose=0).fit(_table(50))


def test_the_vae_scores_by_the_distance_of_its_posterior_means():
    X = _table()
    det = genad.VAE(latent_neighbors=3, latent_metric="cosine", epochs=5, random_state=0,
                    verbose=0).fit(X)
    model = det.model_
    assert model.additive_map is False and model.latent_bank.metric == "cosine"
    units = det.adapter_.samples(X[:20]).stacked()
    with torch.no_grad():
        expected = model.latent_bank.distance(model.encode(units)[0]).double().numpy()
    elbo_map = genad.VAE(epochs=5, random_state=0, verbose=0).fit(X).anomaly_map(X[:3])
    np.testing.assert_allclose(det.anomaly_score(X[:20]), expected, rtol=1e-4, atol=1e-6)
    # the map is the VAE's own per-feature terms, the same network as without the bank
    np.testing.assert_allclose(det.anomaly_map(X[:3]), elbo_map, rtol=1e-4, atol=1e-5)


def test_the_conv_vae_refuses_a_map_score_with_latent_neighbors():
    images = np.random.default_rng(0).integers(0, 60, size=(48, 16, 16), dtype=np.uint8)
    kw = dict(latent_neighbors=2, conv_width=4, epochs=1, random_state=0, verbose=0)
    with pytest.raises(InvalidInputError, match=r'ImageAdapter\(score="model"\)'):
        genad.ConvVAE(**kw).fit(images)
    det = genad.ConvVAE(adapter=ImageAdapter(score="model"), **kw).fit(images)
    assert det.anomaly_score(images[:3]).shape == (3,)
    assert det.anomaly_map(images[:2]).shape == (2, 16, 16)
