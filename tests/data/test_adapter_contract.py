"""The adapter protocol (genad.data.base), checked on every registered adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from genad.data.base import ADAPTERS, TensorSampleSet, _load_adapters, adapter_for, renumber
from tests.conftest import normal_table

_load_adapters()


def _images():
    """60 distinct 8 x 10 gray images (more than one score chunk of 50 in the tests)."""
    return np.random.default_rng(3).integers(0, 256, size=(60, 8, 10), dtype=np.uint8)


#: kind -> a small example input of that kind (add one per new adapter)
EXAMPLES = {"tabular": lambda: normal_table(120, seed=3), "image": _images}


@pytest.fixture(params=sorted(ADAPTERS))
def kind(request):
    if request.param not in EXAMPLES:
        pytest.fail(f"add an example input for the {request.param!r} adapter to EXAMPLES")
    return request.param


def _fitted(kind):
    adapter = ADAPTERS[kind]()
    data = adapter.read(EXAMPLES[kind]())
    return adapter.fit(data), data


def test_adapter_for_picks_the_kind_for_its_input(kind):
    assert adapter_for(EXAMPLES[kind]()).kind == kind


def test_samples_cover_every_user_sample_with_the_fitted_shape(kind):
    adapter, data = _fitted(kind)
    samples = adapter.samples(data)
    n = adapter.n_samples(data)
    assert samples.n_samples == n
    assert tuple(samples.sample_shape) == tuple(adapter.sample_shape_)
    assert len(samples) >= n and samples.owner.min() == 0 and samples.owner.max() == n - 1
    assert tuple(samples[0].shape) == tuple(adapter.sample_shape_)
    assert torch.isfinite(torch.stack([samples[i] for i in range(len(samples))])).all()


def test_reduce_to_map_and_describe_give_one_result_per_user_sample(kind):
    adapter, data = _fitted(kind)
    samples = adapter.samples(data)
    n = samples.n_samples
    unit_scores = np.arange(len(samples), dtype=np.float64)
    assert adapter.reduce(unit_scores, samples).shape == (n,)
    maps = adapter.to_map(np.ones((len(samples), *samples.sample_shape)), samples)
    assert len(maps) == n
    words = adapter.describe(maps, 2)
    assert len(words) == n and all(isinstance(w, str) and w for w in words)
    assert len(adapter.index(samples)) == n


def test_state_round_trip_encodes_identically(kind):
    adapter, data = _fitted(kind)
    doc, arrays = adapter.get_state()
    again = type(adapter).from_state(doc, arrays)
    a, b = adapter.samples(data), again.samples(data)
    assert torch.equal(torch.stack([a[i] for i in range(len(a))]),
                       torch.stack([b[i] for i in range(len(b))]))
    assert again.get_params() == adapter.get_params()


def test_holdout_splits_user_samples_into_disjoint_parts(kind):
    adapter, data = _fitted(kind)
    samples = adapter.samples(data)
    train, held = adapter.holdout(samples, 0.25, np.random.default_rng(0))
    n = samples.n_samples
    assert train.n_samples + held.n_samples == n
    assert held.n_samples == round(0.25 * n)
    assert len(train) + len(held) == len(samples)
    again = adapter.holdout(samples, 0.25, np.random.default_rng(0))
    assert torch.equal(torch.stack([held[i] for i in range(len(held))]),
                       torch.stack([again[1][i] for i in range(len(again[1]))]))
    if isinstance(samples, TensorSampleSet):  # disjoint rows of the same tensor
        rows = {tuple(r.reshape(-1).tolist()) for r in samples.tensor}
        assert len(rows) == len(samples)  # the example has no duplicate rows
        kept = {tuple(r.reshape(-1).tolist()) for r in train.tensor}
        out = {tuple(r.reshape(-1).tolist()) for r in held.tensor}
        assert not kept & out and kept | out == rows


def test_chunks_add_up_to_the_samples(kind):
    adapter, data = _fitted(kind)
    whole = adapter.samples(data)
    parts = list(adapter.chunks(data, 50))
    assert len(parts) > 1
    stacked = torch.cat([torch.stack([p[i] for i in range(len(p))]) for p in parts])
    assert torch.equal(stacked, torch.stack([whole[i] for i in range(len(whole))]))
    assert sum(p.n_samples for p in parts) == whole.n_samples


def test_adapters_are_cloneable_estimators(kind):
    adapter = ADAPTERS[kind]()
    params = adapter.get_params()
    assert clone(adapter).get_params() == params
    name = next(iter(params))
    assert clone(adapter).set_params(**{name: params[name]}).get_params() == params


def test_renumber_keeps_the_order_of_first_appearance():
    new, old = renumber(np.array([5, 5, 2, 9, 2, 5]))
    assert new.tolist() == [0, 0, 1, 2, 1, 0] and old.tolist() == [5, 2, 9]
