"""Data loaders and evaluation splits for the tabular benchmark.

Every split follows the protocol in the README of its data folder:

``creditcard``
    ``X`` = the 30 columns other than ``Class`` as float64, ``y = Class``;
    ``train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)``; fit on the
    train normals, score the whole test part.
``nsl-kdd``
    The official split: fit on the normal rows of ``train.parquet`` (``label`` and
    ``difficulty`` dropped), score all of ``test.parquet``; ``y = label != "normal"``.
    The split does not depend on the seed (the seed only drives model randomness).
``adbench``
    Every ``*.npz`` in ``adbench/``: ``X`` cast to float64, 70/30 stratified split with
    ``random_state=seed``, fit on the train normals.

Two views of each split are offered. genad models get the *raw* view (a DataFrame for
NSL-KDD, so that genad's own categorical handling is exercised; float64 arrays
elsewhere). Peers get the *peer* view: for NSL-KDD the reference encoding of the README
(the 38 numeric columns, then one-hot ``protocol_type``/``service``/``flag`` with
categories from the full train set), and in every set a ``StandardScaler`` fitted on the train
normals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from benchmarks._shared import data_root

__all__ = [
    "ALL_GROUPS",
    "QUICK_ADBENCH",
    "Split",
    "adbench_files",
    "data_root",
    "iter_splits",
    "load_adbench",
    "load_creditcard",
    "select_adbench",
    "split_70_30",
]

#: The set groups the benchmark knows, in the order they are run.
ALL_GROUPS: tuple[str, ...] = ("creditcard", "nsl-kdd", "adbench")

#: Six small ADBench sets used by ``--quick``. Two of them (14_glass, 42_WBC) have fewer
#: than 256 train normals, which exercises PyOD's behaviour on tiny sets.
QUICK_ADBENCH: tuple[str, ...] = (
    "4_breastw",
    "6_cardio",
    "14_glass",
    "29_Pima",
    "38_thyroid",
    "42_WBC",
)

NSL_KDD_CATEGORICAL: tuple[str, ...] = ("protocol_type", "service", "flag")
NSL_KDD_DROP: tuple[str, ...] = ("label", "difficulty")


@dataclass
class Split:
    """One evaluation split: train normals and the labelled test part.

    Attributes
    ----------
    group:
        Set group: ``"creditcard"``, ``"nsl-kdd"`` or ``"adbench"``.
    dataset:
        Data set name (for ADBench the file stem, e.g. ``"6_cardio"``).
    seed:
        Split seed (NSL-KDD: the model seed only; its split is fixed).
    X_train:
        Raw train normals, as genad models receive them (DataFrame or float64 array).
    X_test:
        Raw test rows, same type as ``X_train``.
    y_test:
        Test labels, 1 = anomaly.
    threshold_metrics:
        Whether F1 at the calibrated threshold is part of this set's protocol.
    """

    group: str
    dataset: str
    seed: int
    X_train: Any
    X_test: Any
    y_test: np.ndarray
    threshold_metrics: bool = False
    _peer_encoder: Any = field(default=None, repr=False)
    _peer_cache: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_train(self) -> int:
        """Number of train normals."""
        return len(self.X_train)

    @property
    def n_test(self) -> int:
        """Number of test rows."""
        return len(self.X_test)

    @property
    def n_test_anomalies(self) -> int:
        """Number of anomalies in the test part."""
        return int(self.y_test.sum())

    def peer_view(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X_train, X_test)`` as float64 matrices scaled on the train normals.

        For NSL-KDD the rows are first encoded as in the README's reference figures.
        The result is computed once per split and cached.
        """
        if self._peer_cache is None:
            if self._peer_encoder is not None:
                tr = self._peer_encoder(self.X_train)
                te = self._peer_encoder(self.X_test)
            else:
                tr = np.asarray(self.X_train, dtype=np.float64)
                te = np.asarray(self.X_test, dtype=np.float64)
            scaler = StandardScaler().fit(tr)
            self._peer_cache = (scaler.transform(tr), scaler.transform(te))
        return self._peer_cache

    def describe(self) -> dict[str, Any]:
        """Return the split's sizes, for the results file."""
        n_features = self.X_train.shape[1]
        return {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_test_anomalies": self.n_test_anomalies,
            "n_features_raw": int(n_features),
        }


