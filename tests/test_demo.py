"""The demo on scikit-learn's bundled Wisconsin breast-cancer table."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from genad.cli import app
from genad.demo import DEMO_TITLE, load_demo_data, run_demo, split_demo_data
from genad.errors import InvalidInputError


def test_load_demo_data_uses_anomaly_convention():
    from sklearn.datasets import load_breast_cancer

    X, y = load_demo_data()
    assert X.shape == (569, 30)
    assert y.name == "malignant"
    # scikit-learn: 1 = benign; genad: 1 = anomaly = malignant
    target = load_breast_cancer(as_frame=True).target.to_numpy()
    np.testing.assert_array_equal(y.to_numpy(), 1 - target)
    assert int(y.sum()) == 212 and int((y == 0).sum()) == 357


def test_split_is_stratified_and_reproducible():
    X_train, X_test, y_train, y_test = split_demo_data()
    assert (len(X_train), len(X_test)) == (398, 171)
    assert int(y_test.sum()) == 64 and int(y_train.sum()) == 148
    assert set(X_train.index).isdisjoint(X_test.index)
    again = split_demo_data()
    assert list(again[1].index) == list(X_test.index)


def test_run_demo_end_to_end_quick(tmp_path):
    """Three epochs only: checks the wiring, not the quality."""
    res = run_demo(tmp_path / "demo.html", model="ae", epochs=3)
    assert res.report_path.exists()
    html = res.report_path.read_text(encoding="utf-8")
    assert "Wisconsin breast cancer" in html
    assert html.count('src="data:image/png;base64,') == 6
    assert res.n_train_normal == 250  # the benign rows of the training part only
    assert (res.n_test, res.n_test_anomalies) == (171, 64)
    assert 0.0 <= res.auroc <= 1.0 and 0.0 <= res.auprc <= 1.0
    assert res.detector.n_epochs_ <= 3
    assert res.metrics["n"] == 171


def test_run_demo_unknown_model(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown model"):
        run_demo(tmp_path / "demo.html", model="nope")


def test_cli_demo(tmp_path):
    out = tmp_path / "demo.html"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "AUROC" in result.stdout and "AUPRC" in result.stdout
    assert str(out) in result.stdout
    assert DEMO_TITLE.split(":")[0] in out.read_text(encoding="utf-8")


def test_demo_and_report_timings_say_what_they_measure(tmp_path):
    """The demo printed the whole fit's time and the report the epochs' time, both as
    "training time": each is now labelled, and the training-loop figures agree."""
    out = tmp_path / "demo.html"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    printed = re.search(r"fit (\d+\.\d) s, of which training loop (\d+\.\d) s", result.stdout)
    assert printed, result.stdout
    reported = re.search(r"Training loop</td><td>(\d+\.\d) s", out.read_text(encoding="utf-8"))
    assert reported
    assert printed.group(2) == reported.group(1)
    assert float(printed.group(1)) >= float(printed.group(2))


def test_run_demo_timings(tmp_path):
    res = run_demo(tmp_path / "demo.html", model="ae", epochs=2)
    assert res.train_loop_seconds == pytest.approx(sum(res.detector.history_["epoch_seconds"]))
    assert 0.0 < res.train_loop_seconds <= res.fit_seconds <= res.seconds


@pytest.mark.slow
def test_run_demo_full_training_finds_malignant_rows(tmp_path):
    """The default demo (full training, early stopping): well under a minute on 2 cores."""
    res = run_demo(tmp_path / "demo.html")
    assert math.isfinite(res.auroc)
    assert res.auroc > 0.8, res.metrics
    assert res.auprc > 0.65, res.metrics
    assert res.seconds < 60
