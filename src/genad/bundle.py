"""The ``.genad`` file format: tensors in a safetensors file, one JSON document in its
metadata, and the envelope that makes the pair checkable.

This module knows the format and nothing of what a bundle describes: it imports no
detector, adapter, model or preset. Its caller (:meth:`genad.Detector.save` and
:meth:`genad.Detector.load`) builds the document's *body* and the tensors, and says what
it expects to find; this module adds and checks the *envelope*:

- ``genad_format``: the document format, refused when newer than :data:`FORMAT_VERSION`;
- ``versions``: the libraries that wrote the file (the caller gives its own, e.g.
  genad's; torch, numpy and python are added here);
- ``tensor_sha256``: SHA-256 of every tensor's name, dtype, shape and bytes, in name order;
- ``signature`` (optional): HMAC-SHA256 under a secret ``key`` of the document without
  the signature and the document digest, so through ``tensor_sha256`` it covers the
  tensors too;
- ``document_sha256``: SHA-256 of the rest of the document.

Four operations: :func:`write` (atomic: a temporary file renamed over the target),
:func:`read_document` (the document, with its envelope checked and the caller's
``check`` of the body applied, before any tensor is read), :func:`read_header` (each
tensor's dtype and shape, no data read) and :func:`read` (the tensors, after their names,
dtypes and shapes in the header matched what the caller expects, so that a small file
cannot make the caller allocate a large network; then the tensor digest).

No pickle anywhere: reading parses JSON and raw little-endian numbers and never runs code
from the file. The digests detect corruption (a truncated download, a flipped bit), **not
tampering**: whoever edits the file can recompute them. For authenticity, write with a
``key`` and read with the same key: an unsigned file, or one signed with another key or
changed after signing, is refused. A read without a key still reads a signed file (the
digests are checked, the signature is not). See ``docs/bundle.md``.

Every failure to read raises :class:`~genad.errors.ModelFormatError` naming the file;
a failure to write raises :class:`~genad.errors.OutputError` naming the path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from genad._io import atomic_path
from genad.bundle_schema import (
    FORMAT_VERSION,
    DocumentError,
    enum,
    hexdigest,
    integer,
    obj,
    string,
)
from genad.errors import InvalidInputError, ModelFormatError, OutputError

__all__ = [
    "FORMAT_VERSION",
    "ENVELOPE",
    "EDITED",
    "TensorSpec",
    "write",
    "read_document",
    "read_header",
    "read",
    "invalid",
]

#: the document fields this module writes and checks; the caller owns every other field
ENVELOPE = ("genad_format", "versions", "tensor_sha256", "signature", "document_sha256")
#: the advice that ends a message about a file whose content is wrong
EDITED = "the file is damaged or was edited; save or train the model again"
#: a tensor the caller expects: its dtype (a torch or numpy dtype, or a safetensors name
#: such as ``"F64"``) and its shape, where ``None`` stands for any size >= 1
TensorSpec = tuple[Any, tuple[int | None, ...]]
#: the signature covers this prefix and the canonical JSON of the signed fields
_SIGNED_PREFIX = b"genad-bundle-hmac-sha256\n"
#: safetensors' dtype names
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
           torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}

_CHECK_ENVELOPE = obj(
    {
        "genad_format": integer(1, FORMAT_VERSION),
        "versions": obj({"genad": string, "torch": string, "numpy": string,
                         "python": string}),
        "tensor_sha256": hexdigest,
        "document_sha256": hexdigest,
    },
    {"signature": obj({"alg": enum("hmac-sha256"), "value": hexdigest})},
)

#: ``check(body, genad_format)``: validates the caller's part of a document, raising
#: :class:`~genad.bundle_schema.DocumentError` naming the field
BodyCheck = Callable[[dict[str, Any], int], None]


def invalid(path: str | Path, problem: object) -> ModelFormatError:
    """The error for a bundle whose content is wrong: names the file, the problem and
    what to do.

    Examples
    --------
    >>> str(invalid("m.genad", "fitted.threshold_ must be a finite number, got nan"))
    'm.genad: invalid model: fitted.threshold_ must be a finite number, got nan; the file is damaged or was edited; save or train the model again'
    """  # noqa: E501
    return ModelFormatError(f"{path}: invalid model: {problem}; {EDITED}")


# ------------------------------------------------------------------ digests
def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _document_digest(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "document_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- signing
def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)):
        raise InvalidInputError(f"key must be a str or bytes, got {type(key).__name__}")
    if not key:
        raise InvalidInputError("key must not be empty")
    return bytes(key)


def _signature(doc: Mapping[str, Any], key: str | bytes) -> str:
    """HMAC-SHA256 over the document without its signature and document digest.

    The document holds ``tensor_sha256``, so the signature covers the tensors too.
    """
    body = {k: v for k, v in doc.items() if k not in ("signature", "document_sha256")}
    message = _SIGNED_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key_bytes(key), message, hashlib.sha256).hexdigest()


def _check_signature(path: Path, doc: dict[str, Any], key: str | bytes) -> None:
    expected = _signature(doc, key)
    signature = doc.get("signature")
    if signature is None:
        raise ModelFormatError(
            f"{path} is not signed, and a key was given: only models saved with that key are "
            "accepted (save the model with the key, or load it without one)"
        )
    if not hmac.compare_digest(expected, signature["value"]):
        raise ModelFormatError(
            f"{path}: the signature does not match the key (the model was signed with another "
            "key, or modified after signing)"
        )


def _check(doc: dict[str, Any], check: BodyCheck | None) -> None:
    """The envelope's fields, then the caller's check of the body (envelope removed)."""
    _CHECK_ENVELOPE({k: v for k, v in doc.items() if k in ENVELOPE}, "the document")
    if check is not None:
        check({k: v for k, v in doc.items() if k not in ENVELOPE}, doc["genad_format"])


# ------------------------------------------------------------------ write
def write(path: str | Path, document: Mapping[str, Any],
          tensors: Mapping[str, torch.Tensor | np.ndarray], *,
          versions: Mapping[str, str] | None = None, key: str | bytes | None = None,
          check: BodyCheck | None = None) -> Path:
    """Write a bundle: ``tensors`` and ``document`` with its envelope added.

    Parameters
    ----------
    path : str or Path
        Target file; ``.genad`` is appended when missing and its folder is created. The
        file is written beside it under a temporary name, then renamed, so a reader never
        sees a half-written file and a failed write leaves the previous file untouched.
    document : mapping
        The body: JSON-compatible values (numpy scalars and arrays are converted); none
        of the :data:`ENVELOPE` fields.
    tensors : mapping of str to Tensor or ndarray
        Stored as they are (moved to the CPU, made contiguous).
    versions : mapping of str to str, optional
        The caller's versions (genad's); torch, numpy and python are added.
    key : str or bytes, optional
        Sign the document (HMAC-SHA256) with this key.
    check : callable, optional
        ``check(body, genad_format)``, the check :func:`read_document` will apply: run
        on the document as it will be read back, so a file that its reader would refuse
        is never written.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        The file cannot be written (an unwritable folder, a full or read-only disk).
    InvalidInputError
        ``key`` is empty or not text.
    ModelFormatError
        The document fails ``check`` or holds envelope fields (a bug in the caller).

    Examples
    --------
    >>> import tempfile, os, torch
    >>> path = write(os.path.join(tempfile.mkdtemp(), "x"), {"note": "hi"},
    ...              {"w": torch.ones(2)}, versions={"genad": "0"})
    >>> read_document(path)["note"], read(path, read_document(path), {"w": ("F32", (2,))})
    ('hi', {'w': tensor([1., 1.])})
    """
    path = Path(path)
    if path.suffix != ".genad":
        path = path.with_name(path.name + ".genad")
    clash = sorted(set(document) & set(ENVELOPE))
    if clash:
        raise ModelFormatError(f"cannot save {path}: the document sets {clash[0]!r}, a field "
                               "of the envelope; this is a bug in genad")
    stored = {
        name: (t.detach().cpu().contiguous() if isinstance(t, torch.Tensor)
               else torch.from_numpy(np.ascontiguousarray(t)))
        for name, t in tensors.items()
    }
    doc: dict[str, Any] = {"genad_format": FORMAT_VERSION, **_jsonable(document)}
    doc["versions"] = {"genad": "unknown", **dict(versions or {}), "torch": torch.__version__,
                       "numpy": np.__version__, "python": platform.python_version()}
    doc["tensor_sha256"] = _tensor_digest(stored)
    if key is not None:
        doc["signature"] = {"alg": "hmac-sha256", "value": _signature(doc, key)}
    doc["document_sha256"] = _document_digest(doc)
    text = json.dumps(doc)
    try:  # what is written must read back: a check out of step with the writer is a bug
        _check(json.loads(text), check)
    except DocumentError as exc:
        raise ModelFormatError(f"cannot save {path}: {exc}; this is a bug in genad") from exc
    with atomic_path(path) as tmp:
        try:
            save_file(stored, str(tmp), metadata={"genad": text})
        except SafetensorError as exc:
            raise OutputError(f"cannot write {path}: {exc}", path) from exc
    return path


# ------------------------------------------------------------------- read
def read_document(path: str | Path, *, key: str | bytes | None = None,
                  check: BodyCheck | None = None) -> dict[str, Any]:
    """A bundle's JSON document, checked; no tensor is read.

    In order: the file is a safetensors file with a ``"genad"`` document, which parses
    as a JSON object; ``genad_format`` is a format this genad reads; ``document_sha256``
    matches; the envelope's fields are well formed; ``check`` accepts the body; with a
    key, the signature matches.

    Parameters
    ----------
    path : str or Path
        A ``.genad`` file.
    key : str or bytes, optional
        When given, the document must carry a signature made with this key.
    check : callable, optional
        ``check(body, genad_format)`` validates the rest of the document (the fields
        that are not in :data:`ENVELOPE`), raising
        :class:`~genad.bundle_schema.DocumentError`. Without it the body is returned
        unchecked: :meth:`genad.Detector.load` passes the detector's check.

    Returns
    -------
    dict
        The whole document, envelope included.

    Raises
    ------
    ModelFormatError
        The file is missing, unreadable, not a genad model, from a newer format, modified
        (digest), invalid, or, with a key, unsigned or signed with another key.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFormatError(f"{path} is a folder, not a .genad model file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise ModelFormatError(
            f"{path} is not a genad model (unreadable or truncated safetensors file: {exc})"
        ) from exc
    if "genad" not in meta:
        raise ModelFormatError(f"{path} is a safetensors file but not a genad model")
    doc = _parse(path, meta["genad"])
    version = doc.get("genad_format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(
            f"{path}: the model document has no valid genad_format version "
            f"(a positive integer), got {version!r}; {EDITED}"
        )
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} uses model format {version}, newer than this genad reads "
            f"({FORMAT_VERSION}); upgrade genad"
        )
    try:
        digest = _document_digest(doc)
    except RecursionError:  # parsed just below the parser's depth limit
        raise ModelFormatError(f"{path}: the model document is corrupt (nested too deeply)"
                               ) from None
    if doc.get("document_sha256") != digest:
        raise ModelFormatError(f"{path}: the model document was modified (checksum mismatch)")
    try:
        _check(doc, check)
    except DocumentError as exc:
        raise ModelFormatError(f"{path}: invalid model document: {exc}; {EDITED}") from exc
    if key is not None:
        _check_signature(path, doc, key)
    return doc


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ModelFormatError(f"{path}: the model document is corrupt ({reason})") from None
    if not isinstance(doc, dict):
        raise ModelFormatError(
            f"{path}: the model document is corrupt (a JSON {type(doc).__name__}, not an "
            "object)"
        )
    return doc


