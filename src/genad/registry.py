"""The presets: one table of genad's detectors that every list of models reads.

The CLI's ``--model`` choices, :data:`genad.MODELS`, the lazy names of ``genad``, the demo,
the report and the tests all read :data:`PRESETS`. Adding a detector means writing its
class (a :class:`~genad.detector.Detector` subclass whose ``model_name`` is the preset's
name) and adding one :class:`Preset` here.

This module imports neither torch nor the detectors: a preset names its class by import
path, and :func:`load_class` imports it on demand. So the CLI can build its help and
``--model`` choices without paying for torch.

Examples
--------
>>> from genad import registry
>>> registry.names()
('ae', 'dae', 'vae', 'pca-cae', 'conv-ae', 'conv-vae', 'ganomaly', 'fanogan', 'vaegan', 'draem')
>>> registry.preset("vae").class_name
'VAE'
>>> registry.preset("pca-cea")
Traceback (most recent call last):
    ...
genad.errors.InvalidInputError: unknown model 'pca-cea' (did you mean 'pca-cae'?); available models: 'ae', 'dae', 'vae', 'pca-cae', 'conv-ae', 'conv-vae', 'ganomaly', 'fanogan', 'vaegan', 'draem'
"""  # noqa: E501

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from genad._text import did_you_mean, name_list
from genad.errors import InvalidInputError

__all__ = [
    "Preset",
    "PRESETS",
    "MODALITIES",
    "ARCHITECTURES",
    "preset",
    "names",
    "load_class",
    "preset_for",
]

#: the kinds of data a preset can take
MODALITIES: tuple[str, ...] = ("tabular", "image")

#: the backbone kinds: ``"mlp"`` (fully connected layers, sized by ``hidden_sizes``),
#: ``"conv1d"`` (1-D convolutions over the feature vector; ``hidden_sizes`` is not used) and
#: ``"conv2d"`` (DCGAN-style 2-D convolutions over images)
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv1d", "conv2d")


@dataclass(frozen=True)
class Preset:
    """One detector genad offers by name.

    Parameters
    ----------
    name : str
        The CLI name (``genad train --model NAME``) and the class's ``model_name``.
    class_path : str
        ``"module:ClassName"`` of the detector class.
    summary : str
        One line for help texts.
    architecture : {"mlp", "conv1d", "conv2d"}
        The backbone kind on the preset's first modality; the report and the tests ask
        this instead of testing names.
    modalities : tuple of str, default ("tabular",)
        The kinds of data the detector takes (see :data:`MODALITIES`).
    test_settings : mapping, default {}
        Constructor arguments that train the detector fast on a small table (few epochs,
        small layers, CPU, silent). Read-only; :meth:`test_params` returns a copy.
    generates : bool, default False
        Whether the fitted detector can draw new samples (``Detector.generate``,
        ``genad generate``): the VAEs and the GANs can, an autoencoder and DRAEM cannot.

    Examples
    --------
    >>> p = Preset("ae", "genad.estimators:AutoEncoder", "MLP autoencoder", "mlp",
    ...            test_settings={"epochs": 2})
    >>> p.class_name, p.module
    ('AutoEncoder', 'genad.estimators')
    >>> p.test_params(verbose=0)
    {'epochs': 2, 'verbose': 0}
    """

    name: str
    class_path: str
    summary: str
    architecture: str
    modalities: tuple[str, ...] = ("tabular",)
    test_settings: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    generates: bool = False

    def __post_init__(self) -> None:
        module, sep, cls = self.class_path.partition(":")
        if not (module and sep and cls):
            raise InvalidInputError(
                f"preset {self.name!r}: class_path must be 'module:ClassName', "
                f"got {self.class_path!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise InvalidInputError(
                f"preset {self.name!r}: architecture must be one of "
                f"{name_list(ARCHITECTURES)}, got {self.architecture!r}"
            )
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if not self.modalities or unknown:
            raise InvalidInputError(
                f"preset {self.name!r}: modalities must be a non-empty subset of "
                f"{name_list(MODALITIES)}, got {self.modalities!r}"
            )
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "test_settings",
                           MappingProxyType(copy.deepcopy(dict(self.test_settings))))

    @property
    def module(self) -> str:
        """The module that defines the class."""
        return self.class_path.partition(":")[0]

    @property
    def class_name(self) -> str:
        """The class's name, e.g. ``"AutoEncoder"``."""
        return self.class_path.partition(":")[2]

    def load_class(self) -> type:
        """Import and return the detector class (this imports torch).

        Returns
        -------
        type
            The :class:`~genad.detector.Detector` subclass.
        """
        return getattr(importlib.import_module(self.module), self.class_name)

    def test_params(self, **overrides: Any) -> dict[str, Any]:
        """A fresh copy of :attr:`test_settings`, updated with ``overrides``.

        Parameters
        ----------
        **overrides
            Constructor arguments that replace or add to the fast settings.

        Returns
        -------
        dict
            A new dict (nested lists are copied too), safe to modify.

        Examples
        --------
        >>> p = preset("ae")
        >>> p.test_params()["hidden_sizes"]
        [16]
        >>> p.test_params(epochs=2)["epochs"]
        2
        """
        params = copy.deepcopy(dict(self.test_settings))
        params.update(overrides)
        return params


#: settings every preset's tests share: a few epochs of a small network on the CPU
_FAST: dict[str, Any] = dict(epochs=8, batch_size=64, latent_dim=2, target_fpr=0.05,
                             random_state=0, verbose=0, device="cpu")

#: settings of the image presets' tests: small convolutions on small images
_FAST_IMAGE: dict[str, Any] = dict(_FAST, latent_dim=4, conv_width=4)

