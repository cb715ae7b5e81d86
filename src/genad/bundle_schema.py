"""Schema helpers for the JSON document inside a ``.genad`` bundle, and the schema of its
detector-level fields.

A document has three owners. :mod:`genad.bundle` checks the *envelope*
(``genad_format``, ``versions``, the digests, the signature). :func:`validate_document`
here checks the detector's fields: the class name, the constructor parameters, the
fitted attributes, the training history and, from format 2, the adapter's kind and the
shape of one sample. The ``adapter`` field is the adapter's own state: the adapter class
checks it (:meth:`genad.data.TabularAdapter.check_state`), with the helpers below.

Every field is listed with its type, range or allowed values, and a key that is not
listed is refused, at every level. A failed check raises :class:`DocumentError` naming
the field, for example ``fitted.threshold_ must be a finite number, got nan``. What needs
the detector class (its parameters) or the tensors (their shapes and values) is checked
by :meth:`genad.Detector.load`, before any network is built. ``docs/bundle.md`` describes
the whole format.

This module imports nothing of genad but its errors, so that the bundle, the detector
and the adapters can all use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from genad.errors import ModelFormatError

__all__ = [
    "FORMAT_VERSION",
    "THRESHOLD_METHODS",
    "DocumentError",
    "validate_document",
    "integer",
    "number",
    "boolean",
    "string",
    "scalar",
    "category",
    "hexdigest",
    "enum",
    "nullable",
    "list_of",
    "obj",
    "json_object",
]

#: the newest document format this genad reads and the one it writes. 1: genad 0.1.0
#: (tables only); 2: adds ``adapter_kind`` and ``sample_shape``
FORMAT_VERSION = 2
#: how ``threshold_`` was set (see :meth:`genad.Detector.calibrate`)
THRESHOLD_METHODS = ("target_fpr", "contamination", "f1_optimal")
_MAX_SIZE = 2**31 - 1  # layer widths, counts: anything larger cannot be a real network

Check = Callable[[Any, str], None]


class DocumentError(ModelFormatError):
    """A field of the model document is missing, unknown, of the wrong type or out of range."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, what: str, value: Any) -> DocumentError:
    return DocumentError(f"{where} must be {what}, got {_short(value)}")


# ------------------------------------------------------------- field checks
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(low: int = 0, high: int = _MAX_SIZE) -> Check:
    """An int (not a bool) in ``[low, high]``."""

    def check(value: Any, where: str) -> None:
        if not (_is_int(value) and low <= value <= high):
            raise _fail(where, f"an integer in [{low}, {high}]", value)

    return check


def number(*, low: float | None = None, open_range: tuple[float, float] | None = None) -> Check:
    """A finite int or float, ``>= low``, or inside the open interval ``open_range``."""

    def check(value: Any, where: str) -> None:
        ok = _is_number(value) and math.isfinite(value)
        if ok and low is not None:
            ok = value >= low
        if ok and open_range is not None:
            ok = open_range[0] < value < open_range[1]
        if not ok:
            what = "a finite number"
            if low is not None:
                what += f" >= {low:g}"
            if open_range is not None:
                what += f" in ({open_range[0]:g}, {open_range[1]:g})"
            raise _fail(where, what, value)

    return check


def boolean(value: Any, where: str) -> None:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)


def string(value: Any, where: str) -> None:
    """A JSON string."""
    if not isinstance(value, str):
        raise _fail(where, "a string", value)


def scalar(value: Any, where: str) -> None:
    """A JSON string, number or boolean (not null, a list or an object)."""
    if not isinstance(value, (str, int, float)):  # bool is an int
        raise _fail(where, "a string, number or boolean", value)


def category(value: Any, where: str) -> None:
    """A category: a JSON string, number or boolean, or null (the missing category)."""
    if value is not None and not isinstance(value, (str, int, float)):
        raise _fail(where, "a string, number, boolean or null", value)


def hexdigest(value: Any, where: str) -> None:
    """64 lower-case hexadecimal digits (a SHA-256 digest)."""
    if not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
        raise _fail(where, "64 hexadecimal digits", value)


def enum(*choices: str) -> Check:
    """One of ``choices``."""

    def check(value: Any, where: str) -> None:
        if not (isinstance(value, str) and value in choices):
            raise _fail(where, "one of " + ", ".join(repr(c) for c in choices), value)

    return check


def nullable(inner: Check) -> Check:
    """``null`` or a value that passes ``inner``."""

    def check(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)

    return check


def list_of(item: Check, *, min_len: int = 0, unique: bool = False) -> Check:
    """A list of at least ``min_len`` items that each pass ``item``."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) < min_len:
            what = "a list" + (f" of at least {min_len} item(s)" if min_len else "")
            raise _fail(where, what, value)
        for i, v in enumerate(value):
            item(v, f"{where}[{i}]")
        if unique:
            seen: set[Any] = set()
            for v in value:
                marker = (type(v), v)
                if marker in seen:
                    raise DocumentError(f"{where} lists {_short(v)} twice")
                seen.add(marker)

    return check


def obj(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """A JSON object with exactly the ``required`` keys and any of the ``optional`` ones."""
    optional = dict(optional or {})

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        for k in value:
            if k not in required and k not in optional:
                raise DocumentError(f"{_join(where, k)} is not a known field of {where}")
        for k, inner in required.items():
            if k not in value:
                raise DocumentError(f"{_join(where, k)} is missing")
            inner(value[k], _join(where, k))
        for k, inner in optional.items():
            if k in value:
                inner(value[k], _join(where, k))

    return check


def json_object(value: Any, where: str) -> None:
    """A JSON object, its fields left to another check (an adapter's state)."""
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)


