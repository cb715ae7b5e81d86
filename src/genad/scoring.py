"""Score a table file into a score file: what ``genad score`` does.

The output has one row per input row, in input order: the id column and any kept input
columns first (when asked for), then ``anomaly_score``, ``p_value``, ``is_anomaly`` and
``top_features``. It is written atomically (see :mod:`genad._io`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genad._io import atomic_path
from genad._text import unknown_name
from genad.errors import InvalidInputError

__all__ = ["ScoreSummary", "score_file", "SCORE_COLUMNS", "OUTPUT_FORMATS"]

#: columns genad adds to every score file
SCORE_COLUMNS = ("anomaly_score", "p_value", "is_anomaly", "top_features")
#: output suffix -> format
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class ScoreSummary:
    """What :func:`score_file` wrote."""

    path: Path
    n_rows: int
    n_flagged: int


def _passthrough_columns(
    df: pd.DataFrame, id_column: str | None, keep_columns: Sequence[str], source: Path
) -> list[str]:
    wanted = ([id_column] if id_column is not None else []) + [
        c for c in keep_columns if c != id_column
    ]
    have = [str(c) for c in df.columns]
    for name in wanted:
        if name not in have:
            raise InvalidInputError(unknown_name("column", name, have, str(source)))
        if name in SCORE_COLUMNS:
            raise InvalidInputError(
                f"column {name!r} of {source} clashes with a score column genad writes"
            )
    return wanted


def score_file(
    detector: Any,
    data: str | Path,
    out: str | Path,
    *,
    top_k: int = 3,
    id_column: str | None = None,
    keep_columns: Sequence[str] = (),
) -> ScoreSummary:
    """Score every row of the table file ``data`` and write the score table to ``out``.

    Parameters
    ----------
    detector : fitted Detector
    data : path to a CSV, TSV or Parquet file
    out : path ending in ``.csv`` or ``.parquet``
    top_k : int, default 3
        Columns listed in ``top_features`` per row.
    id_column : str, optional
        Input column copied first into the output (it identifies each row).
    keep_columns : sequence of str
        Other input columns copied into the output, in this order.

    Returns
    -------
    ScoreSummary
    """
    from genad.data.tabular import read_table

    data, out = Path(data), Path(out)
    kind = OUTPUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise InvalidInputError(f"--out must end in .csv or .parquet, got {out.name!r}")
    df = read_table(data)
    passthrough = _passthrough_columns(df, id_column, keep_columns, data)
    table = detector.explain(df, top_k=top_k).reset_index(drop=True)
    if passthrough:
        table = pd.concat([df[passthrough].reset_index(drop=True), table], axis=1)
    with atomic_path(out) as tmp:
        if kind == "csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return ScoreSummary(out, len(table), int(table["is_anomaly"].sum()))
