"""The public estimator: adapter x networks x model, one training loop, calibration.

Every detector follows one contract (scikit-learn compatible):

========================  ===============================================================
``fit(X, y=None)``        learns from normal data; rows with ``y == 1`` are left out
``anomaly_score(X)``      one finite float per row, higher = more anomalous
``anomaly_map(X)``        per-column contributions, summing to the score
``calibrate(...)``        sets ``threshold_`` without retraining
``p_value(X)``            split-conformal p-values against held-out normal scores
``predict(X)``            1 = anomaly, 0 = normal (like PyOD and the data sets' labels;
                          *not* scikit-learn's -1/+1 outlier tags)
``score_samples(X)``      scikit-learn convention: higher = more normal (``-anomaly_score``)
``decision_function(X)``  ``threshold_ - anomaly_score``: negative = anomalous
``save(path)``            one-file bundle; ``genad.load(path)`` reads it back
========================  ===============================================================
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone

from genad import calibration as cal
from genad import registry
from genad._params import (
    OPTIONAL_RATE,
    RATE,
    AutoOr,
    Constraint,
    Device,
    Flag,
    InstanceOf,
    Integer,
    IntegerList,
    OneOf,
    Real,
    StringList,
    Text,
    check_int,
    plain,
    validate_params,
)
from genad._text import name_list
from genad.data.base import Adapter, SampleSet, _what, adapter_for, kind_of
from genad.data.labels import check_labels
from genad.errors import (
    CalibrationWarning,
    GenadError,
    GenadWarning,
    InvalidInputError,
    NotFittedError,
    TrainingDivergedError,
)
from genad.models.base import GenerativeModel
from genad.models.ensemble import MemberAverage, member_seed
from genad.models.latent import LatentBank
from genad.nets import factory
from genad.nets.mlp import default_mlp_sizes
from genad.runtime import (
    cpu_threads,
    flops_per_sample,
    predict_in_batches,
)
from genad.training import TrainConfig, UnitBatches, auto_epochs, train_model

__all__ = ["Detector"]

#: held while a fit seeds the global torch RNG to initialise its network: weight
#: initialisation draws from that RNG, which every thread shares
_SEEDED_INIT = threading.Lock()

#: the tabular adapter options a detector also takes directly (documented shortcuts)
TABLE_SHORTCUTS = ("categorical_columns", "missing", "scaling")


def _concat(parts: list[Any]) -> Any:
    """Join the per-slice results of a chunked call (arrays, lists or DataFrames); maps
    of images of several sizes stay a list."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts)
    if any(isinstance(p, list) for p in parts) or len({p.shape[1:] for p in parts}) > 1:
        return [m for p in parts for m in p]
    return np.concatenate(parts)


