"""Figures of the HTML report, rendered off-screen (Agg) to base64 PNG data URIs.

Every function builds its own :class:`matplotlib.figure.Figure` on an Agg canvas and
never touches ``pyplot``, so building a report neither opens windows nor changes the
backend or the style of the caller's own plots. Text is drawn literally (no mathtext), so
a column named ``$x$`` or ``$\\undefined$`` is shown as written instead of failing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

__all__ = [
    "NORMAL_COLOR",
    "ANOMALY_COLOR",
    "figure_to_data_uri",
    "roc_figure",
    "roc_log_figure",
    "pr_figure",
    "score_distribution_figure",
    "loss_figure",
    "contribution_figure",
    "use_log_scale",
]

NORMAL_COLOR = "#3b6ea8"
ANOMALY_COLOR = "#c8423b"
NEUTRAL_COLOR = "#9aa3ad"
THRESHOLD_COLOR = "#222222"
_DPI = 130
_MAX_CURVE_POINTS = 4000

_STYLE: dict[str, Any] = {
    "text.parse_math": False,  # column names are data: "$x$" is shown as written
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e7eb",
    "grid.linewidth": 0.8,
    "axes.edgecolor": "#8a939c",
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "xtick.color": "#4a525a",
    "ytick.color": "#4a525a",
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _finish_unit_square(fig: Figure, ax: Any, *, xlabel: str, ylabel: str, title: str,
                        legend_loc: str, y_top: float) -> str:
    """Label a curve drawn on [0, 1] x [0, 1] and return the figure as a data URI."""
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, y_top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend_loc)
    return figure_to_data_uri(fig)


def _log_axis(ax: Any, which: str, *, percent: bool = False) -> None:
    """Log-scale one axis with plain tick labels (matplotlib's default ones are mathtext,
    which is switched off so that column names print literally): ``0.001`` or ``0.1%``."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(ticker.LogLocator(base=10.0))
    axis.set_major_formatter(ticker.FuncFormatter(
        lambda v, _pos: f"{100 * v:g}%" if percent else f"{v:g}"
    ))
    axis.set_minor_formatter(ticker.NullFormatter())


@contextmanager
def _plot(width: float, height: float) -> Iterator[tuple[Figure, Any]]:
    """A figure with one axes, drawn under genad's style (no global matplotlib state)."""
    with matplotlib.rc_context(_STYLE):
        fig = _figure(width, height)
        yield fig, fig.add_subplot()


def figure_to_data_uri(fig: Figure) -> str:
    """Encode a figure as a ``data:image/png;base64,...`` URI (self-contained HTML).

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    str
        The PNG as a data URI, usable as an ``<img src>``.

    Examples
    --------
    >>> fig = _figure(2, 2)
    >>> figure_to_data_uri(fig).startswith("data:image/png;base64,")
    True
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.08,
                metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep at most ``_MAX_CURVE_POINTS`` points of a curve (first and last kept)."""
    n = len(arrays[0])
    if n <= _MAX_CURVE_POINTS:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, _MAX_CURVE_POINTS).round().astype(int))
    return tuple(a[idx] for a in arrays)


