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

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from genad import calibration as cal
from genad._params import check_int, check_number, plain
from genad.contributions import top_contributions
from genad.data.labels import check_labels
from genad.data.tabular import TabularAdapter, read_table
from genad.errors import (
    CalibrationWarning,
    GenadError,
    GenadWarning,
    InvalidInputError,
    NotFittedError,
    warnings_once,
)
from genad.models.base import GenerativeModel
from genad.nets.mlp import default_mlp_sizes
from genad.runtime import (
    SCORE_BATCH,
    cpu_threads,
    flops_per_sample,
    predict_in_batches,
    resolve_device,
)
from genad.training import TrainConfig, auto_epochs, train_model

__all__ = ["Detector", "top_contributions"]

#: held while a fit seeds the global torch RNG to initialise its network: weight
#: initialisation draws from that RNG, which every thread shares
_SEEDED_INIT = threading.Lock()

#: rows encoded and scored at a time by anomaly_score, anomaly_map and explain: peak
#: memory grows with this, not with the table (a multiple of the inference batch)
SCORE_CHUNK = 16 * SCORE_BATCH


def _rows(data: pd.DataFrame | np.ndarray, mask: np.ndarray) -> pd.DataFrame | np.ndarray:
    rows = np.flatnonzero(mask)
    return data.iloc[rows] if isinstance(data, pd.DataFrame) else data[rows]


def _named(X: Any) -> bool:
    """Whether ``X`` brings column names (a DataFrame or a file) rather than positions."""
    return isinstance(X, (pd.DataFrame, str, Path))


def _concat(parts: list[Any]) -> Any:
    """Join the per-slice results of a chunked call (arrays or DataFrames)."""
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts) if isinstance(parts[0], pd.DataFrame) else np.concatenate(parts)


def _validation_rows(X_val: Any, y_val: Any) -> tuple[Any, np.ndarray | None]:
    """``fit``'s validation rows (a DataFrame, or an ndarray for array input) and their
    0/1 labels, checked before anything is encoded."""
    if X_val is None:
        if y_val is not None:
            raise InvalidInputError("y_val was given without X_val; pass both or neither")
        return None, None
    val_df = read_table(X_val)
    if len(val_df) == 0:
        raise InvalidInputError("X_val is empty (0 rows)")
    val = val_df if _named(X_val) else val_df.to_numpy()
    if y_val is None:
        return val, np.zeros(len(val_df), dtype=np.int8)
    labels = check_labels(y_val, len(val_df), "y_val")
    if not (labels == 0).any():
        raise InvalidInputError(
            "y_val labels every X_val row 1: no normal validation rows to calibrate on; "
            "add normal rows (y_val == 0) to X_val"
        )
    return val, labels


