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
from genad import registry
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


# ------------------------------------------------------------ helpers (new sections)
def _top_chips(html: str) -> list[str]:
    """Each top-table row's chips as explain writes them: ``"a (50%), b (50%)"``."""
    rows = re.findall(r'<tr class="top-row">(.*?)</tr>', html, flags=re.S)
    chip = re.compile(r'</span>([^<]*?) (?:<span class="val">[^<]*</span> )?'
                      r'<span class="pct">(-?\d+)%')
    return [", ".join(f"{name} ({pct}%)" for name, pct in chip.findall(row)) for row in rows]


def _downloads(html: str) -> dict[str, pd.DataFrame]:
    import base64
    import io

    found = re.findall(r'<a download="([^"]+)" href="data:text/csv;base64,([^"]+)"', html)
    return {name: pd.read_csv(io.BytesIO(base64.b64decode(data))) for name, data in found}


def _operating_rows(html: str) -> list[list[str]]:
    rows = re.findall(r'<tr class="op-row[^"]*">(.*?)</tr>', html, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r,
                                                                   flags=re.S)]
            for r in rows]


def _fit(X, **params) -> genad.AutoEncoder:
    settings = dict(epochs=2, hidden_sizes=[4], latent_dim=1, random_state=0, verbose=0,
                    device="cpu")
    settings.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return genad.AutoEncoder(**settings).fit(X)


# ------------------------------------------------- item 6: robustness of the report
DOLLAR_NAMES = ["$\\undefined$", "$x$", "cost in $"]


def _dollar_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a = rng.normal(size=n)
    return pd.DataFrame({DOLLAR_NAMES[0]: a, DOLLAR_NAMES[1]: 2 * a + 0.1 * rng.normal(size=n),
                         DOLLAR_NAMES[2]: rng.normal(size=n)})


def test_dollar_column_names_are_drawn_literally(tmp_path):
    rng = np.random.default_rng(0)
    det = _fit(_dollar_frame(200, rng))
    X = _dollar_frame(40, rng)
    y = np.r_[np.zeros(35), np.ones(5)]
    html = build_report(det, X, y, out=tmp_path / "r.html").read_text("utf-8")
    for name in DOLLAR_NAMES:
        assert name in html.replace("&#36;", "$")


def test_cli_report_with_dollar_column_name(tmp_path):
    from typer.testing import CliRunner

    from genad.cli import app

    rng = np.random.default_rng(0)
    det = _fit(_dollar_frame(200, rng))
    model = det.save(tmp_path / "m.genad")
    data = tmp_path / "d.csv"
    _dollar_frame(30, rng).assign(label=np.r_[np.zeros(27), np.ones(3)].astype(int)).to_csv(
        data, index=False
    )
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(model), str(data), "--label-column",
                                      "label", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "$\\undefined$" in out.read_text("utf-8")


def _vae_like(det, monkeypatch):
    """Make the model's per-column contributions (s, s, -0.08 s) for s > 0: like a VAE's,
    the third one is negative."""
    import torch

    def element_scores(x: torch.Tensor) -> torch.Tensor:
        s = 1.0 + x[:, 0].abs()
        return torch.stack([s, s, -0.08 * s], dim=1)

    monkeypatch.setattr(det.model_, "element_scores", element_scores)


