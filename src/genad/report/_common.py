"""Pieces shared by the table report (:mod:`genad.report.html`) and the image report
(:mod:`genad.report.image_report`): number formatting, the Jinja environment, label
checks, the threshold sentences, the operating points, the ranking curves, the
parameters, the training summary, the library versions, the page context they make, and
the checks and the write every report starts and ends with.

Wording follows the adapter: a table report speaks of *rows*, an image report of
*images* (see :func:`words`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import importlib.metadata
import importlib.resources
import inspect
import math
import platform
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FunctionLoader, StrictUndefined

from genad._io import atomic_path
from genad._params import positive_int
from genad.calibration import conformal_p_values, threshold_at_fpr
from genad.errors import CalibrationWarning, InvalidInputError, NotFittedError
from genad.metrics import auprc as _auprc
from genad.metrics import auroc as _auroc
from genad.metrics import precision_at_k, precision_recall_f1
from genad.report import plots

__all__ = [
    "OPERATING_FPRS",
    "num",
    "pct",
    "words",
    "render",
    "labels01",
    "describe_threshold",
    "threshold_short",
    "versions",
    "params",
    "operating_points",
    "training",
    "ranking",
    "data_uri_csv",
    "common_context",
    "check_fitted",
    "count_and_source",
    "write_page",
]

#: target false-positive rates of the operating-points table
OPERATING_FPRS = (0.001, 0.005, 0.01, 0.02, 0.05)
_VERSION_PACKAGES = ("genad", "torch", "numpy", "pandas", "scikit-learn", "matplotlib",
                     "jinja2", "safetensors")


# ----------------------------------------------------------------- formatting
def num(value: Any, digits: int = 4) -> str:
    """Compact number: ints with separators, floats with ``digits`` significant digits.

    Examples
    --------
    >>> [num(v) for v in (12345, 0.000123, 2.5, None, float("nan"), True)]
    ['12,345', '1.230e-04', '2.5', '–', 'n/a', 'yes']
    """
    if value is None:
        return "\u2013"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "\u221e" if v > 0 else "-\u221e"
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage: ``pct(0.0123) == '1.2%'``; ``'n/a'`` for None or NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(v):
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def _param_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def words(detector: Any) -> dict[str, str]:
    """How a report names the detector's samples: ``unit`` ("row" or "image"), ``units``,
    ``Units`` (capitalised) and ``normal`` (the adjective for normal samples: fraud teams
    call normal rows *legitimate*).

    Examples
    --------
    >>> words(None)["units"]
    'rows'
    """
    unit = str(getattr(getattr(detector, "adapter_", None), "sample_noun", "row") or "row")
    units = unit + "s"
    return {"unit": unit, "units": units, "Units": units[:1].upper() + units[1:],
            "normal": "legitimate" if unit == "row" else "normal"}


# ------------------------------------------------------------------ templates
def _load_template(name: str) -> str:
    return importlib.resources.files("genad.report").joinpath(name).read_text("utf-8")


def _environment() -> Environment:
    env = Environment(loader=FunctionLoader(_load_template), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = num
    env.filters["pct"] = pct
    return env


def render(template: str, context: dict[str, Any]) -> str:
    """Render the packaged template ``template`` (it may extend ``base.html`` and import
    the macros of ``parts.html``) with ``context``; values are HTML-escaped."""
    return _environment().get_template(template).render(**context)


def write_page(template: str, context: dict[str, Any], out: str | Path) -> Path:
    """Render ``template`` with ``context`` and write it to ``out`` atomically (folders
    are created); return the path."""
    html = render(template, context)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)


# ------------------------------------------------------------------ arguments
def check_fitted(detector: Any) -> None:
    """``NotFittedError`` unless ``detector`` is fitted."""
    if not hasattr(detector, "model_"):
        raise NotFittedError(
            f"this {type(detector).__name__} is not fitted yet; call fit(X) first"
        )


def count_and_source(X: Any, source_name: str | None, count_name: str, count: Any
                     ) -> tuple[int, str | None]:
    """A report's ``count_name`` argument (how many samples it lists) as an int
    (``InvalidInputError`` unless a positive integer), and its source name (default: the
    file or folder name when ``X`` is a path)."""
    count = positive_int(count_name, count)
    if source_name is None and isinstance(X, (str, Path)):
        source_name = Path(X).name
    return count, source_name


# --------------------------------------------------------------------- labels
def labels01(y: Any, n: int, unit: str = "row") -> np.ndarray:
    """``y`` as an int64 array of 0/1 of length ``n`` (``InvalidInputError`` otherwise)."""
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y).ravel()
    if arr.shape[0] != n:
        raise InvalidInputError(f"y has {arr.shape[0]} labels but X has {n} {unit}s")
    values = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"labels must be 0 (normal) or 1 (anomaly); {unit} {i} holds {arr[i]!r}"
        )
    return values.astype(np.int64)


# ------------------------------------------------------------------ threshold
def describe_threshold(detector: Any) -> str:
    """One sentence saying how a fitted detector's ``threshold_`` was set.

    Parameters
    ----------
    detector : Detector
        A fitted genad detector.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np, genad
    >>> X = np.random.default_rng(0).normal(size=(300, 3))
    >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(X)
    >>> describe_threshold(det)[:40]
    'Set so that about 1.0% of normal rows sc'
    """
    units = words(detector)["units"]
    method = getattr(detector, "threshold_method_", None)
    setting = getattr(detector, "threshold_setting_", None)
    cal = np.asarray(getattr(detector, "calibration_scores_", []))
    n_cal = int(cal.size)
    if method == "target_fpr" and setting is not None:
        text = (f"Set so that about {pct(setting)} of normal {units} score above it (target "
                f"false-positive rate), measured on {n_cal:,} held-out normal training "
                f"{units}.")
        if n_cal and setting < 1.0 / n_cal:
            text += (f" With only {n_cal:,} held-out {units} a rate below {pct(1.0 / n_cal)} "
                     "cannot be resolved, so the threshold is the highest held-out score; "
                     "the real false-positive rate may be higher than asked.")
        return text
    if method == "contamination" and setting is not None:
        return (f"Set so that {pct(setting)} of the {units} it was calibrated on are flagged "
                "(expected contamination).")
    if method == "f1_optimal":
        return (f"Set to maximise F1 on labelled validation data (normal and anomalous "
                f"{units}).")
    return f"Set by method {method!r}" + (f" ({setting})." if setting is not None else ".")


def threshold_short(detector: Any) -> str:
    """A few words on how the threshold was set, for the header."""
    method = getattr(detector, "threshold_method_", None)
    setting = getattr(detector, "threshold_setting_", None)
    if method == "target_fpr" and setting is not None:
        return f"target false-positive rate {pct(setting, 1)}"
    if method == "contamination" and setting is not None:
        return f"contamination {pct(setting, 1)}"
    if method == "f1_optimal":
        return "F1-optimal on labelled data"
    return str(method or "n/a")


# -------------------------------------------------------- versions, parameters
def versions(extra: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``(name, version)`` of Python, genad's dependencies (and ``extra`` packages)
    that are installed, and the platform."""
    out = [("python", platform.python_version())]
    for name in (*_VERSION_PACKAGES, *extra):
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    out.append(("platform", platform.platform(terse=True)))
    return out


