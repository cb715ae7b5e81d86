"""Validation of constructor parameters, declared once per class (raises InvalidInputError).

Like scikit-learn's ``_parameter_constraints``, every estimator (detector, adapter)
declares a ``parameter_constraints`` mapping, parameter name -> constraint, merged with
its parent's; :func:`validate_params` checks them all before anything is fitted, and a
test checks that every constructor parameter has one. Cross-parameter rules (such as a
shortcut given twice) stay in the class's ``_check_params``.

Examples
--------
>>> validate_params({"epochs": 10, "rate": 0.5}, {"epochs": Integer(1), "rate": RATE})
>>> validate_params({"epochs": 0}, {"epochs": Integer(1)})
Traceback (most recent call last):
...
genad.errors.InvalidInputError: epochs must be an integer >= 1, got 0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from genad.errors import InvalidInputError

__all__ = ["check_int", "check_number", "positive_int", "plain", "validate_params",
           "Constraint", "Integer", "Real", "RATE", "OPTIONAL_RATE", "OneOf", "IntegerList",
           "StringList", "InstanceOf", "Device", "Flag", "CountOrFraction", "Text"]


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


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, or :class:`InvalidInputError` (also a ``ValueError``) unless it
    is an integer >= 1 (not a bool).

    Examples
    --------
    >>> positive_int("width", 8)
    8
    """
    import operator

    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return number


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


class Constraint:
    """One parameter's rule: :meth:`check` raises :class:`InvalidInputError` naming it."""

    def check(self, name: str, value: Any) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer ``>= low`` (and ``<= high``), or None when ``allow_none``."""

    low: int
    high: int | None = None
    allow_none: bool = False

    def check(self, name: str, value: Any) -> None:
        check_int(name, value, low=self.low, allow_none=self.allow_none)
        if value is not None and self.high is not None and value > self.high:
            raise InvalidInputError(f"{name} must be an integer <= {self.high}, got {plain(value)}")


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number in an interval (open or closed at each end), or None."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_none: bool = False

    def check(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        check_number(name, value, low=self.low, high=self.high, low_open=self.low_open,
                     high_open=self.high_open)


#: a rate in the open interval (0, 1): a false-positive rate, a contamination, a fraction
RATE = Real(0.0, 1.0, low_open=True, high_open=True)
OPTIONAL_RATE = Real(0.0, 1.0, low_open=True, high_open=True, allow_none=True)


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a few values, or None when ``allow_none``."""

    values: tuple[Any, ...]
    allow_none: bool = False

    def check(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        plain_value = value.item() if isinstance(value, np.generic) else value
        if isinstance(plain_value, (str, int, float, bool)) and plain_value in self.values:
            return
        choices = [repr(v) for v in self.values]
        listed = choices[0] if len(choices) == 1 else (
            ", ".join(choices[:-1]) + " or " + choices[-1])
        raise InvalidInputError(f"{name} must be {listed}, got {plain(value)}")


@dataclass(frozen=True)
class IntegerList(Constraint):
    """A list of integers ``>= low``, or None when ``allow_none``."""

    low: int
    allow_none: bool = False

    def check(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        if isinstance(value, (str, bytes, int, np.integer)) or not hasattr(value, "__iter__"):
            raise InvalidInputError(f"{name} must be a list of integers, got {plain(value)}")
        for v in value:
            check_int(f"{name} entries", v, low=self.low)


@dataclass(frozen=True)
class StringList(Constraint):
    """A list of strings (column names), or None when ``allow_none``."""

    allow_none: bool = True

    def check(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) for v in value):
            raise InvalidInputError(f"{name} must be a list of column names, got {plain(value)}")


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of ``kind`` (imported lazily from ``"module:Class"``), or None."""

    kind: str
    example: str
    allow_none: bool = True

    def check(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        import importlib

        module, cls = self.kind.split(":")
        if not isinstance(value, getattr(importlib.import_module(module), cls)):
            raise InvalidInputError(f"{name} must be {self.example}, got {type(value).__name__}")


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string (a name checked against a registry elsewhere)."""

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must be a name (a non-empty string), got "
                                    f"{plain(value)}")


@dataclass(frozen=True)
class CountOrFraction(Constraint):
    """An integer ``>= 1`` (a count) or a float in (0, 1) (a fraction)."""

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, (float, np.floating)) and 0.0 < value < 1.0:
            return
        check_int(name, value, low=1)


@dataclass(frozen=True)
class Device(Constraint):
    """``"auto"``, ``"cpu"``, ``"cuda"`` or another torch device (checked with torch)."""

    def check(self, name: str, value: Any) -> None:
        from genad.runtime import resolve_device

        try:
            resolve_device(value)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc


@dataclass(frozen=True)
class AutoOr(Constraint):
    """``"auto"``, or a value that ``inner`` accepts."""

    inner: Constraint

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, str) and value == "auto":
            return
        try:
            self.inner.check(name, value)
        except InvalidInputError as exc:
            raise InvalidInputError(str(exc).replace(", got ", " or 'auto', got ", 1)) from None


@dataclass(frozen=True)
class Flag(Constraint):
    """A bool, or an integer ``>= 0`` (a verbosity level)."""

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            check_int(name, value, low=0)


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, Constraint]) -> None:
    """Check each of ``params`` against its constraint (in the constraints' order).

    Raises
    ------
    InvalidInputError
        Naming the first parameter that breaks its rule.
    """
    for name, constraint in constraints.items():
        if name in params:
            constraint.check(name, params[name])
