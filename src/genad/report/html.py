"""Build the self-contained HTML report of a fitted detector on a data set."""

from __future__ import annotations

import base64
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

from genad._io import atomic_path
from genad._text import require_columns
from genad.calibration import conformal_p_values, threshold_at_fpr
from genad.contributions import top_columns, top_contributions
from genad.data.tabular import read_table
from genad.errors import CalibrationWarning, InvalidInputError, NotFittedError
from genad.metrics import auprc as _auprc
from genad.metrics import auroc as _auroc
from genad.metrics import precision_at_k, precision_recall_f1
from genad.registry import preset_for
from genad.report import plots

__all__ = ["build_report", "describe_threshold", "OPERATING_FPRS", "MAX_DOWNLOAD_ROWS"]

#: target false-positive rates of the operating-points table
OPERATING_FPRS = (0.001, 0.005, 0.01, 0.02, 0.05)
#: rows embedded in each CSV download (the highest-scoring ones)
MAX_DOWNLOAD_ROWS = 10_000
#: models with at most this many columns show every input value in the top table
_INLINE_VALUES = 6
#: input values listed per row in the top table (the rest are in the CSV downloads)
_MAX_LISTED_VALUES = 60
_MAX_VALUE_CHARS = 40
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


def _raw(value: Any) -> str:
    """An input value as the analyst would read it in the file.

    Examples
    --------
    >>> [_raw(v) for v in (406.0, -1.359807134, 1234567.891, float("nan"), "card")]
    ['406', '-1.35981', '1234567.89', 'missing', 'card']
    """
    if value is None:
        return "missing"
    try:
        if bool(pd.isna(value)):
            return "missing"
    except (TypeError, ValueError):  # a list or array in a cell
        pass
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.2f}" if abs(v) >= 1e5 else f"{v:.6g}"
    text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "\u2026"


def _data_uri_csv(frame: pd.DataFrame) -> str:
    data = frame.to_csv(index=False).encode("utf-8")
    return "data:text/csv;base64," + base64.b64encode(data).decode("ascii")


# ------------------------------------------------------------------- inputs
def _read_inputs(
    X: Any, y: Any, id_column: str | None, where: str
) -> tuple[pd.DataFrame, Any, np.ndarray | None, pd.Series | None]:
    """The table, what to feed the detector, the 0/1 labels and the ids (or None)."""
    df = read_table(X)
    if isinstance(y, str):
        require_columns([y], df.columns, where, "label column")
        label_name = y
        y = df[y]
        df = df.drop(columns=[label_name])
    positional = not isinstance(X, (pd.DataFrame, str, Path))
    feed = df.to_numpy() if positional else df
    labels = _labels(y, len(df)) if y is not None else None
    ids = None
    if id_column is not None:
        if positional:
            raise InvalidInputError(
                f"id_column={id_column!r} needs a table with named columns (a DataFrame or "
                "a CSV / Parquet file), not an array"
            )
        require_columns([id_column], df.columns, where, "id column")
        ids = df[id_column]
    return df, feed, labels, ids


def _model_view(detector: Any, df: pd.DataFrame, positional: bool) -> pd.DataFrame:
    """``df`` with the column names the model knows (arrays get the training names)."""
    adapter = detector.adapter_
    if positional or adapter.input_kind_ == "array":
        return df.set_axis(list(adapter.input_columns_), axis=1)
    return df.set_axis([str(c) for c in df.columns], axis=1)


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


def _operating_points(detector: Any, scores: np.ndarray,
                      labels: np.ndarray | None) -> list[dict[str, Any]]:
    """The current threshold, then one row per target rate of :data:`OPERATING_FPRS`.

    Each threshold comes from the held-out normal calibration scores
    (:func:`genad.calibration.threshold_at_fpr`); a rate below ``1 / n`` of them cannot be
    resolved and is marked (the threshold is then the highest held-out score).
    """
    calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
    n_cal = int(calibration.size)
    rows = [_operating_row("current threshold", float(detector.threshold_), scores, labels,
                           basis=_threshold_short(detector), current=True, coarse=False)]
    for rate in OPERATING_FPRS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threshold = threshold_at_fpr(calibration, rate, strict=False)
        coarse = any(issubclass(w.category, CalibrationWarning) for w in caught)
        if coarse:
            basis = (f"cannot be resolved with {n_cal:,} held-out normals (smallest rate "
                     f"{_pct(1.0 / n_cal, 2)}): the highest held-out score is used, the real "
                     "rate may be higher")
        else:
            above = int(np.sum(calibration > threshold))
            basis = f"{above:,} of {n_cal:,} held-out normals above it"
        rows.append(_operating_row(f"{100 * rate:g}%", threshold, scores, labels, basis=basis,
                                   current=False, coarse=coarse))
    return rows