def params(detector: Any) -> list[dict[str, Any]]:
    """The detector's parameters, each marked ``changed`` when it differs from the
    class default."""
    values = detector.get_params()
    try:
        defaults = type(detector)().get_params()
    except Exception:  # a subclass with required parameters: no default to compare with
        defaults = {}
    return [
        {"name": k, "value": _param_text(v), "changed": k in defaults and defaults[k] != v}
        for k, v in values.items()
    ]


# ---------------------------------------------------------- operating points
def _operating_row(label: str, threshold: float, scores: np.ndarray,
                   labels: np.ndarray | None, **extra: Any) -> dict[str, Any]:
    flagged = scores > threshold
    row: dict[str, Any] = {"label": label, "threshold": float(threshold),
                           "alerts": int(flagged.sum()), "alert_share": float(flagged.mean()),
                           "precision": None, "recall": None, "fpr": None, **extra}
    if labels is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = precision_recall_f1(labels, flagged.astype(np.int64))
        row.update(precision=m["precision"], recall=m["recall"], fpr=m["false_positive_rate"])
    return row


def operating_points(detector: Any, scores: np.ndarray,
                     labels: np.ndarray | None) -> list[dict[str, Any]]:
    """The current threshold, then one row per target rate of :data:`OPERATING_FPRS`.

    Each threshold comes from the held-out normal calibration scores
    (:func:`genad.calibration.threshold_at_fpr`); a rate below ``1 / n`` of them cannot be
    resolved and is marked (the threshold is then the highest held-out score).
    """
    calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
    n_cal = int(calibration.size)
    rows = [_operating_row("current threshold", float(detector.threshold_), scores, labels,
                           basis=threshold_short(detector), current=True, coarse=False)]
    for rate in OPERATING_FPRS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threshold = threshold_at_fpr(calibration, rate, strict=False)
        coarse = any(issubclass(w.category, CalibrationWarning) for w in caught)
        if coarse:
            basis = (f"cannot be resolved with {n_cal:,} held-out normals (smallest rate "
                     f"{pct(1.0 / n_cal, 2)}): the highest held-out score is used, the real "
                     "rate may be higher")
        else:
            above = int(np.sum(calibration > threshold))
            basis = f"{above:,} of {n_cal:,} held-out normals above it"
        rows.append(_operating_row(f"{100 * rate:g}%", threshold, scores, labels, basis=basis,
                                   current=False, coarse=coarse))
    return rows


