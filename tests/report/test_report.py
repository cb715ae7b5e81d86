"""The self-contained HTML report (genad.report.build_report) and its figures."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import genad
from genad.errors import InvalidInputError, NotFittedError
from genad.report import build_report, describe_threshold
from genad.report.plots import use_log_scale

SECTIONS = ("summary", "alerts", "operating", "ranking", "distribution", "top", "downloads",
            "drivers", "training", "schema")


def _normal(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a = rng.normal(size=n)
    return pd.DataFrame({
        "amount": np.exp(rng.normal(3.0, 1.0, size=n)),
        "a": a,
        "b": 2.0 * a + 0.1 * rng.normal(size=n),
        "kind": np.where(a > 0, "card", "cash"),
    })


@pytest.fixture(scope="module")
def detector() -> genad.AutoEncoder:
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return genad.AutoEncoder(epochs=3, hidden_sizes=[8], latent_dim=2, target_fpr=0.05,
                                 random_state=0, verbose=0, device="cpu").fit(_normal(300, rng))


@pytest.fixture(scope="module")
def labelled() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = _normal(120, rng)
    X.loc[:9, "b"] = -2.0 * X.loc[:9, "a"] + 8.0  # off the b = 2a line
    y = np.r_[np.ones(10), np.zeros(110)].astype(int)
    return X, y


@pytest.fixture(scope="module")
def report_html(detector, labelled, tmp_path_factory) -> str:
    X, y = labelled
    out = tmp_path_factory.mktemp("report") / "nested" / "report.html"
    path = build_report(detector, X, y, out=out, top_n=7)
    assert isinstance(path, Path) and path == out and path.exists()
    return path.read_text(encoding="utf-8")


def _external_resources(html: str) -> list[str]:
    pattern = r"""(?:src|href|url)\s*[=(]\s*["']?\s*((?:https?:)?//[^"')\s>]+)"""
    return re.findall(pattern, html, flags=re.IGNORECASE)


def test_sections_and_images(report_html):
    for section in SECTIONS:
        assert f'id="{section}"' in report_html
    # ROC (linear and log FPR), PR, score distribution, training loss, column contributions
    assert report_html.count('src="data:image/png;base64,') == 6
    for text in ("AUROC", "AUPRC", "ROC curve", "Precision-recall curve", "true positives",
                 "false alarms", "Training history", "Top 7 anomalies", "AutoEncoder"):
        assert text in report_html


def test_is_self_contained(report_html):
    assert _external_resources(report_html) == []
    assert "http://" not in report_html and "https://" not in report_html
    assert "<script" not in report_html.lower()
    assert "<link" not in report_html.lower()
    assert "@import" not in report_html


def test_header_threshold_schema_versions(report_html, detector):
    assert "how it was set" in report_html.lower() or "Set so that about 5.0%" in report_html
    assert describe_threshold(detector) in report_html.replace("&#39;", "'")
    for column in ("amount", "kind"):
        assert column in report_html
    for lib in ("torch", "numpy", "scikit-learn", "genad"):
        assert lib in report_html
    assert "validation_fraction" in report_html  # the parameters table


def test_top_table_rows_and_labels(report_html):
    assert report_html.count('class="top-row"') == 7
    assert "anomaly</span>" in report_html  # label column shown when labels are known
    assert re.search(r"\d+%</span>", report_html)  # contribution shares


def test_confusion_counts_match_metrics(detector, labelled, tmp_path):
    X, y = labelled
    html = build_report(detector, X, y, out=tmp_path / "r.html").read_text(encoding="utf-8")
    pred = detector.predict(X)
    tp = int(((pred == 1) & (y == 1)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    assert re.search(rf'class="tp">{tp}<', html)
    assert re.search(rf'class="fn">{fn}<', html)


def test_without_labels(detector, labelled, tmp_path):
    X, _ = labelled
    html = build_report(detector, X, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No labels were given" in html
    assert "ROC curve" not in html
    # score distribution, training loss, column contributions
    assert html.count('src="data:image/png;base64,') == 3
    assert 'class="tp"' not in html


def test_one_class_labels(detector, labelled, tmp_path):
    X, _ = labelled
    html = build_report(detector, X, np.zeros(len(X)), out=tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert "undefined" in html
    assert "ROC curve" not in html
    assert 'class="fp"' in html  # false alarms are still countable


def test_label_column_name(detector, labelled, tmp_path):
    X, y = labelled
    Xl = X.assign(is_fraud=y)
    html = build_report(detector, Xl, "is_fraud", out=tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert "ROC curve" in html


def test_autoescaping(detector, labelled, tmp_path):
    X, y = labelled
    title = "<script>alert('x')</script> & co"
    html = build_report(detector, X, y, out=tmp_path / "r.html", title=title).read_text(
        encoding="utf-8"
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_array_fitted_detector(tmp_path):
    rng = np.random.default_rng(0)
    det = genad.AutoEncoder(epochs=2, hidden_sizes=[4], latent_dim=1, random_state=0,
                            target_fpr=0.1, verbose=0, device="cpu").fit(rng.normal(size=(200, 3)))
    X = np.r_[rng.normal(size=(30, 3)), rng.normal(6.0, 1.0, size=(3, 3))]
    y = np.r_[np.zeros(30), np.ones(3)]
    html = build_report(det, X, y, out=tmp_path / "r.html", top_n=50).read_text("utf-8")
    assert html.count('class="top-row"') == 33  # top_n capped at the number of rows
    assert "x0" in html


def test_bad_inputs(detector, labelled, tmp_path):
    X, y = labelled
    with pytest.raises(InvalidInputError, match="row 3"):
        build_report(detector, X, np.where(np.arange(len(y)) == 3, 2, y), out=tmp_path / "r")
    mixed = np.where(np.arange(len(y)) == 5, "yes", y.astype(str)).astype(object)
    with pytest.raises(InvalidInputError, match="row 5 holds 'yes'"):
        build_report(detector, X, mixed, out=tmp_path / "r.html")
    with pytest.raises(InvalidInputError, match="labels"):
        build_report(detector, X, y[:-1], out=tmp_path / "r.html")
    with pytest.raises(InvalidInputError, match="'b'"):
        build_report(detector, X.drop(columns=["b"]), y, out=tmp_path / "r.html")
    with pytest.raises(InvalidInputError, match="top_n"):
        build_report(detector, X, y, out=tmp_path / "r.html", top_n=0)
    with pytest.raises(NotFittedError):
        build_report(genad.AutoEncoder(), X, y, out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_leaves_matplotlib_state_alone(detector, labelled, tmp_path):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    X, y = labelled
    build_report(detector, X, y, out=tmp_path / "r.html")
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == before


def test_log_scale_rule():
    assert use_log_scale(np.geomspace(0.01, 100.0, 50))
    assert not use_log_scale(np.linspace(1.0, 50.0, 50))
    assert not use_log_scale(np.r_[-1.0, np.geomspace(0.01, 100.0, 50)])
