"""One-file model bundles: safetensors tensors + a JSON document in its metadata.

Layout of ``NAME.genad`` (a plain safetensors file):

- tensors ``model.*`` (network weights and buffers), ``adapter.*`` (scaling
  statistics), ``calibration.scores`` (held-out normal scores);
- metadata key ``"genad"``: a JSON document with ``genad_format``, the detector class
  and parameters, the adapter schema, the threshold, the training history, library
  versions, ``tensor_sha256`` (SHA-256 of every tensor's name, dtype, shape and bytes,
  in name order) and ``document_sha256`` (of the rest of the document).

No pickle anywhere: loading parses JSON and raw tensors only and never runs code from
the file. A truncated, tampered or newer-format file raises
:class:`~genad.errors.ModelFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genad.errors import ModelFormatError

if TYPE_CHECKING:
    from genad.detector import Detector

__all__ = ["FORMAT_VERSION", "save_detector", "load", "read_document"]

FORMAT_VERSION = 1
_FITTED = ("hidden_sizes_", "latent_dim_", "n_features_in_", "n_epochs_", "threshold_",
           "threshold_method_", "threshold_setting_")


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


def save_detector(detector: Detector, path: str | Path) -> Path:
    """Write a fitted detector to ``path`` (``.genad`` is appended when missing)."""
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
        "params": _jsonable(detector.get_params()),
        "fitted": {k: _jsonable(getattr(detector, k)) for k in _FITTED},
        "feature_names_in": _jsonable(getattr(detector, "feature_names_in_", None)),
        "adapter": _jsonable(adapter_doc),
        "history": _jsonable(detector.history_),
        "versions": {"genad": genad.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "tensor_sha256": _tensor_digest(tensors),
    }
    doc["document_sha256"] = _document_digest(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"genad": json.dumps(doc)})
    tmp.replace(path)
    return path


def read_document(path: str | Path) -> dict[str, Any]:
    """The JSON document of a bundle (no tensors loaded); checks format and digest."""
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
    try:
        doc = json.loads(meta["genad"])
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: the model document is corrupt ({exc})") from exc
    version = doc.get("genad_format")
    if not isinstance(version, int):
        raise ModelFormatError(f"{path}: no genad_format version in the model document")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} uses model format {version}, newer than this genad reads "
            f"({FORMAT_VERSION}); upgrade genad"
        )
    if doc.get("document_sha256") != _document_digest(doc):
        raise ModelFormatError(f"{path}: the model document was modified (checksum mismatch)")
    return doc


def load(path: str | Path) -> Detector:
    """Load a detector saved with :meth:`Detector.save`, on the CPU.

    Raises
    ------
    ModelFormatError
        The file is missing, unreadable, truncated, tampered with, or from a newer format.

    Examples
    --------
    >>> import numpy as np, genad, tempfile, os
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
    >>> path = det.save(os.path.join(tempfile.mkdtemp(), "model.genad"))
    >>> bool(np.array_equal(genad.load(path).anomaly_score(X), det.anomaly_score(X)))
    True
    """
    import genad.estimators  # noqa: F401  (defining the detectors registers them)
    from genad.data.tabular import TabularAdapter
    from genad.detector import Detector

    path = Path(path)
    doc = read_document(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise ModelFormatError(f"{path}: tensors unreadable or truncated ({exc})") from exc
    if _tensor_digest(tensors) != doc.get("tensor_sha256"):
        raise ModelFormatError(f"{path}: the model weights were modified (checksum mismatch)")
    cls = Detector._registry.get(doc.get("detector", ""))
    if cls is None:
        raise ModelFormatError(f"{path}: unknown detector class {doc.get('detector')!r}")
    try:
        det = cls(**doc["params"])
        for k, v in doc["fitted"].items():
            setattr(det, k, v)
        if doc.get("feature_names_in") is not None:
            det.feature_names_in_ = np.asarray(doc["feature_names_in"], dtype=object)
        det.adapter_ = TabularAdapter.from_state(
            doc["adapter"],
            {k[len("adapter."):]: tensors[k].numpy() for k in tensors if k.startswith("adapter.")},
        )
        det.history_ = doc["history"]
        det.calibration_scores_ = tensors["calibration.scores"].numpy().astype(np.float64)
        model = det._build_model(det.adapter_.n_features_out_)
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=True)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{path}: the model cannot be rebuilt ({exc})") from exc
    model.eval()
    det.model_ = model
    return det