# ------------------------------------------------------------------- training
def training(detector: Any, history: dict[str, Any]) -> dict[str, Any]:
    """Epochs, best epoch, time, losses and the network's shape, for the summary."""
    architecture = detector._network_summary()
    return {
        "epochs": getattr(detector, "n_epochs_", len(history.get("train_loss", []))),
        "max_epochs": detector.get_params().get("epochs"),
        "best_epoch": (history["best_epoch"] + 1
                       if isinstance(history.get("best_epoch"), int) else None),
        "stopped_early": bool(history.get("stopped_early", False)),
        "hit_epoch_cap": bool(history.get("hit_epoch_cap", False)),
        "device": history.get("device", "n/a"),
        "seconds": float(np.sum(history.get("epoch_seconds", []) or [0.0])),
        "final_train": history["train_loss"][-1] if history.get("train_loss") else None,
        "best_val": (min(history["val_loss"]) if history.get("val_loss") else None),
        "architecture": architecture,
        "parts": sorted(str(k) for k in (history.get("parts") or {})),
    }


# -------------------------------------------------------------------- ranking
def ranking(labels: np.ndarray | None, scores: np.ndarray, threshold: float,
            operating: list[dict[str, Any]], unit: str = "row",
            how_to_label: str = "Pass a label column (1 = anomaly, 0 = normal) to see it."
            ) -> dict[str, Any]:
    """AUROC / AUPRC and the curves when both classes are labelled, else why not."""
    n = scores.size
    if labels is not None and 0 < int(labels.sum()) < n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auroc = _auroc(labels, scores)
            auprc = _auprc(labels, scores)
            p_at_k = precision_at_k(labels, scores)
        others = [row["threshold"] for row in operating if not row["current"]]
        return {
            "ranking": {"auroc": auroc, "auprc": auprc, "precision_at_k": p_at_k,
                        "k": int(labels.sum()), "prevalence": float(labels.mean())},
            "roc_uri": plots.roc_figure(labels, scores, threshold, auroc, unit=unit),
            "roc_log_uri": plots.roc_log_figure(labels, scores, threshold, others, unit=unit),
            "pr_uri": plots.pr_figure(labels, scores, threshold, auprc, unit=unit),
            "no_curves_reason": None,
        }
    if labels is not None:
        only = "normal (0)" if int(labels.sum()) == 0 else "anomalous (1)"
        reason = (f"Every labelled {unit} is {only}, so ROC and precision-recall curves are "
                  f"undefined: they need both normal and anomalous {unit}s.")
    else:
        reason = ("No labels were given, so the ranking quality (ROC, precision-recall, "
                  f"AUROC, AUPRC) cannot be measured. {how_to_label}")
    return {"ranking": None, "roc_uri": None, "roc_log_uri": None, "pr_uri": None,
            "no_curves_reason": reason}