# ---------------------------------------------------------------- top table
def _top_rows(
    order: np.ndarray,
    row_names: list[str],
    values: pd.DataFrame,
    scores: np.ndarray,
    p_values: np.ndarray,
    flagged: np.ndarray,
    labels: np.ndarray | None,
    contrib: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Rows of the top-anomalies table: score, p-value, top columns with shares and values.

    ``row_names`` (the id or index) and ``values`` (the raw input values, model column
    names) hold the rows in ``order``.
    """
    names = [str(c) for c in contrib.columns]
    positions, shares = top_columns(contrib.to_numpy(dtype=np.float64)[order], k=3)
    listed = names[:_MAX_LISTED_VALUES]
    by_column = {c: [_raw(v) for v in values[c].tolist()] for c in names}  # keeps each dtype
    rows = []
    for rank, i in enumerate(order, start=1):
        chips = [{"column": names[j], "share": float(share), "bar": float(share),
                  "value": by_column[names[j]][rank - 1]}
                 for j, share in zip(positions[rank - 1], shares[rank - 1], strict=True)]
        rows.append({
            "rank": rank,
            "index": row_names[rank - 1],
            "score": float(scores[i]),
            "p_value": float(p_values[i]),
            "flagged": bool(flagged[i]),
            "label": None if labels is None else int(labels[i]),
            "chips": chips,
            "values": [(c, by_column[c][rank - 1]) for c in listed],
        })
    return rows


# ---------------------------------------------------------------- downloads
def _download_frame(
    rows: np.ndarray,
    df: pd.DataFrame,
    id_column: str | None,
    scores: np.ndarray,
    p_values: np.ndarray,
    flagged: np.ndarray,
    labels: np.ndarray | None,
    contrib: pd.DataFrame,
) -> pd.DataFrame:
    """The rows as a score file has them, followed by every input column."""
    part = df.iloc[rows].reset_index(drop=True)
    if id_column is None:
        lead = pd.DataFrame({"row": np.asarray(df.index)[rows]})
    else:
        lead = part[[id_column]]
        part = part.drop(columns=[id_column])
    scored = {"anomaly_score": scores[rows], "p_value": p_values[rows],
              "is_anomaly": flagged[rows].astype(np.int8)}
    if labels is not None:
        scored["label"] = labels[rows]
    scored["top_features"] = top_contributions(contrib.iloc[rows], 3)
    return pd.concat([lead, pd.DataFrame(scored), part], axis=1)


def _downloads(
    df: pd.DataFrame,
    id_column: str | None,
    scores: np.ndarray,
    p_values: np.ndarray,
    flagged: np.ndarray,
    labels: np.ndarray | None,
    contrib: pd.DataFrame,
) -> list[dict[str, Any]]:
    """CSV files embedded in the page: flagged rows, and with labels the errors."""
    specs = [("flagged.csv", "Flagged rows", "every row above the threshold", flagged)]
    if labels is not None:
        specs += [
            ("false-alarms.csv", "False alarms", "flagged rows labelled normal (0)",
             flagged & (labels == 0)),
            ("missed-anomalies.csv", "Missed anomalies",
             "rows labelled anomaly (1) that are not flagged", ~flagged & (labels == 1)),
        ]
    out = []
    for filename, title, what, mask in specs:
        rows = np.flatnonzero(mask)
        rows = rows[np.argsort(-scores[rows], kind="stable")][:MAX_DOWNLOAD_ROWS]
        uri = None
        if rows.size:
            uri = _data_uri_csv(_download_frame(rows, df, id_column, scores, p_values,
                                                flagged, labels, contrib))
        out.append({"filename": filename, "title": title, "what": what,
                    "count": int(mask.sum()), "shown": int(rows.size), "uri": uri})
    return out


# -------------------------------------------------------------- page parts
def _training(detector: Any, history: dict[str, Any]) -> dict[str, Any]:
    hidden = getattr(detector, "hidden_sizes_", None)
    latent = getattr(detector, "latent_dim_", None)
    n_in = detector.adapter_.n_features_out_
    preset = preset_for(detector)
    if preset is not None and preset.architecture == "conv1d":
        architecture_label = "Latent size (1-D conv autoencoder)"
        architecture = None if latent is None else f"{n_in} \u2192 {latent}"
    elif hidden is not None:
        architecture_label = "Layer widths (encoder)"
        architecture = " \u2192 ".join(str(v) for v in [n_in, *hidden, latent])
    else:
        architecture_label, architecture = "", None
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
        "architecture_label": architecture_label,
    }


def _ranking(labels: np.ndarray | None, scores: np.ndarray, threshold: float,
             operating: list[dict[str, Any]]) -> dict[str, Any]:
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
            "roc_uri": plots.roc_figure(labels, scores, threshold, auroc),
            "roc_log_uri": plots.roc_log_figure(labels, scores, threshold, others),
            "pr_uri": plots.pr_figure(labels, scores, threshold, auprc),
            "no_curves_reason": None,
        }
    if labels is not None:
        only = "normal (0)" if int(labels.sum()) == 0 else "anomalous (1)"
        reason = (f"Every labelled row is {only}, so ROC and precision-recall curves are "
                  "undefined: they need both normal and anomalous rows.")
    else:
        reason = ("No labels were given, so the ranking quality (ROC, precision-recall, "
                  "AUROC, AUPRC) cannot be measured. Pass a label column (1 = anomaly, "
                  "0 = normal) to see it.")
    return {"ranking": None, "roc_uri": None, "roc_log_uri": None, "pr_uri": None,
            "no_curves_reason": reason}


def _drivers(contrib: pd.DataFrame, scores: np.ndarray, flagged: np.ndarray,
             top_n: int) -> tuple[str, str]:
    """The mean-contribution chart (flagged rows, or the top rows, against the others)."""
    n = scores.size
    n_flagged = int(flagged.sum())
    if n_flagged:
        focus = flagged
        note = (f"Mean over the {n_flagged:,} flagged rows (red) against the "
                f"{n - n_flagged:,} other rows (grey).")
        label = f"flagged rows (n={n_flagged:,})"
    else:
        k = min(top_n, n)
        focus = np.zeros(n, dtype=bool)
        focus[np.argsort(-scores, kind="stable")[:k]] = True
        note = (f"No row is above the threshold, so the chart uses the {k:,} "
                "highest-scoring rows instead (red) against the others (grey).")
        label = f"top {k:,} rows"
    other_mean = contrib[~focus].mean(axis=0) if (~focus).any() else None
    uri = plots.contribution_figure(
        contrib[focus].mean(axis=0), other_mean, flagged_label=label,
        other_label=f"other rows (n={int((~focus).sum()):,})",
    )
    return uri, note


# ---------------------------------------------------------------------- main
def build_report(
    detector: Any,
    X: Any,
    y: Any = None,
    *,
    out: str | Path,
    title: str | None = None,
    top_n: int = 20,
    id_column: str | None = None,
    source_name: str | None = None,
) -> Path:
    """Write a self-contained HTML report of ``detector`` on the rows of ``X``.

    The page holds the model and its parameters, a summary of the data, the threshold
    and how it was set, a table of operating points (the threshold for a 0.1 % to 5 %
    false-positive rate, with the alerts, precision and recall each gives on these rows),
    ROC curves (linear and log-scaled false-positive rate) and the precision-recall curve
    (when ``y`` holds both classes), score distributions, confusion counts at the
    threshold, the training history (with a warning when training hit its epoch cap), the
    ``top_n`` highest-scoring rows with their ids, the columns that drive their scores and
    their input values, the mean contribution per column over the flagged rows, the input
    schema and the library versions. The flagged rows, and with labels the false alarms
    and missed anomalies, are embedded as CSV downloads (the highest-scoring
    :data:`MAX_DOWNLOAD_ROWS` of each). Figures are embedded PNGs; the file loads nothing
    from the network. The model runs once over ``X``.

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
        Where to write the HTML file (folders are created; written atomically).
    title : str, optional
        Page title; default ``"genad report: <model class>"``.
    top_n : int, default 20
        Rows listed in the top-anomalies table.
    id_column : str, optional
        Column of ``X`` that identifies each row (a transaction id): shown in the
        top-anomalies table and first in the CSV downloads. Default: the row index.
    source_name : str, optional
        Name of the scored file, shown in the header. Default: the file name when ``X`` is
        a path.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    NotFittedError
        The detector is not fitted.
    InvalidInputError
        ``X`` does not fit the detector's schema, ``y`` is not 0/1 or has the wrong
        length, or ``id_column`` is not a column of ``X``.
    OutputError
        ``out`` cannot be written.

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
    if source_name is None and isinstance(X, (str, Path)):
        source_name = Path(X).name
    df, feed, labels, ids = _read_inputs(X, y, id_column, source_name or "the table")
    positional = not isinstance(feed, pd.DataFrame)

    # one pass through the model: the scores and the per-column contributions
    scores, contrib = detector._score_and_map(feed)
    if not isinstance(contrib, pd.DataFrame):
        contrib = pd.DataFrame(contrib, columns=detector.adapter_.column_names_, index=df.index)
    threshold = float(detector.threshold_)
    calibration = np.asarray(detector.calibration_scores_, dtype=np.float64)
    p_values = conformal_p_values(calibration, scores)
    flagged = scores > threshold
    n = len(scores)
    n_flagged = int(flagged.sum())
    has_labels = labels is not None
    history = getattr(detector, "history_", {}) or {}

    operating = _operating_points(detector, scores, labels)
    curves = _ranking(labels, scores, threshold, operating)
    dist_uri, dist_log = plots.score_distribution_figure(
        scores, threshold, labels if curves["ranking"] else None, calibration
    )
    contrib_uri, contrib_note = _drivers(contrib, scores, flagged, top_n)

    order = np.argsort(-scores, kind="stable")[: min(top_n, n)]
    row_names = ids.iloc[order] if ids is not None else df.index[order]
    top_rows = _top_rows(order, [_raw(v) for v in row_names],
                         _model_view(detector, df.iloc[order], positional), scores, p_values,
                         flagged, labels, contrib)

    model_name = type(detector).__name__
    data = {
        "rows": n,
        "input_columns": int(df.shape[1]),
        "model_columns": int(contrib.shape[1]),
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
    used = set(detector.adapter_.input_columns_)
    ignored = [str(c) for c in df.columns if str(c) not in used]
    confusion = (precision_recall_f1(labels, flagged.astype(np.int64)) if has_labels
                 else None)
    context = {
        "title": title or f"genad report: {model_name}",
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "source_name": source_name,
        "model_name": model_name,
        "model_doc": (type(detector).__doc__ or "").strip().splitlines()[0]
        if type(detector).__doc__ else "",
        "params": _params(detector),
        "training": _training(detector, history),
        "data": data,
        "ignored_columns": ignored,
        "threshold": threshold,
        "threshold_method": getattr(detector, "threshold_method_", None),
        "threshold_text": describe_threshold(detector),
        "threshold_short": _threshold_short(detector),
        "operating": operating,
        "confusion": confusion,
        **curves,
        "dist_uri": dist_uri,
        "dist_log": dist_log,
        "both_classes": curves["ranking"] is not None,
        "loss_uri": plots.loss_figure(history),
        "contrib_uri": contrib_uri,
        "contrib_note": contrib_note,
        "top_rows": top_rows,
        "top_n": len(top_rows),
        "id_column": id_column,
        "inline_values": data["model_columns"] <= _INLINE_VALUES,
        "downloads": _downloads(df, id_column, scores, p_values, flagged, labels, contrib),
        "max_download_rows": MAX_DOWNLOAD_ROWS,
        "schema": schema,
        "schema_summary": _schema_summary(schema),
        "versions": _versions(),
    }
    html = _environment().from_string(_template_source()).render(**context)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)
