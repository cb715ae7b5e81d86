"""Score a file into a score file: what ``genad score`` does (tables, and images with
overlays of the flagged ones: :func:`score_images`).

The output has one row per input row, in input order: the id column and any kept input
columns first (when asked for), then ``anomaly_score``, ``p_value``, ``is_anomaly`` and
``top_features``. It is written atomically (see :mod:`genad._io`).

The file is read, scored and written in batches of :data:`STREAM_ROWS` rows (pyarrow's
Parquet batches, pandas' CSV chunks), so memory does not grow with the number of rows;
the output is the same as scoring the whole table at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genad._io import atomic_path
from genad._text import require_columns
from genad.errors import GenadError, InvalidInputError, warnings_once

__all__ = ["ScoreSummary", "ImageScoreSummary", "score_file", "score_images", "SCORE_COLUMNS",
           "OUTPUT_FORMATS", "STREAM_ROWS"]

#: rows read, scored and written at a time by :func:`score_file`
STREAM_ROWS = 65_536

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
    require_columns(wanted, [str(c) for c in df.columns], str(source))
    for name in wanted:
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
    data, out = Path(data), Path(out)
    kind = OUTPUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise InvalidInputError(f"--out must end in .csv or .parquet, got {out.name!r}")
    with atomic_path(out) as tmp, warnings_once():
        writer = _Writer(tmp, kind)
        try:
            n_rows, n_flagged = _score_batches(detector, data, writer, top_k, id_column,
                                               keep_columns)
        finally:
            writer.close()
    return ScoreSummary(out, n_rows, n_flagged)


def _score_batches(
    detector: Any, data: Path, writer: _Writer, top_k: int, id_column: str | None,
    keep_columns: Sequence[str],
) -> tuple[int, int]:
    n_rows = n_flagged = 0
    passthrough: list[str] = []
    for df in _table_batches(data):
        if n_rows == 0:
            passthrough = _passthrough_columns(df, id_column, keep_columns, data)
        table = detector.explain(df, top_k=top_k).reset_index(drop=True)
        if passthrough:
            table = pd.concat([df[passthrough].reset_index(drop=True), table], axis=1)
        writer.write(table)
        n_rows += len(table)
        n_flagged += int(table["is_anomaly"].sum())
    if n_rows == 0:  # raises the usual "empty table" error
        from genad.data.tabular import read_table

        detector.explain(read_table(data), top_k=top_k)
    return n_rows, n_flagged


def _table_batches(path: Path, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The table file ``path`` as DataFrames of at most ``rows`` rows, in file order.

    Errors are those of :func:`genad.data.tabular.read_table` (a missing file, a folder,
    an unknown suffix, a file that is not a table).
    """
    from genad.data.tabular import _TABLE_SUFFIXES, read_table

    rows = STREAM_ROWS if rows is None else rows
    kind = _TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None or not path.is_file():
        read_table(path)  # raises the message for a missing file, a folder, a bad suffix
    try:
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            batches: Iterator[Any] = (
                pa.Table.from_batches([b]).to_pandas()
                # pre_buffer=False: by default pyarrow keeps the column chunks it read
                # ahead, which held about the whole file (2.6 GB for 10M rows x 30)
                for b in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=rows)
            )
        else:
            batches = iter(pd.read_csv(path, sep=_delimiter(path, kind), chunksize=rows))
        while True:
            try:
                df = next(batches)
            except StopIteration:
                return
            if df.shape[1] == 0:
                raise InvalidInputError(f"{path} holds no columns")
            yield df
    except (GenadError, GeneratorExit):
        raise
    except Exception as exc:  # any parser failure means "not a table"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"{path} is not a readable {kind} table: {first}") from exc


def _delimiter(path: Path, kind: str) -> str:
    """The delimiter :func:`~genad.data.tabular.read_table` reads ``path`` with."""
    default = "\t" if kind == "tsv" else ","
    from genad.data import tabular

    sniff = getattr(tabular, "sniff_delimiter", None)
    return default if sniff is None else sniff(path, default)


