"""Models: objectives over networks (how they train, how they score). No I/O."""

from genad.models.autoencoder import AutoEncoderModel
from genad.models.base import GenerativeModel, Phase
from genad.models.draem import DRAEMModel
from genad.models.fanogan import FAnoGANModel
from genad.models.gan import AdversarialModel
from genad.models.ganomaly import GANomalyModel
from genad.models.pca import PCAConvAutoEncoderModel
from genad.models.vae import VAEModel
from genad.models.vaegan import VAEGANModel

__all__ = ["GenerativeModel", "Phase", "AutoEncoderModel", "VAEModel",
           "PCAConvAutoEncoderModel", "AdversarialModel", "GANomalyModel", "FAnoGANModel",
           "VAEGANModel", "DRAEMModel"]
