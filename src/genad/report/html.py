"""Build the self-contained HTML report of a fitted detector on a data set."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import importlib.resources
import math
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, StrictUndefined

from genad.calibration import conformal_p_values
from genad.data.tabular import read_table
from genad.errors import InvalidInputError, NotFittedError
from genad.metrics import auprc as _auprc
from genad.metrics import auroc as _auroc
from genad.metrics import precision_at_k, precision_recall_f1
from genad.report import plots

__all__ = ["build_report", "describe_threshold"]

_TEMPLATE = "template.html"
_VERSION_PACKAGES = ("genad", "torch", "numpy", "pandas", "scikit-learn", "matplotlib",
                     "jinja2", "safetensors")


# ----------------------------------------------------------------- formatting
def _num(value: Any, digits: int = 4) -> str:
    """Compact number: ints with separators, floats with ``digits`` significant digits."""
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


def _pct(value: Any, digits: int = 1) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(v):
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def _param(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _environment() -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    return env


def _template_source() -> str:
    return importlib.resources.files("genad.report").joinpath(_TEMPLATE).read_text("utf-8")


# ------------------------------------------------------------------- helpers
def _labels(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y).ravel()
    if arr.shape[0] != n:
        raise InvalidInputError(f"y has {arr.shape[0]} labels but X has {n} rows")
    values = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"labels must be 0 (normal) or 1 (anomaly); row {i} holds {arr[i]!r}"
        )
    return values.astype(np.int64)


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
    method = getattr(detector, "threshold_method_", None)
    setting = getattr(detector, "threshold_setting_", None)
    cal = np.asarray(getattr(detector, "calibration_scores_", []))
    n_cal = int(cal.size)
    if method == "target_fpr" and setting is not None:
        text = (f"Set so that about {_pct(setting)} of normal rows score above it (target "
                f"false-positive rate), measured on {n_cal:,} held-out normal training rows.")
        if n_cal and setting < 1.0 / n_cal:
            text += (f" With only {n_cal:,} held-out rows a rate below {_pct(1.0 / n_cal)} "
                     "cannot be resolved, so the threshold is the highest held-out score; "
                     "the real false-positive rate may be higher than asked.")
        return text
    if method == "contamination" and setting is not None:
        return (f"Set so that {_pct(setting)} of the rows it was calibrated on are flagged "
                "(expected contamination).")
    if method == "f1_optimal":
        return "Set to maximise F1 on labelled validation data (normal and anomalous rows)."
    return f"Set by method {method!r}" + (f" ({setting})." if setting is not None else ".")


def _threshold_short(detector: Any) -> str:
    method = getattr(detector, "threshold_method_", None)
    setting = getattr(detector, "threshold_setting_", None)
    if method == "target_fpr" and setting is not None:
        return f"target false-positive rate {_pct(setting, 1)}"
    if method == "contamination" and setting is not None:
        return f"contamination {_pct(setting, 1)}"
    if method == "f1_optimal":
        return "F1-optimal on labelled data"
    return str(method or "n/a")


def _schema_summary(schema: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in schema:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def _versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for name in _VERSION_PACKAGES:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    out.append(("platform", platform.platform(terse=True)))
    return out


def _params(detector: Any) -> list[dict[str, Any]]:
    params = detector.get_params()
    try:
        defaults = type(detector)().get_params()
    except Exception:  # a subclass with required parameters: no default to compare with
        defaults = {}
    return [
        {"name": k, "value": _param(v), "changed": k in defaults and defaults[k] != v}
        for k, v in params.items()
    ]


def _chips(contrib: pd.DataFrame, rows: np.ndarray, k: int = 3) -> list[list[dict[str, Any]]]:
    values = contrib.to_numpy(dtype=np.float64)[rows]
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = [str(c) for c in contrib.columns]
    return [[{"column": names[j], "share": float(shares[i, j]),
              "bar": float(np.clip(shares[i, j], 0.0, 1.0))} for j in order[i]]
            for i in range(len(rows))]


# ---------------------------------------------------------------------- main
def build_report(
    detector: Any,
    X: Any,
    y: Any = None,
    *,
    out: str | Path,
    title: str | None = None,
    top_n: int = 20,
) -> Path:
    """Write a self-contained HTML report of ``detector`` on the rows of ``X``.

    The page holds the model and its parameters, a summary of the data, the threshold
    and how it was set, ROC and precision-recall curves (when ``y`` holds both classes),
    score distributions, confusion counts at the threshold, the training history, the
    ``top_n`` highest-scoring rows with the columns that drive their scores, the mean
    contribution per column over the flagged rows, the input schema and the library
    versions. Figures are embedded PNGs; the file loads nothing from the network.

    Parameters
    ----------
    detector : Detector
        A fitted genad detector.
    X : DataFrame, array-like, or path to a CSV / Parquet file
        Rows to report on (same columns as in training; extra columns are ignored).
    y : array-like of 0/1 or str, optional
        Labels, 1 = anomaly, or the name of a label column of ``X`` (then dropped from
        the features). Without labels the ranking metrics are left out.
    out : str or Path
        Where to write the HTML file (folders are created).
    title : str, optional
        Page title; default ``"genad report: <model class>"``.
    top_n : int, default 20
        Rows listed in the top-anomalies table.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    NotFittedError
        The detector is not fitted.
    InvalidInputError
        ``X`` does not fit the detector's schema, or ``y`` is not 0/1 or has the wrong
        length.

    Examples
    --------
    >>> import numpy as np, genad, tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> det = genad.AutoEncoder(epochs=2, random_state=0, verbose=0).fit(rng.normal(size=(200, 3)))
    >>> X = np.r_[rng.normal(size=(50, 3)), rng.normal(5, 1, size=(5, 3))]
    >>> y = np.r_[np.zeros(50), np.ones(5)]
    >>> path = build_report(det, X, y, out=os.path.join(tempfile.mkdtemp(), "r.html"))
    >>> path.suffix
    '.html'
    """
    if not hasattr(detector, "model_"):
        raise NotFittedError(
            f"this {type(detector).__name__} is not fitted yet; call fit(X) first"
        )
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 1:
        raise InvalidInputError(f"top_n must be a positive integer, got {top_n!r}")
    df = read_table(X)
    if isinstance(y, str):
        if y not in df.columns:
            raise InvalidInputError(
                f"label column {y!r} is not in the table; columns: "
                + ", ".join(map(str, list(df.columns)[:10]))
            )
        label_name = y
        y = df[y]
        df = df.drop(columns=[label_name])
    feed = df if isinstance(X, (pd.DataFrame, str, Path)) else df.to_numpy()
    labels = _labels(y, len(df)) if y is not None else None

    # one pass through the model: per-column contributions; scores are their row sums
    contrib = detector.anomaly_map(feed)
    if not isinstance(contrib, pd.DataFrame):
        contrib = pd.DataFrame(contrib, columns=detector.adapter_.column_names_, index=df.index)
    explained = detector.explain(feed, top_k=3)
    scores = explained["anomaly_score"].to_numpy(dtype=np.float64)
    p_values = explained["p_value"].to_numpy(dtype=np.float64)
    flagged = explained["is_anomaly"].to_numpy().astype(bool)
    threshold = float(detector.threshold_)
    calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
    n = len(scores)

    # ------------------------------------------------------------- metrics
    has_labels = labels is not None
    both_classes = has_labels and 0 < int(labels.sum()) < n
    ranking: dict[str, Any] | None = None
    confusion: dict[str, Any] | None = None
    roc_uri = pr_uri = None
    no_curves_reason = None
    if has_labels:
        confusion = precision_recall_f1(labels, flagged.astype(np.int64))
    if both_classes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auroc = _auroc(labels, scores)
            auprc = _auprc(labels, scores)
            p_at_k = precision_at_k(labels, scores)
        ranking = {"auroc": auroc, "auprc": auprc, "precision_at_k": p_at_k,
                   "k": int(labels.sum()), "prevalence": float(labels.mean())}
        roc_uri = plots.roc_figure(labels, scores, threshold, auroc)
        pr_uri = plots.pr_figure(labels, scores, threshold, auprc)
    elif has_labels:
        only = "normal (0)" if int(labels.sum()) == 0 else "anomalous (1)"
        no_curves_reason = (f"Every labelled row is {only}, so ROC and precision-recall "
                            "curves are undefined: they need both normal and anomalous rows.")
    else:
        no_curves_reason = ("No labels were given, so the ranking quality (ROC, precision-"
                            "recall, AUROC, AUPRC) cannot be measured. Pass a label column "
                            "(1 = anomaly, 0 = normal) to see it.")

    dist_uri, dist_log = plots.score_distribution_figure(
        scores, threshold, labels if both_classes else None, calibration
    )
    history = getattr(detector, "history_", {}) or {}
    loss_uri = plots.loss_figure(history)

    # ------------------------------------------------- column contributions
    n_flagged = int(flagged.sum())
    if n_flagged:
        focus = flagged
        focus_note = (f"Mean over the {n_flagged:,} flagged rows (red) against the "
                      f"{n - n_flagged:,} other rows (grey).")
        flagged_label = f"flagged rows (n={n_flagged:,})"
    else:
        k = min(top_n, n)
        focus = np.zeros(n, dtype=bool)
        focus[np.argsort(-scores, kind="stable")[:k]] = True
        focus_note = (f"No row is above the threshold, so the chart uses the {k:,} "
                      "highest-scoring rows instead (red) against the others (grey).")
        flagged_label = f"top {k:,} rows"
    other_mean = contrib[~focus].mean(axis=0) if (~focus).any() else None
    contrib_uri = plots.contribution_figure(
        contrib[focus].mean(axis=0), other_mean, flagged_label=flagged_label,
        other_label=f"other rows (n={int((~focus).sum()):,})",
    )
    n_columns_used = contrib.shape[1]

    # ------------------------------------------------------------ top table
    order = np.argsort(-scores, kind="stable")[: min(top_n, n)]
    chips = _chips(contrib, order)
    top_rows = []
    for rank, (i, row_chips) in enumerate(zip(order, chips, strict=True), start=1):
        top_rows.append({
            "rank": rank,
            "index": str(df.index[i]),
            "score": float(scores[i]),
            "p_value": float(p_values[i]),
            "flagged": bool(flagged[i]),
            "label": None if labels is None else int(labels[i]),
            "chips": row_chips,
        })

    # --------------------------------------------------------------- header
    model_name = type(detector).__name__
    hidden = getattr(detector, "hidden_sizes_", None)
    latent = getattr(detector, "latent_dim_", None)
    n_in = detector.adapter_.n_features_out_
    if getattr(detector, "model_name", "") == "pca-cae":
        architecture_label = "Latent size (1-D conv autoencoder)"
        architecture = None if latent is None else f"{n_in} \u2192 {latent}"
    elif hidden is not None:
        architecture_label = "Layer widths (encoder)"
        architecture = " \u2192 ".join(str(v) for v in [n_in, *hidden, latent])
    else:
        architecture_label, architecture = "", None
    training = {
        "epochs": getattr(detector, "n_epochs_", len(history.get("train_loss", []))),
        "max_epochs": detector.get_params().get("epochs"),
        "best_epoch": (history["best_epoch"] + 1
                       if isinstance(history.get("best_epoch"), int) else None),
        "stopped_early": bool(history.get("stopped_early", False)),
        "device": history.get("device", "n/a"),
        "seconds": float(np.sum(history.get("epoch_seconds", []) or [0.0])),
        "final_train": history["train_loss"][-1] if history.get("train_loss") else None,
        "best_val": (min(history["val_loss"]) if history.get("val_loss") else None),
        "architecture": architecture,
        "architecture_label": architecture_label,
    }
    data = {
        "rows": n,
        "input_columns": int(df.shape[1]),
        "model_columns": n_columns_used,
        "encoded_features": int(detector.adapter_.n_features_out_),
        "labelled": has_labels,
        "n_anomalies": int(labels.sum()) if has_labels else None,
        "n_normal": int(n - labels.sum()) if has_labels else None,
        "prevalence": float(labels.mean()) if has_labels else None,
        "flagged": n_flagged,
        "flagged_share": n_flagged / n,
        "calibration_rows": int(calibration.size),
        "min_p_value": 1.0 / (calibration.size + 1.0),
        "threshold_p_value": float(conformal_p_values(calibration, [threshold])[0]),
    }
    schema = detector.adapter_.schema()
    ignored = [str(c) for c in df.columns if str(c) not in set(detector.adapter_.input_columns_)]

    context = {
        "title": title or f"genad report: {model_name}",
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "model_name": model_name,
        "model_doc": (type(detector).__doc__ or "").strip().splitlines()[0]
        if type(detector).__doc__ else "",
        "params": _params(detector),
        "training": training,
        "data": data,
        "ignored_columns": ignored,
        "threshold": threshold,
        "threshold_method": getattr(detector, "threshold_method_", None),
        "threshold_text": describe_threshold(detector),
        "threshold_short": _threshold_short(detector),
        "ranking": ranking,
        "confusion": confusion,
        "roc_uri": roc_uri,
        "pr_uri": pr_uri,
        "no_curves_reason": no_curves_reason,
        "dist_uri": dist_uri,
        "dist_log": dist_log,
        "both_classes": both_classes,
        "loss_uri": loss_uri,
        "contrib_uri": contrib_uri,
        "contrib_note": focus_note,
        "top_rows": top_rows,
        "top_n": len(top_rows),
        "schema": schema,
        "schema_summary": _schema_summary(schema),
        "versions": _versions(),
    }
    html = _environment().from_string(_template_source()).render(**context)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
