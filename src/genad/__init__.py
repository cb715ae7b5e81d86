"""genad: anomaly detection with generative models trained on normal data only.

>>> import genad
>>> det = genad.AutoEncoder()          # or VAE, DenoisingAutoEncoder, PCAConvAutoEncoder
>>> # det.fit(X_normal); det.anomaly_score(X); det.predict(X); det.save("m.genad")
"""

from genad.bundle import load
from genad.detector import Detector
from genad.errors import (
    GenadError,
    InvalidInputError,
    ModelFormatError,
    NotFittedError,
    TrainingDivergedError,
)
from genad.estimators import (
    MODELS,
    VAE,
    AutoEncoder,
    DenoisingAutoEncoder,
    PCAConvAutoEncoder,
)

__version__ = "0.1.0"

__all__ = [
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "VAE",
    "PCAConvAutoEncoder",
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
