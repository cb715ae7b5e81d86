"""Validation of constructor parameters, shared by every detector (raises InvalidInputError)."""

from __future__ import annotations

from typing import Any

import numpy as np

from genad.errors import InvalidInputError

__all__ = ["check_int", "check_number", "plain"]


def plain(value: Any) -> str:
    """``repr`` for a message, with numpy scalars and arrays shown as plain Python values.

    Examples
    --------
    >>> plain(np.float64(2.69)), plain(np.int64(3)), plain("x"), plain([np.int64(1)])
    ('2.69', '3', "'x'", '[1]')
    """
    return repr(_python(value))


def _python(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_python(v) for v in value)
    return value


def check_int(name: str, value: Any, *, low: int, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an integer ``>= low`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}, got {plain(value)}")


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless ``value`` is a finite real number in the given interval."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and bool(np.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{lo}, {hi}{right}"
        raise InvalidInputError(f"{name} must be a number in {interval}, got {plain(value)}")
