"""Share of each column in a row's anomaly score, shared by ``explain`` and the report.

A detector's :meth:`~genad.detector.Detector.anomaly_map` gives each input column's
contribution to each row's score. An autoencoder's contributions are squared errors
(never negative), but a VAE's are measured against a typical normal row and can be
negative. A share of the score is therefore taken over the *positive* contributions
only: a column that makes the row look more normal gets 0 %, and the shares of a row
never add up to more than 100 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from genad._params import check_int
from genad.errors import InvalidInputError

__all__ = ["contribution_shares", "top_columns", "top_contributions"]


def _as_matrix(values: Any) -> np.ndarray:
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame) else values,
                     dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(
            f"contributions must be a 2-D table (rows x columns), got {arr.ndim} dimension(s)"
        )
    return arr


def contribution_shares(values: Any) -> np.ndarray:
    """Each column's share of its row's positive contributions.

    Parameters
    ----------
    values : DataFrame or array-like of shape (n_rows, n_columns)
        Per-column contributions, as returned by ``anomaly_map``.

    Returns
    -------
    ndarray of shape (n_rows, n_columns)
        Shares in [0, 1]: negative contributions count as 0, and each row with a positive
        contribution sums to 1 (a row with none is all zeros).

    Examples
    --------
    >>> contribution_shares([[3.0, 1.0], [2.0, -0.5], [-1.0, 0.0]]).tolist()
    [[0.75, 0.25], [1.0, 0.0], [0.0, 0.0]]
    """
    positive = np.clip(_as_matrix(values), 0.0, None)
    totals = positive.sum(axis=1, keepdims=True)
    return np.divide(positive, totals, out=np.zeros_like(positive), where=totals > 0)


def top_columns(values: Any, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Positions and shares of each row's ``k`` largest contributions.

    Parameters
    ----------
    values : DataFrame or array-like of shape (n_rows, n_columns)
        Per-column contributions.
    k : int, default 3
        Columns kept per row (all of them when there are fewer).

    Returns
    -------
    positions : ndarray of int, shape (n_rows, min(k, n_columns))
        Column positions, largest contribution first (ties in column order).
    shares : ndarray of float, same shape
        Their :func:`contribution_shares`.

    Examples
    --------
    >>> pos, share = top_columns([[1.0, 3.0, -2.0]], k=2)
    >>> pos.tolist(), share.tolist()
    ([[1, 0]], [[0.75, 0.25]])
    """
    check_int("k", k, low=0)
    arr = _as_matrix(values)
    if k <= 8 and k < arr.shape[1]:
        # k passes of argmax (first maximum = column order on ties) beat a full sort
        left = arr.copy()
        rows = np.arange(len(arr))
        positions = np.empty((len(arr), k), dtype=np.int64)
        for i in range(k):
            positions[:, i] = np.argmax(left, axis=1)
            left[rows, positions[:, i]] = -np.inf
    else:
        positions = np.argsort(-arr, axis=1, kind="stable")[:, :k]
    shares = np.take_along_axis(contribution_shares(arr), positions, axis=1)
    return positions, shares


def top_contributions(contrib: pd.DataFrame, k: int = 3) -> list[str]:
    """Format each row's ``k`` largest contributions as ``"column (share%)"``.

    Parameters
    ----------
    contrib : DataFrame
        Per-column contributions (columns named), as returned by ``anomaly_map``.
    k : int, default 3
        Columns listed per row.

    Returns
    -------
    list of str
        One string per row, e.g. ``"amount (80%), hour (15%), country (5%)"``.

    Examples
    --------
    >>> top_contributions(pd.DataFrame({"a": [2.0, 1.0], "b": [-1.0, 3.0]}), k=2)
    ['a (100%), b (0%)', 'b (75%), a (25%)']
    """
    positions, shares = top_columns(contrib, k)
    if positions.shape[1] == 0:
        return [""] * len(positions)
    # every "name (p%)" label is built once; rows only pick and join them
    percent = np.rint(100.0 * shares).astype(np.int64)  # as f"{100 * s:.0f}" rounds
    labels = np.array([[f"{name} ({p}%)" for p in range(101)] for name in contrib.columns],
                      dtype=object)
    picked = labels[positions, percent]
    text = picked[:, 0]
    for i in range(1, picked.shape[1]):
        text = text + ", " + picked[:, i]
    return text.tolist()