def data_uri_csv(frame: pd.DataFrame) -> str:
    """A table as a ``data:text/csv;base64,...`` URI (a download link in the page)."""
    data = frame.to_csv(index=False).encode("utf-8")
    return "data:text/csv;base64," + base64.b64encode(data).decode("ascii")


# -------------------------------------------------------------- page context
def _first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring as one line of plain text (Sphinx roles and
    literals unwrapped): a summary that wraps over several source lines stays whole.

    Examples
    --------
    >>> _first_paragraph(":class:`VAE` on images,\\n    ``conv2d``.\\n\\n    More.")
    'VAE on images, conv2d.'
    """
    if not doc or not doc.strip():
        return ""
    line = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    line = re.sub(r":[\w:]+:`~?([^`]+)`", r"\1", line)
    return re.sub(r"``?([^`]+)``?", r"\1", line)


def common_context(
    detector: Any,
    scores: np.ndarray,
    labels: np.ndarray | None,
    *,
    title: str | None,
    source_name: str | None,
    how_to_label: str = "Pass a label column (1 = anomaly, 0 = normal) to see it.",
    extra_versions: Sequence[str] = (),
) -> dict[str, Any]:
    """What every report page shows, from the scores (and labels) of its samples.

    The keys: ``title``, ``generated``, ``source_name``, ``model_name``, ``model_doc``,
    ``w`` (:func:`words`), ``params``, ``training``, ``threshold`` and its texts,
    ``operating``, ``confusion``, the ranking (:func:`ranking`), ``dist_uri`` /
    ``dist_log`` (score distribution), ``both_classes``, ``loss_uri`` (training
    history, every loss part drawn), ``versions`` and the counts of ``data`` (``rows``:
    the number of samples, ``flagged``, labels and calibration counts), which a report
    may add to.
    """
    w = words(detector)
    threshold = float(detector.threshold_)
    calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
    history = getattr(detector, "history_", {}) or {}
    flagged = scores > threshold
    n = int(scores.size)
    n_flagged = int(flagged.sum())
    has_labels = labels is not None
    operating = operating_points(detector, scores, labels)
    curves = ranking(labels, scores, threshold, operating, unit=w["unit"],
                     how_to_label=how_to_label)
    dist_uri, dist_log = plots.score_distribution_figure(
        scores, threshold, labels if curves["ranking"] else None, calibration, unit=w["unit"]
    )
    doc = _first_paragraph(type(detector).__doc__)
    data = {
        "rows": n,
        "labelled": has_labels,
        "n_anomalies": int(labels.sum()) if has_labels else None,
        "n_normal": int(n - labels.sum()) if has_labels else None,
        "prevalence": float(labels.mean()) if has_labels else None,
        "flagged": n_flagged,
        "flagged_share": n_flagged / n if n else float("nan"),
        "calibration_rows": int(calibration.size),
        "min_p_value": 1.0 / (calibration.size + 1.0),
        "threshold_p_value": float(conformal_p_values(calibration, [threshold])[0]),
    }
    confusion = None
    if has_labels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            confusion = precision_recall_f1(labels, flagged.astype(np.int64))
    model_name = type(detector).__name__
    return {
        "title": title or f"genad report: {model_name}",
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "source_name": source_name,
        "model_name": model_name,
        "model_doc": doc,
        "w": w,
        "params": params(detector),
        "training": training(detector, history),
        "data": data,
        "threshold": threshold,
        "threshold_method": getattr(detector, "threshold_method_", None),
        "threshold_text": describe_threshold(detector),
        "threshold_short": threshold_short(detector),
        "operating": operating,
        "confusion": confusion,
        **curves,
        "dist_uri": dist_uri,
        "dist_log": dist_log,
        "both_classes": curves["ranking"] is not None,
        "loss_uri": plots.loss_figure(history),
        "versions": versions(extra_versions),
    }
