"""The genad demo: a detector on real data that ships with scikit-learn.

Data: the Wisconsin diagnostic breast-cancer table bundled with scikit-learn
(:func:`sklearn.datasets.load_breast_cancer`; 569 rows, 30 numeric measurements of cell
nuclei, 357 benign and 212 malignant; UCI, Wolberg, Street & Mangasarian 1995). It is
read from scikit-learn's installed files, so the demo needs no network.

Protocol (normal-only training, as genad is meant to be used):

- scikit-learn's target is 1 = benign, 0 = malignant. Benign rows are the *normal*
  class and malignant rows the *anomalies*; labels are converted to genad's
  convention, 1 = anomaly.
- A stratified 70/30 train/test split (``random_state=0``).
- The detector is fitted on the benign rows of the training part only.
- The report covers the whole test part (benign and malignant rows).

With 250 benign training rows, the default held-out slice (10%, 25 rows) cannot
resolve a 1% false-positive rate, so the demo holds out 20% (50 rows) and sets the
threshold at a 5% target false-positive rate.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genad import registry
from genad.detector import Detector
from genad.metrics import evaluate_scores

__all__ = ["DemoResult", "load_demo_data", "split_demo_data", "run_demo", "DEMO_TITLE"]

DEMO_TITLE = "genad demo: Wisconsin breast cancer (benign = normal, malignant = anomaly)"
DEMO_TARGET_FPR = 0.05
DEMO_VALIDATION_FRACTION = 0.2


@dataclass
class DemoResult:
    """What :func:`run_demo` did and measured.

    Attributes
    ----------
    report_path : Path
        The written HTML report.
    model : str
        Preset name of the detector (one of :func:`genad.registry.names`).
    auroc, auprc : float
        Ranking quality on the test part.
    metrics : dict
        Everything :func:`genad.metrics.evaluate_scores` returns at the threshold.
    n_train_normal : int
        Benign rows the detector was fitted on.
    n_test, n_test_anomalies : int
        Rows in the test part, and how many are malignant.
    seconds : float
        Wall time of fitting and scoring the test part (the report excluded).
    fit_seconds : float
        Wall time of ``fit``: data preparation, the training loop and calibration.
    train_loop_seconds : float
        Time of the training epochs alone (``history_["epoch_seconds"]`` summed), the
        figure the report shows as "Training loop".
    detector : Detector
        The fitted detector.
    """

    report_path: Path
    model: str
    auroc: float
    auprc: float
    metrics: dict[str, float]
    n_train_normal: int
    n_test: int
    n_test_anomalies: int
    seconds: float
    fit_seconds: float
    train_loop_seconds: float
    detector: Detector = field(repr=False)


def load_demo_data() -> tuple[pd.DataFrame, pd.Series]:
    """The Wisconsin breast-cancer table with genad's label convention.

    Returns
    -------
    X : DataFrame
        569 rows, 30 float columns (``"mean radius"``, ..., ``"worst fractal dimension"``).
    y : Series of int
        Named ``"malignant"``: 1 = malignant (anomaly), 0 = benign (normal).

    Examples
    --------
    >>> X, y = load_demo_data()
    >>> X.shape, int(y.sum()), int((y == 0).sum())
    ((569, 30), 212, 357)
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    X = bunch.data.copy()
    # scikit-learn: 1 = benign, 0 = malignant; genad: 1 = anomaly (malignant)
    y = (bunch.target.to_numpy() == 0).astype(np.int64)
    return X, pd.Series(y, index=X.index, name="malignant")


def split_demo_data(
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Stratified 70/30 split of :func:`load_demo_data`.

    Parameters
    ----------
    random_state : int, default 0

    Returns
    -------
    X_train, X_test, y_train, y_test
        Row indices are kept from the original table.

    Examples
    --------
    >>> X_train, X_test, y_train, y_test = split_demo_data()
    >>> len(X_train), len(X_test), int(y_test.sum())
    (398, 171, 64)
    """
    from sklearn.model_selection import train_test_split

    X, y = load_demo_data()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=random_state
    )
    return X_train, X_test, y_train, y_test


def run_demo(
    out: str | Path = "genad-demo-report.html",
    model: str = "vae",
    *,
    epochs: int | None = None,
    random_state: int = 0,
    verbose: int = 0,
    **params: Any,
) -> DemoResult:
    """Fit a detector on benign breast-cancer rows and report on the test part.

    Parameters
    ----------
    out : str or Path, default "genad-demo-report.html"
        Where to write the HTML report.
    model : str, default "vae"
        Detector to train: a preset name (one of :func:`genad.registry.names`).
    epochs : int, optional
        Maximum training epochs (default: the detector's own, early stopping applies).
        A small value makes a quick smoke run.
    random_state : int, default 0
        Seed of the split and of the detector.
    verbose : int, default 0
        1 shows the training progress bar when the terminal is interactive.
    **params
        Further detector parameters (they override the demo's ``target_fpr=0.05`` and
        ``validation_fraction=0.2``).

    Returns
    -------
    DemoResult

    Raises
    ------
    InvalidInputError
        An unknown ``model``.

    Examples
    --------
    >>> import tempfile, os
    >>> res = run_demo(os.path.join(tempfile.mkdtemp(), "demo.html"), epochs=3)
    >>> res.n_test, res.n_test_anomalies
    (171, 64)
    >>> res.report_path.exists()
    True
    """
    from genad.report import build_report

    cls = registry.load_class(model)  # an unknown name raises before any work
    X_train, X_test, y_train, y_test = split_demo_data(random_state)
    normal_train = X_train[y_train.to_numpy() == 0]
    settings: dict[str, Any] = {
        "target_fpr": DEMO_TARGET_FPR,
        "validation_fraction": DEMO_VALIDATION_FRACTION,
        "random_state": random_state,
        "verbose": verbose,
        "epochs": epochs,
    }
    settings.update(params)
    detector = cls(**settings)
    t0 = time.perf_counter()
    detector.fit(normal_train)
    fit_seconds = time.perf_counter() - t0
    scores = detector.anomaly_score(X_test)
    seconds = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_scores(y_test, scores, detector.threshold_)
    path = build_report(detector, X_test, y_test, out=out, title=DEMO_TITLE)
    return DemoResult(
        report_path=path,
        model=model,
        auroc=float(metrics["auroc"]),
        auprc=float(metrics["auprc"]),
        metrics=metrics,
        n_train_normal=len(normal_train),
        n_test=len(X_test),
        n_test_anomalies=int(y_test.sum()),
        seconds=seconds,
        fit_seconds=fit_seconds,
        train_loop_seconds=float(sum(detector.history_.get("epoch_seconds", []))),
        detector=detector,
    )