def split_70_30(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The protocol's 70/30 stratified split: ``(X_train, X_test, y_train, y_test)``."""
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def _stratified(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """70/30 stratified split; return (train normals, test X, test y)."""
    X_tr, X_te, y_tr, y_te = split_70_30(X, y, seed)
    return X_tr[y_tr == 0], X_te, np.asarray(y_te, dtype=np.int64)


def load_creditcard(root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Card fraud as ``(X, y)``: the 30 columns other than ``Class`` (float64), ``Class``."""
    df = pd.read_parquet((root or data_root()) / "creditcard" / "creditcard.parquet")
    X = df.drop(columns="Class").to_numpy("float64")
    return X, df["Class"].to_numpy().astype(np.int64)


def _creditcard(root: Path, seeds: Sequence[int]) -> Iterator[Split]:
    X, y = load_creditcard(root)
    for seed in seeds:
        X_tr, X_te, y_te = _stratified(X, y, seed)
        yield Split("creditcard", "creditcard", seed, X_tr, X_te, y_te)


def _nsl_kdd_encoder(train_full: pd.DataFrame) -> Any:
    """Build the README's reference encoding: 38 numerics, then one-hot (full-train categories)."""
    cats = list(NSL_KDD_CATEGORICAL)
    nums = [c for c in train_full.columns if c not in cats and c not in NSL_KDD_DROP]
    ohe = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    ohe.fit(train_full[cats])

    def encode(frame: pd.DataFrame) -> np.ndarray:
        onehot = ohe.transform(frame[cats])
        # numerics first, then the one-hot block: the column order of the README's
        # reference figures (IsolationForest depends on it: 0.9400 this way, 0.9452 the other)
        return np.hstack([frame[nums].to_numpy("float64"), onehot])

    return encode


def _nsl_kdd(root: Path, seeds: Sequence[int]) -> Iterator[Split]:
    folder = root / "nsl-kdd"
    train = pd.read_parquet(folder / "train.parquet")
    test = pd.read_parquet(folder / "test.parquet")
    encoder = _nsl_kdd_encoder(train)
    drop = list(NSL_KDD_DROP)
    X_tr = train.loc[train["label"] == "normal"].drop(columns=drop).reset_index(drop=True)
    X_te = test.drop(columns=drop).reset_index(drop=True)
    y_te = (test["label"] != "normal").to_numpy().astype(np.int64)
    cache: tuple[np.ndarray, np.ndarray] | None = None
    for seed in seeds:
        split = Split("nsl-kdd", "nsl-kdd", seed, X_tr, X_te, y_te, threshold_metrics=True,
                      _peer_encoder=encoder, _peer_cache=cache)
        yield split
        cache = split._peer_cache  # the split is seed-independent: encode once


def _sort_key(path: Path) -> tuple[int, str]:
    match = re.match(r"(\d+)_", path.name)
    return (int(match.group(1)) if match else 10**6, path.name)


def adbench_files(root: Path | None = None) -> list[Path]:
    """Return every ADBench ``*.npz`` in the data folder, in ADBench's numeric order."""
    folder = (root or data_root()) / "adbench"
    return sorted(folder.glob("*.npz"), key=_sort_key)


def select_adbench(names: Sequence[str] | None, root: Path | None = None) -> list[Path]:
    """Return the ADBench files whose stem equals or contains one of ``names``.

    ``None`` selects every file.
    """
    files = adbench_files(root)
    if names is None:
        return files
    wanted = [n.lower() for n in names]
    return [f for f in files if any(w == f.stem.lower() or w in f.stem.lower() for w in wanted)]


def load_adbench(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ADBench ``.npz`` as ``(X, y)`` (float64, int64)."""
    with np.load(path) as npz:
        return npz["X"].astype(np.float64), npz["y"].astype(np.int64)


def _adbench(root: Path, seeds: Sequence[int], names: Sequence[str] | None) -> Iterator[Split]:
    for path in select_adbench(names, root):
        X, y = load_adbench(path)
        for seed in seeds:
            X_tr, X_te, y_te = _stratified(X, y, seed)
            yield Split("adbench", path.stem, seed, X_tr, X_te, y_te)


def iter_splits(
    groups: Sequence[str],
    seeds_for: dict[str, Sequence[int]],
    adbench_names: Sequence[str] | None = None,
    root: Path | None = None,
) -> Iterator[Split]:
    """Yield the splits of the requested groups, data set by data set, seed by seed.

    Parameters
    ----------
    groups:
        Subset of :data:`ALL_GROUPS`, run in that order.
    seeds_for:
        Seeds per group (``{"creditcard": [0, 1, 2], ...}``).
    adbench_names:
        Restrict ADBench to files whose stem equals or contains one of these names
        (``None``: all files).
    root:
        Data folder (default :func:`data_root`).
    """
    root = root or data_root()
    for group in ALL_GROUPS:
        if group not in groups:
            continue
        seeds = seeds_for[group]
        if group == "creditcard":
            yield from _creditcard(root, seeds)
        elif group == "nsl-kdd":
            yield from _nsl_kdd(root, seeds)
        else:
            yield from _adbench(root, seeds, adbench_names)