def read_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's safetensors dtype name and shape, from the header; no data is read.

    Raises
    ------
    ModelFormatError
        The header is unreadable or truncated.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape()))
                    for k in f.keys()}
    except Exception as exc:
        raise ModelFormatError(f"{path}: tensors unreadable or truncated ({exc})") from exc


def read(path: str | Path, document: Mapping[str, Any],
         expected: Mapping[str, TensorSpec | None]) -> dict[str, torch.Tensor]:
    """The tensors of a bundle, on the CPU, once the header matches ``expected``.

    Parameters
    ----------
    path : str or Path
        A ``.genad`` file.
    document : mapping
        Its document, from :func:`read_document` (for ``tensor_sha256``).
    expected : mapping of str to (dtype, shape) or None
        Every tensor the file must hold, and no other: its dtype and shape (``None`` in
        a shape: any size >= 1), or ``None`` for any dtype and shape. Compared with the
        header before any tensor is read.

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    ModelFormatError
        A tensor is missing, extra, of another dtype or shape, unreadable, or the tensors
        do not match ``tensor_sha256``.
    """
    path = Path(path)
    problem = _header_problem(read_header(path), expected)
    if problem is not None:
        raise invalid(path, problem)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise ModelFormatError(f"{path}: tensors unreadable or truncated ({exc})") from exc
    if _tensor_digest(tensors) != document.get("tensor_sha256"):
        raise ModelFormatError(f"{path}: the model weights were modified (checksum mismatch)")
    return tensors


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    if not isinstance(dtype, torch.dtype):
        dtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
    return _DTYPES.get(dtype, str(dtype))


def _describe(shape: tuple[int | None, ...]) -> str:
    if shape and all(d is None for d in shape):
        return f"a {len(shape)}-D shape with at least one entry"
    return "shape [" + ", ".join("n" if d is None else str(d) for d in shape) + "]"


def _header_problem(header: Mapping[str, tuple[str, tuple[int, ...]]],
                    expected: Mapping[str, TensorSpec | None]) -> str | None:
    for name in sorted(set(header) | set(expected)):
        if name not in expected:
            return f"the file holds a tensor {name!r} the document does not describe"
        if name not in header:
            return f"the tensor {name!r} is missing from the file"
        spec = expected[name]
        if spec is None:
            continue
        (dtype, shape), want_shape = header[name], tuple(spec[1])
        ok = len(shape) == len(want_shape) and all(
            s >= 1 if w is None else s == w for s, w in zip(shape, want_shape, strict=True))
        if not ok:
            return (f"tensor {name!r} has shape {list(shape)} in the file, but the document "
                    f"describes {_describe(want_shape)}")
        if dtype != _dtype_name(spec[0]):
            return f"tensor {name!r} is {dtype} in the file, not {_dtype_name(spec[0])}"
    return None