class _Writer:
    """Appends score tables to one CSV or Parquet file (the first table sets the schema)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.parquet: Any = None
        self.started = False

    def write(self, table: pd.DataFrame) -> None:
        if self.kind == "csv":
            table.to_csv(self.path, index=False, header=not self.started,
                         mode="a" if self.started else "w")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.parquet is None:
                arrow = pa.Table.from_pandas(table, preserve_index=False)
                self.parquet = pq.ParquetWriter(self.path, arrow.schema)
            else:
                arrow = pa.Table.from_pandas(table, schema=self.parquet.schema,
                                             preserve_index=False)
            self.parquet.write_table(arrow)
        self.started = True

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
            self.parquet = None


# ------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageScoreSummary(ScoreSummary):
    """What :func:`score_images` wrote: the score table and the overlays."""

    overlays: tuple[Path, ...] = ()


def _overlay_name(name: str, used: set[str]) -> str:
    """A flat, unique PNG file name for an image named ``name`` (a relative path)."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).with_suffix(
        "").as_posix().replace("/", "__")) or "image"
    candidate, k = f"{stem}.png", 1
    while candidate in used:
        k += 1
        candidate = f"{stem}_{k}.png"
    used.add(candidate)
    return candidate


def score_images(
    detector: Any,
    data: Any,
    out: str | Path,
    *,
    overlays: str | Path | None = None,
    top_k: int = 3,
    max_overlays: int = 500,
) -> ImageScoreSummary:
    """Score every image of ``data``; write the score table and overlays of flagged images.

    Parameters
    ----------
    detector : fitted Detector
        An image detector.
    data : folder, manifest CSV, list of paths or array
        The images (read by the detector's image adapter).
    out : path ending in ``.csv`` or ``.parquet``
        One row per image, in input order: ``image`` (its path, or ``image i``), then
        ``anomaly_score``, ``p_value``, ``is_anomaly`` and ``top_features`` (the hottest
        spots: ``x=.. y=.. (z)``, in original pixels).
    overlays : folder, optional
        Where to write ``<image>.png`` for each flagged image: the image with its anomaly
        map laid over it, on the model's fixed scale (a normal image stays cold). None:
        no overlays.
    top_k : int, default 3
        Hot spots listed per image.
    max_overlays : int, default 500
        At most this many overlays (the first flagged images in input order).

    Returns
    -------
    ImageScoreSummary
    """
    out = Path(out)
    kind = OUTPUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise InvalidInputError(f"--out must end in .csv or .parquet, got {out.name!r}")
    adapter = detector.adapter_
    images = adapter.read(data)
    written: list[Path] = []
    used: set[str] = set()
    folder = None if overlays is None else Path(overlays)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    start = n_rows = n_flagged = 0
    with atomic_path(out) as tmp, warnings_once():
        writer = _Writer(tmp, kind)
        try:
            for table, maps in detector.explain_chunks(images, top_k=top_k):
                flagged = table["is_anomaly"].to_numpy().nonzero()[0]
                if folder is not None:
                    for j in flagged:
                        if len(written) >= max_overlays:
                            break
                        written.append(_write_overlay(adapter, images, start + int(j),
                                                      maps[int(j)], folder, used))
                table = table.rename_axis("image").reset_index()
                writer.write(table)
                start += len(table)
                n_rows += len(table)
                n_flagged += len(flagged)
        finally:
            writer.close()
    return ImageScoreSummary(out, n_rows, n_flagged, tuple(written))


def _write_overlay(adapter: Any, images: Any, i: int, amap: Any, folder: Path,
                   used: set[str]) -> Path:
    from genad.report.images import overlay

    picture = adapter.display_image(images, i)
    vmin, vmax = adapter.map_scale()
    path = folder / _overlay_name(images.names[i], used)
    with atomic_path(path) as tmp:
        overlay(picture, amap, vmin=vmin, vmax=vmax).save(tmp, format="PNG")
    return path
