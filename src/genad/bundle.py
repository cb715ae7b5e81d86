"""One-file model bundles: safetensors tensors + a JSON document in its metadata.

Layout of ``NAME.genad`` (a plain safetensors file):

- tensors ``model.*`` (network weights and buffers), ``adapter.center`` and
  ``adapter.scale`` (scaling statistics), ``calibration.scores`` (held-out normal scores);
- metadata key ``"genad"``: a JSON document with ``genad_format``, the detector class
  and parameters, the fitted attributes, the adapter schema, the training history,
  library versions, ``tensor_sha256`` (SHA-256 of every tensor's name, dtype, shape and
  bytes, in name order), an optional ``signature`` and ``document_sha256`` (of the rest
  of the document).

No pickle anywhere: loading parses JSON and raw tensors only and never runs code from
the file. Nothing is trusted either. The document is checked against a schema
(:mod:`genad.bundle_schema`: types, ranges, allowed keys and values), the detector is
rebuilt from the parameters its class accepts and only those, each fitted attribute is
set by name after its check, and the tensors' names, shapes and dtypes are compared
with the network the document describes *before* any tensor is read or any network
built, so a small file cannot make the loader allocate gigabytes.

The two digests are stored in the file they describe: they detect corruption (a
truncated download, a flipped bit), **not tampering**, since whoever edits the file can
recompute them. For authenticity, save with a ``key``: the document then carries an
HMAC-SHA256 signature over the document and, through ``tensor_sha256``, the tensors;
``load(path, key=...)`` refuses an unsigned file or one whose signature does not match.
A load without a key still reads a signed file (the digests are checked, the signature
is not). See ``docs/bundle.md``.

A truncated, corrupt, edited-into-nonsense, wrongly signed or newer-format file raises
:class:`~genad.errors.ModelFormatError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from genad._io import atomic_path
from genad.bundle_schema import (
    FORMAT_VERSION,
    MISSING_POLICIES,
    SCALINGS,
    DocumentError,
    encoded_width,
    numeric_columns,
    validate_document,
)
from genad.errors import InvalidInputError, ModelFormatError, OutputError

if TYPE_CHECKING:
    from genad.detector import Detector

__all__ = ["FORMAT_VERSION", "save_detector", "load", "read_document"]

_FITTED = ("hidden_sizes_", "latent_dim_", "n_features_in_", "n_epochs_", "threshold_",
           "threshold_method_", "threshold_setting_")
_SIGNED_PREFIX = b"genad-bundle-hmac-sha256\n"
#: safetensors' dtype names
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
           torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
_EDITED = "the file is damaged or was edited; save or train the model again"
#: a tensor's expected dtype name and shape (None: any 1-D shape with at least one entry)
Spec = tuple[str, tuple[int, ...] | None]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _params_document(detector: Detector) -> dict[str, Any]:
    """The constructor parameters as JSON: an adapter as its kind and parameters."""
    params = detector.get_params(deep=False)
    adapter = params.get("adapter")
    if adapter is not None:
        params["adapter"] = {"kind": adapter.kind, "params": adapter.get_params(deep=False)}
    return _jsonable(params)


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _document_digest(doc: dict[str, Any]) -> str:
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


def _signature(doc: dict[str, Any], key: str | bytes) -> str:
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


# ------------------------------------------------------------------- save
def save_detector(detector: Detector, path: str | Path, *, key: str | bytes | None = None) -> Path:
    """Write a fitted detector to ``path`` (``.genad`` is appended when missing).

    Parameters
    ----------
    detector : Detector
        A fitted detector.
    path : str or Path
        Target file; its folder is created when missing. The file is written to a
        temporary file beside it, then renamed, so a failed save leaves no partial file.
    key : str or bytes, optional
        Sign the bundle with HMAC-SHA256 under this key (see :func:`load`).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        The file cannot be written (an unwritable folder, a full or read-only disk); the
        message names the path.
    """
    import genad

    path = Path(path)
    if path.suffix != ".genad":
        path = path.with_name(path.name + ".genad")
    adapter_doc, adapter_arrays = detector.adapter_.get_state()
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in detector.model_.state_dict().items()
    }
    for k, v in adapter_arrays.items():
        tensors[f"adapter.{k}"] = torch.from_numpy(np.ascontiguousarray(v))
    tensors["calibration.scores"] = torch.from_numpy(
        np.ascontiguousarray(detector.calibration_scores_, dtype=np.float64)
    )
    doc: dict[str, Any] = {
        "genad_format": FORMAT_VERSION,
        "detector": type(detector).__name__,
        "params": _params_document(detector),
        "fitted": {k: _jsonable(getattr(detector, k)) for k in _FITTED},
        "feature_names_in": _jsonable(getattr(detector, "feature_names_in_", None)),
        "adapter": _jsonable(adapter_doc),
        "history": _jsonable(detector.history_),
        "versions": {"genad": genad.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "tensor_sha256": _tensor_digest(tensors),
    }
    if key is not None:
        doc["signature"] = {"alg": "hmac-sha256", "value": _signature(doc, key)}
    doc["document_sha256"] = _document_digest(doc)
    text = json.dumps(doc)
    try:  # what save writes, load must read: a schema out of date with the code is a bug
        validate_document(json.loads(text))
    except DocumentError as exc:
        raise ModelFormatError(f"cannot save {path}: {exc}; this is a bug in genad") from exc
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"genad": text})
        except SafetensorError as exc:
            raise OutputError(f"cannot write {path}: {exc}", path) from exc
    return path


# ------------------------------------------------------------------- read
def read_document(path: str | Path, *, key: str | bytes | None = None) -> dict[str, Any]:
    """The validated JSON document of a bundle (no tensor is read).

    Parameters
    ----------
    path : str or Path
        A ``.genad`` file.
    key : str or bytes, optional
        When given, the document must carry a signature made with this key.

    Returns
    -------
    dict
        The document, checked against :mod:`genad.bundle_schema` and its digest.

    Raises
    ------
    ModelFormatError
        The file is missing, unreadable, not a genad model, from a newer format, modified
        (digest), invalid (schema), or, with a key, unsigned or signed with another key.
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
            f"(a positive integer), got {version!r}; {_EDITED}"
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
        validate_document(doc)
    except DocumentError as exc:
        raise ModelFormatError(f"{path}: invalid model document: {exc}; {_EDITED}") from exc
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


