"""Build the self-contained HTML report of a fitted detector on a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genad._text import require_columns
from genad.calibration import conformal_p_values
from genad.contributions import top_columns, top_contributions
from genad.data.tabular import read_table
from genad.errors import InvalidInputError
from genad.report import plots
from genad.report._common import (
    OPERATING_FPRS,
    check_fitted,
    common_context,
    count_and_source,
    data_uri_csv,
    describe_threshold,
    labels01,
    write_page,
)

# the names these helpers had when they lived here (tests and callers import them)
from genad.report._common import num as _num  # noqa: F401
from genad.report._common import pct as _pct  # noqa: F401
from genad.report._common import training as _training  # noqa: F401

__all__ = ["build_report", "describe_threshold", "OPERATING_FPRS", "MAX_DOWNLOAD_ROWS"]

#: rows embedded in each CSV download (the highest-scoring ones)
MAX_DOWNLOAD_ROWS = 10_000
#: models with at most this many columns show every input value in the top table
_INLINE_VALUES = 6
#: input values listed per row in the top table (the rest are in the CSV downloads)
_MAX_LISTED_VALUES = 60
_MAX_VALUE_CHARS = 40
_TEMPLATE = "template.html"


def _schema_summary(schema: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in schema:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in counts.items())


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
    labels = labels01(y, len(df)) if y is not None else None
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
            uri = data_uri_csv(_download_frame(rows, df, id_column, scores, p_values,
                                                flagged, labels, contrib))
        out.append({"filename": filename, "title": title, "what": what,
                    "count": int(mask.sum()), "shown": int(rows.size), "uri": uri})
    return out


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
    check_fitted(detector)
    top_n, source_name = count_and_source(X, source_name, "top_n", top_n)
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

    context = common_context(detector, scores, labels, title=title, source_name=source_name)
    contrib_uri, contrib_note = _drivers(contrib, scores, flagged, top_n)

    order = np.argsort(-scores, kind="stable")[: min(top_n, n)]
    row_names = ids.iloc[order] if ids is not None else df.index[order]
    top_rows = _top_rows(order, [_raw(v) for v in row_names],
                         _model_view(detector, df.iloc[order], positional), scores, p_values,
                         flagged, labels, contrib)

    context["data"].update({
        "input_columns": int(df.shape[1]),
        "model_columns": int(contrib.shape[1]),
        "encoded_features": int(detector.adapter_.n_features_out_),
    })
    schema = detector.adapter_.schema()
    used = set(detector.adapter_.input_columns_)
    context.update({
        "ignored_columns": [str(c) for c in df.columns if str(c) not in used],
        "contrib_uri": contrib_uri,
        "contrib_note": contrib_note,
        "top_rows": top_rows,
        "top_n": len(top_rows),
        "id_column": id_column,
        "inline_values": context["data"]["model_columns"] <= _INLINE_VALUES,
        "downloads": _downloads(df, id_column, scores, p_values, flagged, labels, contrib),
        "max_download_rows": MAX_DOWNLOAD_ROWS,
        "schema": schema,
        "schema_summary": _schema_summary(schema),
    })
    return write_page(_TEMPLATE, context, out)
