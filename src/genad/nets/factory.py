"""Encoders, decoders and discriminators built from a backbone name and the sample shape.

A *backbone* is a family of networks (``"mlp"``, ``"conv1d"``, ``"conv2d"``, later
``"lstm"``); a *model* (autoencoder, VAE, GAN) asks this module for the parts it needs
and never names a network class, so one model serves tables, series and images:

- :func:`encoder`: ``(n, *sample_shape) -> (n, out_features)`` (a latent code, or a
  VAE's mean and log-variance halves with ``out_features = 2 * latent``);
- :func:`decoder`: ``(n, in_features) -> (n, out_multiplier * sample_shape[0],
  *sample_shape[1:])`` (``out_multiplier=2``: a VAE's mean and log-variance halves
  along the first sample axis);
- :func:`discriminator`: ``(n, *sample_shape) -> (n, 1)`` logits, with
  :meth:`~genad.nets.discriminator.Discriminator.features` for feature matching.

Each backbone accepts samples of some ranks: ``"mlp"`` vectors ``(d,)``; ``"conv1d"``
vectors ``(d,)`` (one channel) or series ``(channels, length)``; ``"conv2d"`` images
``(C, H, W)``. :func:`default_backbone` picks one from the rank; :func:`register_backbone`
adds one (``lstm`` for ``(time, channels)`` sequences) without touching the models.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from genad._params import check_number, positive_int
from genad._text import did_you_mean, name_list
from genad.errors import InvalidInputError
from genad.nets.conv1d import Conv1dDecoder, Conv1dEncoder, Conv1dFeatures
from genad.nets.conv2d import conv2d_decoder, conv2d_discriminator, conv2d_encoder
from genad.nets.discriminator import Discriminator
from genad.nets.mlp import default_mlp_sizes, mlp

__all__ = [
    "Backbone",
    "BACKBONES",
    "DEFAULT_BACKBONES",
    "register_backbone",
    "unregister_backbone",
    "default_backbone",
    "encoder",
    "decoder",
    "discriminator",
]

SampleShape = tuple[int, ...]


@dataclass(frozen=True)
class Backbone:
    """How one family of networks builds its encoder, decoder and discriminator.

    The builders receive checked arguments: the sample shape as a tuple of positive
    ints of an accepted rank, positive sizes, ``hidden`` as None or a list of positive
    ints, ``dropout`` in ``[0, 1)``, and only the options named in ``options``
    (with their values as given)::

        encoder(sample_shape, out_features, *, hidden, dropout, **options)
        decoder(sample_shape, in_features, *, out_multiplier, hidden, dropout, **options)
        discriminator(sample_shape, *, hidden, dropout, **options)

    Parameters
    ----------
    ranks : tuple of int
        Sample ranks the backbone accepts (1 for ``(d,)``, 2 for ``(channels, length)``
        or ``(time, channels)``, 3 for ``(C, H, W)``).
    encoder, decoder, discriminator : callable
        The builders above, each returning an ``nn.Module``.
    options : tuple of str, default ()
        Names of the backbone's own keyword options (e.g. ``"width"``).
    summary : str, default ""
        One line for listings.

    Examples
    --------
    >>> BACKBONES["conv1d"].ranks, BACKBONES["conv1d"].options
    ((1, 2), ('width',))
    """

    ranks: tuple[int, ...]
    encoder: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    options: tuple[str, ...] = ()
    summary: str = ""


# ------------------------------------------------------------------------ mlp


def _mlp_hidden(d: int, hidden: list[int] | None) -> list[int]:
    return list(default_mlp_sizes(d)[0]) if hidden is None else hidden


def _mlp_encoder(shape: SampleShape, out_features: int, *, hidden: list[int] | None,
                 dropout: float, activation: str = "leaky_relu",
                 batch_norm: bool = False) -> nn.Module:
    (d,) = shape
    return mlp([d, *_mlp_hidden(d, hidden), out_features], activation=activation,
               dropout=dropout, batch_norm=batch_norm)


def _mlp_decoder(shape: SampleShape, in_features: int, *, out_multiplier: int,
                 hidden: list[int] | None, dropout: float, activation: str = "leaky_relu",
                 batch_norm: bool = False) -> nn.Module:
    (d,) = shape
    return mlp([in_features, *_mlp_hidden(d, hidden)[::-1], out_multiplier * d],
               activation=activation, dropout=dropout, batch_norm=batch_norm)


def _mlp_discriminator(shape: SampleShape, *, hidden: list[int] | None, dropout: float,
                       activation: str = "leaky_relu", batch_norm: bool = False) -> nn.Module:
    (d,) = shape
    sizes = _mlp_hidden(d, hidden)
    if not sizes:
        raise InvalidInputError("an mlp discriminator needs at least one hidden layer "
                                "(its features), got hidden=[]")
    net = mlp([d, *sizes, 1], activation=activation, dropout=dropout, batch_norm=batch_norm)
    return Discriminator(net[:-1], net[-1])


# --------------------------------------------------------------------- conv1d


def _conv1d_dims(name: str, shape: SampleShape, hidden: list[int] | None,
                 dropout: float) -> tuple[int, int]:
    """``(length, channels)`` of a conv1d sample; refuses the options it has no use for."""
    if hidden is not None:
        raise InvalidInputError(f"backbone {name!r} has no hidden sizes (its size is set by "
                                f"width), got hidden={hidden}")
    if dropout:
        raise InvalidInputError(f"backbone {name!r} has no dropout, got dropout={dropout}")
    return (shape[0], 1) if len(shape) == 1 else (shape[1], shape[0])


def _conv1d_encoder(shape: SampleShape, out_features: int, *, hidden: list[int] | None,
                    dropout: float, width: int = 32) -> nn.Module:
    length, channels = _conv1d_dims("conv1d", shape, hidden, dropout)
    return Conv1dEncoder(length, channels, width=width, latent_dim=out_features)


def _conv1d_decoder(shape: SampleShape, in_features: int, *, out_multiplier: int,
                    hidden: list[int] | None, dropout: float, width: int = 32) -> nn.Module:
    length, channels = _conv1d_dims("conv1d", shape, hidden, dropout)
    return Conv1dDecoder(length, out_multiplier * channels, width=width,
                         latent_dim=in_features, flatten=len(shape) == 1)


def _conv1d_discriminator(shape: SampleShape, *, hidden: list[int] | None, dropout: float,
                          width: int = 32) -> nn.Module:
    length, channels = _conv1d_dims("conv1d", shape, hidden, dropout)
    body = Conv1dFeatures(length, channels, width=width)
    return Discriminator(body, nn.Linear(body.out_features, 1))


# ------------------------------------------------------------------- registry

_BACKBONES: dict[str, Backbone] = {
    "mlp": Backbone(
        ranks=(1,), encoder=_mlp_encoder, decoder=_mlp_decoder,
        discriminator=_mlp_discriminator, options=("activation", "batch_norm"),
        summary="fully connected layers over (d,) vectors",
    ),
    "conv1d": Backbone(
        ranks=(1, 2), encoder=_conv1d_encoder, decoder=_conv1d_decoder,
        discriminator=_conv1d_discriminator, options=("width",),
        summary="strided 1-D convolutions over (d,) vectors or (channels, length) series",
    ),
    "conv2d": Backbone(
        ranks=(3,), encoder=conv2d_encoder, decoder=conv2d_decoder,
        discriminator=conv2d_discriminator, options=("width", "batch_norm"),
        summary="DCGAN-style strided 2-D convolutions over (C, H, W) images",
    ),
}

#: backbone name -> :class:`Backbone`, read-only (add one with :func:`register_backbone`)
BACKBONES: Mapping[str, Backbone] = MappingProxyType(_BACKBONES)

#: sample rank -> the backbone :func:`default_backbone` picks (registered or not)
DEFAULT_BACKBONES: Mapping[int, str] = MappingProxyType({1: "mlp", 2: "conv1d", 3: "conv2d"})


def register_backbone(name: str, spec: Backbone, *, replace: bool = False) -> Backbone:
    """Make ``name`` a backbone that :func:`encoder`, :func:`decoder` and
    :func:`discriminator` can build.

    Parameters
    ----------
    name : str
        The backbone's name (e.g. ``"conv2d"``).
    spec : Backbone
        Its builders and accepted sample ranks.
    replace : bool, default False
        Replace a backbone already registered under ``name`` (otherwise an error).

    Returns
    -------
    Backbone
        ``spec``.

    Examples
    --------
    >>> from torch import nn
    >>> def linear(shape, out_features, *, hidden, dropout):
    ...     return nn.Linear(shape[0], out_features)
    >>> def linear_decoder(shape, in_features, *, out_multiplier, hidden, dropout):
    ...     return nn.Linear(in_features, out_multiplier * shape[0])
    >>> def no_discriminator(shape, *, hidden, dropout):
    ...     raise NotImplementedError
    >>> spec = register_backbone("linear", Backbone((1,), linear, linear_decoder,
    ...                                             no_discriminator))
    >>> decoder("linear", (6,), 2, out_multiplier=2)
    Linear(in_features=2, out_features=12, bias=True)
    >>> unregister_backbone("linear") is spec
    True
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"a backbone name must be a non-empty string, got {name!r}")
    if not isinstance(spec, Backbone):
        raise InvalidInputError(f"backbone {name!r} must be described by a Backbone, "
                                f"got {type(spec).__name__}")
    ranks = spec.ranks
    if (not isinstance(ranks, tuple) or not ranks
            or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1
                       for r in ranks)):
        raise InvalidInputError(f"backbone {name!r} must accept a non-empty tuple of sample "
                                f"ranks >= 1, got {ranks!r}")
    for part in ("encoder", "decoder", "discriminator"):
        if not callable(getattr(spec, part)):
            raise InvalidInputError(f"the {part} builder of backbone {name!r} is not callable")
    if name in _BACKBONES and not replace:
        raise InvalidInputError(f"backbone {name!r} is already registered "
                                "(pass replace=True to replace it)")
    _BACKBONES[name] = spec
    return spec


