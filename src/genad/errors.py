"""Exceptions and warnings raised by genad.

Every error a user can cause derives from :class:`GenadError`, so a caller (and the
CLI) can catch one class and print a one-line message.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real class is built by the module __getattr__ below
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "GenadError",
    "InvalidInputError",
    "ModelFormatError",
    "TrainingDivergedError",
    "NotFittedError",
    "OutputError",
    "GenadWarning",
    "CalibrationWarning",
    "warnings_once",
]


class GenadError(Exception):
    """Base class of every error genad raises on purpose."""


class InvalidInputError(GenadError, ValueError):
    """The input cannot be used; the message names the column, file or row."""


class ModelFormatError(GenadError):
    """A model bundle is unreadable, truncated, tampered with, or from a newer format."""


class TrainingDivergedError(GenadError, RuntimeError):
    """Training produced a NaN/inf loss, diverged, or collapsed; the message gives advice."""


class OutputError(GenadError, OSError):
    """An output file (a model, a score table, a report) could not be written.

    The message names the path; ``filename`` holds it too, as for any ``OSError``.
    """

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.filename = None if path is None else str(path)

    def __str__(self) -> str:
        return str(self.args[0])


class GenadWarning(UserWarning):
    """Something was done on the user's behalf that they should know about."""


class CalibrationWarning(GenadWarning):
    """The threshold could not be set exactly as asked (too few or no labelled samples)."""


if TYPE_CHECKING:

    class NotFittedError(GenadError, _SklearnNotFittedError):
        """A method that needs a fitted detector was called before ``fit``."""


@contextmanager
def warnings_once() -> Iterator[None]:
    """Show each warning raised inside the block once, at the end of the block.

    Warnings that differ only in their numbers (the per-slice counts of a table scored in
    slices) count as the same warning; the first one is shown.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            caught = record
            yield
    finally:  # also when the block raises: the warnings came before the error
        seen: set[tuple[type, str]] = set()
        for w in caught:
            key = (w.category, re.sub(r"\d+", "#", str(w.message)))
            if key not in seen:
                seen.add(key)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


_LAZY_LOCK = threading.Lock()


def _make_not_fitted_error() -> type:
    # scikit-learn costs about a second to import; ``import genad`` and the CLI's start-up
    # must not pay for it, so this subclass of its NotFittedError is built on first use.
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

    class NotFittedError(GenadError, _SklearnNotFittedError):
        """A method that needs a fitted detector was called before ``fit``.

        Also a :class:`sklearn.exceptions.NotFittedError` (so a ``ValueError`` and an
        ``AttributeError``).
        """

    NotFittedError.__module__ = __name__
    NotFittedError.__qualname__ = "NotFittedError"  # pickles as genad.errors.NotFittedError
    return NotFittedError


def __getattr__(name: str) -> Any:
    if name != "NotFittedError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _LAZY_LOCK:  # one class object, even when threads ask at the same time
        cls = globals().get("NotFittedError")
        if cls is None:
            cls = _make_not_fitted_error()
            globals()["NotFittedError"] = cls
    return cls