# ------------------------------------------------------------------- load
def load(path: str | Path, *, key: str | bytes | None = None) -> Detector:
    """Load a detector saved with :meth:`Detector.save`, on the CPU.

    Parameters
    ----------
    path : str or Path
        A ``.genad`` file.
    key : str or bytes, optional
        Accept only a bundle signed with this key (``detector.save(path, key=...)``).
        Without a key a signed bundle loads too; its signature is then not checked.

    Returns
    -------
    Detector
        The fitted detector, ready to score.

    Raises
    ------
    ModelFormatError
        The file is missing, unreadable, truncated, modified, invalid, from a newer
        format, or, with a key, unsigned or signed with another key.

    Examples
    --------
    >>> import numpy as np, genad, tempfile, os
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
    >>> path = det.save(os.path.join(tempfile.mkdtemp(), "model.genad"), key="secret")
    >>> bool(np.array_equal(genad.load(path, key="secret").anomaly_score(X),
    ...                     det.anomaly_score(X)))
    True
    """
    import genad.estimators  # noqa: F401  (defining the detectors registers them)

    path = Path(path)
    doc = read_document(path, key=key)
    try:
        return _rebuild(path, doc)
    except DocumentError as exc:
        raise ModelFormatError(f"{path}: invalid model: {exc}; {_EDITED}") from exc


def _rebuild(path: Path, doc: dict[str, Any]) -> Detector:
    """The detector a validated document describes, with the file's tensors."""
    from genad.data.tabular import TabularAdapter

    header = _header(path)
    det = _detector(doc)
    n_features = encoded_width(doc["adapter"])
    _check_header(header, _expected_tensors(det, doc, n_features, header))
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise ModelFormatError(f"{path}: tensors unreadable or truncated ({exc})") from exc
    if _tensor_digest(tensors) != doc["tensor_sha256"]:
        raise ModelFormatError(f"{path}: the model weights were modified (checksum mismatch)")
    arrays = {name: tensors[f"adapter.{name}"].numpy() for name in ("center", "scale")}
    _check_values("adapter.center", arrays["center"])
    _check_values("adapter.scale", arrays["scale"], positive=True)
    scores = tensors["calibration.scores"].numpy()
    _check_values("calibration.scores", scores)
    try:
        adapter = TabularAdapter.from_state(doc["adapter"], arrays)
        model = det._build_model((n_features,))
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=True)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ModelFormatError(f"{path}: the model cannot be rebuilt ({exc})") from exc
    if adapter.n_features_out_ != n_features:  # encoded_width out of step with the adapter
        raise ModelFormatError(f"{path}: the adapter encodes {adapter.n_features_out_} "
                               f"features, not {n_features}; this is a bug in genad")
    det.adapter_ = adapter
    det.sample_shape_ = (n_features,)
    det.calibration_scores_ = scores.astype(np.float64)
    model.eval()
    det.model_ = model
    return det


def _detector(doc: dict[str, Any]) -> Detector:
    """An unfitted detector of the document's class and parameters, with its fitted
    attributes set one by one (the network and adapter come later)."""
    from genad.detector import Detector

    cls = Detector._registry.get(doc["detector"])
    if cls is None:
        raise DocumentError(f"unknown detector class {doc['detector']!r}")
    params = dict(doc["params"])
    allowed = cls._get_param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise DocumentError(f"params.{unknown[0]} is not a parameter of {cls.__name__}")
    _check_adapter_params(params)
    if params.get("adapter") is not None:
        params["adapter"] = _adapter_param(params["adapter"])
    device = params.pop("device", "auto")
    if device != "auto":
        try:
            torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise DocumentError(f"params.device {device!r} is not a torch device") from None
    det = cls(**params, device="cpu")  # a model trained on a GPU loads on any machine
    try:
        det._check_params()
    except InvalidInputError as exc:
        raise DocumentError(f"params: {exc}") from None
    det.device = device

    fitted = doc["fitted"]
    det.hidden_sizes_ = [int(h) for h in fitted["hidden_sizes_"]]
    det.latent_dim_ = int(fitted["latent_dim_"])
    det.n_features_in_ = int(fitted["n_features_in_"])
    det.n_epochs_ = int(fitted["n_epochs_"])
    setting = fitted["threshold_setting_"]
    det._set_threshold(float(fitted["threshold_"]), fitted["threshold_method_"],
                       None if setting is None else float(setting))
    if doc["feature_names_in"] is not None:
        det.feature_names_in_ = np.asarray(doc["feature_names_in"], dtype=object)
    det.history_ = {k: list(v) if isinstance(v, list) else v for k, v in doc["history"].items()}
    return det


