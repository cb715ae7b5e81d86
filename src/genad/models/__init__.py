"""Models: objectives over networks (how they train, how they score). No I/O."""

from genad.models.autoencoder import AutoEncoderModel
from genad.models.base import GenerativeModel
from genad.models.pca import PCAConvAutoEncoderModel
from genad.models.vae import VAEModel

__all__ = ["GenerativeModel", "AutoEncoderModel", "VAEModel", "PCAConvAutoEncoderModel"]
