"""Model factories for the tabular benchmark: genad's detectors and their peers.

Every factory returns a :class:`Contender`: one model entered in the comparison (genad's
or a peer's) behind a thin adapter with one interface:
``fit(X_train_normals)``, ``score(X) -> 1-D float64 array`` (higher = more anomalous),
plus what the runner needs for timing and thresholds. Adapters never repair a model's
output: a wrong shape raises, and NaN / inf scores are passed on to the runner, which
records them as a failure.

genad models receive the raw view of a split; peers receive the scaled numeric view
(see :mod:`benchmarks.tabular.datasets`).

PyOD facts this module relies on (pyod 3.6.7, read from its source):

* ``AutoEncoder(hidden_neuron_list=[64, 32], epoch_num=10, batch_size=32, lr=1e-3,
  batch_norm=True, dropout_rate=0.2, preprocessing=True, ...)``: the net is
  ``[d, 64, 32, 64, d]``; the score is the row-wise Euclidean reconstruction error.
* ``VAE(encoder_neuron_list=[128, 64, 32], decoder_neuron_list=[32, 64, 128],
  latent_dim=2, epoch_num=30, batch_size=32, beta=1.0, capacity=0.0, ...)``. The KL term
  is clamped to ``[0, capacity]``, so with the default ``capacity=0.0`` it is always 0.
* Training runs exactly ``epoch_num`` epochs (no early stopping) over a DataLoader with
  ``shuffle=True, drop_last=True``: with fewer rows than ``batch_size`` no batch runs and
  ``fit`` raises ``UnboundLocalError`` (``loss`` is never assigned).
* ``BaseDeepLearningDetector.train`` calls ``self.epoch_update()`` after every epoch;
  :class:`PyodDeepContender` hooks it to time each epoch.
* ``ECOD.decision_function`` recomputes the empirical CDFs on train + scored rows
  together, so its test scores depend on the whole test batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks._shared import as_scores, jsonable, resolve_specs

__all__ = [
    "MATCHED",
    "MODEL_SPECS",
    "QUICK_EPOCHS",
    "BuildContext",
    "Contender",
    "ModelSpec",
    "import_genad",
    "resolve_models",
]

#: Shared training budget of ``genad-AE-matched``, ``pyod-AE-matched`` and
#: ``pyod-VAE-matched``: the same hidden sizes, epochs and batch size on both sides.
MATCHED: dict[str, Any] = dict(hidden_sizes=[64, 32], epochs=20, batch_size=256)

#: Dropout of ``genad-AE-dropout``, chosen on card fraud's train-split validation rows
#: (held-out train normals + train frauds), never on a test part: see docs/decisions.md.
AE_DROPOUT = 0.2

#: Settings of ``genad-AE-dropout-raw``: the best card-fraud validation AUROC of the
#: session-3 scaling study (variant ``d2-tail3-nonorm``, see
#: ``benchmarks/results/tabular-scaling-study.md``), again chosen on train-split rows only
#: and run once on the test parts.
AE_DROPOUT_RAW: dict[str, Any] = dict(dropout=AE_DROPOUT, normalize_errors=False)

#: Epochs of every neural model (genad and PyOD, default and matched) under ``--quick``.
QUICK_EPOCHS = 2

PEER_THRESHOLD_PERCENTILE = 99.0


@dataclass(frozen=True)
class BuildContext:
    """Run-wide settings a factory needs.

    Attributes
    ----------
    epochs:
        If set, overrides the number of epochs of every neural model (``--quick`` or
        ``--epochs``); ``None`` keeps each model's own setting.
    device:
        ``"auto"`` or a torch device string; passed to genad, and to PyOD as ``None``
        (PyOD's automatic choice) for ``"auto"``.
    """

    epochs: int | None = None
    device: str = "auto"


class Contender:
    """One model under comparison, behind the interface the runner uses.

    Subclasses wrap a genad detector (:class:`GenadContender`) or a peer
    (:class:`PyodContender`, :class:`PyodDeepContender`, :class:`IsolationForestContender`).
    """

    family: str = "peer"
    #: Which view of a split the model receives: ``"raw"`` or ``"peer"``.
    view: str = "peer"

    def __init__(self) -> None:
        self.epoch_seconds: list[float] | None = None
        self.n_epochs: int | None = None

    def fit(self, X: Any) -> None:
        """Fit on the train normals."""
        raise NotImplementedError

    def score(self, X: Any) -> np.ndarray:
        """Return one anomaly score per row, higher = more anomalous."""
        raise NotImplementedError

    def predict(self, X: Any, X_train: Any) -> tuple[np.ndarray, str]:
        """Return 0/1 predictions for ``X`` and a description of the threshold rule.

        Peers threshold at the 99th percentile of their scores on the train normals
        (a 1 % false-positive rate on the training data).
        """
        train_scores = self.train_scores(X_train)
        threshold = float(np.percentile(train_scores, PEER_THRESHOLD_PERCENTILE))
        scores = self.score(X)
        return (scores > threshold).astype(np.int64), "p99 of train-normal scores"

    def train_scores(self, X_train: Any) -> np.ndarray:
        """Scores of the train normals, for the peer threshold."""
        return self.score(X_train)

    def params(self) -> dict[str, Any]:
        """Constructor parameters, for the results file."""
        return {}


# --------------------------------------------------------------------------- genad

#: Raised by :func:`import_genad` when genad is not installed. It starts with "cannot
#: import genad", which the report recognises (``report._hint``).
GENAD_MISSING = ("cannot import genad: it is not installed in this environment; run "
                 "`pip install -e '.[bench]'` from the repository root")


def import_genad() -> ModuleType:
    """Import genad, which the benchmarks expect installed (``pip install -e '.[bench]'``).

    Returns
    -------
    module
        The ``genad`` package.

    Raises
    ------
    ImportError
        genad is not installed; the one-line message says how to install it. An error
        raised while an installed genad imports is passed on unchanged.
    """
    try:
        import genad
    except ModuleNotFoundError as exc:
        if exc.name != "genad":
            raise
        raise ImportError(GENAD_MISSING) from None
    return genad


class GenadContender(Contender):
    """Adapter for a genad detector class (``fit`` / ``anomaly_score`` / ``predict``)."""

    family = "genad"
    view = "raw"

    def __init__(self, class_name: str, kwargs: dict[str, Any]) -> None:
        super().__init__()
        genad = import_genad()
        cls = getattr(genad, class_name, None)
        if cls is None:
            raise AttributeError(f"module 'genad' has no attribute {class_name!r}")
        self.kwargs = kwargs
        self.det = cls(**kwargs)

    def fit(self, X: Any) -> None:
        self.det.fit(X)
        history = getattr(self.det, "history_", None)
        if isinstance(history, dict) and history.get("epoch_seconds") is not None:
            self.epoch_seconds = [float(s) for s in history["epoch_seconds"]]
        n_epochs = getattr(self.det, "n_epochs_", None)
        if n_epochs is not None:
            self.n_epochs = int(n_epochs)
        elif self.epoch_seconds is not None:
            self.n_epochs = len(self.epoch_seconds)

    def score(self, X: Any) -> np.ndarray:
        return as_scores(self.det.anomaly_score(X), len(X), "anomaly_score")

    def predict(self, X: Any, X_train: Any) -> tuple[np.ndarray, str]:
        pred = np.asarray(self.det.predict(X))
        if pred.shape != (len(X),):
            raise ValueError(f"predict returned shape {pred.shape}, expected ({len(X)},)")
        values = set(np.unique(pred).tolist())
        if not values <= {0, 1}:
            raise ValueError(f"predict returned values {sorted(values)[:5]}, expected 0/1")
        return pred.astype(np.int64), "genad predict() (calibrated threshold)"

    def params(self) -> dict[str, Any]:
        get_params = getattr(self.det, "get_params", None)
        if callable(get_params):
            try:
                return jsonable(get_params())
            except Exception:  # noqa: BLE001 - params are informative only
                pass
        return jsonable(self.kwargs)


def _genad_factory(class_name: str, extra: dict[str, Any]) -> Callable[..., Contender]:
    def build(seed: int, ctx: BuildContext) -> Contender:
        kwargs: dict[str, Any] = dict(extra)
        if ctx.epochs is not None:
            kwargs["epochs"] = ctx.epochs
        kwargs.update(random_state=seed, verbose=0, device=ctx.device)
        return GenadContender(class_name, kwargs)

    return build


# --------------------------------------------------------------------------- peers


class PyodContender(Contender):
    """Non-neural PyOD detector (ECOD, PCA)."""

    def __init__(self, det: Any) -> None:
        super().__init__()
        self.det = det

    def fit(self, X: np.ndarray) -> None:
        self.det.fit(X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return as_scores(self.det.decision_function(X), len(X), "decision_function")

    def train_scores(self, X_train: np.ndarray) -> np.ndarray:
        return np.asarray(self.det.decision_scores_, dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return jsonable(self.det.get_params())


class PyodDeepContender(PyodContender):
    """PyOD AutoEncoder / VAE, with per-epoch timing through ``epoch_update``."""

    def fit(self, X: np.ndarray) -> None:
        det = self.det
        stamps: list[float] = []
        original_train = det.train
        original_update = det.epoch_update

        def train(loader: Any) -> Any:
            stamps.append(time.perf_counter())
            return original_train(loader)

        def epoch_update() -> Any:
            stamps.append(time.perf_counter())
            return original_update()

        det.train = train
        det.epoch_update = epoch_update
        try:
            det.fit(X)
        finally:
            del det.train, det.epoch_update
            self.epoch_seconds = np.diff(stamps).tolist() if len(stamps) > 1 else []
            self.n_epochs = len(self.epoch_seconds)


class IsolationForestContender(Contender):
    """scikit-learn IsolationForest; score = ``-score_samples``."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        from sklearn.ensemble import IsolationForest

        self.det = IsolationForest(random_state=seed)

    def fit(self, X: np.ndarray) -> None:
        self.det.fit(X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return as_scores(-self.det.score_samples(X), len(X), "-score_samples")

    def params(self) -> dict[str, Any]:
        return jsonable(self.det.get_params())


def _pyod_device(ctx: BuildContext) -> str | None:
    return None if ctx.device == "auto" else ctx.device


def _pyod_ae(matched: bool) -> Callable[..., Contender]:
    def build(seed: int, ctx: BuildContext) -> Contender:
        from pyod.models.auto_encoder import AutoEncoder

        kwargs: dict[str, Any] = dict(random_state=seed, verbose=0, device=_pyod_device(ctx))
        if matched:
            kwargs.update(hidden_neuron_list=list(MATCHED["hidden_sizes"]),
                          epoch_num=MATCHED["epochs"], batch_size=MATCHED["batch_size"])
        if ctx.epochs is not None:
            kwargs["epoch_num"] = ctx.epochs
        return PyodDeepContender(AutoEncoder(**kwargs))

    return build


def _pyod_vae(matched: bool) -> Callable[..., Contender]:
    def build(seed: int, ctx: BuildContext) -> Contender:
        from pyod.models.vae import VAE

        kwargs: dict[str, Any] = dict(random_state=seed, verbose=0, device=_pyod_device(ctx))
        if matched:
            hidden = list(MATCHED["hidden_sizes"])
            kwargs.update(encoder_neuron_list=hidden, decoder_neuron_list=hidden[::-1],
                          epoch_num=MATCHED["epochs"], batch_size=MATCHED["batch_size"])
        if ctx.epochs is not None:
            kwargs["epoch_num"] = ctx.epochs
        return PyodDeepContender(VAE(**kwargs))

    return build


def _iforest(seed: int, ctx: BuildContext) -> Contender:
    return IsolationForestContender(seed)


def _ecod(seed: int, ctx: BuildContext) -> Contender:
    from pyod.models.ecod import ECOD

    return PyodContender(ECOD())


def _pyod_pca(seed: int, ctx: BuildContext) -> Contender:
    from pyod.models.pca import PCA

    return PyodContender(PCA(random_state=seed))


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelSpec:
    """A named model of the benchmark.

    Attributes
    ----------
    name:
        Name used on the command line and in the results.
    family:
        ``"genad"`` or ``"peer"``.
    description:
        One line for the report.
    build:
        ``build(seed, ctx) -> Contender``.
    neural:
        Whether the model trains for epochs (so ``--quick`` / ``--epochs`` apply).
    """

    name: str
    family: str
    description: str
    build: Callable[[int, BuildContext], Contender]
    neural: bool = True


_M = MATCHED
MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("genad-AE", "genad", "genad.AutoEncoder, defaults",
              _genad_factory("AutoEncoder", {})),
    ModelSpec("genad-DAE", "genad", "genad.DenoisingAutoEncoder, defaults",
              _genad_factory("DenoisingAutoEncoder", {})),
    ModelSpec("genad-VAE", "genad", "genad.VAE, defaults", _genad_factory("VAE", {})),
    ModelSpec("genad-PCAConvAE", "genad", "genad.PCAConvAutoEncoder, defaults",
              _genad_factory("PCAConvAutoEncoder", {})),
    ModelSpec("genad-AE-matched", "genad",
              f"genad.AutoEncoder, hidden_sizes={_M['hidden_sizes']}, epochs={_M['epochs']}, "
              f"batch_size={_M['batch_size']}",
              _genad_factory("AutoEncoder", dict(MATCHED))),
    ModelSpec("genad-AE-dropout", "genad",
              f"genad.AutoEncoder, dropout={AE_DROPOUT} (otherwise defaults)",
              _genad_factory("AutoEncoder", dict(dropout=AE_DROPOUT))),
    ModelSpec("genad-AE-dropout-raw", "genad",
              f"genad.AutoEncoder, dropout={AE_DROPOUT}, normalize_errors=False "
              "(otherwise defaults)",
              _genad_factory("AutoEncoder", dict(AE_DROPOUT_RAW))),
    ModelSpec("genad-GANomaly", "genad",
              "genad.GANomaly, defaults (latent-distance score; lr 2e-4, batch 64)",
              _genad_factory("GANomaly", {})),
    ModelSpec("genad-FAnoGAN", "genad",
              "genad.FAnoGAN, defaults (WGAN-GP, n_critic 5, then the izi_f encoder; lr 2e-4, "
              "batch 64)", _genad_factory("FAnoGAN", {})),
    ModelSpec("genad-VAEGAN", "genad",
              "genad.VAEGAN, defaults (pixel + discriminator-feature error; lr 2e-4, batch 64)",
              _genad_factory("VAEGAN", {})),
    ModelSpec("pyod-AE-default", "peer",
              "pyod AutoEncoder, defaults ([64, 32], 10 epochs, batch 32, batch norm, "
              "dropout 0.2)", _pyod_ae(matched=False)),
    ModelSpec("pyod-AE-matched", "peer",
              f"pyod AutoEncoder, hidden_neuron_list={_M['hidden_sizes']}, "
              f"epoch_num={_M['epochs']}, batch_size={_M['batch_size']}",
              _pyod_ae(matched=True)),
    ModelSpec("pyod-VAE-default", "peer",
              "pyod VAE, defaults ([128, 64, 32] / [32, 64, 128], latent 2, 30 epochs, "
              "batch 32, capacity 0 so KL term = 0)", _pyod_vae(matched=False)),
    ModelSpec("pyod-VAE-matched", "peer",
              f"pyod VAE, encoder {_M['hidden_sizes']} / decoder {_M['hidden_sizes'][::-1]}, "
              f"latent 2, epoch_num={_M['epochs']}, batch_size={_M['batch_size']}",
              _pyod_vae(matched=True)),
    ModelSpec("iforest", "peer", "sklearn IsolationForest(random_state=seed), score = "
              "-score_samples", _iforest, neural=False),
    ModelSpec("pyod-ECOD", "peer", "pyod ECOD, defaults", _ecod, neural=False),
    ModelSpec("pyod-PCA", "peer", "pyod PCA(random_state=seed), defaults", _pyod_pca,
              neural=False),
)


def resolve_models(tokens: Sequence[str] | None) -> list[ModelSpec]:
    """Resolve ``--models`` tokens to specs, in registry order.

    A token is a model name (case-insensitive), a prefix followed by ``-`` in the name
    (``pyod-ae`` selects both PyOD AutoEncoder configs), or one of ``all``, ``genad``,
    ``peers``. ``None`` or an empty list selects every model.

    Raises
    ------
    ValueError
        A token matches no model.
    """
    return resolve_specs(tokens, MODEL_SPECS, prefixes=True)
