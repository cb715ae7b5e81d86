"""genad: anomaly detection with generative models trained on normal data only.

>>> import genad
>>> det = genad.AutoEncoder()          # or VAE, DenoisingAutoEncoder, PCAConvAutoEncoder
>>> # det.fit(X_normal); det.anomaly_score(X); det.predict(X); det.save("m.genad")

The detectors, :func:`load` and :class:`Detector` are imported on first use, so that
``import genad`` (and every CLI call that does not train or score, such as
``genad --version``) does not pay for importing torch; ``NotFittedError`` likewise
imports scikit-learn only when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from genad.errors import (
    GenadError,
    InvalidInputError,
    ModelFormatError,
    TrainingDivergedError,
)
from genad.registry import PRESETS as _PRESETS

if TYPE_CHECKING:
    from genad.detector import Detector
    from genad.errors import NotFittedError
    from genad.estimators import (
        DRAEM,
        MODELS,
        VAE,
        VAEGAN,
        AutoEncoder,
        ConvAutoEncoder,
        ConvVAE,
        DenoisingAutoEncoder,
        FAnoGAN,
        GANomaly,
        PCAConvAutoEncoder,
    )

    load = Detector.load

__version__ = "0.1.0"

#: Public name -> module that defines it, imported on first attribute access; the preset
#: classes come from :mod:`genad.registry` (the ``TYPE_CHECKING`` imports above spell them
#: out for type checkers, and a test checks they match)
_LAZY: dict[str, str] = {
    "load": "genad.detector",  # Detector.load (see _ATTRIBUTES)
    "Detector": "genad.detector",
    "MODELS": "genad.estimators",
    **{p.class_name: p.module for p in _PRESETS.values()},
    "NotFittedError": "genad.errors",  # subclasses scikit-learn's: imports it on first use
}
#: lazy names that are not a name of their module but an attribute path in it:
#: ``genad.load`` is :meth:`Detector.load`, which returns the class the file names
_ATTRIBUTES: dict[str, str] = {"load": "Detector.load"}

__all__ = [
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "VAE",
    "PCAConvAutoEncoder",
    "ConvAutoEncoder",
    "ConvVAE",
    "GANomaly",
    "FAnoGAN",
    "VAEGAN",
    "DRAEM",
    "Detector",
    "MODELS",
    "load",
    "GenadError",
    "InvalidInputError",
    "ModelFormatError",
    "NotFittedError",
    "TrainingDivergedError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genad' has no attribute {name!r}")
    value: Any = importlib.import_module(module)
    for part in _ATTRIBUTES.get(name, name).split("."):
        value = getattr(value, part)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