def unregister_backbone(name: str) -> Backbone:
    """Remove backbone ``name`` and return its :class:`Backbone` (see :func:`register_backbone`)."""
    spec = _backbone(name)  # an error naming the registered ones when it is not there
    del _BACKBONES[name]
    return spec


def _backbone(name: str) -> Backbone:
    if isinstance(name, str) and name in _BACKBONES:
        return _BACKBONES[name]
    text = str(name)
    # a planned backbone (a default of some rank) is not a typo of a registered one
    hint = "" if text in DEFAULT_BACKBONES.values() else did_you_mean(text, _BACKBONES)
    raise InvalidInputError(
        f"no backbone named {name!r} is registered{hint}; registered backbones: "
        f"{name_list(_BACKBONES)} (add one with genad.nets.factory.register_backbone)"
    )


def _sample_shape(sample_shape: int | Sequence[int]) -> SampleShape:
    """``sample_shape`` as a tuple of positive ints (an int ``d`` is ``(d,)``)."""
    if isinstance(sample_shape, (str, bytes)):
        items: list[object] = []
    elif isinstance(sample_shape, Sequence):
        items = list(sample_shape)
    else:
        items = [sample_shape]
    dims = []
    for item in items:
        try:
            dims.append(operator.index(item))  # type: ignore[call-overload]
        except TypeError:
            dims.append(0)
    if not dims or any(isinstance(i, bool) for i in items) or min(dims) < 1:
        raise InvalidInputError("sample_shape must be a non-empty sequence of positive "
                                "integers (one sample's shape, without the batch axis), "
                                f"got {sample_shape!r}")
    return tuple(dims)