def use_log_scale(values: Any, decades: float = 2.0) -> bool:
    """Whether positive values spread over more than ``decades`` powers of ten.

    Parameters
    ----------
    values : array-like of float
    decades : float, default 2.0

    Returns
    -------
    bool
        True when every value is positive and the 99.5th percentile is more than
        ``10 ** decades`` times the 0.5th percentile.

    Examples
    --------
    >>> use_log_scale([0.1, 1.0, 50.0, 400.0])
    True
    >>> use_log_scale([-1.0, 5.0, 500.0])
    False
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or np.min(v) <= 0:
        return False
    lo, hi = np.percentile(v, [0.5, 99.5])
    return bool(hi / lo > 10.0**decades)


def roc_figure(y: np.ndarray, scores: np.ndarray, threshold: float, auroc: float, *,
               unit: str = "row") -> str:
    """ROC curve with the operating point of ``threshold`` marked.

    Parameters
    ----------
    y : ndarray of 0/1
        Labels, 1 = anomaly; both classes must be present.
    scores : ndarray of float
        Anomaly scores, higher = more anomalous.
    threshold : float
        The detector's threshold (rows strictly above it are flagged).
    auroc : float
        Area under the curve, shown in the title.
    unit : str, default "row"
        What one sample is called on the axes ("row", "image").

    Returns
    -------
    str
        PNG data URI.

    Examples
    --------
    >>> uri = roc_figure(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), 0.5, 0.75)
    >>> uri[:22]
    'data:image/png;base64,'
    """
    fpr, tpr, _ = roc_curve(y, scores)
    fpr, tpr = _thin(fpr, tpr)
    flagged = scores > threshold
    op_tpr = float(flagged[y == 1].mean())
    op_fpr = float(flagged[y == 0].mean())
    with _plot(4.6, 3.9) as (fig, ax):
        ax.plot([0, 1], [0, 1], ls=":", color=NEUTRAL_COLOR, lw=1.2, label="random ranking")
        ax.plot(fpr, tpr, color=NORMAL_COLOR, lw=2, label=f"model (AUROC {auroc:.3f})")
        ax.fill_between(fpr, tpr, step=None, alpha=0.08, color=NORMAL_COLOR)
        ax.scatter([op_fpr], [op_tpr], s=46, color=ANOMALY_COLOR, zorder=5,
                   label=f"threshold: recall {op_tpr:.0%}, FPR {op_fpr:.1%}")
        return _finish_unit_square(
            fig, ax, xlabel=f"false-positive rate (normal {unit}s flagged)",
            ylabel="true-positive rate (anomalies caught)", title="ROC curve",
            legend_loc="lower right", y_top=1.01,
        )


def roc_log_figure(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    operating_thresholds: Sequence[float] = (),
    *,
    unit: str = "row",
) -> str:
    """ROC curve on a logarithmic false-positive-rate axis, where fraud teams work.

    The axis runs from ``1e-4`` (or one normal sample, when there are more than 10,000)
    to 1, so the region of a few false alarms per thousand normal samples is readable.

    Parameters
    ----------
    y : ndarray of 0/1
        Labels, 1 = anomaly; both classes must be present.
    scores : ndarray of float
    threshold : float
        The detector's threshold, marked in red.
    operating_thresholds : sequence of float, optional
        Further thresholds (the operating-points table), marked as open circles.
    unit : str, default "row"
        What one sample is called on the axes.

    Returns
    -------
    str
        PNG data URI.

    Examples
    --------
    >>> uri = roc_log_figure(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), 0.5)
    >>> uri.startswith("data:image/png;base64,")
    True
    """
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=np.float64)
    n_normal = int(np.sum(y == 0))
    left = min(1e-4, 10.0 ** np.floor(np.log10(1.0 / max(n_normal, 1))))
    fpr, tpr, _ = roc_curve(y, scores)
    fpr, tpr = _thin(np.clip(fpr, left, 1.0), tpr)

    def point(t: float) -> tuple[float, float]:
        flagged = scores > t
        return max(float(flagged[y == 0].mean()), left), float(flagged[y == 1].mean())

    with _plot(4.6, 3.9) as (fig, ax):
        grid = np.geomspace(left, 1.0, 200)
        ax.plot(grid, grid, ls=":", color=NEUTRAL_COLOR, lw=1.2, label="random ranking")
        ax.step(fpr, tpr, where="post", color=NORMAL_COLOR, lw=2, label="model")
        if len(operating_thresholds):
            pts = np.array([point(t) for t in operating_thresholds])
            ax.scatter(pts[:, 0], pts[:, 1], s=30, facecolors="white", edgecolors=THRESHOLD_COLOR,
                       linewidths=1.1, zorder=4, label="operating points (table)")
        op_fpr, op_tpr = point(threshold)
        ax.scatter([op_fpr], [op_tpr], s=46, color=ANOMALY_COLOR, zorder=5,
                   label=f"threshold: recall {op_tpr:.0%}, FPR {op_fpr:.2%}")
        _log_axis(ax, "x", percent=True)
        ax.set_xlim(left, 1.0)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel(f"false-positive rate, log scale (normal {unit}s flagged)")
        ax.set_ylabel("true-positive rate (anomalies caught)")
        ax.set_title("ROC curve, low false-positive rates")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        return figure_to_data_uri(fig)


def pr_figure(y: np.ndarray, scores: np.ndarray, threshold: float, auprc: float, *,
              unit: str = "row") -> str:
    """Precision-recall curve with the operating point and the random baseline.

    Parameters
    ----------
    y : ndarray of 0/1
        Labels, 1 = anomaly; both classes must be present.
    scores : ndarray of float
    threshold : float
    auprc : float
        Average precision, shown in the legend.
    unit : str, default "row"
        What one sample is called on the axes.

    Returns
    -------
    str
        PNG data URI.

    Examples
    --------
    >>> uri = pr_figure(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), 0.5, 0.8)
    >>> uri.startswith("data:image/png;base64,")
    True
    """
    precision, recall, _ = precision_recall_curve(y, scores)
    recall, precision = _thin(recall, precision)
    prevalence = float(np.mean(y))
    flagged = scores > threshold
    op_recall = float(flagged[y == 1].mean())
    op_precision = float(y[flagged].mean()) if flagged.any() else float("nan")
    with _plot(4.6, 3.9) as (fig, ax):
        ax.axhline(prevalence, ls=":", color=NEUTRAL_COLOR, lw=1.2,
                   label=f"random ranking ({prevalence:.1%} anomalies)")
        ax.step(recall, precision, where="post", color=NORMAL_COLOR, lw=2,
                label=f"model (AUPRC {auprc:.3f})")
        if np.isfinite(op_precision):
            ax.scatter([op_recall], [op_precision], s=46, color=ANOMALY_COLOR, zorder=5,
                       label=f"threshold: precision {op_precision:.0%}, recall {op_recall:.0%}")
        return _finish_unit_square(
            fig, ax, xlabel="recall (anomalies caught)",
            ylabel=f"precision (flagged {unit}s that are anomalies)",
            title="Precision-recall curve",
            legend_loc="lower left", y_top=1.04,
        )


def _bins(values: np.ndarray, log: bool, n: int = 50) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 1e-3
    if log:
        return np.geomspace(lo, hi, n + 1)
    return np.linspace(lo, hi, n + 1)


def score_distribution_figure(
    scores: np.ndarray,
    threshold: float,
    y: np.ndarray | None = None,
    calibration_scores: np.ndarray | None = None,
    *,
    unit: str = "row",
) -> tuple[str, bool]:
    """Histograms of the scores of normal and anomalous rows, threshold marked.

    Parameters
    ----------
    scores : ndarray of float
        Scores of the rows in the report.
    threshold : float
    y : ndarray of 0/1, optional
        Labels. Without them one histogram of all rows is drawn.
    calibration_scores : ndarray, optional
        Held-out normal training scores; drawn as an outline for reference.
    unit : str, default "row"
        What one sample is called in the legend ("row", "image").

    Returns
    -------
    (str, bool)
        PNG data URI, and whether the x axis is logarithmic (scores spanning decades).

    Examples
    --------
    >>> uri, log = score_distribution_figure(np.array([1.0, 2.0, 3.0, 40.0]), 10.0)
    >>> log
    False
    """
    scores = np.asarray(scores, dtype=np.float64)
    every = [scores, np.atleast_1d(threshold)]
    if calibration_scores is not None and len(calibration_scores):
        every.append(np.asarray(calibration_scores, dtype=np.float64))
    pooled = np.concatenate(every)
    log = use_log_scale(pooled)
    bins = _bins(pooled, log)
    with _plot(9.2, 3.4) as (fig, ax):
        groups: list[tuple[str, np.ndarray, str]] = []
        if y is not None:
            classes = ((0, "normal", NORMAL_COLOR), (1, "anomalous", ANOMALY_COLOR))
            for value, name, color in classes:
                part = scores[y == value]
                if part.size:
                    groups.append((f"{name} {unit}s (n={part.size:,})", part, color))
            ylabel = f"share of the group's {unit}s"
        else:
            groups.append((f"all {unit}s (n={scores.size:,})", scores, NORMAL_COLOR))
            ylabel = f"share of {unit}s"
        for label, part, color in groups:
            ax.hist(part, bins=bins, weights=np.full(part.size, 1.0 / part.size), color=color,
                    alpha=0.55, label=label, edgecolor="white", linewidth=0.3)
        if calibration_scores is not None and len(calibration_scores):
            cal = np.asarray(calibration_scores, dtype=np.float64)
            ax.hist(cal, bins=bins, weights=np.full(cal.size, 1.0 / cal.size), histtype="step",
                    color="#444444", lw=1.1, ls="--",
                    label=f"held-out training normals (n={cal.size:,})")
        ax.axvline(threshold, color=THRESHOLD_COLOR, lw=1.6, ls="--",
                   label=f"threshold {threshold:.4g} ({unit}s to the right are flagged)")
        if log:
            _log_axis(ax, "x")
        ax.set_xlabel("anomaly score" + (" (log scale)" if log else ""))
        ax.set_ylabel(ylabel)
        ax.set_title("Score distribution")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        return figure_to_data_uri(fig), log


def loss_figure(history: Mapping[str, Any]) -> str | None:
    """Training and validation loss per epoch, the kept (best) epoch marked.

    Every other loss part of the history (``parts``: a VAE's ``nll`` and ``kl``, a GAN's
    generator and discriminator losses) is drawn as a thin dashed line, and the start of
    each phase after the first (``phases``) as a dotted line.

    Parameters
    ----------
    history : mapping
        ``history_`` of a fitted detector (``train_loss``, ``val_loss``, ``best_epoch``,
        optional ``parts`` and ``phases``).

    Returns
    -------
    str or None
        PNG data URI, or None when the history holds no epoch.

    Examples
    --------
    >>> loss_figure({"train_loss": [], "val_loss": []}) is None
    True
    >>> loss_figure({"train_loss": [3.0, 2.0], "val_loss": [3.1, 2.2], "best_epoch": 1,
    ...              "parts": {"kl": [0.5, 0.7]}}).startswith("data:image/png;base64,")
    True
    """
    train = np.asarray(history.get("train_loss") or [], dtype=np.float64)
    val = np.asarray(history.get("val_loss") or [], dtype=np.float64)
    if train.size == 0 and val.size == 0:
        return None
    best = history.get("best_epoch")
    with _plot(9.2, 3.2) as (fig, ax):
        if train.size:
            ax.plot(np.arange(1, train.size + 1), train, color=NORMAL_COLOR, lw=1.8,
                    label="training loss", marker="o" if train.size < 15 else None, ms=3)
        if val.size:
            ax.plot(np.arange(1, val.size + 1), val, color="#e08a1e", lw=1.8,
                    label="validation loss (held-out normals)",
                    marker="o" if val.size < 15 else None, ms=3)
        part_values = []
        for name, values in sorted((history.get("parts") or {}).items()):
            part = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
            if part.size and np.isfinite(part).any():
                ax.plot(np.arange(1, part.size + 1), part, lw=1.0, ls="--",
                        label=f"training {name}")
                part_values.append(part[np.isfinite(part)])
        start = 0
        for phase in (history.get("phases") or [])[:-1]:
            start += int(phase.get("epochs", 0))
            ax.axvline(start + 0.5, color="#888888", ls=":", lw=1.0,
                       label=f"end of phase {phase.get('name', '')!s}")
        if isinstance(best, (int, np.integer)) and 0 <= best < max(train.size, val.size):
            ax.axvline(best + 1, color=THRESHOLD_COLOR, ls="--", lw=1.2,
                       label=f"best epoch {best + 1} (weights kept)")
        both = np.concatenate([train, val, *part_values])
        if use_log_scale(both, decades=1.5):
            _log_axis(ax, "y")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("Training history")
        ax.legend(loc="best")
        return figure_to_data_uri(fig)


def contribution_figure(
    flagged_mean: pd.Series,
    other_mean: pd.Series | None = None,
    *,
    flagged_label: str = "flagged rows",
    other_label: str = "other rows",
    max_columns: int = 20,
) -> str:
    """Horizontal bars: mean contribution of each column to the score.

    Parameters
    ----------
    flagged_mean : Series
        Mean contribution per column over the flagged rows (index = column names).
    other_mean : Series, optional
        The same over the rows that are not flagged, drawn for comparison.
    flagged_label, other_label : str
        Legend entries.
    max_columns : int, default 20
        Columns shown (the largest ``flagged_mean``).

    Returns
    -------
    str
        PNG data URI.

    Examples
    --------
    >>> uri = contribution_figure(pd.Series({"amount": 3.0, "hour": 1.0}))
    >>> uri.startswith("data:image/png;base64,")
    True
    """
    top = flagged_mean.sort_values(ascending=False).iloc[:max_columns]
    names: Sequence[str] = [str(c) for c in top.index][::-1]
    pos = np.arange(len(names))
    height = 1.0 + 0.28 * len(names)
    with _plot(9.2, max(2.2, height)) as (fig, ax):
        ax.grid(axis="y", visible=False)
        if other_mean is not None:
            other = other_mean.reindex(top.index).fillna(0.0).to_numpy()[::-1]
            ax.barh(pos + 0.2, top.to_numpy()[::-1], height=0.4, color=ANOMALY_COLOR,
                    label=flagged_label)
            ax.barh(pos - 0.2, other, height=0.4, color=NEUTRAL_COLOR, label=other_label)
            ax.legend(loc="lower right")
        else:
            ax.barh(pos, top.to_numpy()[::-1], height=0.6, color=ANOMALY_COLOR,
                    label=flagged_label)
        ax.set_yticks(pos, names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel("mean contribution to the anomaly score")
        ax.set_title("What drives the alerts: contribution per column")
        return figure_to_data_uri(fig)