class Detector(BaseEstimator):
    """Base class of genad detectors: adapter x backbone x model, composed.

    Subclasses set the model (:meth:`_build_model`); the adapter reads the data (a
    :class:`~genad.data.TabularAdapter` for tables, chosen from the input when not
    given) and everything else (validation, the training loop, calibration, scoring,
    bundles) lives here.

    Parameters
    ----------
    adapter : Adapter, optional
        How the input is read and encoded, e.g. ``TabularAdapter(scaling="standard")``.
        Its options are nested parameters (``adapter__scaling`` in ``set_params`` and
        grid searches). Default: chosen from the training input (a table here).
    backbone : str, default "auto"
        Network family: ``"auto"`` picks the one that suits the sample shape (``"mlp"``
        for table rows).
    hidden_sizes : list of int, optional
        Hidden layer widths of the encoder (the decoder mirrors them). Default: derived
        from the number of encoded features (:func:`genad.nets.default_mlp_sizes`).
    latent_dim : int, optional
        Bottleneck size. Default: derived from the number of encoded features.
    epochs : int, optional
        Maximum training epochs. Default: at least 4,000 optimisation steps (50 to 500
        epochs); early stopping usually ends training sooner.
    batch_size : int, default 256
    learning_rate : float, default 1e-3
    weight_decay : float, default 1e-5
    patience : int, default 10
        Epochs without improvement of the validation loss before stopping.
    weight_averaging : float, "auto" or None, default "auto"
        Validate, keep and return an exponential moving average of the weights over
        about this many epochs (Polyak averaging) instead of the raw weights of the best
        epoch. Averaging smooths out where the last optimiser steps happened to land, so
        runs that differ only in their seed score more alike. ``"auto"``: 2 epochs on
        images, off (None) on other data. The span used is ``weight_averaging_``.
    n_members : int, default 1
        Train this many networks, each from its own random start (initial weights,
        shuffling and training noise) on the same training split, and score with the
        mean of their scores and maps, each member's divided by its spread on the
        training data (a deep ensemble, :class:`genad.models.ensemble.MemberAverage`).
        Scores then depend less on the seed: the member-to-member luck averages out.
        Training and scoring cost ``n_members`` times as much; the bundle holds every
        member. ``history_`` is the first member's, plus ``member_epochs`` (the epochs
        each member ran).
    validation_fraction : float, default 0.1
        Share of the training normals held out for early stopping and calibration.
    target_fpr : float, default 0.01
        False-positive rate on held-out normals at which ``threshold_`` is set.
    contamination : float, optional
        If set, ``threshold_`` flags this fraction of the training normals instead.
    categorical_columns : list of str, optional
        Shortcut for ``adapter=TabularAdapter(categorical_columns=...)``: columns to treat
        as categorical whatever their dtype. Tables only.
    missing : {"impute", "raise"}, optional
        Shortcut for the tabular adapter's NaN policy (default there: ``"impute"``).
    scaling : {"robust", "standard"}, optional
        Shortcut for the tabular adapter's scaling (default there: ``"robust"``).
    device : str, default "auto"
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int, optional
        Seed for the split, initialisation and shuffling. The global torch RNG is left
        untouched.
    verbose : int, default 1
        0 is silent; 1 shows a progress bar when stderr is an interactive terminal;
        2 prints one line every few epochs on stderr (``epoch 10/50  loss ...  val ...``),
        terminal or not, for logs.

    Notes
    -----
    A shortcut and an ``adapter`` that both set the same option are refused: give it
    in one place. The shortcuts apply to tables only.
    """

    model_name: ClassVar[str] = "detector"
    #: parameter -> rule, checked by ``fit`` (subclasses extend it with their own)
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "adapter": InstanceOf("genad.data.base:Adapter", "a genad adapter (e.g. TabularAdapter())"),
        "backbone": Text(),  # "auto" or one of the class's backbones (_check_params)
        "hidden_sizes": IntegerList(1, allow_none=True),
        "latent_dim": Integer(1, allow_none=True),
        "epochs": Integer(1, allow_none=True),
        "batch_size": Integer(1),
        "learning_rate": Real(0.0, low_open=True),
        "weight_decay": Real(0.0),
        "patience": Integer(1),
        "weight_averaging": AutoOr(Real(0.0, low_open=True, allow_none=True)),
        "n_members": Integer(1),
        "validation_fraction": RATE,
        "target_fpr": RATE,
        "contamination": OPTIONAL_RATE,
        "categorical_columns": StringList(),
        "missing": OneOf(("impute", "raise"), allow_none=True),
        "scaling": OneOf(("robust", "standard"), allow_none=True),
        "device": Device(),
        "random_state": Integer(0, high=2**32 - 1, allow_none=True),
        "verbose": Flag(),
    }
    #: parameter -> the value that reproduces a bundle saved before the parameter existed
    #: (a bundle stores every parameter; one it lacks was made without that feature)
    params_before: ClassVar[dict[str, Any]] = {"weight_averaging": None}
    #: backbones this detector's model can use ("auto" means the first that takes the
    #: samples' rank)
    backbones: ClassVar[tuple[str, ...]] = ("mlp",)
    #: the kinds of data (adapter kinds) this detector takes; None = any
    modalities: ClassVar[tuple[str, ...] | None] = None
    #: what a hot spot of an image's anomaly map means, for reports ("the hotter the
    #: colour, ...")
    map_meaning: ClassVar[str] = "the worse the model reconstructed that spot"
    _registry: ClassVar[dict[str, type[Detector]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Detector._registry[cls.__name__] = cls

    def __init__(
        self,
        *,
        adapter: Adapter | None = None,
        backbone: str = "auto",
        hidden_sizes: list[int] | None = None,
        latent_dim: int | None = None,
        epochs: int | None = None,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        weight_averaging: float | str | None = "auto",
        n_members: int = 1,
        validation_fraction: float = 0.1,
        target_fpr: float = 0.01,
        contamination: float | None = None,
        categorical_columns: list[str] | None = None,
        missing: str | None = None,
        scaling: str | None = None,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.adapter = adapter
        self.backbone = backbone
        self.hidden_sizes = hidden_sizes
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.weight_averaging = weight_averaging
        self.n_members = n_members
        self.validation_fraction = validation_fraction
        self.target_fpr = target_fpr
        self.contamination = contamination
        self.categorical_columns = categorical_columns
        self.missing = missing
        self.scaling = scaling
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------- sklearn tags
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        tags.input_tags.allow_nan = self._table_option("missing", "impute") == "impute"
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _weight_averaging(self, adapter: Adapter) -> float | None:
        """The averaging span in epochs (None: off) that ``weight_averaging`` means here."""
        if isinstance(self.weight_averaging, str):  # "auto" (the constraint allows no other)
            return adapter.auto_weight_averaging
        return None if self.weight_averaging is None else float(self.weight_averaging)

    # ------------------------------------------------------- model definition
    def _build_model(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        raise NotImplementedError

    def _architecture(self, n_features: int) -> tuple[list[int], int]:
        hidden, latent = default_mlp_sizes(n_features)
        if self.hidden_sizes is not None:
            hidden = [int(h) for h in self.hidden_sizes]
        if self.latent_dim is not None:
            latent = int(self.latent_dim)
        return hidden, latent

    def _backbone(self) -> str:
        """The backbone in use: ``backbone``, or for ``"auto"`` the first of
        :attr:`backbones` that takes samples of ``sample_shape_``'s rank (images get
        ``"conv2d"``, tables ``"mlp"``)."""
        if self.backbone != "auto":
            return str(self.backbone)
        rank = len(getattr(self, "sample_shape_", (0,)))
        return next((name for name in self.backbones
                     if name in factory.BACKBONES and rank in factory.BACKBONES[name].ranks),
                    self.backbones[0])

    def _backbone_options(self, backbone: str) -> dict[str, Any]:
        """Keyword options for the backbone's builders (``hidden`` for ``"mlp"``)."""
        return {"hidden": self.hidden_sizes_} if backbone == "mlp" else {}

    def _network_summary(self) -> str | None:
        """One line that describes the fitted network, for ``genad info`` and reports
        (None when there is nothing to say), from the backbone in use: an MLP's layer
        widths, a convolution's input shape and latent size."""
        latent = getattr(self, "latent_dim_", None)
        backbone = self._backbone()
        if backbone == "conv2d":
            shape = getattr(self, "sample_shape_", None)
            if shape is None:
                return None
            width = self.get_params().get("conv_width")
            return ("2-D conv, " + " \u00d7 ".join(str(v) for v in shape)
                    + ("" if latent is None else f" \u2192 latent {latent}")
                    + ("" if width is None else f", first conv {width} channels"))
        n_in = getattr(getattr(self, "adapter_", None), "n_features_out_", None)
        if backbone == "conv1d":
            return (None if latent is None
                    else f"1-D conv, {n_in} features \u2192 latent {latent}")
        hidden = getattr(self, "hidden_sizes_", None)
        if hidden is None:
            return None
        return ("MLP, " + " \u2192 ".join(str(v) for v in [n_in, *hidden])
                + f" \u2192 latent {latent}")

    # ----------------------------------------------------------- the adapter
    def _table_option(self, name: str, default: Any) -> Any:
        """A tabular option's effective value: the shortcut, the adapter's, or ``default``."""
        value = getattr(self, name)
        if value is None and self.adapter is not None:
            value = self.adapter.get_params().get(name)
        return default if value is None else value

    def _make_adapter(self, X: Any) -> Adapter:
        """A fresh adapter for ``X``: a clone of ``adapter`` (or the one the input calls
        for, among :attr:`modalities`) with the tabular shortcuts applied."""
        if self.adapter is None:
            adapter = adapter_for(X, self.modalities, type(self).__name__)
        else:
            adapter = clone(self.adapter)
            if self.modalities is not None and adapter.kind not in self.modalities:
                raise InvalidInputError(
                    f"{type(self).__name__} takes {' or '.join(self.modalities)} input, but "
                    f"adapter= is a {adapter.kind} adapter")
        shortcuts = {k: getattr(self, k) for k in TABLE_SHORTCUTS if getattr(self, k) is not None}
        if not shortcuts:
            return adapter
        if adapter.kind != "tabular":
            raise InvalidInputError(
                f"{', '.join(shortcuts)} {'applies' if len(shortcuts) == 1 else 'apply'} "
                f"only to tables, but the {adapter.kind} adapter reads this input; set its "
                "options through adapter="
            )
        if self.adapter is not None:
            defaults = type(adapter)().get_params()
            given = self.adapter.get_params()
            for k in shortcuts:
                if given.get(k) != defaults.get(k):
                    raise InvalidInputError(
                        f"{k} is given twice: as {k}={plain(shortcuts[k])} and in adapter= "
                        f"({k}={plain(given[k])}); give it in one place"
                    )
        return adapter.set_params(**shortcuts)

    # ----------------------------------------------------------- validation
    def _check_params(self) -> None:
        """Every parameter against :attr:`parameter_constraints`, then the rules that
        involve several parameters or the class."""
        validate_params(self.get_params(deep=False), self.parameter_constraints)
        if self.backbone != "auto" and self.backbone not in self.backbones:
            raise InvalidInputError(
                f"backbone must be 'auto' or one of {', '.join(map(repr, self.backbones))} for "
                f"{type(self).__name__}, got {plain(self.backbone)}"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) first"
            )

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: Any, y: Any = None, *, X_val: Any = None, y_val: Any = None
    ) -> Detector:
        """Learn from normal data.

        Parameters
        ----------
        X : DataFrame, array-like, or path to a CSV / Parquet file
            Training samples, mostly normal.
        y : array-like of 0/1, optional
            Labels; samples with ``y == 1`` (known anomalies) are left out of training.
        X_val, y_val : optional
            Validation data. Its normal samples replace the random held-out slice (early
            stopping and calibration). When ``y_val`` holds anomalies, ``threshold_`` is
            the F1-optimal threshold on ``X_val``. ``y_val`` needs ``X_val`` and at least
            one normal sample (``y_val == 0``); both are checked before anything is
            encoded. ``X_val`` is read and encoded once.

        Returns
        -------
        self
        """
        self._check_params()
        adapter = self._make_adapter(X)
        noun, unit = adapter.data_noun, adapter.sample_noun
        val_data, val_labels = self._validation_data(adapter, X_val, y_val)
        data = adapter.read(X)
        n = adapter.n_samples(data)
        if n == 0:
            raise InvalidInputError(f"the training {noun} is empty (0 {unit}s)")
        if y is not None:
            labels = check_labels(y, n, "y")
            data = adapter.take(data, labels == 0)
            n = adapter.n_samples(data)
            if n == 0:
                raise InvalidInputError(
                    f"every training {unit} is labelled 1 (anomaly): no normals")
        if X_val is None and n < 2:
            raise InvalidInputError(
                f"need at least 2 normal training {unit}s (one for training, one held out), "
                f"got {n} sample"
            )
        samples = adapter.fit(data).samples(data)
        seed = (int(self.random_state) % (2**31 - 1) if self.random_state is not None
                else int(np.random.default_rng().integers(2**31 - 1)))
        rng = np.random.default_rng(seed)
        val_all = None
        if val_data is not None and val_labels is not None:
            val_all = adapter.samples(val_data)
            normal_units = np.flatnonzero((val_labels == 0)[val_all.owner])
            train_set, val_set = samples, val_all.subset(normal_units)
        else:
            train_set, val_set = adapter.holdout(samples, self.validation_fraction, rng)

        self.sample_shape_ = tuple(int(d) for d in adapter.sample_shape_)
        self.hidden_sizes_, self.latent_dim_ = self._architecture(
            math.prod(self.sample_shape_))
        epochs = self.epochs or auto_epochs(len(train_set), self.batch_size)
        self.adapter_ = adapter  # fitted: a model may read its scale (loss="ssim")
        models, histories = [], []
        for member in range(self.n_members):
            start = member_seed(seed, member)
            with _SEEDED_INIT, torch.random.fork_rng(devices=[]):
                torch.manual_seed(start)
                model = self._build_model(self.sample_shape_)
                noise_state = torch.get_rng_state()
            which = f"member {member + 1}/{self.n_members}" if self.n_members > 1 else ""
            description = f"genad {type(self).__name__}" + (f" ({which})" if which else "")
            config = TrainConfig(
                epochs=epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                weight_decay=self.weight_decay, patience=self.patience, device=self.device,
                verbose=self.verbose, random_state=start, description=description,
                noise_state=noise_state, average_epochs=self._weight_averaging(adapter),
                line_prefix=f"{which}  " if which else "",
            )
            try:
                histories.append(train_model(model, train_set, val_set, config))
            except TrainingDivergedError as exc:
                if self.n_members == 1:
                    raise
                raise TrainingDivergedError(
                    f"member {member + 1} of {self.n_members} (n_members): {exc}") from exc
            models.append(model)
        self.weight_averaging_ = config.average_epochs
        model, history = self._combine(models, histories, train_set, config)
        self.model_ = model
        self.history_ = history
        if adapter.learns_maps:
            self._fit_maps(train_set)
        self.n_epochs_ = len(history["train_loss"])
        n_in = getattr(adapter, "n_features_in_", None)
        if n_in is not None:
            self.n_features_in_ = int(n_in)
        names = getattr(adapter, "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if val_all is not None and val_labels is not None:
            val_scores = self._scores(val_all)
            self.calibration_scores_ = val_scores[val_labels == 0]
        else:
            self.calibration_scores_ = self._scores(val_set)
        self.train_scores_ = self._scores(train_set)
        if val_all is not None and val_labels is not None and val_labels.any():
            self._set_threshold(cal.f1_optimal_threshold(val_scores, val_labels), "f1_optimal",
                                None)
        elif self.contamination is not None:
            self._set_threshold(
                cal.threshold_at_contamination(self.train_scores_, self.contamination),
                "contamination", self.contamination,
            )
        else:
            if val_data is not None and y_val is not None:
                warnings.warn("y_val holds no anomaly: threshold set at target_fpr instead of "
                              "F1-optimal", CalibrationWarning, stacklevel=2)
            self._set_threshold(
                cal.threshold_at_fpr(self.calibration_scores_, self.target_fpr, strict=False,
                                     stacklevel=3),
                "target_fpr", self.target_fpr,
            )
        if history.get("hit_epoch_cap"):
            warnings.warn(
                f"training stopped at the epoch cap ({self.n_epochs_} epoch"
                f"{'s' if self.n_epochs_ != 1 else ''}) while the "
                "validation loss was still improving; more epochs (epochs=, or --epochs in "
                "the CLI) may give a better model", GenadWarning, stacklevel=2,
            )
        return self

    @staticmethod
    def _combine(models: list[GenerativeModel], histories: list[dict[str, Any]],
                 train_set: SampleSet, config: TrainConfig
                 ) -> tuple[GenerativeModel, dict[str, Any]]:
        """The fitted model and its history: the one member's, or the members' average
        (scales fitted on the training units) with the first member's history and
        ``member_epochs``."""
        if len(models) == 1:
            return models[0], histories[0]
        device = next(iter(models[0].parameters())).device
        ensemble = MemberAverage(models).to(device).eval()
        ensemble.fit_scales(UnitBatches(train_set, device, config.batch_size,
                                        config.num_workers))
        history = {**histories[0],
                   "member_epochs": [len(h["train_loss"]) for h in histories],
                   "hit_epoch_cap": any(h.get("hit_epoch_cap", False) for h in histories)}
        return ensemble, history

    def _network(self, sample_shape: tuple[int, ...]) -> GenerativeModel:
        """The (unfitted) model ``n_members`` describes: one model, or their average."""
        if self.n_members == 1:
            return self._build_model(sample_shape)
        return MemberAverage([self._build_model(sample_shape)
                              for _ in range(self.n_members)])

    @staticmethod
    def _validation_data(adapter: Adapter, X_val: Any, y_val: Any
                         ) -> tuple[Any, np.ndarray | None]:
        """``fit``'s validation data (read once) and its 0/1 labels, checked before
        anything is encoded."""
        if X_val is None:
            if y_val is not None:
                raise InvalidInputError("y_val was given without X_val; pass both or neither")
            return None, None
        data = adapter.read(X_val)
        n = adapter.n_samples(data)
        unit = adapter.sample_noun
        if n == 0:
            raise InvalidInputError(f"X_val is empty (0 {unit}s)")
        if y_val is None:
            return data, np.zeros(n, dtype=np.int8)
        labels = check_labels(y_val, n, "y_val")
        if not (labels == 0).any():
            raise InvalidInputError(
                f"y_val labels every X_val {unit} 1: no normal validation {unit}s to calibrate "
                f"on; add normal {unit}s (y_val == 0) to X_val"
            )
        return data, labels

    def _set_threshold(self, value: float, method: str, setting: float | None) -> None:
        self.threshold_ = float(value)
        self.threshold_method_ = method
        self.threshold_setting_ = setting

    # -------------------------------------------------------------- scoring
    def _device(self) -> torch.device:
        return next(iter(self.model_.parameters())).device

    def _cpu_threads(self) -> cpu_threads:
        """The thread rule for scoring (FLOPs per sample counted once per model)."""
        model = self.model_
        flops = model.__dict__.get("_genad_flops")
        if flops is None:
            flops = flops_per_sample(model, self.sample_shape_)
            model.__dict__["_genad_flops"] = flops
        return cpu_threads(model, self._device(), flops)

    def _run(self, fn: Any, samples: SampleSet) -> torch.Tensor:
        """``fn`` over every unit of ``samples`` in fixed-shape batches."""
        with self._cpu_threads() as threads:
            return predict_in_batches(fn, samples.stacked(), self._device(),
                                      self.adapter_.score_batch_size, workers=threads.workers)

    def _scores(self, samples: SampleSet) -> np.ndarray:
        """One finite float64 score per user sample of ``samples``."""
        if self.adapter_.scores_need_maps:
            scores, maps = self._unit_scores_and_maps(samples)
            return self.adapter_.reduce(scores, samples, maps)
        units = self._run(self.model_.score, samples).double().numpy()
        self._check_finite(units)
        return self.adapter_.reduce(units, samples)

    def _unit_scores_and_maps(self, samples: SampleSet) -> tuple[np.ndarray, np.ndarray]:
        """The model's scores and maps of every unit (:meth:`GenerativeModel.infer`)."""
        scores, maps = self._run(self.model_.infer, samples)
        scores, maps = scores.double().numpy(), maps.double().numpy()
        self._check_finite(scores)
        self._check_finite(maps)
        return scores, maps

    def _scores_and_maps(self, samples: SampleSet) -> tuple[np.ndarray, Any]:
        """Scores and maps of ``samples`` from one pass through the model; the scores
        equal ``anomaly_score`` exactly."""
        scores, maps = self._unit_scores_and_maps(samples)
        unit_maps = maps if self.adapter_.scores_need_maps else None
        return (self.adapter_.reduce(scores, samples, unit_maps),
                self.adapter_.to_map(maps, samples))

    def _fit_maps(self, train_set: SampleSet) -> None:
        """Let the adapter learn its map statistics from the training set's maps (a
        chunk of its user samples at a time)."""
        adapter = self.adapter_
        step = max(1, adapter.score_chunk_size)
        owners = np.asarray(train_set.owner)

        def parts() -> Iterator[tuple[np.ndarray, SampleSet]]:
            for start in range(0, train_set.n_samples, step):
                units = np.flatnonzero((owners >= start) & (owners < start + step))
                part = train_set.subset(units)
                yield self._unit_scores_and_maps(part)[1], part

        adapter.fit_maps(parts())

    @staticmethod
    def _check_finite(values: np.ndarray) -> None:
        if not np.all(np.isfinite(values)):
            i = int(np.argmin(np.isfinite(values.reshape(len(values), -1)).all(axis=1)))
            raise GenadError(
                f"the model produced a non-finite score for sample {i}; this is a bug, please "
                "report it with the sample"
            )

    def _chunks(self, X: Any) -> Iterator[SampleSet]:
        """``X`` encoded in slices of the adapter's chunk size (memory does not grow with
        the input)."""
        fitted = self.adapter_.kind
        looks = kind_of(X)
        if looks is not None and looks != fitted and not type(self.adapter_).accepts(X):
            from genad.data.base import ADAPTERS

            noun = ADAPTERS[looks].data_noun
            article = "an" if noun[:1] in "aeiou" else "a"
            raise InvalidInputError(
                f"this {type(self).__name__} was fitted on {fitted} data, but X looks like "
                f"{article} {noun} ({_what(X)}); score it with a model fitted on {looks} data")
        self.adapter_.check_input(X, type(self).__name__)
        yield from self.adapter_.chunks(X, self.adapter_.score_chunk_size)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """One float per sample, higher = more anomalous; always finite.

        Examples
        --------
        >>> import numpy as np, genad
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
        >>> det.anomaly_score(X[:3]).shape
        (3,)
        """
        self._check_fitted()
        parts = [self._scores(samples) for samples in self._chunks(X)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def anomaly_map(self, X: Any) -> np.ndarray | pd.DataFrame:
        """Each input element's contribution to each sample's score.

        For tables: each column's contribution to each row's score (rows sum to the
        score); one-hot parts of a categorical column are summed back to that column.
        Returns a DataFrame (columns named, index kept) when the detector was fitted on a
        DataFrame or file, else an ndarray ``(n_rows, n_kept_columns)``.

        For images: a per-pixel map at each image's original size (float32), smoothed and
        standardised with the training images' map statistics (``docs/images.md``): an
        array ``(n, H, W)`` when the images share a size, else a list of 2-D arrays.
        """
        self._check_fitted()
        return _concat([self._scores_and_maps(samples)[1] for samples in self._chunks(X)])

    def _score_and_map(self, X: Any) -> tuple[np.ndarray, np.ndarray | pd.DataFrame]:
        """``(anomaly_score(X), anomaly_map(X))`` from one pass through the model."""
        self._check_fitted()
        parts = [self._scores_and_maps(samples) for samples in self._chunks(X)]
        return _concat([p[0] for p in parts]), _concat([p[1] for p in parts])

    def explain(self, X: Any, top_k: int = 3) -> pd.DataFrame:
        """Score table: ``anomaly_score``, ``p_value``, ``is_anomaly``, ``top_features``.

        ``top_k`` (an integer >= 1) contributors are listed per sample; all of them when
        the model has fewer.
        """
        check_int("top_k", top_k, low=1)
        self._check_fitted()
        parts = [self._explain(samples, top_k) for samples in self._chunks(X)]
        return parts[0] if len(parts) == 1 else pd.concat(parts)

    def explain_chunks(self, X: Any, top_k: int = 3) -> Iterator[tuple[pd.DataFrame, Any]]:
        """:meth:`explain`'s table and :meth:`anomaly_map`'s maps, a chunk of ``X`` at a
        time (for streaming consumers such as ``genad score``, which draws overlays of
        flagged images); memory stays bounded by the adapter's chunk size.

        Yields
        ------
        table : DataFrame
            As :meth:`explain` gives for the chunk's samples.
        maps : ndarray, DataFrame or list of ndarray
            As :meth:`anomaly_map` gives for them.
        """
        check_int("top_k", top_k, low=1)
        self._check_fitted()
        for samples in self._chunks(X):
            yield self._explain(samples, top_k, with_maps=True)

    def _explain(self, samples: SampleSet, top_k: int, with_maps: bool = False) -> Any:
        scores, maps = self._scores_and_maps(samples)
        table = pd.DataFrame(
            {
                "anomaly_score": scores,
                "p_value": cal.conformal_p_values(self.calibration_scores_, scores),
                "is_anomaly": (scores > self.threshold_).astype(np.int8),
                "top_features": self.adapter_.describe(maps, top_k),
            },
            index=self.adapter_.index(samples),
        )
        return (table, maps) if with_maps else table

    def sample(self, n: int, *, random_state: int | None = 0) -> Any:
        """``n`` samples drawn from the fitted generative model: what it thinks normal
        data looks like (images: an array ``(n, H, W)`` or ``(n, H, W, C)`` in ``[0, 1]``
        at the model's size).

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        random_state : int or None, default 0
            Seed of the draws (the same seed gives the same samples).

        Raises
        ------
        InvalidInputError
            The model cannot generate (a plain autoencoder has no prior to sample), or
            the adapter cannot turn model units back into data.
        """
        check_int("n", n, low=1)
        self._check_fitted()
        sampler = getattr(self.model_, "sample", None)
        to_data = getattr(self.adapter_, "to_data", None)
        if to_data is None:
            raise InvalidInputError(
                f"{type(self).__name__} on {self.adapter_.kind} data cannot generate samples: "
                "samples turn back into data only for images")
        if sampler is None:
            raise InvalidInputError(self._cannot_generate(
                f"{type(self).__name__} cannot generate samples"))
        seed = 0 if random_state is None else int(random_state)
        gen = torch.Generator(device=self._device()).manual_seed(seed)
        self.model_.eval()
        with torch.no_grad():
            try:
                units = sampler(int(n), gen)
            except NotImplementedError as exc:
                raise InvalidInputError(self._cannot_generate(
                    str(exc) or f"{type(self).__name__} cannot generate samples")) from None
        return to_data(units.detach().cpu().double().numpy())

    def _cannot_generate(self, reason: str) -> str:
        """``reason``, plus the presets that generate this adapter's kind of data."""
        able = registry.names(self.adapter_.kind, generates=True)
        return f"{reason}; models that can: {name_list(able)}" if able else reason

    def predict(self, X: Any) -> np.ndarray:
        """1 = anomaly (score above ``threshold_``), 0 = normal."""
        self._check_fitted()
        return (self.anomaly_score(X) > self.threshold_).astype(np.int64)

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn convention: higher = more normal (``-anomaly_score``)."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``threshold_ - anomaly_score``: negative values are anomalies."""
        self._check_fitted()
        return self.threshold_ - self.anomaly_score(X)

    def p_value(self, X: Any) -> np.ndarray:
        """Split-conformal p-values against the held-out normal calibration scores."""
        self._check_fitted()
        return cal.conformal_p_values(self.calibration_scores_, self.anomaly_score(X))

    # ---------------------------------------------------------- calibration
    def calibrate(
        self,
        X: Any = None,
        y: Any = None,
        *,
        target_fpr: float | None = None,
        contamination: float | None = None,
    ) -> Detector:
        """Set ``threshold_`` without retraining.

        - ``calibrate(target_fpr=0.05)``: re-threshold on the stored held-out normals.
        - ``calibrate(X_normal, target_fpr=0.05)``: new normal data (rows with ``y == 1``
          are left out) become the calibration set (used by ``p_value`` too).
        - ``calibrate(X, y)`` with anomalies in ``y``: the F1-optimal threshold on ``X``.
        - ``calibrate(X, contamination=0.02)``: flag that fraction of ``X``.

        Raises
        ------
        InvalidInputError
            A rate outside (0, 1), or ``target_fpr`` below ``1 / n`` of the calibration set.
        """
        self._check_fitted()
        if target_fpr is not None and contamination is not None:
            raise InvalidInputError("give target_fpr or contamination, not both")
        if X is None:
            if contamination is not None:
                raise InvalidInputError("contamination needs data X to take a fraction of")
            fpr = self.target_fpr if target_fpr is None else target_fpr
            self._set_threshold(cal.threshold_at_fpr(self.calibration_scores_, fpr), "target_fpr",
                                fpr)
            return self
        scores = self.anomaly_score(X)
        labels = (check_labels(y, len(scores), "y") if y is not None
                  else np.zeros(len(scores), np.int8))
        if contamination is not None:
            self._set_threshold(cal.threshold_at_contamination(scores, contamination),
                                "contamination", contamination)
        elif target_fpr is None and labels.any():
            self._set_threshold(cal.f1_optimal_threshold(scores, labels), "f1_optimal", None)
        else:
            fpr = self.target_fpr if target_fpr is None else target_fpr
            normal = scores[labels == 0]
            if normal.size == 0:
                raise InvalidInputError("X holds no normal row (y == 0) to calibrate on")
            threshold = cal.threshold_at_fpr(normal, fpr)
            self.calibration_scores_ = normal
            self._set_threshold(threshold, "target_fpr", fpr)
        return self

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return super().__repr__(N_CHAR_MAX)

    # ---------------------------------------------------------------- I/O
    #: the fitted attributes a bundle stores (``n_features_in_`` when the adapter sets it)
    _BUNDLE_FITTED: ClassVar[tuple[str, ...]] = (
        "hidden_sizes_", "latent_dim_", "n_features_in_", "n_epochs_", "threshold_",
        "threshold_method_", "threshold_setting_", "weight_averaging_")

    def save(self, path: str | Path, *, key: str | bytes | None = None) -> Path:
        """Write the fitted detector to one ``.genad`` file (safetensors, no pickle).

        The file holds the network's weights, the adapter's state, the held-out
        calibration scores and a JSON document (class, parameters, fitted attributes,
        history); ``docs/bundle.md`` describes it.

        Parameters
        ----------
        path : str or Path
            Target file; ``.genad`` is appended when missing, folders are created.
        key : str or bytes, optional
            Sign the file (HMAC-SHA256); ``genad.load(path, key=key)`` then checks it.

        Returns
        -------
        Path
            The written file.

        Raises
        ------
        OutputError
            The file cannot be written; the message names the path.
        """
        from genad import __version__, bundle

        self._check_fitted()
        state, arrays = self.adapter_.get_state()
        tensors: dict[str, Any] = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        tensors.update({f"adapter.{k}": v for k, v in arrays.items()})
        tensors["calibration.scores"] = np.asarray(self.calibration_scores_, dtype=np.float64)
        params = self.get_params(deep=False)
        if params.get("adapter") is not None:
            params["adapter"] = {"kind": params["adapter"].kind,
                                 "params": params["adapter"].get_params(deep=False)}
        document = {
            "detector": type(self).__name__,
            "params": params,
            "fitted": {k: getattr(self, k) for k in self._BUNDLE_FITTED if hasattr(self, k)},
            "feature_names_in": getattr(self, "feature_names_in_", None),
            "adapter_kind": self.adapter_.kind,
            "sample_shape": list(self.sample_shape_),
            "adapter": state,
            "history": self.history_,
        }
        return bundle.write(path, document, tensors, versions={"genad": __version__}, key=key,
                            check=Detector._check_document)

    @classmethod
    def load(cls, path: str | Path, *, key: str | bytes | None = None) -> Detector:
        """Load a detector saved with :meth:`save`, on the CPU (``genad.load``).

        Nothing in the file is trusted: the document is checked field by field, the
        detector is rebuilt from the parameters its class accepts and only those, each
        fitted attribute is set after its check, and the tensors' names, dtypes and shapes
        are compared with the network the document describes (built on PyTorch's
        ``meta`` device, without memory) before any tensor is read.

        Parameters
        ----------
        path : str or Path
            A ``.genad`` file, written by this genad or an older one.
        key : str or bytes, optional
            Accept only a bundle signed with this key (``save(path, key=...)``). Without
            a key a signed bundle loads too; its signature is then not checked.

        Returns
        -------
        Detector
            The fitted detector of the class the file names, ready to score. Called on a
            subclass (``genad.VAE.load``), the file must hold that class or one of its
            subclasses.

        Raises
        ------
        ModelFormatError
            The file is missing, unreadable, truncated, modified, invalid, from a newer
            format, of another class than asked, or, with a key, unsigned or signed with
            another key.

        Examples
        --------
        >>> import numpy as np, genad, tempfile, os
        >>> X = np.random.default_rng(0).normal(size=(100, 3))
        >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
        >>> path = det.save(os.path.join(tempfile.mkdtemp(), "model.genad"), key="secret")
        >>> bool(np.array_equal(genad.load(path, key="secret").anomaly_score(X),
        ...                     det.anomaly_score(X)))
        True
        """
        from genad import bundle
        from genad.bundle_schema import DocumentError
        from genad.errors import ModelFormatError

        path = Path(path)
        doc = bundle.read_document(path, key=key, check=Detector._check_document)
        try:
            found = Detector._bundle_class(doc["detector"])
            if not issubclass(found, cls):
                raise ModelFormatError(f"{path} holds a {found.__name__}, not a {cls.__name__}; "
                                       "load it with genad.load")
            return found._from_bundle(path, doc)
        except DocumentError as exc:
            raise bundle.invalid(path, exc) from exc

    @staticmethod
    def _check_document(body: dict[str, Any], version: int) -> None:
        """The bundle check of the detector's fields (``bundle.read_document``'s ``check``):
        the detector-level schema, then the adapter's state, by the adapter's class."""
        from genad.bundle_schema import DocumentError, validate_document

        validate_document(body, version)
        adapter_cls = Detector._bundle_adapter_class(body)
        check_state = getattr(adapter_cls, "check_state", None)
        if check_state is None:  # the adapter checks its state in from_state only
            return
        sample_shape, _ = check_state(body["adapter"], "adapter")
        if "sample_shape" in body and tuple(body["sample_shape"]) != tuple(sample_shape):
            raise DocumentError(f"sample_shape is {body['sample_shape']} but the adapter state "
                                f"describes samples of shape {list(sample_shape)}")

    @staticmethod
    def _bundle_adapter_class(body: dict[str, Any]) -> type[Adapter]:
        """The adapter class of a document: ``adapter_kind`` (format 1: tables)."""
        from genad.bundle_schema import DocumentError
        from genad.data.base import ADAPTERS, _load_adapters

        _load_adapters()
        kind = body.get("adapter_kind", "tabular")
        adapter_cls = ADAPTERS.get(kind)
        if adapter_cls is None:
            raise DocumentError(f"adapter_kind {kind!r} is not a known adapter; known: "
                                + ", ".join(map(repr, sorted(ADAPTERS))))
        return adapter_cls

    @staticmethod
    def _bundle_class(name: str) -> type[Detector]:
        """The detector class a document names: a preset's (:mod:`genad.registry`), else a
        subclass defined in this process (:attr:`_registry`). Never imported by name."""
        from genad.bundle_schema import DocumentError

        found = next((p.load_class() for p in registry.PRESETS.values()
                      if p.class_name == name), None)
        if found is None:
            found = Detector._registry.get(name)
        if not (isinstance(found, type) and issubclass(found, Detector)):
            raise DocumentError(f"unknown detector class {name!r}")
        return found

    @classmethod
    def _from_bundle(cls, path: Path, doc: dict[str, Any]) -> Detector:
        """The detector a checked document describes, with the file's tensors."""
        from genad import bundle
        from genad.bundle_schema import DocumentError
        from genad.data.tabular import TabularAdapter

        # the parameters: only the constructor's, each checked
        params = {**cls.params_before, **doc["params"]}
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise DocumentError(f"params.{unknown[0]} is not a parameter of {cls.__name__}")
        TabularAdapter.check_params({k: params[k] for k in TABLE_SHORTCUTS
                                     if params.get(k) is not None})
        if params.get("adapter") is not None:
            params["adapter"] = Detector._bundle_adapter_param(params["adapter"])
        device = params.pop("device", "auto")
        if device != "auto":
            try:
                torch.device(device)
            except (RuntimeError, TypeError, ValueError):
                raise DocumentError(f"params.device {device!r} is not a torch device") from None
        det = cls(**params, device="cpu")  # a model trained on a GPU loads on any machine
        try:
            det._check_params()
        except InvalidInputError as exc:
            raise DocumentError(f"params: {exc}") from None
        det.device = device

        # the fitted attributes, one by one
        fitted = doc["fitted"]
        det.hidden_sizes_ = [int(h) for h in fitted["hidden_sizes_"]]
        det.latent_dim_ = int(fitted["latent_dim_"])
        if "n_features_in_" in fitted:
            det.n_features_in_ = int(fitted["n_features_in_"])
        det.n_epochs_ = int(fitted["n_epochs_"])
        if "weight_averaging_" in fitted:
            span = fitted["weight_averaging_"]
            det.weight_averaging_ = None if span is None else float(span)
        setting = fitted["threshold_setting_"]
        det._set_threshold(float(fitted["threshold_"]), fitted["threshold_method_"],
                           None if setting is None else float(setting))
        if doc["feature_names_in"] is not None:
            det.feature_names_in_ = np.asarray(doc["feature_names_in"], dtype=object)
        det.history_ = {k: list(v) if isinstance(v, list) else v
                        for k, v in doc["history"].items()}

        # the tensors: their header against the network the document describes, first
        adapter_cls = Detector._bundle_adapter_class(doc)
        check_state = getattr(adapter_cls, "check_state", None)
        adapter_specs: dict[str, Any] | None = None
        sample_shape = tuple(doc.get("sample_shape", ()))
        if check_state is not None:
            state_shape, adapter_specs = check_state(doc["adapter"], "adapter")
            sample_shape = tuple(state_shape)  # format 1: the only source of the shape
        det.sample_shape_ = sample_shape  # "auto" picks the backbone by the samples' rank
        header = bundle.read_header(path)
        expected = det._bundle_expected(header, sample_shape, adapter_specs)
        tensors = bundle.read(path, doc, expected)
        scores = tensors["calibration.scores"].numpy().astype(np.float64)
        if not np.isfinite(scores).all():
            i = int(np.flatnonzero(~np.isfinite(scores))[0])
            raise DocumentError(f"tensor 'calibration.scores' must be finite, but entry {i} "
                                f"is {scores[i]!r}")
        arrays = {k[len("adapter."):]: v.numpy() for k, v in tensors.items()
                  if k.startswith("adapter.")}
        adapter = adapter_cls.from_state(doc["adapter"], arrays)
        det._check_bundle_adapter(adapter, sample_shape)
        try:
            model = det._network(sample_shape)
            state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
            model.load_state_dict(state, strict=True)
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise DocumentError(f"the network cannot be rebuilt ({exc})") from exc
        det.adapter_ = adapter
        det.sample_shape_ = sample_shape
        det.calibration_scores_ = scores
        model.eval()
        det.model_ = model
        return det

    @staticmethod
    def _bundle_adapter_param(value: dict[str, Any]) -> Adapter:
        """The unfitted adapter a document's ``params.adapter`` describes."""
        from genad.bundle_schema import DocumentError
        from genad.data.base import ADAPTERS, _load_adapters

        _load_adapters()
        adapter_cls = ADAPTERS.get(value["kind"])
        if adapter_cls is None:
            raise DocumentError(f"params.adapter.kind {value['kind']!r} is not a known adapter")
        inner = dict(value["params"])
        unknown = sorted(set(inner) - set(adapter_cls._get_param_names()))
        if unknown:
            raise DocumentError(f"params.adapter.params.{unknown[0]} is not a parameter of "
                                f"{adapter_cls.__name__}")
        check_params = getattr(adapter_cls, "check_params", None)
        if check_params is not None:
            check_params(inner, "params.adapter.params")
        return adapter_cls(**inner)

    def _bundle_expected(self, header: dict[str, tuple[str, tuple[int, ...]]],
                         sample_shape: tuple[int, ...],
                         adapter_specs: dict[str, Any] | None) -> dict[str, Any]:
        """Names, dtypes and shapes of the tensors the document describes.

        The network is built on the ``meta`` device: it has shapes but no storage, so a
        document describing a huge network costs nothing.
        """
        from genad.bundle_schema import DocumentError

        n_stored = sum(k.startswith("model.") for k in header)
        if len(self.hidden_sizes_) > n_stored:  # each layer has at least one tensor
            raise DocumentError(
                f"fitted.hidden_sizes_ describes {len(self.hidden_sizes_)} layers but the file "
                f"holds {n_stored} network tensors"
            )
        try:
            with torch.device("meta"):
                model = self._network(sample_shape)
        except Exception as exc:
            raise DocumentError(f"the network it describes cannot be built ({exc})") from None
        expected: dict[str, Any] = {f"model.{k}": (v.dtype, tuple(v.shape))
                                    for k, v in model.state_dict().items()}
        for name, module in model.named_modules():  # a latent bank keeps its saved size
            if isinstance(module, LatentBank):
                key = f"model.{name}.codes"
                dtype, shape = expected[key]
                expected[key] = (dtype, (None, *shape[1:]))
        if adapter_specs is None:  # the adapter checks its arrays in from_state
            expected.update({k: None for k in header if k.startswith("adapter.")})
        else:
            expected.update({f"adapter.{k}": spec for k, spec in adapter_specs.items()})
        expected["calibration.scores"] = (np.float64, (None,))
        return expected

    def _check_bundle_adapter(self, adapter: Adapter, sample_shape: tuple[int, ...]) -> None:
        """The rebuilt adapter agrees with the detector's fields of the document."""
        from genad.bundle_schema import DocumentError

        if tuple(adapter.sample_shape_) != sample_shape:
            raise DocumentError(f"sample_shape is {list(sample_shape)} but the adapter encodes "
                                f"samples of shape {list(adapter.sample_shape_)}")
        n_in = getattr(adapter, "n_features_in_", None)
        if getattr(self, "n_features_in_", None) != n_in:
            raise DocumentError(f"fitted.n_features_in_ is {getattr(self, 'n_features_in_', None)}"
                                f" but the adapter state describes {n_in} input features")
        names = getattr(adapter, "feature_names_in_", None)
        mine = getattr(self, "feature_names_in_", None)
        if (names is None) != (mine is None) or (names is not None and list(mine) != list(names)):
            raise DocumentError("feature_names_in differs from the adapter's input columns")