def _hidden(hidden: Sequence[int] | None) -> list[int] | None:
    if hidden is None:
        return None
    if isinstance(hidden, str) or not isinstance(hidden, Sequence):
        raise InvalidInputError(f"hidden must be a sequence of positive integers or None, "
                                f"got {hidden!r}")
    return [positive_int("every hidden size", h) for h in hidden]


def _resolve(name: str, sample_shape: int | Sequence[int], options: dict[str, Any]
             ) -> tuple[Backbone, SampleShape]:
    """The backbone and checked sample shape; errors for a wrong rank or unknown option."""
    spec = _backbone(name)
    shape = _sample_shape(sample_shape)
    if len(shape) not in spec.ranks:
        ranks = " or ".join(str(r) for r in spec.ranks)
        default = DEFAULT_BACKBONES.get(len(shape))
        tip = f"; backbone {default!r} takes rank-{len(shape)} samples" if default else ""
        raise InvalidInputError(f"backbone {name!r} takes samples of rank {ranks}, got "
                                f"sample_shape {shape} of rank {len(shape)}{tip}")
    for key in options:
        if key not in spec.options:
            known = name_list(spec.options) if spec.options else "none"
            raise InvalidInputError(f"backbone {name!r} has no option {key!r}"
                                    f"{did_you_mean(key, spec.options)}; its options: {known}")
    return spec, shape


