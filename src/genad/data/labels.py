"""Validation of anomaly labels (1 = anomaly, 0 = normal), shared by fit, calibrate and metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from genad.errors import InvalidInputError

__all__ = ["check_labels"]


def check_labels(y: Any, n: int | None = None, what: str = "labels") -> np.ndarray:
    """Return ``y`` as an int8 array of 0/1, or raise naming the first bad row.

    Accepts numbers, booleans and numeric strings (``"0"``, ``"1"``, ``"1.0"``).

    Examples
    --------
    >>> check_labels([0, 1, True, "1"]).tolist()
    [0, 1, 1, 1]
    """
    raw = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    arr = raw.ravel()
    if n is not None and arr.shape[0] != n:
        raise InvalidInputError(f"{what} has {arr.shape[0]} values but X has {n} rows")
    if arr.size == 0:
        raise InvalidInputError(f"{what} are empty")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    series = pd.Series(arr)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = series.map(lambda v: {"true": 1, "false": 0}.get(str(v).strip().lower(), v))
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = arr[i].item() if isinstance(arr[i], np.generic) else arr[i]
        raise InvalidInputError(
            f"{what} must be 0 (normal) or 1 (anomaly); row {i} holds {value!r}"
        )
    return values.astype(np.int8)
