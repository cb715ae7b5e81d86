"""Exceptions and warnings raised by genad.

Every error a user can cause derives from :class:`GenadError`, so a caller (and the
CLI) can catch one class and print a one-line message.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "GenadError",
    "InvalidInputError",
    "ModelFormatError",
    "TrainingDivergedError",
    "NotFittedError",
    "GenadWarning",
    "CalibrationWarning",
]


class GenadError(Exception):
    """Base class of every error genad raises on purpose."""


class InvalidInputError(GenadError, ValueError):
    """The input cannot be used; the message names the column, file or row."""


class ModelFormatError(GenadError):
    """A model bundle is unreadable, truncated, tampered with, or from a newer format."""


class TrainingDivergedError(GenadError, RuntimeError):
    """Training produced a NaN/inf loss, diverged, or collapsed; the message gives advice."""


class NotFittedError(GenadError, _SklearnNotFittedError):
    """A method that needs a fitted detector was called before ``fit``."""


class GenadWarning(UserWarning):
    """Something was done on the user's behalf that they should know about."""


class CalibrationWarning(GenadWarning):
    """The threshold could not be set exactly as asked (too few or no labelled samples)."""