def default_backbone(sample_shape: int | Sequence[int]) -> str:
    """The backbone that suits samples of this shape, by rank (:data:`DEFAULT_BACKBONES`).

    ``"mlp"`` for vectors ``(d,)``, ``"conv1d"`` for series ``(channels, length)``,
    ``"conv2d"`` for images ``(C, H, W)`` (named even while it is not registered, so
    building it says so).

    Parameters
    ----------
    sample_shape : int or sequence of int
        One sample's shape, without the batch axis.

    Returns
    -------
    str

    Examples
    --------
    >>> default_backbone((30,)), default_backbone((3, 128)), default_backbone((3, 32, 32))
    ('mlp', 'conv1d', 'conv2d')
    """
    shape = _sample_shape(sample_shape)
    if len(shape) not in DEFAULT_BACKBONES:
        ranks = ", ".join(str(r) for r in DEFAULT_BACKBONES)
        raise InvalidInputError(f"no backbone suits samples of rank {len(shape)} "
                                f"(sample_shape {shape}); there are defaults for ranks {ranks}")
    return DEFAULT_BACKBONES[len(shape)]


def encoder(backbone: str, sample_shape: int | Sequence[int], out_features: int, *,
            hidden: Sequence[int] | None = None, dropout: float = 0.0,
            **options: Any) -> nn.Module:
    """An encoder ``(n, *sample_shape) -> (n, out_features)`` of the given backbone.

    Parameters
    ----------
    backbone : str
        A name of :data:`BACKBONES` (see :func:`default_backbone`).
    sample_shape : int or sequence of int
        One sample's shape, without the batch axis (an int ``d`` means ``(d,)``).
    out_features : int
        Output size: the latent size, or twice it for a VAE's mean and log-variance.
    hidden : sequence of int, optional
        ``"mlp"``: hidden layer sizes from the input side (default
        :func:`~genad.nets.mlp.default_mlp_sizes` of the sample size). ``"conv1d"``
        and ``"conv2d"`` take none.
    dropout : float, default 0.0
        Dropout after every hidden layer, in training only (``"mlp"`` and ``"conv2d"``).
    **options
        The backbone's own options: ``"mlp"``: ``activation`` (default
        ``"leaky_relu"``), ``batch_norm`` (default False); ``"conv1d"``: ``width``
        (channels of the first convolution, default 32); ``"conv2d"``: ``width``
        (default 32) and ``batch_norm`` (default True; see :mod:`genad.nets.conv2d`).

    Returns
    -------
    nn.Module
        Its last layer is linear: the caller decides what the output means.

    Examples
    --------
    >>> import torch
    >>> encoder("mlp", (30,), 10, hidden=[16])
    Sequential(
      (0): Linear(in_features=30, out_features=16, bias=True)
      (1): LeakyReLU(negative_slope=0.01)
      (2): Linear(in_features=16, out_features=10, bias=True)
    )
    >>> encoder("conv1d", (3, 50), 4, width=8)(torch.zeros(2, 3, 50)).shape
    torch.Size([2, 4])
    """
    spec, shape = _resolve(backbone, sample_shape, options)
    check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
    return spec.encoder(shape, positive_int("out_features", out_features), hidden=_hidden(hidden),
                        dropout=float(dropout), **options)