def _join(where: str, key: str) -> str:
    return key if where == "the document" else f"{where}.{key}"


def _param_value(value: Any, where: str) -> None:
    """A constructor argument: null, a scalar, or a list of scalars."""
    if value is None:
        return
    if isinstance(value, list):
        list_of(scalar)(value, where)
    else:
        scalar(value, where)


def _params(value: Any, where: str) -> None:
    """The detector's parameters; their names and values are checked by the detector.

    ``adapter`` is null or ``{"kind": ..., "params": {...}}`` (an adapter's parameters).
    """
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    for k, v in value.items():
        if k == "adapter" and v is not None:
            obj({"kind": string, "params": _params})(v, f"{where}.{k}")
        else:
            _param_value(v, f"{where}.{k}")


def _parts(value: Any, where: str) -> None:
    """Loss parts of the training history: name -> one mean (or null) per epoch."""
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    for k, v in value.items():
        list_of(nullable(number()))(v, f"{where}.{k}")


# ------------------------------------------------------------------ schema
_FINITE = number()
_SIZE = integer(1)

_FITTED = obj(
    {
        "hidden_sizes_": list_of(_SIZE),
        "latent_dim_": _SIZE,
        "n_epochs_": _SIZE,
        "threshold_": _FINITE,
        "threshold_method_": enum(*THRESHOLD_METHODS),
        "threshold_setting_": nullable(number(open_range=(0.0, 1.0))),
    },
    {"n_features_in_": _SIZE,  # set when the adapter counts input features (tables do)
     # the weight-averaging span of the fit (null: off); absent from bundles made before
     "weight_averaging_": nullable(number(open_range=(0.0, math.inf)))},
)

_HISTORY = obj(
    {
        "train_loss": list_of(_FINITE, min_len=1),
        "val_loss": list_of(_FINITE, min_len=1),
        "epoch_seconds": list_of(number(low=0.0), min_len=1),
        "best_epoch": integer(0),
        "stopped_early": boolean,
        "device": string,
    },
    {
        "hit_epoch_cap": boolean,
        "parts": _parts,
        "phases": list_of(obj({"name": string, "epochs": integer(0), "best_epoch": integer(0),
                               "stopped_early": boolean}), min_len=1),
        # the epochs each member ran, for a detector with n_members > 1
        "member_epochs": list_of(_SIZE, min_len=2),
    },
)

#: the detector's fields of a format-1 document (genad 0.1.0: tables only)
_BODY_1 = {
    "detector": string,
    "params": _params,
    "fitted": _FITTED,
    "feature_names_in": nullable(list_of(string)),
    "adapter": json_object,
    "history": _HISTORY,
}
#: format 2 names the adapter's kind and the shape of one sample (one network input)
_BODY = {
    1: obj(_BODY_1),
    2: obj({**_BODY_1, "adapter_kind": string, "sample_shape": list_of(_SIZE, min_len=1)}),
}


# -------------------------------------------------------------- the checks
def validate_document(body: Any, version: int = FORMAT_VERSION) -> None:
    """Check the detector's fields of a parsed model document, and their consistency.

    Parameters
    ----------
    body : object
        The parsed JSON document without its envelope (``genad_format``, ``versions``,
        the digests and the signature, which :mod:`genad.bundle` checks).
    version : int, default FORMAT_VERSION
        The document's ``genad_format``.

    Raises
    ------
    DocumentError
        Naming the first field that is missing, unknown, of the wrong type, out of range,
        or inconsistent with another field.

    Examples
    --------
    >>> validate_document([])
    Traceback (most recent call last):
    ...
    genad.bundle_schema.DocumentError: the document must be an object, got []
    """
    schema = _BODY.get(version)
    if schema is None:
        raise DocumentError(f"genad_format {version} is not a format this genad reads")
    schema(body, "the document")
    _check_history(body["history"], body["fitted"])
    _check_threshold(body["fitted"])


def _check_history(history: dict[str, Any], fitted: dict[str, Any]) -> None:
    n = fitted["n_epochs_"]
    for key in ("train_loss", "val_loss", "epoch_seconds"):
        if len(history[key]) != n:
            raise DocumentError(
                f"history.{key} has {len(history[key])} entries but fitted.n_epochs_ is {n}"
            )
    if history["best_epoch"] >= n:
        raise DocumentError(
            f"history.best_epoch is {history['best_epoch']} but only {n} epoch(s) ran"
        )


def _check_threshold(fitted: dict[str, Any]) -> None:
    method, setting = fitted["threshold_method_"], fitted["threshold_setting_"]
    if method == "f1_optimal" and setting is not None:
        raise _fail("fitted.threshold_setting_", "null for an F1-optimal threshold", setting)
    if method != "f1_optimal" and setting is None:
        raise DocumentError(f"fitted.threshold_setting_ is missing for a {method} threshold")