def test_report_shares_match_explain_with_negative_contributions(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    det = _fit(X)
    _vae_like(det, monkeypatch)
    html = build_report(det, X.iloc[:30], out=tmp_path / "r.html", top_n=5).read_text("utf-8")
    chips = _top_chips(html)
    assert chips and all(c == "a (50%), b (50%), c (0%)" for c in chips), chips
    top = det.anomaly_score(X.iloc[:30]).argsort(kind="stable")[::-1][:5]
    assert det.explain(X.iloc[:30])["top_features"].iloc[top].tolist() == chips


def _count_model_calls(det, monkeypatch) -> list[int]:
    calls = [0]
    original = det.model_.element_scores

    def counted(x):
        calls[0] += 1
        return original(x)

    monkeypatch.setattr(det.model_, "element_scores", counted)
    return calls


def test_report_runs_the_model_once(detector, labelled, tmp_path, monkeypatch):
    X, y = labelled
    calls = _count_model_calls(detector, monkeypatch)
    detector.anomaly_score(X)
    one_pass = calls[0]
    assert one_pass >= 1
    calls[0] = 0
    build_report(detector, X, y, out=tmp_path / "r.html")
    assert calls[0] == one_pass


def test_report_flags_exactly_what_predict_flags(tmp_path):
    """The report's scores are ``anomaly_score``'s, not the map's float64 row sums (which
    differ in the last float32 digits): on the rows the threshold was calibrated on, the
    row at the threshold must not be flagged."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 6)), columns=list("abcdef"))
    X_val = pd.DataFrame(rng.normal(size=(500, 6)), columns=list("abcdef"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = genad.AutoEncoder(epochs=3, random_state=0, verbose=0, device="cpu").fit(
            X, X_val=X_val
        )
    html = build_report(det, X_val, out=tmp_path / "r.html").read_text("utf-8")
    expected = np.flatnonzero(det.predict(X_val))
    assert re.search(rf"Flagged as anomalies</td><td>{expected.size} \(", html)
    assert sorted(_downloads(html)["flagged.csv"]["row"]) == expected.tolist()


def test_score_and_map_matches_anomaly_score_and_anomaly_map():
    rng = np.random.default_rng(0)
    X = _normal(300, rng)
    for name, cls in genad.MODELS.items():
        if "tabular" not in registry.preset(name).modalities:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            det = cls(epochs=2, random_state=0, verbose=0, device="cpu").fit(X)
        scores, contrib = det._score_and_map(X)
        np.testing.assert_array_equal(scores, det.anomaly_score(X), err_msg=name)
        pd.testing.assert_frame_equal(contrib, det.anomaly_map(X))


def test_output_errors_are_named(detector, labelled, tmp_path):
    from genad.errors import OutputError

    X, y = labelled
    with pytest.raises(OutputError, match="folder"):
        build_report(detector, X, y, out=tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt"):
        build_report(detector, X, y, out=blocker / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_write_is_atomic(detector, labelled, tmp_path, monkeypatch):
    X, y = labelled
    out = tmp_path / "r.html"
    out.write_text("previous report")

    original = Path.write_text

    def half_written(self, data, *args, **kwargs):
        original(self, data[:100], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_written)
    with pytest.raises(OSError, match="r.html"):
        build_report(detector, X, y, out=out)
    monkeypatch.undo()
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


# ------------------------------------------------------------ item 9: for an analyst
def test_operating_points_table(detector, labelled, tmp_path):
    from genad.calibration import threshold_at_fpr
    from genad.metrics import precision_recall_f1
    from genad.report.html import OPERATING_FPRS, _num, _pct

    X, y = labelled
    html = build_report(detector, X, y, out=tmp_path / "r.html").read_text("utf-8")
    rows = _operating_rows(html)
    assert len(rows) == 1 + len(OPERATING_FPRS)
    assert rows[0][0] == "current threshold" and rows[0][1] == _num(detector.threshold_)
    scores = detector.anomaly_score(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rate, row in zip(OPERATING_FPRS, rows[1:], strict=True):
            t = threshold_at_fpr(detector.calibration_scores_, rate, strict=False)
            m = precision_recall_f1(y, (scores > t).astype(int))
            assert row[:7] == [f"{100 * rate:g}%", _num(t), _num(int((scores > t).sum())),
                               _pct((scores > t).mean(), 2), _pct(m["precision"]),
                               _pct(m["recall"]), _pct(m["false_positive_rate"], 2)]


def test_operating_points_mark_rates_the_calibration_cannot_resolve(tmp_path):
    from genad.errors import CalibrationWarning

    rng = np.random.default_rng(0)
    det = _fit(_normal(300, rng), target_fpr=0.05)  # 30 held-out rows: 1/n = 3.3%
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        html = build_report(det, _normal(50, rng), out=tmp_path / "r.html").read_text("utf-8")
    rows = _operating_rows(html)
    unresolved = [r[0] for r in rows if "cannot be resolved with 30 held-out normals" in r[-1]]
    assert unresolved == ["0.1%", "0.5%", "1%", "2%"]
    assert rows[-1][-1] == "1 of 30 held-out normals above it"
    assert "precision" not in html.split('class="operating"')[1].split("</thead>")[0]


def test_log_scaled_roc_panel(report_html, detector, labelled, tmp_path):
    assert 'alt="ROC curve with a logarithmic false-positive-rate axis"' in report_html
    X, _ = labelled
    html = build_report(detector, X, out=tmp_path / "r.html").read_text("utf-8")
    assert "logarithmic false-positive-rate" not in html


def test_log_axis_labels_are_plain_text():
    from genad.report import plots

    with plots._plot(3, 3) as (fig, ax):
        ax.plot([1e-4, 1.0], [0.0, 1.0])
        plots._log_axis(ax, "x", percent=True)
        ax.set_xlim(1e-4, 1.0)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"0.01%", "0.1%", "1%", "10%", "100%"} <= set(labels)
    assert not any("$" in text for text in labels)  # not mathtext, drawn as written


def test_top_table_shows_ids_and_input_values(detector, labelled, tmp_path):
    from genad.report.html import _raw

    X, y = labelled
    Xi = X.assign(txn=[f"T{i:04d}" for i in range(len(X))])
    html = build_report(detector, Xi, y, out=tmp_path / "r.html", top_n=5,
                        id_column="txn").read_text("utf-8")
    assert '<th class="id-name">txn</th>' in html
    order = np.argsort(-detector.anomaly_score(X), kind="stable")[:5]
    rows = re.findall(r'<tr class="top-row">(.*?)</tr>', html, flags=re.S)
    for i, row in zip(order, rows, strict=True):
        assert f'<td class="mono">T{i:04d}</td>' in row
        # every model column's raw value, e.g. "amount <b>20.0855</b>"
        for column in ("amount", "a", "b", "kind"):
            assert f"{column} <b>{_raw(X[column].iloc[i])}</b>" in row
        chip_values = re.findall(r'</span>(\w+) <span class="val">([^<]*)</span>', row)
        assert len(chip_values) == 3
        for column, text in chip_values:
            assert text == _raw(X[column].iloc[i])


def test_id_column_errors(detector, labelled, tmp_path):
    X, y = labelled
    with pytest.raises(InvalidInputError, match="did you mean 'amount'"):
        build_report(detector, X, y, out=tmp_path / "r.html", id_column="amont")
    rng = np.random.default_rng(0)
    det = _fit(rng.normal(size=(100, 3)))
    with pytest.raises(InvalidInputError, match="named columns"):
        build_report(det, rng.normal(size=(10, 3)), out=tmp_path / "r.html", id_column="x0")


def test_header_names_the_source_and_the_date(detector, labelled, tmp_path):
    import datetime

    X, y = labelled
    html = build_report(detector, X, y, out=tmp_path / "r.html",
                        source_name="transactions-may.csv").read_text("utf-8")
    header = html.split("</header>")[0]
    assert "<b>transactions-may.csv</b>" in header
    assert datetime.date.today().isoformat() in header
    path = tmp_path / "june.csv"
    X.assign(y=y).to_csv(path, index=False)
    html = build_report(detector, path, "y", out=tmp_path / "r.html").read_text("utf-8")
    assert "<b>june.csv</b>" in html.split("</header>")[0]


def test_epoch_cap_warning(detector, labelled, tmp_path, monkeypatch):
    X, y = labelled
    monkeypatch.delitem(detector.history_, "hit_epoch_cap", raising=False)  # an old bundle
    html = build_report(detector, X, y, out=tmp_path / "r.html").read_text("utf-8")
    assert "epoch cap" not in html
    monkeypatch.setitem(detector.history_, "hit_epoch_cap", False)
    html = build_report(detector, X, y, out=tmp_path / "r.html").read_text("utf-8")
    assert "epoch cap" not in html
    monkeypatch.setitem(detector.history_, "hit_epoch_cap", True)
    html = build_report(detector, X, y, out=tmp_path / "r.html").read_text("utf-8")
    assert 'class="callout warn epoch-cap"' in html
    assert f"All\n      {detector.n_epochs_} epochs ran" in html


def test_csv_downloads(detector, labelled, tmp_path):
    X, y = labelled
    Xi = X.assign(txn=[f"T{i:04d}" for i in range(len(X))])
    html = build_report(detector, Xi, y, out=tmp_path / "r.html",
                        id_column="txn").read_text("utf-8")
    files = _downloads(html)
    assert set(files) <= {"flagged.csv", "false-alarms.csv", "missed-anomalies.csv"}
    scores = detector.anomaly_score(X)
    flagged = scores > detector.threshold_
    expected = {"flagged.csv": flagged, "false-alarms.csv": flagged & (y == 0),
                "missed-anomalies.csv": ~flagged & (y == 1)}
    for name, mask in expected.items():
        rows = np.flatnonzero(mask)
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        if rows.size == 0:
            assert name not in files
            continue
        table = files[name]
        assert list(table.columns[:6]) == ["txn", "anomaly_score", "p_value", "is_anomaly",
                                           "label", "top_features"]
        assert table["txn"].tolist() == [f"T{i:04d}" for i in rows]
        np.testing.assert_allclose(table["anomaly_score"], scores[rows])
        np.testing.assert_allclose(table["amount"], X["amount"].to_numpy()[rows])
        assert table["label"].tolist() == y[rows].tolist()
    assert "missed-anomalies.csv" in files or "false-alarms.csv" in files


def test_csv_downloads_without_labels_and_capped(detector, labelled, tmp_path, monkeypatch):
    import genad.report.html as report_html

    X, _ = labelled
    monkeypatch.setattr(report_html, "MAX_DOWNLOAD_ROWS", 2)
    det_scores = detector.anomaly_score(X)
    n_flagged = int((det_scores > detector.threshold_).sum())
    assert n_flagged > 2
    html = build_report(detector, X, out=tmp_path / "r.html").read_text("utf-8")
    files = _downloads(html)
    assert set(files) == {"flagged.csv"}
    assert "label" not in files["flagged.csv"].columns
    assert files["flagged.csv"]["row"].tolist() == np.argsort(-det_scores)[:2].tolist()
    assert f"the 2 highest-scoring of {n_flagged} rows" in html


def test_training_section_describes_the_backbone_of_the_preset(model_name, fitted_factory):
    from genad import registry
    from genad.report.html import _training

    det = fitted_factory(model_name)
    info = _training(det, det.history_)
    n_in, latent = det.adapter_.n_features_out_, det.latent_dim_
    if registry.preset(model_name).architecture == "conv1d":
        assert info["architecture"] == f"1-D conv, {n_in} features \u2192 latent {latent}"
    else:
        widths = [n_in, *det.hidden_sizes_]
        assert info["architecture"] == ("MLP, " + " \u2192 ".join(map(str, widths))
                                        + f" \u2192 latent {latent}")
