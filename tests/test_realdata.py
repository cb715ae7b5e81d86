"""Regression checks on real data (read in place from GENAD_DATA or ../shared/data).

The AUROC floors sit well below the published baselines (NSL-KDD PCA 0.95, creditcard
IsolationForest 0.95, breastw 0.99): they catch a broken pipeline, not a small regression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import genad

pytestmark = pytest.mark.realdata


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_nsl_kdd_autoencoder(data_dir):
    folder = data_dir / "nsl-kdd"
    train = pd.read_parquet(_need(folder / "train.parquet"))
    test = pd.read_parquet(_need(folder / "test.parquet"))
    features = [c for c in train.columns if c not in ("label", "difficulty")]
    normals = train.loc[train["label"] == "normal", features].sample(10_000, random_state=0)
    det = genad.AutoEncoder(epochs=3, random_state=0, verbose=0).fit(normals)
    # the string columns are one-hot categoricals, not errors
    kinds = {row["column"]: row["kind"] for row in det.adapter_.schema()}
    assert kinds["protocol_type"] == kinds["service"] == kinds["flag"] == "categorical"
    scores = det.anomaly_score(test[features])
    assert scores.shape == (len(test),)
    assert np.all(np.isfinite(scores))
    y = (test["label"] != "normal").to_numpy().astype(int)
    assert roc_auc_score(y, scores) > 0.85


def test_creditcard_autoencoder(data_dir):
    df = pd.read_parquet(_need(data_dir / "creditcard" / "creditcard.parquet"))
    X, y = df.drop(columns="Class"), df["Class"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    normals = X_train[y_train == 0].sample(20_000, random_state=0)
    det = genad.AutoEncoder(epochs=3, random_state=0, verbose=0).fit(normals)
    scores = det.anomaly_score(X_test)
    assert np.all(np.isfinite(scores))
    assert roc_auc_score(y_test, scores) > 0.85


def test_adbench_breastw_autoencoder(data_dir):
    data = np.load(_need(data_dir / "adbench" / "4_breastw.npz"))
    X, y = data["X"], data["y"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    # labelled anomalies in the training split are left out by fit(X, y)
    det = genad.AutoEncoder(epochs=20, random_state=0, verbose=0).fit(X_train, y_train)
    scores = det.anomaly_score(X_test)
    assert roc_auc_score(y_test, scores) > 0.8
    assert isinstance(det.anomaly_map(X_test[:5]), np.ndarray)
