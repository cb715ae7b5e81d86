"""Backbones: plain ``torch.nn.Module`` builders with no data logic."""

from genad.nets.conv1d import Conv1dAutoEncoderNet
from genad.nets.mlp import default_mlp_sizes, mlp

__all__ = ["mlp", "default_mlp_sizes", "Conv1dAutoEncoderNet"]