def _adapter_param(value: Any) -> Any:
    """The unfitted adapter a document's ``params.adapter`` describes."""
    from genad.data.base import ADAPTERS, _load_adapters

    _load_adapters()
    if not (isinstance(value, dict) and set(value) == {"kind", "params"}
            and isinstance(value["params"], dict)):
        raise DocumentError("params.adapter must be an object with a kind and params")
    cls = ADAPTERS.get(value["kind"])
    if cls is None:
        raise DocumentError(f"params.adapter.kind {value['kind']!r} is not a known adapter")
    inner = dict(value["params"])
    unknown = sorted(set(inner) - set(cls._get_param_names()))
    if unknown:
        raise DocumentError(f"params.adapter.params.{unknown[0]} is not a parameter of "
                            f"{cls.__name__}")
    _check_adapter_params(inner, "params.adapter.params")
    return cls(**inner)


def _check_adapter_params(params: dict[str, Any], where: str = "params") -> None:
    """The detector parameters that only the adapter checks (in ``fit``)."""
    checks = {"missing": MISSING_POLICIES, "scaling": SCALINGS}
    for name, choices in checks.items():
        if name in params and params[name] is not None and params[name] not in choices:
            raise DocumentError(f"{where}.{name} must be one of "
                                f"{', '.join(map(repr, choices))}, got {params[name]!r}")
    columns = params.get("categorical_columns")
    if columns is not None and not (isinstance(columns, list)
                                    and all(isinstance(c, str) for c in columns)):
        raise DocumentError(f"{where}.categorical_columns must be a list of column names")


# --------------------------------------------------------- tensor headers
def _header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's dtype and shape, from the safetensors header (no data read)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape()))
                    for k in f.keys()}
    except Exception as exc:
        raise ModelFormatError(f"{path}: tensors unreadable or truncated ({exc})") from exc


def _expected_tensors(det: Detector, doc: dict[str, Any], n_features: int,
                      header: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, Spec]:
    """Names, dtypes and shapes of the tensors the document describes.

    The network is built on the ``meta`` device: it has shapes but no storage, so a
    document describing a huge network costs nothing.
    """
    n_stored = sum(k.startswith("model.") for k in header)
    if len(det.hidden_sizes_) > n_stored:  # each layer has at least one tensor
        raise DocumentError(
            f"fitted.hidden_sizes_ describes {len(det.hidden_sizes_)} layers but the file "
            f"holds {n_stored} network tensors"
        )
    try:
        with torch.device("meta"):
            model = det._build_model((n_features,))
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"the network it describes cannot be built ({exc})") from None
    expected: dict[str, Spec] = {
        f"model.{k}": (_DTYPES.get(v.dtype, str(v.dtype)), tuple(v.shape))
        for k, v in model.state_dict().items()
    }
    n_numeric = numeric_columns(doc["adapter"])
    expected["adapter.center"] = ("F64", (n_numeric,))
    expected["adapter.scale"] = ("F64", (n_numeric,))
    expected["calibration.scores"] = ("F64", None)
    return expected


def _check_header(header: dict[str, tuple[str, tuple[int, ...]]],
                  expected: dict[str, Spec]) -> None:
    for name in sorted(set(header) | set(expected)):
        if name not in expected:
            raise DocumentError(f"the file holds a tensor {name!r} the document does not describe")
        if name not in header:
            raise DocumentError(f"the tensor {name!r} is missing from the file")
        (dtype, shape), (want_dtype, want_shape) = header[name], expected[name]
        if want_shape is None:
            ok = len(shape) == 1 and shape[0] >= 1
            want = "a 1-D shape with at least one entry"
        else:
            ok = shape == want_shape
            want = f"shape {list(want_shape)}"
        if not ok:
            raise DocumentError(f"tensor {name!r} has shape {list(shape)} in the file, but the "
                                f"document describes {want}")
        if dtype != want_dtype:
            raise DocumentError(f"tensor {name!r} is {dtype} in the file, not {want_dtype}")


def _check_values(name: str, values: np.ndarray, *, positive: bool = False) -> None:
    bad = ~np.isfinite(values)
    if positive:
        bad |= ~(values > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "finite and positive" if positive else "finite"
        raise DocumentError(f"tensor {name!r} must be {what}, but entry {i} is {values[i]!r}")
