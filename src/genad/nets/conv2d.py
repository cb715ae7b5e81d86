"""DCGAN-style 2-D convolutional networks over images ``(channels, height, width)``.

:class:`Conv2dFeatures` is a stack of strided 4x4 convolutions (stride 2, padding 1)
that halve the height and width until the smaller side reaches 4; :class:`Conv2dEncoder`
adds a linear layer to a latent vector; :class:`Conv2dDecoder` mirrors the encoder with
transposed convolutions. The depth is sized from the image: ``k = max(1,
ceil(log2(min(H, W) / 4)))`` halvings (3 for 32 px, 6 for 256 px). Sides that are not
multiples of ``2 ** k`` (MNIST's 28 px, a 100x60 photo) are zero-padded on the right and
bottom up to the next multiple before the first convolution, and the decoder's output is
cropped back to ``(H, W)``, as the conv1d networks pad and crop a series' length.

Channels double from ``width`` at each halving, up to ``8 * width``. The networks are
meant for 32 to 256 px images of any channel count; other sizes work too.

The ``conv2d_encoder``, ``conv2d_decoder`` and ``conv2d_discriminator`` functions are the
builders that :mod:`genad.nets.factory` registers as backbone ``"conv2d"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genad._params import positive_int
from genad.errors import InvalidInputError
from genad.nets.discriminator import Discriminator

__all__ = [
    "Conv2dFeatures",
    "Conv2dEncoder",
    "Conv2dDecoder",
    "conv2d_plan",
    "conv2d_encoder",
    "conv2d_decoder",
    "conv2d_discriminator",
]

_SLOPE = 0.2  # LeakyReLU negative slope of the encoder and discriminator (DCGAN)
_MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8 * width


def conv2d_plan(height: int, width: int, base_width: int = 32
                ) -> tuple[int, int, int, list[int]]:
    """How the conv2d networks size themselves for an ``height x width`` image.

    Parameters
    ----------
    height, width : int
        The image's sides.
    base_width : int, default 32
        Channels of the first convolution.

    Returns
    -------
    padded_height, padded_width : int
        The sides rounded up to a multiple of ``2 ** k``.
    k : int
        Number of stride-2 convolutions: ``max(1, ceil(log2(min(height, width) / 4)))``.
    channels : list of int
        Output channels of each convolution: ``base_width * 2 ** i``, at most
        ``8 * base_width``.

    Examples
    --------
    >>> conv2d_plan(32, 32, 8)
    (32, 32, 3, [8, 16, 32])
    >>> conv2d_plan(28, 28, 8)
    (32, 32, 3, [8, 16, 32])
    >>> conv2d_plan(100, 60, 8)
    (112, 64, 4, [8, 16, 32, 64])
    """
    height = positive_int("height", height)
    width = positive_int("width", width)
    base_width = positive_int("width", base_width)
    smaller = min(height, width)
    k = max(1, math.ceil(math.log2(smaller / 4))) if smaller > 4 else 1
    step = 2 ** k
    channels = [min(base_width * 2 ** i, _MAX_WIDTH_FACTOR * base_width) for i in range(k)]
    return -(-height // step) * step, -(-width // step) * step, k, channels


def _check_images(x: torch.Tensor, shape: tuple[int, int, int], what: str) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != shape:
        c, h, w = shape
        raise ValueError(f"{what} takes batches of shape (n, {c}, {h}, {w}), "
                         f"got {tuple(x.shape)}")


class Conv2dFeatures(nn.Module):
    """Strided convolutions, flattened: ``(n, C, H, W) -> (n, out_features)``.

    The input is zero-padded on the right and bottom to a multiple of ``2 ** k`` (see
    :func:`conv2d_plan`); ``k`` 4x4 convolutions of stride 2 and padding 1 halve its
    sides (``C -> width -> 2 width -> ...``, at most ``8 width`` channels), each followed
    by BatchNorm (not the first, and only with ``batch_norm``), LeakyReLU(0.2) and, with
    ``dropout``, dropout. The output is the last feature map flattened: the encoder's
    input to its linear layer and a conv2d discriminator's features.

    Parameters
    ----------
    channels, height, width : int
        The image's shape.
    base_width : int, default 32
        Channels of the first convolution.
    batch_norm : bool, default True
        BatchNorm after every convolution but the first.
    dropout : float, default 0.0
        Dropout after every convolution, in training only.

    Attributes
    ----------
    out_features : int
        Size of the flattened last feature map.
    map_shape : tuple of int
        ``(channels, height, width)`` of the last feature map.

    Examples
    --------
    >>> feats = Conv2dFeatures(1, 28, 28, base_width=8)
    >>> feats.map_shape, feats(torch.zeros(2, 1, 28, 28)).shape
    ((32, 4, 4), torch.Size([2, 512]))
    """

    def __init__(self, channels: int, height: int, width: int, base_width: int = 32, *,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.shape = (positive_int("channels", channels), positive_int("height", height),
                      positive_int("width", width))
        self.padded_height, self.padded_width, k, widths = conv2d_plan(height, width,
                                                                       base_width)
        layers: list[nn.Module] = []
        previous = self.shape[0]
        for i, out in enumerate(widths):
            norm = bool(batch_norm) and i > 0
            layers.append(nn.Conv2d(previous, out, 4, stride=2, padding=1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(_SLOPE))
            if dropout:
                layers.append(nn.Dropout(dropout))
            previous = out
        self.conv = nn.Sequential(*layers)
        step = 2 ** k
        self.map_shape = (previous, self.padded_height // step, self.padded_width // step)
        self.out_features = math.prod(self.map_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.shape, type(self).__name__)
        _, h, w = self.shape
        if (self.padded_height, self.padded_width) != (h, w):
            x = nn.functional.pad(x, (0, self.padded_width - w, 0, self.padded_height - h))
        return self.conv(x).flatten(1)


class Conv2dEncoder(nn.Module):
    """:class:`Conv2dFeatures` and a linear layer: ``(n, C, H, W) -> (n, latent_dim)``.

    The output has no activation: the caller decides what it means (e.g. a VAE's mean
    and log-variance halves).

    Parameters
    ----------
    channels, height, width : int
        The image's shape.
    base_width : int, default 32
        Channels of the first convolution.
    latent_dim : int, default 8
        Output size.
    batch_norm : bool, default True
        As in :class:`Conv2dFeatures`.
    dropout : float, default 0.0
        As in :class:`Conv2dFeatures`.

    Examples
    --------
    >>> enc = Conv2dEncoder(3, 100, 60, base_width=4, latent_dim=5)
    >>> enc(torch.zeros(2, 3, 100, 60)).shape
    torch.Size([2, 5])
    """

    def __init__(self, channels: int, height: int, width: int, base_width: int = 32,
                 latent_dim: int = 8, *, batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.features = Conv2dFeatures(channels, height, width, base_width,
                                       batch_norm=batch_norm, dropout=dropout)
        self.to_latent = nn.Linear(self.features.out_features, self.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.features(x))


class Conv2dDecoder(nn.Module):
    """A linear layer and transposed convolutions: ``(n, latent_dim) -> (n, C, H, W)``.

    The mirror of :class:`Conv2dEncoder`: ``from_latent`` (linear) gives the encoder's
    last feature map, then BatchNorm (with ``batch_norm``) and ReLU; 4x4 transposed
    convolutions of stride 2 and padding 1 double its sides back to the padded image
    size, BatchNorm and ReLU between them; the last one gives ``channels`` channels and
    no activation (the adapter standardises the data). The output is cropped to
    ``(height, width)``.

    Parameters
    ----------
    channels : int
        Output channels (twice the image's channels for a VAE's mean and log-variance).
    height, width : int
        The image's sides.
    base_width : int, default 32
        Channels of the encoder's first convolution (as in :class:`Conv2dEncoder`).
    latent_dim : int, default 8
        Input size.
    batch_norm : bool, default True
        BatchNorm before every ReLU.
    dropout : float, default 0.0
        Dropout after every ReLU, in training only.

    Examples
    --------
    >>> dec = Conv2dDecoder(2, 28, 28, base_width=4, latent_dim=5)
    >>> dec(torch.zeros(3, 5)).shape
    torch.Size([3, 2, 28, 28])
    """

    def __init__(self, channels: int, height: int, width: int, base_width: int = 32,
                 latent_dim: int = 8, *, batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.shape = (positive_int("channels", channels), positive_int("height", height),
                      positive_int("width", width))
        self.latent_dim = positive_int("latent_dim", latent_dim)
        padded_h, padded_w, k, widths = conv2d_plan(height, width, base_width)
        step = 2 ** k
        self.map_shape = (widths[-1], padded_h // step, padded_w // step)
        self.from_latent = nn.Linear(self.latent_dim, math.prod(self.map_shape))

        def activation(out: int) -> list[nn.Module]:
            block: list[nn.Module] = [nn.BatchNorm2d(out)] if batch_norm else []
            block.append(nn.ReLU())
            if dropout:
                block.append(nn.Dropout(dropout))
            return block

        self.start = nn.Sequential(*activation(widths[-1]))
        layers: list[nn.Module] = []
        reverse = widths[::-1]
        for i, previous in enumerate(reverse):
            last = i == len(reverse) - 1
            out = self.shape[0] if last else reverse[i + 1]
            layers.append(nn.ConvTranspose2d(previous, out, 4, stride=2, padding=1,
                                              bias=last or not batch_norm))
            if not last:
                layers.extend(activation(out))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Conv2dDecoder takes batches of shape (n, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        h = self.start(self.from_latent(z).view(z.shape[0], *self.map_shape))
        _, height, width = self.shape
        return self.deconv(h)[..., :height, :width]


# ------------------------------------------------------------ factory builders


def _no_hidden(hidden: list[int] | None) -> None:
    if hidden is not None:
        raise InvalidInputError("backbone 'conv2d' has no hidden sizes (its size is set by "
                                f"width and the image size), got hidden={hidden}")


def conv2d_encoder(shape: tuple[int, ...], out_features: int, *, hidden: list[int] | None,
                   dropout: float, width: int = 32, batch_norm: bool = True) -> nn.Module:
    """The ``"conv2d"`` backbone's encoder builder (see :func:`genad.nets.factory.encoder`).

    Examples
    --------
    >>> conv2d_encoder((1, 32, 32), 4, hidden=None, dropout=0.0, width=8).to_latent
    Linear(in_features=512, out_features=4, bias=True)
    """
    _no_hidden(hidden)
    c, h, w = shape
    return Conv2dEncoder(c, h, w, positive_int("width", width), out_features,
                         batch_norm=batch_norm, dropout=dropout)


def conv2d_decoder(shape: tuple[int, ...], in_features: int, *, out_multiplier: int,
                   hidden: list[int] | None, dropout: float, width: int = 32,
                   batch_norm: bool = True) -> nn.Module:
    """The ``"conv2d"`` backbone's decoder builder (see :func:`genad.nets.factory.decoder`).

    Examples
    --------
    >>> dec = conv2d_decoder((3, 32, 32), 4, out_multiplier=2, hidden=None, dropout=0.0,
    ...                      width=8)
    >>> dec(torch.zeros(2, 4)).shape
    torch.Size([2, 6, 32, 32])
    """
    _no_hidden(hidden)
    c, h, w = shape
    return Conv2dDecoder(out_multiplier * c, h, w, positive_int("width", width), in_features,
                         batch_norm=batch_norm, dropout=dropout)


def conv2d_discriminator(shape: tuple[int, ...], *, hidden: list[int] | None, dropout: float,
                         width: int = 32, batch_norm: bool = True) -> nn.Module:
    """The ``"conv2d"`` backbone's discriminator builder.

    A :class:`~genad.nets.discriminator.Discriminator` whose body is the encoder's
    convolution stack (:class:`Conv2dFeatures`: its features are the flattened last
    feature map, not pooled, so they keep where things are) and whose head is a linear
    layer to one logit.

    Examples
    --------
    >>> disc = conv2d_discriminator((1, 32, 32), hidden=None, dropout=0.0, width=8)
    >>> disc.features(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 512])
    """
    _no_hidden(hidden)
    c, h, w = shape
    body = Conv2dFeatures(c, h, w, positive_int("width", width), batch_norm=batch_norm,
                          dropout=dropout)
    return Discriminator(body, nn.Linear(body.out_features, 1))