class Detector(BaseEstimator):
    """Base class of genad detectors (tabular data).

    Subclasses set the model (:meth:`_build_model`); everything else (validation,
    training loop, calibration, scoring, bundles) lives here.

    Parameters
    ----------
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
    validation_fraction : float, default 0.1
        Share of the training normals held out for early stopping and calibration.
    target_fpr : float, default 0.01
        False-positive rate on held-out normals at which ``threshold_`` is set.
    contamination : float, optional
        If set, ``threshold_`` flags this fraction of the training normals instead.
    categorical_columns : list of str, optional
        Columns to treat as categorical whatever their dtype.
    missing : {"impute", "raise"}, default "impute"
        NaN policy (see :class:`genad.data.TabularAdapter`).
    scaling : {"robust", "standard"}, default "robust"
    device : str, default "auto"
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int, optional
        Seed for the split, initialisation and shuffling. The global torch RNG is left
        untouched.
    verbose : int, default 1
        0 is silent; 1 shows a progress bar when stderr is an interactive terminal;
        2 prints one line every few epochs on stderr (``epoch 10/50  loss ...  val ...``),
        terminal or not, for logs.
    """

    model_name: ClassVar[str] = "detector"
    _registry: ClassVar[dict[str, type[Detector]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Detector._registry[cls.__name__] = cls

    def __init__(
        self,
        *,
        hidden_sizes: list[int] | None = None,
        latent_dim: int | None = None,
        epochs: int | None = None,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.1,
        target_fpr: float = 0.01,
        contamination: float | None = None,
        categorical_columns: list[str] | None = None,
        missing: str = "impute",
        scaling: str = "robust",
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
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
        tags.input_tags.allow_nan = self.missing == "impute"
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------- model definition
    def _build_model(self, n_features: int) -> GenerativeModel:
        raise NotImplementedError

    def _architecture(self, n_features: int) -> tuple[list[int], int]:
        hidden, latent = default_mlp_sizes(n_features)
        if self.hidden_sizes is not None:
            hidden = [int(h) for h in self.hidden_sizes]
        if self.latent_dim is not None:
            latent = int(self.latent_dim)
        return hidden, latent

    # ----------------------------------------------------------- validation
    def _check_params(self) -> None:
        check_int("epochs", self.epochs, low=1, allow_none=True)
        check_int("batch_size", self.batch_size, low=1)
        check_int("patience", self.patience, low=1)
        check_int("latent_dim", self.latent_dim, low=1, allow_none=True)
        if self.hidden_sizes is not None:
            if isinstance(self.hidden_sizes, (int, np.integer)):
                raise InvalidInputError(
                    f"hidden_sizes must be a list of integers, got {plain(self.hidden_sizes)}"
                )
            for h in self.hidden_sizes:
                check_int("hidden_sizes entries", h, low=1)
        check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0.0)
        cal.check_rate(self.validation_fraction, "validation_fraction")
        cal.check_rate(self.target_fpr, "target_fpr")
        if self.contamination is not None:
            cal.check_rate(self.contamination, "contamination")
        try:
            resolve_device(self.device)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        check_int("random_state", self.random_state, low=0, allow_none=True)
        if self.random_state is not None and self.random_state >= 2**32:
            raise InvalidInputError(f"random_state must be below 2**32, got {self.random_state}")
        if not isinstance(self.verbose, bool):
            check_int("verbose", self.verbose, low=0)

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
            Training rows, mostly normal.
        y : array-like of 0/1, optional
            Labels; rows with ``y == 1`` (known anomalies) are left out of training.
        X_val, y_val : optional
            Validation data. Its normal rows replace the random held-out slice (early
            stopping and calibration). When ``y_val`` holds anomalies, ``threshold_`` is
            the F1-optimal threshold on ``X_val``. ``y_val`` needs ``X_val`` and at least
            one normal row (``y_val == 0``); both are checked before anything is encoded.

        Returns
        -------
        self
        """
        self._check_params()
        val_df, val_labels = _validation_rows(X_val, y_val)
        df = read_table(X)
        if len(df) == 0:
            raise InvalidInputError("the training table is empty (0 rows)")
        if y is not None:
            labels = check_labels(y, len(df), "y")
            df = _rows(df, labels == 0)
            if len(df) == 0:
                raise InvalidInputError("every training row is labelled 1 (anomaly): no normals")
        if X_val is None and len(df) < 2:
            raise InvalidInputError(
                "need at least 2 normal training rows (one for training, one held out), "
                f"got {len(df)} sample"
            )
        adapter = TabularAdapter(
            categorical_columns=self.categorical_columns, missing=self.missing,
            scaling=self.scaling,
        )
        fit_input = df if _named(X) else df.to_numpy()
        z = adapter.fit(fit_input).transform(fit_input)
        seed = (int(self.random_state) % (2**31 - 1) if self.random_state is not None
                else int(np.random.default_rng().integers(2**31 - 1)))
        rng = np.random.default_rng(seed)

        if val_df is not None and val_labels is not None:
            z_val = adapter.transform(_rows(val_df, val_labels == 0))
            z_train = z
        else:
            if len(z) < 2:
                raise InvalidInputError(
                    f"need at least 2 normal training rows (one for training, one held out), "
                    f"got {len(z)}"
                )
            perm = rng.permutation(len(z))
            n_val = min(len(z) - 1, max(1, int(round(self.validation_fraction * len(z)))))
            z_val, z_train = z[perm[:n_val]], z[perm[n_val:]]

        n_features = z.shape[1]
        self.hidden_sizes_, self.latent_dim_ = self._architecture(n_features)
        epochs = self.epochs or auto_epochs(len(z_train), self.batch_size)
        with _SEEDED_INIT, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._build_model(n_features)
            noise_state = torch.get_rng_state()
        config = TrainConfig(
            epochs=epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, patience=self.patience, device=self.device,
            verbose=self.verbose, random_state=seed, description=f"genad {type(self).__name__}",
            noise_state=noise_state,
        )
        history = train_model(model, torch.from_numpy(z_train), torch.from_numpy(z_val), config)
        self.adapter_ = adapter
        self.model_ = model
        self.history_ = history
        self.n_epochs_ = len(history["train_loss"])
        self.n_features_in_ = df.shape[1]
        if _named(X):
            self.feature_names_in_ = np.asarray(adapter.input_columns_, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.calibration_scores_ = self._score_encoded(z_val)
        self.train_scores_ = self._score_encoded(z_train)
        if val_df is not None and val_labels is not None and val_labels.any():
            self.calibrate(val_df, val_labels)
        elif self.contamination is not None:
            self._set_threshold(
                cal.threshold_at_contamination(self.train_scores_, self.contamination),
                "contamination", self.contamination,
            )
        else:
            if val_df is not None and y_val is not None:
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

    def _set_threshold(self, value: float, method: str, setting: float | None) -> None:
        self.threshold_ = float(value)
        self.threshold_method_ = method
        self.threshold_setting_ = setting

    # -------------------------------------------------------------- scoring
    def _device(self) -> torch.device:
        return next(iter(self.model_.parameters())).device

    def _cpu_threads(self) -> cpu_threads:
        """The thread rule for scoring (FLOPs per row counted once per model)."""
        model = self.model_
        flops = model.__dict__.get("_genad_flops")
        if flops is None:
            flops = flops_per_sample(model, (self.adapter_.n_features_out_,))
            model.__dict__["_genad_flops"] = flops
        return cpu_threads(model, self._device(), flops)

    def _score_encoded(self, z: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        with self._cpu_threads() as threads:
            scores = predict_in_batches(self.model_.score, t, self._device(),
                                        workers=threads.workers).double().numpy()
        self._check_finite(scores)
        return scores

    @staticmethod
    def _check_finite(values: np.ndarray) -> None:
        if not np.all(np.isfinite(values)):
            i = int(np.argmin(np.isfinite(values.reshape(len(values), -1)).all(axis=1)))
            raise GenadError(
                f"the model produced a non-finite score for row {i}; this is a bug, please "
                "report it with the row"
            )

    def _encoded_chunks(self, X: Any) -> Iterator[tuple[np.ndarray, pd.Index]]:
        """Encode ``X`` in slices of :data:`SCORE_CHUNK` rows: ``(z, index)`` per slice.

        A file is read once; DataFrames, Series and 2-D arrays are sliced (their kind,
        and so the column matching of ``transform``, is kept); anything else is encoded
        in one piece. Warnings raised by several slices are shown once.
        """
        self.adapter_.check_feature_names(X, type(self).__name__)
        if isinstance(X, (str, Path)):
            X = read_table(X)
        sliceable = isinstance(X, (pd.DataFrame, pd.Series)) or (
            isinstance(X, np.ndarray) and X.ndim == 2)
        n = len(X) if sliceable else 0
        if n <= SCORE_CHUNK:
            z = self.adapter_.transform(X)
            yield z, self._index_of(X, 0, len(z))
            return
        with warnings_once():  # the same warning from each slice, with its own counts
            for start in range(0, n, SCORE_CHUNK):
                part = X.iloc[start : start + SCORE_CHUNK] if hasattr(X, "iloc") else (
                    X[start : start + SCORE_CHUNK])
                z = self.adapter_.transform(part)
                yield z, self._index_of(X, start, len(z))

    @staticmethod
    def _index_of(X: Any, start: int, n: int) -> pd.Index:
        if isinstance(X, (pd.DataFrame, pd.Series)):
            return X.index[start : start + n]
        return pd.RangeIndex(start, start + n)

    def _map_encoded(self, z: np.ndarray, index: pd.Index) -> np.ndarray | pd.DataFrame:
        return self._score_and_map_encoded(z, index)[1]

    def anomaly_score(self, X: Any) -> np.ndarray:
        """One float per row, higher = more anomalous; always finite.

        Examples
        --------
        >>> import numpy as np, genad
        >>> X = np.random.default_rng(0).normal(size=(200, 4))
        >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
        >>> det.anomaly_score(X[:3]).shape
        (3,)
        """
        self._check_fitted()
        parts = [self._score_encoded(z) for z, _ in self._encoded_chunks(X)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def anomaly_map(self, X: Any) -> np.ndarray | pd.DataFrame:
        """Each input column's contribution to each row's score (rows sum to the score).

        One-hot parts of a categorical column are summed back to that column. Returns a
        DataFrame (columns named, index kept) when the detector was fitted on a DataFrame
        or file, else an ndarray ``(n_rows, n_kept_columns)``.
        """
        self._check_fitted()
        parts = [self._map_encoded(z, index) for z, index in self._encoded_chunks(X)]
        return _concat(parts)

    def _score_and_map(self, X: Any) -> tuple[np.ndarray, np.ndarray | pd.DataFrame]:
        """``(anomaly_score(X), anomaly_map(X))`` from one pass through the model."""
        self._check_fitted()
        parts = [self._score_and_map_encoded(z, index) for z, index in self._encoded_chunks(X)]
        return _concat([p[0] for p in parts]), _concat([p[1] for p in parts])

    def _score_and_map_encoded(
        self, z: np.ndarray, index: pd.Index
    ) -> tuple[np.ndarray, np.ndarray | pd.DataFrame]:
        """Scores and map of one encoded slice. Each batch's scores are summed as
        :meth:`GenerativeModel.score` sums them, so they equal ``anomaly_score`` exactly;
        the map's float64 row sums differ in the last float32 digits, enough to move a
        row across the threshold."""

        def both(x: torch.Tensor) -> torch.Tensor:
            elem = self.model_.element_scores(x)
            return torch.cat([elem, elem.sum(dim=1).unsqueeze(1)], dim=1)

        with self._cpu_threads() as threads:
            out = predict_in_batches(both, torch.from_numpy(z), self._device(),
                                     workers=threads.workers).double().numpy()
        self._check_finite(out)
        return out[:, -1], self.adapter_.to_map(out[:, :-1], index=index)

    def explain(self, X: Any, top_k: int = 3) -> pd.DataFrame:
        """Score table: ``anomaly_score``, ``p_value``, ``is_anomaly``, ``top_features``.

        ``top_k`` (an integer >= 1) columns are listed per row; all of them when the model
        has fewer columns.
        """
        check_int("top_k", top_k, low=1)
        self._check_fitted()
        parts = [self._explain_encoded(z, index, top_k) for z, index in self._encoded_chunks(X)]
        return parts[0] if len(parts) == 1 else pd.concat(parts)

    def _explain_encoded(self, z: np.ndarray, index: pd.Index, top_k: int) -> pd.DataFrame:
        scores, contrib = self._score_and_map_encoded(z, index)
        if not isinstance(contrib, pd.DataFrame):
            contrib = pd.DataFrame(contrib, columns=self.adapter_.column_names_, index=index)
        return pd.DataFrame(
            {
                "anomaly_score": scores,
                "p_value": cal.conformal_p_values(self.calibration_scores_, scores),
                "is_anomaly": (scores > self.threshold_).astype(np.int8),
                "top_features": top_contributions(contrib, top_k),
            },
            index=contrib.index,
        )

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

    # ---------------------------------------------------------------- I/O
    def save(self, path: str | Path, *, key: str | bytes | None = None) -> Path:
        """Write the fitted detector to one ``.genad`` file (safetensors, no pickle).

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
        from genad.bundle import save_detector

        self._check_fitted()
        return save_detector(self, path, key=key)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return super().__repr__(N_CHAR_MAX)