def decoder(backbone: str, sample_shape: int | Sequence[int], in_features: int, *,
            out_multiplier: int = 1, hidden: Sequence[int] | None = None,
            dropout: float = 0.0, **options: Any) -> nn.Module:
    """A decoder ``(n, in_features) -> (n, out_multiplier * sample_shape[0], *sample_shape[1:])``.

    With ``out_multiplier=1`` the output has a sample's shape; with 2 it holds two
    stacked halves along the first sample axis (``chunk(2, dim=1)`` splits them), such
    as a VAE's mean and log-variance: twice the features of a vector, twice the
    channels of a series.

    Parameters
    ----------
    backbone : str
        A name of :data:`BACKBONES`.
    sample_shape : int or sequence of int
        The shape of one sample to reconstruct, without the batch axis.
    in_features : int
        Input (latent) size.
    out_multiplier : int, default 1
        Outputs per sample value (2: mean and log-variance).
    hidden : sequence of int, optional
        ``"mlp"``: the encoder's hidden sizes, from the input side; the decoder runs
        through them in reverse (default as in :func:`encoder`). ``"conv1d"`` takes none.
    dropout : float, default 0.0
        As in :func:`encoder`.
    **options
        As in :func:`encoder`.

    Returns
    -------
    nn.Module
        Its last layer is linear (or a transposed convolution).

    Examples
    --------
    >>> import torch
    >>> decoder("mlp", (30,), 10, hidden=[16], out_multiplier=2)
    Sequential(
      (0): Linear(in_features=10, out_features=16, bias=True)
      (1): LeakyReLU(negative_slope=0.01)
      (2): Linear(in_features=16, out_features=60, bias=True)
    )
    >>> decoder("conv1d", (30,), 4, width=8)(torch.zeros(2, 4)).shape
    torch.Size([2, 30])
    >>> decoder("conv1d", (3, 50), 4, out_multiplier=2, width=8)(torch.zeros(2, 4)).shape
    torch.Size([2, 6, 50])
    """
    spec, shape = _resolve(backbone, sample_shape, options)
    check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
    return spec.decoder(shape, positive_int("in_features", in_features),
                        out_multiplier=positive_int("out_multiplier", out_multiplier),
                        hidden=_hidden(hidden), dropout=float(dropout), **options)


def discriminator(backbone: str, sample_shape: int | Sequence[int], *,
                  hidden: Sequence[int] | None = None, dropout: float = 0.0,
                  **options: Any) -> nn.Module:
    """A discriminator ``(n, *sample_shape) -> (n, 1)`` logits, with ``features(x)``.

    ``features(x)`` is the last hidden layer ``(n, f)``, for feature-matching losses and
    scores (f-AnoGAN, VAE-GAN).

    Parameters
    ----------
    backbone : str
        A name of :data:`BACKBONES`.
    sample_shape : int or sequence of int
        One sample's shape, without the batch axis.
    hidden : sequence of int, optional
        ``"mlp"``: hidden layer sizes, at least one; the features are the last one's
        activations (default as in :func:`encoder`). ``"conv1d"`` takes none: the
        features are the flattened output of two strided convolutions.
    dropout : float, default 0.0
        As in :func:`encoder`.
    **options
        As in :func:`encoder`.

    Returns
    -------
    nn.Module
        A :class:`~genad.nets.discriminator.Discriminator` for the built-in backbones.

    Examples
    --------
    >>> import torch
    >>> disc = discriminator("mlp", (30,), hidden=[16, 8])
    >>> x = torch.zeros(5, 30)
    >>> disc(x).shape, disc.features(x).shape
    (torch.Size([5, 1]), torch.Size([5, 8]))
    >>> discriminator("conv1d", (3, 50), width=4)(torch.zeros(5, 3, 50)).shape
    torch.Size([5, 1])
    """
    spec, shape = _resolve(backbone, sample_shape, options)
    check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
    net = spec.discriminator(shape, hidden=_hidden(hidden), dropout=float(dropout), **options)
    if not callable(getattr(net, "features", None)):
        raise InvalidInputError(f"the discriminator of backbone {backbone!r} "
                                f"({type(net).__name__}) has no features(x) method")
    return net
