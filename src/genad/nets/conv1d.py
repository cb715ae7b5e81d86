"""1-D convolutional networks over vectors (one channel) or multichannel series.

:class:`Conv1dEncoder` maps a sample to a latent vector, :class:`Conv1dDecoder` maps a
latent vector back to a sample, and :class:`Conv1dAutoEncoderNet` is the two composed
with the layer names of genad 0.1.0 bundles. :class:`Conv1dFeatures` is the encoder's
convolution stack alone (a discriminator's body).

A sample is a ``(length,)`` vector, treated as one channel, or a ``(channels, length)``
series; a batch is ``(n, length)`` or ``(n, channels, length)``.
"""

from __future__ import annotations

import torch
from torch import nn

from genad._params import positive_int

__all__ = ["Conv1dEncoder", "Conv1dDecoder", "Conv1dAutoEncoderNet", "Conv1dFeatures"]

#: Largest dense equivalent (in elements) of one convolution used at inference.
DENSE_MAX_ELEMENTS = 1 << 20

_SLOPE = 0.1  # LeakyReLU negative slope of every conv1d network

Dense = list[tuple[torch.Tensor, torch.Tensor]]


def _padded(length: int) -> int:
    """``length`` rounded up to a multiple of 4 (two stride-2 convolutions)."""
    return ((length + 3) // 4) * 4


def _conv_stack(channels: int, width: int) -> nn.Sequential:
    """Two stride-2 convolutions that halve the length twice: ``channels -> width -> 2 width``."""
    return nn.Sequential(
        nn.Conv1d(channels, width, 5, stride=2, padding=2),
        nn.LeakyReLU(_SLOPE),
        nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
        nn.LeakyReLU(_SLOPE),
    )


def _as_series(x: torch.Tensor, channels: int, length: int, what: str) -> torch.Tensor:
    """``(n, length)`` as ``(n, 1, length)``; ``(n, channels, length)`` as is; else an error."""
    if x.dim() == 2 and channels == 1 and x.shape[1] == length:
        return x.unsqueeze(1)
    if x.dim() == 3 and tuple(x.shape[1:]) == (channels, length):
        return x
    expected = (f"(n, {length}) or (n, 1, {length})" if channels == 1
                else f"(n, {channels}, {length})")
    raise ValueError(f"{what} takes batches of shape {expected}, got {tuple(x.shape)}")


def _weights_key(module: nn.Module) -> tuple[float, ...]:
    """The parameters' storage addresses and sums: what shows that the weights changed.

    Fused optimizers update parameters in place without bumping their version counter,
    so the sums are what shows an update.
    """
    params = list(module.parameters())
    sums = torch.stack([p.detach().sum().to(torch.float64) for p in params]).tolist()
    return (*(p.data_ptr() for p in params), *sums)


def _too_large(shapes: list[tuple[int, int]]) -> bool:
    """Whether a layer mapping ``shapes[i]`` to ``shapes[i + 1]`` would exceed the dense cap."""
    return any(a[0] * a[1] * b[0] * b[1] > DENSE_MAX_ELEMENTS
               for a, b in zip(shapes, shapes[1:], strict=False))


def _dense_conv(layer: nn.Conv1d | nn.ConvTranspose1d, channels: int, length: int,
                real: int, crop: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(matrix, bias)`` of ``layer`` on flattened ``(channels, length)`` input.

    Only the first ``real`` input positions are rows (the others are zero padding and
    would contribute nothing); with ``crop`` only the first ``crop`` output positions
    are columns.
    """
    eye = torch.eye(channels * real, dtype=layer.weight.dtype, device=layer.weight.device)
    basis = nn.functional.pad(eye.view(-1, channels, real), (0, length - real))
    fn = (nn.functional.conv1d if isinstance(layer, nn.Conv1d)
          else nn.functional.conv_transpose1d)
    out = fn(basis, layer.weight, None, layer.stride, layer.padding)
    if crop is not None:
        out = out[..., :crop]
    bias = layer.bias.repeat_interleave(out.shape[-1])
    return out.flatten(1).contiguous(), bias


def _dense_chain(h: torch.Tensor, dense: Dense, *, last_linear: bool) -> torch.Tensor:
    """``h`` through the dense layers, LeakyReLU after each (but the last if ``last_linear``)."""
    for i, (matrix, bias) in enumerate(dense):
        h = torch.addmm(bias, h, matrix)
        if not (last_linear and i == len(dense) - 1):
            h = nn.functional.leaky_relu(h, _SLOPE, inplace=True)
    return h


class _DenseCache:
    """Mixin: the dense matrices of a module's convolutions, rebuilt when the weights change.

    In evaluation mode without gradients (scoring), each convolution runs as the dense
    matrix it equals for the fixed input length. For short vectors (a table's rows) one
    matrix product is several times faster on CPU than a small-channel convolution; the
    result is the same up to float rounding. Layers whose matrix would exceed
    ``DENSE_MAX_ELEMENTS`` (long series) keep the convolution.
    """

    _dense: tuple[tuple[float, ...], Dense] | None

    def _convolutions(self) -> nn.Module:
        raise NotImplementedError

    def _dense_shapes(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _build_dense(self) -> Dense:
        raise NotImplementedError

    def _dense_layers(self) -> Dense | None:
        """``(matrix, bias)`` of each convolution on flattened input, or None if too large."""
        key = _weights_key(self._convolutions())
        if self._dense is not None and self._dense[0] == key:
            return self._dense[1]
        if _too_large(self._dense_shapes()):
            return None
        with torch.no_grad():
            dense = self._build_dense()
        self._dense = (key, dense)
        return dense

    def _use_dense(self) -> Dense | None:
        training: bool = self.training  # type: ignore[attr-defined]
        if not training and not torch.is_grad_enabled():
            return self._dense_layers()
        return None


class Conv1dEncoder(_DenseCache, nn.Module):
    """Two strided convolutions and a linear layer: ``(n, [channels,] length) -> (n, latent_dim)``.

    The input is zero-padded to a multiple of 4; the convolutions halve its length twice
    (``channels -> width -> 2 * width`` channels, LeakyReLU(0.1) after each); ``to_latent``
    maps the flattened result to ``latent_dim`` values (no activation: the caller decides
    what they mean, e.g. a VAE's mean and log-variance halves).

    Scoring (evaluation mode without gradients) runs each convolution as the dense
    matrix it equals for this length (see :class:`Conv1dAutoEncoderNet`).

    Parameters
    ----------
    length : int
        Input length (number of features for a vector).
    channels : int, default 1
        Input channels; with 1, ``(n, length)`` batches are accepted too.
    width : int, default 32
        Channels of the first convolution (the second has twice as many).
    latent_dim : int, default 8
        Output size.

    Examples
    --------
    >>> enc = Conv1dEncoder(30, width=4, latent_dim=5)
    >>> enc(torch.zeros(2, 30)).shape
    torch.Size([2, 5])
    >>> Conv1dEncoder(17, channels=3, width=4, latent_dim=2)(torch.zeros(2, 3, 17)).shape
    torch.Size([2, 2])
    """

    def __init__(self, length: int, channels: int = 1, width: int = 32,
                 latent_dim: int = 8) -> None:
        super().__init__()
        self.length = positive_int("length", length)
        self.channels = positive_int("channels", channels)
        self.width = positive_int("width", width)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.padded = _padded(self.length)
        self.conv = _conv_stack(self.channels, self.width)
        self.to_latent = nn.Linear(2 * self.width * (self.padded // 4), self.latent_dim)
        self._dense = None

    def _convolutions(self) -> nn.Module:
        return self.conv

    def _dense_shapes(self) -> list[tuple[int, int]]:
        c, w, n = self.channels, self.width, self.padded
        return [(c, n), (w, n // 2), (2 * w, n // 4)]

    def _build_dense(self) -> Dense:
        # the first matrix takes the unpadded input: padding is zeros
        w, n = self.width, self.padded
        return [_dense_conv(self.conv[0], self.channels, n, self.length, None),
                _dense_conv(self.conv[2], w, n // 2, n // 2, None)]

    def _forward_conv(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, length)`` or ``(n, channels, length)`` through the convolutions."""
        h = x.unsqueeze(1) if x.dim() == 2 else x
        if self.padded != self.length:
            h = nn.functional.pad(h, (0, self.padded - self.length))
        return self.to_latent(self.conv(h).flatten(1))

    def _forward_dense(self, x: torch.Tensor, dense: Dense) -> torch.Tensor:
        h = x.reshape(x.shape[0], self.channels * self.length)
        return self.to_latent(_dense_chain(h, dense, last_linear=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _as_series(x, self.channels, self.length, "Conv1dEncoder")
        dense = self._use_dense()
        if dense is not None:
            return self._forward_dense(x, dense)
        return self._forward_conv(x)


class Conv1dDecoder(_DenseCache, nn.Module):
    """A linear layer and two transposed convolutions: ``(n, latent_dim) -> (n, channels, length)``.

    The mirror of :class:`Conv1dEncoder`: ``from_latent`` (linear, LeakyReLU(0.1)) gives
    ``2 * width`` channels of a quarter of the padded length; transposed convolutions
    double the length twice (``2 * width -> width -> channels``); the output is cropped
    to ``length`` and has no activation.

    Parameters
    ----------
    length : int
        Output length.
    channels : int, default 1
        Output channels (twice the sample's channels for a VAE's mean and log-variance).
    width : int, default 32
        Channels of the encoder's first convolution (as in :class:`Conv1dEncoder`).
    latent_dim : int, default 8
        Input size.
    flatten : bool, default False
        Return ``(n, channels * length)`` rows (channel after channel) instead of
        ``(n, channels, length)`` series: the shape of a vector sample's batch.

    Examples
    --------
    >>> dec = Conv1dDecoder(30, width=4, latent_dim=5, flatten=True)
    >>> dec(torch.zeros(2, 5)).shape
    torch.Size([2, 30])
    >>> Conv1dDecoder(17, channels=6, width=4, latent_dim=2)(torch.zeros(2, 2)).shape
    torch.Size([2, 6, 17])
    """

    def __init__(self, length: int, channels: int = 1, width: int = 32, latent_dim: int = 8,
                 *, flatten: bool = False) -> None:
        super().__init__()
        self.length = positive_int("length", length)
        self.channels = positive_int("channels", channels)
        self.width = positive_int("width", width)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.flatten = bool(flatten)
        self.padded = _padded(self.length)
        flat = 2 * self.width * (self.padded // 4)
        self.from_latent = nn.Sequential(nn.Linear(self.latent_dim, flat), nn.LeakyReLU(_SLOPE))
        self.deconv = nn.Sequential(
            nn.ConvTranspose1d(2 * self.width, self.width, 4, stride=2, padding=1),
            nn.LeakyReLU(_SLOPE),
            nn.ConvTranspose1d(self.width, self.channels, 4, stride=2, padding=1),
        )
        self._dense = None

    def _convolutions(self) -> nn.Module:
        return self.deconv

    def _dense_shapes(self) -> list[tuple[int, int]]:
        c, w, n = self.channels, self.width, self.padded
        return [(2 * w, n // 4), (w, n // 2), (c, n)]

    def _build_dense(self) -> Dense:
        # the last matrix returns only the real positions
        w, n = self.width, self.padded
        return [_dense_conv(self.deconv[0], 2 * w, n // 4, n // 4, None),
                _dense_conv(self.deconv[2], w, n // 2, n // 2, self.length)]

    def _forward_conv(self, z: torch.Tensor) -> torch.Tensor:
        """``(n, latent_dim)`` to ``(n, channels, length)`` through the convolutions."""
        h = self.from_latent(z).view(z.shape[0], 2 * self.width, self.padded // 4)
        return self.deconv(h)[..., : self.length]

    def _forward_dense(self, z: torch.Tensor, dense: Dense) -> torch.Tensor:
        """``(n, latent_dim)`` to ``(n, channels * length)`` through the dense matrices."""
        return _dense_chain(self.from_latent(z), dense, last_linear=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Conv1dDecoder takes batches of shape (n, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        dense = self._use_dense()
        if dense is not None:
            h = self._forward_dense(z, dense)
            return h if self.flatten else h.view(z.shape[0], self.channels, self.length)
        out = self._forward_conv(z)
        return out.flatten(1) if self.flatten else out


class Conv1dFeatures(nn.Module):
    """Two strided convolutions, flattened: ``(n, [channels,] length) -> (n, out_features)``.

    The body of a conv1d discriminator (its last hidden layer is what feature-matching
    scores compare). No padding: each convolution maps length ``l`` to ``ceil(l / 2)``.

    Parameters
    ----------
    length : int
        Input length.
    channels : int, default 1
        Input channels; with 1, ``(n, length)`` batches are accepted too.
    width : int, default 32
        Channels of the first convolution (the second has twice as many).

    Examples
    --------
    >>> feats = Conv1dFeatures(30, width=4)
    >>> feats.out_features, feats(torch.zeros(2, 30)).shape
    (64, torch.Size([2, 64]))
    """

    def __init__(self, length: int, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.length = positive_int("length", length)
        self.channels = positive_int("channels", channels)
        self.width = positive_int("width", width)
        self.conv = _conv_stack(self.channels, self.width)
        half = (self.length + 1) // 2
        self.out_features = 2 * self.width * ((half + 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_as_series(x, self.channels, self.length, "Conv1dFeatures")).flatten(1)


class Conv1dAutoEncoderNet(nn.Module):
    """Conv1d encoder/decoder for ``(n, length)`` vectors or ``(n, channels, length)`` series.

    :class:`Conv1dEncoder` then :class:`Conv1dDecoder`: two strided convolutions halve
    the length twice; a linear bottleneck of size ``latent_dim`` sits between encoder and
    decoder; transposed convolutions restore the length (cropped back to the input
    length). The output has the input's shape.

    The layers keep the names of genad 0.1.0 (``encoder``, ``to_latent``, ``from_latent``,
    ``decoder``: the state dict of a saved model), while :attr:`parts` gives the two
    halves as modules that share these layers.

    In evaluation mode without gradients (scoring), each convolution runs as the dense
    matrix it equals for this fixed input length, built once from the current weights
    and rebuilt whenever they change. For short vectors (a table's rows) one matrix
    product is several times faster on CPU than a small-channel convolution; the result
    is the same up to float rounding. When any layer's matrix would exceed
    ``DENSE_MAX_ELEMENTS`` (long series), every layer keeps its convolution.

    Parameters
    ----------
    length : int
        Input length (number of features for a vector).
    channels : int, default 1
        Input channels.
    width : int, default 32
        Channels of the first convolution (the second has twice as many).
    latent_dim : int, default 8
        Bottleneck size.

    Examples
    --------
    >>> net = Conv1dAutoEncoderNet(30, width=4, latent_dim=5)
    >>> net(torch.zeros(2, 30)).shape
    torch.Size([2, 30])
    >>> [name for name, _ in net.named_children()]
    ['encoder', 'to_latent', 'from_latent', 'decoder']
    """

    def __init__(self, length: int, channels: int = 1, width: int = 32,
                 latent_dim: int = 8) -> None:
        super().__init__()
        # built in this order (encoder convolutions, to_latent, from_latent, decoder
        # convolutions) so a seeded build draws the same initial weights as genad 0.1.0
        self._attach(Conv1dEncoder(length, channels, width, latent_dim),
                     Conv1dDecoder(length, channels, width, latent_dim))

    @classmethod
    def from_parts(cls, encoder: Conv1dEncoder, decoder: Conv1dDecoder) -> Conv1dAutoEncoderNet:
        """The autoencoder made of ``encoder`` and ``decoder`` (their layers, not copies).

        Parameters
        ----------
        encoder : Conv1dEncoder
        decoder : Conv1dDecoder
            Of the encoder's length, channels, width and latent size (``flatten`` does
            not matter: the autoencoder returns its input's shape).

        Returns
        -------
        Conv1dAutoEncoderNet
            With the state dict keys of genad 0.1.0.

        Examples
        --------
        >>> enc = Conv1dEncoder(12, width=4, latent_dim=3)
        >>> dec = Conv1dDecoder(12, width=4, latent_dim=3)
        >>> net = Conv1dAutoEncoderNet.from_parts(enc, dec)
        >>> net.to_latent is enc.to_latent
        True
        """
        if not isinstance(encoder, Conv1dEncoder) or not isinstance(decoder, Conv1dDecoder):
            raise TypeError("from_parts takes a Conv1dEncoder and a Conv1dDecoder, got "
                            f"{type(encoder).__name__} and {type(decoder).__name__}")
        fields = ("length", "channels", "width", "latent_dim")
        mismatched = [f"{f} {getattr(encoder, f)} != {getattr(decoder, f)}" for f in fields
                      if getattr(encoder, f) != getattr(decoder, f)]
        if mismatched:
            raise ValueError("the encoder and decoder do not fit together: "
                             + ", ".join(mismatched))
        net = cls.__new__(cls)
        nn.Module.__init__(net)
        net._attach(encoder, decoder)
        return net

    def _attach(self, encoder: Conv1dEncoder, decoder: Conv1dDecoder) -> None:
        self.length = encoder.length
        self.channels = encoder.channels
        self.padded = encoder.padded
        self._width = encoder.width
        # registered in genad 0.1.0's order, under its names: the bundle format
        self.encoder = encoder.conv
        self.to_latent = encoder.to_latent
        self.from_latent = decoder.from_latent
        self.decoder = decoder.deconv
        # a plain tuple is not registered as a submodule, so the halves add no keys
        self._parts: tuple[Conv1dEncoder, Conv1dDecoder] = (encoder, decoder)
        encoder.train(self.training)
        decoder.train(self.training)
        self._dense: Dense | None = None

    @property
    def parts(self) -> tuple[Conv1dEncoder, Conv1dDecoder]:
        """The encoder and decoder halves, sharing this network's layers.

        Examples
        --------
        >>> enc, dec = Conv1dAutoEncoderNet(12, width=4, latent_dim=3).parts
        >>> enc(torch.zeros(2, 12)).shape, dec(torch.zeros(2, 3)).shape
        (torch.Size([2, 3]), torch.Size([2, 1, 12]))
        """
        return self._parts

    def train(self, mode: bool = True) -> Conv1dAutoEncoderNet:
        super().train(mode)
        for part in self._parts:  # not submodules: set their flag too
            part.train(mode)
        return self

    def _dense_layers(self) -> Dense | None:
        """The four convolutions' ``(matrix, bias)``, or None if any would be too large."""
        encoder, decoder = self._parts
        first = encoder._dense_layers()
        second = decoder._dense_layers() if first is not None else None
        self._dense = None if first is None or second is None else [*first, *second]
        return self._dense

    def _forward_dense(self, x: torch.Tensor, dense: Dense) -> torch.Tensor:
        encoder, decoder = self._parts
        z = encoder._forward_dense(x, dense[:2])
        return decoder._forward_dense(z, dense[2:]).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled():
            dense = self._dense_layers()
            if dense is not None:
                return self._forward_dense(x, dense)
        encoder, decoder = self._parts
        out = decoder._forward_conv(encoder._forward_conv(x))
        return out.squeeze(1) if x.dim() == 2 else out
