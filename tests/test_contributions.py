"""Share of each column in a row's score (genad.contributions), shared by explain and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genad.detector
from genad.contributions import contribution_shares, top_columns, top_contributions
from genad.errors import InvalidInputError


def test_negative_contributions_count_as_zero():
    # a VAE row: two equal positive contributions and a small negative one
    shares = contribution_shares([[1.0, 1.0, -0.08]])
    np.testing.assert_allclose(shares, [[0.5, 0.5, 0.0]])


def test_shares_sum_to_one_or_zero():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 6))
    values[:, 0] = np.abs(values[:, 0]) + 0.1
    values[3] = -np.abs(values[3])  # no positive contribution at all
    shares = contribution_shares(values)
    assert shares.shape == values.shape
    assert np.all((shares >= 0.0) & (shares <= 1.0))
    sums = shares.sum(axis=1)
    np.testing.assert_allclose(np.delete(sums, 3), 1.0)
    assert sums[3] == 0.0


def test_dataframe_and_array_agree():
    frame = pd.DataFrame({"a": [3.0, -1.0], "b": [1.0, 2.0]})
    np.testing.assert_array_equal(contribution_shares(frame), contribution_shares(frame.values))


def test_top_columns_order_and_ties():
    positions, shares = top_columns([[1.0, 3.0, 3.0, -2.0]], k=3)
    assert positions.tolist() == [[1, 2, 0]]  # ties keep column order
    np.testing.assert_allclose(shares, [[3 / 7, 3 / 7, 1 / 7]])


def test_top_columns_k_larger_than_columns():
    positions, shares = top_columns(np.ones((2, 2)), k=5)
    assert positions.shape == shares.shape == (2, 2)


@pytest.mark.parametrize("k", [-1, 2.5, True, "3"])
def test_top_columns_rejects_bad_k(k):
    with pytest.raises(InvalidInputError, match="k must be an integer"):
        top_columns(np.ones((2, 3)), k=k)


def test_rejects_non_table():
    with pytest.raises(InvalidInputError, match="2-D"):
        contribution_shares([1.0, 2.0])


def test_top_contributions_text():
    contrib = pd.DataFrame({"a": [1.0, 0.0], "b": [1.0, 2.0], "c": [-0.08, 2.0]})
    assert top_contributions(contrib, 2) == ["a (50%), b (50%)", "b (50%), c (50%)"]


def test_the_tabular_adapter_describes_rows_with_it():
    # table-specific wording lives in the adapter (the detector is modality-free)
    from genad.data.tabular import TabularAdapter

    df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    ad = TabularAdapter().fit(df)
    maps = pd.DataFrame({"a": [2.0, 1.0], "b": [-1.0, 3.0]})
    assert ad.describe(maps, 2) == top_contributions(maps, 2)
    assert ad.describe(maps.to_numpy(), 1) == ["a (100%)", "b (75%)"]
    assert not hasattr(genad.detector, "top_contributions")