#: the presets, by name, in the order the CLI and :data:`genad.MODELS` list them
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (
    Preset("ae", "genad.estimators:AutoEncoder", "MLP autoencoder", "mlp",
           test_settings={**_FAST, "hidden_sizes": [16]}),
    Preset("dae", "genad.estimators:DenoisingAutoEncoder",
           "denoising autoencoder", "mlp",
           test_settings={**_FAST, "hidden_sizes": [16]}),
    Preset("vae", "genad.estimators:VAE", "variational autoencoder", "mlp",
           generates=True, test_settings={**_FAST, "hidden_sizes": [16]}),
    Preset("pca-cae", "genad.estimators:PCAConvAutoEncoder",
           "PCA + 1-D convolutional autoencoder", "conv1d",
           test_settings={**_FAST, "conv_width": 4}),
    Preset("conv-ae", "genad.estimators:ConvAutoEncoder", "convolutional autoencoder (images)",
           "conv2d", modalities=("image",), test_settings=_FAST_IMAGE),
    Preset("conv-vae", "genad.estimators:ConvVAE", "convolutional VAE (images)", "conv2d",
           modalities=("image",), generates=True, test_settings=_FAST_IMAGE),
    Preset("ganomaly", "genad.estimators:GANomaly",
           "GANomaly: encoder-decoder-encoder GAN, latent-distance score", "mlp",
           modalities=("tabular", "image"),
           generates=True, test_settings={**_FAST, "hidden_sizes": [16], "learning_rate": 1e-3,
                          "epochs": 30}),
    Preset("fanogan", "genad.estimators:FAnoGAN",
           "f-AnoGAN: WGAN-GP, then an encoder (izi_f score)", "mlp",
           modalities=("tabular", "image"),
           generates=True, test_settings={**_FAST, "hidden_sizes": [16], "learning_rate": 1e-3,
                          "epochs": 4, "n_critic": 2}),
    Preset("vaegan", "genad.estimators:VAEGAN",
           "VAE-GAN: VAE with a discriminator-feature reconstruction", "mlp",
           modalities=("tabular", "image"),
           generates=True, test_settings={**_FAST, "hidden_sizes": [16], "learning_rate": 1e-3}),
    Preset("draem", "genad.estimators:DRAEM",
           "DRAEM: a U-Net that segments simulated defects (images)", "conv2d",
           modalities=("image",), test_settings={**_FAST, "conv_width": 4}),
)})


def preset(name: str) -> Preset:
    """The preset called ``name``.

    Parameters
    ----------
    name : str
        A preset name such as ``"ae"``.

    Returns
    -------
    Preset

    Raises
    ------
    InvalidInputError
        ``name`` is not a preset; the message suggests the closest name and lists all.

    Examples
    --------
    >>> preset("dae").class_path
    'genad.estimators:DenoisingAutoEncoder'
    """
    found = PRESETS.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidInputError(
            f"unknown model {name!r}{did_you_mean(str(name), PRESETS)}; "
            f"available models: {name_list(PRESETS)}"
        )
    return found


def names(modality: str | None = None, *, generates: bool | None = None) -> tuple[str, ...]:
    """The preset names, in registry order, optionally only those taking ``modality``.

    Parameters
    ----------
    modality : str, optional
        One of :data:`MODALITIES`; ``None`` gives every preset.
    generates : bool, optional
        Only the presets whose :attr:`Preset.generates` is this; ``None`` gives both.

    Returns
    -------
    tuple of str

    Raises
    ------
    InvalidInputError
        ``modality`` is not one of :data:`MODALITIES`.

    Examples
    --------
    >>> names("tabular")
    ('ae', 'dae', 'vae', 'pca-cae', 'ganomaly', 'fanogan', 'vaegan')
    >>> names("image", generates=True)
    ('conv-vae', 'ganomaly', 'fanogan', 'vaegan')
    """
    if modality is not None and modality not in MODALITIES:
        raise InvalidInputError(
            f"unknown modality {modality!r}{did_you_mean(str(modality), MODALITIES)}; "
            f"available modalities: {name_list(MODALITIES)}"
        )
    return tuple(n for n, p in PRESETS.items()
                 if (modality is None or modality in p.modalities)
                 and (generates is None or p.generates == generates))


def load_class(name: str) -> type:
    """Import and return the detector class of preset ``name`` (this imports torch).

    Parameters
    ----------
    name : str
        A preset name.

    Returns
    -------
    type
        The :class:`~genad.detector.Detector` subclass.

    Raises
    ------
    InvalidInputError
        ``name`` is not a preset.

    Examples
    --------
    >>> load_class("vae").__name__
    'VAE'
    """
    return preset(name).load_class()


def preset_for(detector_or_class: object) -> Preset | None:
    """The preset of a detector (or detector class), or ``None`` when it has none.

    A subclass of a preset's class (say, a user's tweak of :class:`~genad.AutoEncoder`)
    belongs to the nearest preset class in its method resolution order. Classes are
    matched by import path, so this imports nothing.

    Parameters
    ----------
    detector_or_class : object
        A detector instance or class.

    Returns
    -------
    Preset or None

    Examples
    --------
    >>> import genad
    >>> preset_for(genad.DenoisingAutoEncoder).name
    'dae'
    >>> preset_for(genad.DenoisingAutoEncoder()).architecture
    'mlp'
    >>> preset_for(int) is None
    True
    """
    cls = detector_or_class if isinstance(detector_or_class, type) else type(detector_or_class)
    by_path = {p.class_path: p for p in PRESETS.values()}
    for klass in cls.__mro__:
        found = by_path.get(f"{klass.__module__}:{klass.__qualname__}")
        if found is not None:
            return found
    return None
