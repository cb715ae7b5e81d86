"""The adapter protocol: how a modality's raw input becomes samples and maps come back.

An :class:`Adapter` owns everything that depends on the kind of data (tables, images,
sound, series): reading and validating the user's input, the learned schema and scaling
statistics, the split of training normals into a training and a held-out part, the
reduction of unit scores to one score per user sample, and the translation of
per-element errors back into the user's units (a column, a pixel, a time step). The
detector, the training loop and the models see only :class:`SampleSet` objects: a
torch-style map dataset of the units the model reads (rows, images, spectrogram
patches, windows) with their ``sample_shape`` and ``owner`` (unit -> user sample).

This module imports neither torch nor pandas, so that reading the protocol (and the
CLI's start-up) stays cheap; :class:`TensorSampleSet` holds a tensor it is given.

Adding a modality means one module in ``genad/data/`` with one :class:`Adapter`
subclass, registered in :data:`ADAPTERS` by its ``kind`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from genad.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

__all__ = ["SampleSet", "TensorSampleSet", "Adapter", "ADAPTERS", "register_adapter",
           "adapter_for", "kind_of", "renumber", "narrow_meta"]


class SampleSet(ABC):
    """The units a model reads, as a map-style dataset (``len`` and ``[i]``).

    A ``torch.utils.data.DataLoader`` reads it directly. Every unit belongs to one user
    sample (``owner``): a table's row is its own sample, an image's tiles or a clip's
    frames share one.

    Attributes
    ----------
    sample_shape : tuple of int
        Shape of one unit as the model sees it, e.g. ``(n_features,)`` or ``(C, H, W)``.
    owner : ndarray of int64, shape (len(self),)
        Position of each unit's user sample (0 to ``n_samples - 1``).
    n_samples : int
        Number of user samples the units come from.
    meta : dict
        What the adapter needs to map results back (e.g. a table's row index).
    """

    sample_shape: tuple[int, ...]
    owner: np.ndarray
    n_samples: int
    meta: dict[str, Any]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, i: int) -> torch.Tensor: ...

    def stacked(self) -> torch.Tensor:
        """Every unit as one tensor ``(len(self), *sample_shape)`` (read item by item)."""
        import torch

        if len(self) == 0:
            return torch.empty((0, *self.sample_shape))
        return torch.stack([self[i] for i in range(len(self))])

    @abstractmethod
    def subset(self, units: np.ndarray) -> SampleSet:
        """The units at positions ``units``, as a set of its own.

        Its user samples are those the chosen units belong to, numbered in order of
        first appearance; ``meta["index"]`` (the user samples' labels), when present,
        is narrowed to them.
        """


def narrow_meta(meta: dict[str, Any], units: np.ndarray, samples: np.ndarray
                ) -> dict[str, Any]:
    """A subset's ``meta``: ``index`` and the arrays under ``per_sample`` narrowed to the
    kept user samples, those under ``per_unit`` to the kept units; the rest shared.

    Examples
    --------
    >>> meta = {"index": np.array([10, 11, 12]), "per_unit": {"tile": np.array([0, 1, 0])}}
    >>> out = narrow_meta(meta, np.array([2]), np.array([1]))
    >>> out["index"].tolist(), out["per_unit"]["tile"].tolist()
    ([11], [0])
    """
    out = dict(meta)
    if "index" in out:
        out["index"] = out["index"][samples]
    for key, rows in (("per_sample", samples), ("per_unit", units)):
        if key in out:
            out[key] = {name: np.asarray(values)[rows] for name, values in out[key].items()}
    return out


def renumber(owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owners renumbered ``0..k-1`` in order of first appearance, and the original
    number of each new one.

    Examples
    --------
    >>> new, old = renumber(np.array([7, 7, 3, 9, 3]))
    >>> new.tolist(), old.tolist()
    ([0, 0, 1, 2, 1], [7, 3, 9])
    """
    if owner.size == 0:
        return owner.astype(np.int64), owner.astype(np.int64)
    uniques, first, inverse = np.unique(owner, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64), uniques[order].astype(np.int64)


class TensorSampleSet(SampleSet):
    """An in-memory sample set: one float32 tensor ``(n_units, *sample_shape)``.

    The training loop and scoring use :attr:`tensor` directly (no per-item indexing),
    which keeps tables as fast as plain tensors.

    Parameters
    ----------
    tensor : torch.Tensor
        The units, stacked.
    owner : array-like of int, optional
        Unit -> user sample; default: each unit is its own sample.
    n_samples : int, optional
        Default: ``owner.max() + 1`` (or the number of units without ``owner``).
    meta : dict, optional

    Examples
    --------
    >>> import torch
    >>> s = TensorSampleSet(torch.zeros(5, 3))
    >>> part = s.subset(np.array([4, 2]))
    >>> len(s), s.sample_shape, s.n_samples, part.n_samples, part.owner.tolist()
    (5, (3,), 5, 2, [0, 1])
    """

    def __init__(self, tensor: torch.Tensor, owner: Any = None, n_samples: int | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.tensor = tensor
        n = int(tensor.shape[0])
        self.owner = (np.arange(n, dtype=np.int64) if owner is None
                      else np.asarray(owner, dtype=np.int64))
        if self.owner.shape != (n,):
            raise ValueError(f"owner has {self.owner.shape[0]} entries for {n} units")
        if n_samples is None:
            n_samples = n if owner is None else (int(self.owner.max()) + 1 if n else 0)
        self.n_samples = int(n_samples)
        self.sample_shape = tuple(int(d) for d in tensor.shape[1:])
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tensor[i]

    def stacked(self) -> torch.Tensor:
        """The tensor itself (no copy)."""
        return self.tensor

    def subset(self, units: np.ndarray) -> TensorSampleSet:
        import torch

        idx = np.asarray(units, dtype=np.int64)
        owner, kept = renumber(self.owner[idx])
        return TensorSampleSet(self.tensor[torch.from_numpy(idx)], owner, len(kept),
                               narrow_meta(self.meta, idx, kept))


class Adapter(BaseEstimator, ABC):
    """Base class of the adapters: a cloneable scikit-learn-style estimator.

    Its constructor parameters are the modality's options (e.g. a table's scaling); they
    appear as nested parameters of the detector (``adapter__scaling``). Learned state
    ends in ``_`` and goes into the bundle through :meth:`get_state` /
    :meth:`from_state`.

    Subclasses set :attr:`kind` and implement the abstract methods; the defaults below
    suit a modality where each user sample is one unit.
    """

    #: the modality name: the key in :data:`ADAPTERS` and in the bundle
    kind: ClassVar[str] = ""
    #: parameter -> rule (see :mod:`genad._params`), checked by ``fit``
    parameter_constraints: ClassVar[dict[str, Any]] = {}
    #: units per inference batch (the detector pads each batch to a fixed size)
    score_batch_size: ClassVar[int] = 4096
    #: units encoded and scored at a time by the detector (streamed scoring)
    score_chunk_size: ClassVar[int] = 16 * 4096
    #: the weight-averaging span in epochs that a detector's ``weight_averaging="auto"``
    #: means on this kind of data (None: off)
    auto_weight_averaging: ClassVar[float | None] = None
    #: whether :func:`adapter_for` asks this adapter last (it takes what others decline)
    fallback: ClassVar[bool] = False
    #: what messages call the input and one user sample ("table" and "row" for tables)
    data_noun: ClassVar[str] = "data"
    sample_noun: ClassVar[str] = "sample"

    # ------------------------------------------------------------- reading
    @classmethod
    def accepts(cls, X: Any) -> bool:
        """Whether ``X`` looks like this modality's input (for :func:`adapter_for`)."""
        return False

    def read(self, X: Any) -> Any:
        """Parse ``X`` once into the form the other methods take (default: as is)."""
        return X

    @abstractmethod
    def n_samples(self, data: Any) -> int:
        """Number of user samples in read data."""

    @abstractmethod
    def take(self, data: Any, rows: np.ndarray) -> Any:
        """The user samples at positions ``rows`` of read data."""

    def read_labelled(self, source: Any, label_column: str | None) -> tuple[Any, Any]:
        """Read a labelled source for the CLI: ``(X, y)``, ``y`` None without labels."""
        raise InvalidInputError(f"the {self.kind} adapter cannot read labels from {source!r}")

    # ------------------------------------------------------------- learning
    @abstractmethod
    def fit(self, X: Any) -> Adapter:
        """Learn the schema and statistics from training normals ``X``."""

    @abstractmethod
    def samples(self, X: Any) -> SampleSet:
        """Validate and encode ``X`` (same schema as in ``fit``) as a sample set."""

    def chunks(self, X: Any, size: int) -> Iterator[SampleSet]:
        """``X`` as consecutive sample sets of about ``size`` units (streamed scoring).

        Default: one set. Adapters of large inputs override it so that memory does not
        grow with the input.
        """
        yield self.samples(X)

    def check_input(self, X: Any, estimator: str) -> None:  # noqa: B027 - optional hook
        """Warnings about ``X`` before it is scored (e.g. feature names), optional."""

    def holdout(self, samples: SampleSet, fraction: float,
                rng: np.random.Generator) -> tuple[SampleSet, SampleSet]:
        """Split ``samples`` into ``(train, held_out)`` by user sample.

        Default: a random ``fraction`` of the user samples (at least one, at most all but
        one) with all their units; series adapters override it with contiguous blocks.
        """
        n = samples.n_samples
        if n < 2:
            raise InvalidInputError(
                f"need at least 2 normal training samples (one for training, one held out), "
                f"got {n}"
            )
        perm = rng.permutation(n)
        n_val = min(n - 1, max(1, int(round(fraction * n))))
        held = np.zeros(n, dtype=bool)
        held[perm[:n_val]] = True
        if np.array_equal(samples.owner, np.arange(len(samples))):
            # one unit per sample: keep the permutation's order (as the split always did)
            return samples.subset(perm[n_val:]), samples.subset(perm[:n_val])
        mask = held[samples.owner]
        return samples.subset(np.flatnonzero(~mask)), samples.subset(np.flatnonzero(mask))

    # ------------------------------------------------------------- results
    #: whether :meth:`fit_maps` learns from the training maps (the detector then runs
    #: the model's ``infer`` over the training set once after training)
    learns_maps: ClassVar[bool] = False

    @property
    def units_per_sample(self) -> int:
        """Units (network inputs) one user sample is cut into, once fitted: 1 here,
        an image's tile count for tiled images."""
        return 1

    @property
    def scores_need_maps(self) -> bool:
        """Whether :meth:`reduce` needs the units' maps (an image score taken from its
        map); the detector then scores with the model's ``infer``."""
        return False

    def fit_maps(self, parts: Iterator[tuple[np.ndarray, SampleSet]]) -> None:  # noqa: B027
        """Learn map statistics (e.g. per-pixel normalisation) from the training set's
        unit maps, given a chunk at a time with their sample sets. Optional."""

    def reduce(self, unit_scores: np.ndarray, samples: SampleSet,
               unit_maps: np.ndarray | None = None) -> np.ndarray:
        """One score per user sample from the units' scores (default: the mean); the
        units' maps come too when :attr:`scores_need_maps` says so."""
        if len(unit_scores) == samples.n_samples and np.array_equal(
                samples.owner, np.arange(len(samples))):
            return unit_scores
        total = np.bincount(samples.owner, weights=unit_scores, minlength=samples.n_samples)
        count = np.bincount(samples.owner, minlength=samples.n_samples)
        return total / np.maximum(count, 1)

    @abstractmethod
    def to_map(self, unit_maps: np.ndarray, samples: SampleSet) -> Any:
        """Per-element contributions in the user's layout (columns, pixels, ...)."""

    @abstractmethod
    def describe(self, maps: Any, k: int) -> list[str]:
        """The ``k`` largest contributors of each sample's map, in words."""

    def index(self, samples: SampleSet) -> Any:
        """Labels of the user samples (a table's row index, an image's path)."""
        import pandas as pd

        return samples.meta.get("index", pd.RangeIndex(samples.n_samples))

    # --------------------------------------------------------------- state
    @abstractmethod
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-safe document and arrays that rebuild the fitted adapter.

        The detector stores the document as the bundle's ``adapter`` field (beside
        ``adapter_kind``, this class's :attr:`kind`) and each array as a tensor
        ``adapter.<name>`` (``docs/bundle.md``). Only plain JSON values (null, booleans,
        numbers, strings, lists, objects) and numeric arrays; the document should carry
        a ``version`` of its own when its layout changes, so :meth:`from_state` can
        read older states.
        """

    @classmethod
    @abstractmethod
    def from_state(cls, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Adapter:
        """The fitted adapter :meth:`get_state` describes.

        ``doc`` and ``arrays`` come from a file and are not trusted: check every field
        and array before using it, set nothing by a name read from the file, and raise
        :class:`genad.bundle_schema.DocumentError` naming the field (``adapter.<field>``,
        ``adapter.<array>``) for anything invalid; the loader reports it as a
        :class:`~genad.errors.ModelFormatError` naming the file.

        The bundle loader also uses two optional classmethods when an adapter has them:
        ``check_state(doc, where)``, which checks ``doc`` alone and returns the shape of
        one sample and each array's ``(dtype, shape)``, so that the file's tensors are
        checked before any is read; and ``check_params(params, where)``, which checks
        the constructor arguments a document gives (``params.adapter.params``).
        :class:`~genad.data.TabularAdapter` has both.
        """

    @classmethod
    def check_params(cls, params: Any, where: str = "params") -> None:
        """Check constructor arguments read from a model document, without fitting.

        ``fit`` checks them when it runs; a loaded model is not fitted again, so the
        loader checks what it reads against the same :attr:`parameter_constraints`.

        Raises
        ------
        DocumentError
            Naming the first argument that is unknown or breaks its rule.
        """
        from genad.bundle_schema import DocumentError

        for name, value in params.items():
            rule = cls.parameter_constraints.get(name)
            if rule is None:
                raise DocumentError(f"{where}.{name} is not a parameter of {cls.__name__}")
            try:
                rule.check(f"{where}.{name}", value)
            except InvalidInputError as exc:
                raise DocumentError(str(exc)) from None

    @property
    def sample_shape_(self) -> tuple[int, ...]:
        """Shape of one unit after :meth:`fit`."""
        raise AttributeError(f"{type(self).__name__} does not define sample_shape_")


#: kind -> adapter class; the bundle rebuilds an adapter through it
ADAPTERS: dict[str, type[Adapter]] = {}


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: list ``cls`` in :data:`ADAPTERS` under its ``kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    ADAPTERS[cls.kind] = cls
    return cls


def _what(X: Any) -> str:
    """A short description of an input for messages."""
    shape = getattr(X, "shape", None)
    if shape is not None:
        return f"{type(X).__name__} of shape {tuple(shape)}"
    if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__"):
        return repr(str(X))
    return type(X).__name__


#: kind -> the module of each built-in adapter, imported (and so registered) on first use;
#: named by path, so that this module imports none of the adapters built on it
BUILT_IN_ADAPTERS = {"tabular": "genad.data.tabular", "image": "genad.data.image"}


def _load_adapters() -> None:
    import importlib

    for module in BUILT_IN_ADAPTERS.values():
        importlib.import_module(module)


def kind_of(X: Any) -> str | None:
    """The kind of data ``X`` looks like: the first adapter that accepts it (the fallback
    last), or None.

    Examples
    --------
    >>> import numpy as np
    >>> kind_of(np.zeros((3, 2))), kind_of(np.zeros((3, 8, 8)))
    ('tabular', 'image')
    """
    _load_adapters()
    ordered = sorted(ADAPTERS.items(), key=lambda item: item[1].fallback)
    return next((kind for kind, cls in ordered if cls.accepts(X)), None)


def adapter_for(X: Any, kinds: Sequence[str] | None = None, who: str = "genad") -> Adapter:
    """A new, unfitted adapter for input ``X``: the first registered kind accepting it.

    Parameters
    ----------
    X : any
        The user's input.
    kinds : sequence of str, optional
        Only these adapter kinds (a detector that takes images only).
    who : str, default "genad"
        Who asks, for the error message.

    Raises
    ------
    InvalidInputError
        No adapter (of ``kinds``) reads ``X``; when another kind would, the message says
        which.

    Examples
    --------
    >>> import numpy as np
    >>> adapter_for(np.zeros((3, 2))).kind
    'tabular'
    """
    _load_adapters()
    ordered = sorted(ADAPTERS.items(), key=lambda item: item[1].fallback)
    for kind, cls in ordered:
        if (kinds is None or kind in kinds) and cls.accepts(X):
            return cls()
    other = kind_of(X)
    if other is not None:
        raise InvalidInputError(
            f"{who} takes {' or '.join(kinds or ())} input, but this looks like "
            f"{other} data ({_what(X)}); use a model for {other} data")
    raise InvalidInputError(
        f"cannot tell what kind of data {type(X).__name__} is; supported: "
        + ", ".join(sorted(ADAPTERS))
    )
