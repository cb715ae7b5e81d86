"""Backbones: plain ``torch.nn.Module`` builders with no data logic.

:mod:`genad.nets.factory` builds encoders, decoders and discriminators from a backbone
name and the sample shape.
"""

from genad.nets.conv1d import (
    Conv1dAutoEncoderNet,
    Conv1dDecoder,
    Conv1dEncoder,
    Conv1dFeatures,
)
from genad.nets.conv2d import Conv2dDecoder, Conv2dEncoder, Conv2dFeatures
from genad.nets.discriminator import Discriminator
from genad.nets.mlp import default_mlp_sizes, mlp

__all__ = [
    "mlp",
    "default_mlp_sizes",
    "Conv1dAutoEncoderNet",
    "Conv1dEncoder",
    "Conv1dDecoder",
    "Conv1dFeatures",
    "Conv2dEncoder",
    "Conv2dDecoder",
    "Conv2dFeatures",
    "Discriminator",
]
