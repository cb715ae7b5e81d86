"""Tabular adapter: DataFrames, numpy arrays, CSV and Parquet files to a float matrix.

The adapter learns a schema from the training normals (columns, kinds, categories,
scaling statistics), checks every later input against it, and maps per-feature errors
back to the user's columns.

Column kinds
------------
``numeric``
    Float columns, and integer columns with more than ``max_int_categories`` values.
    Centred on the median and divided by a robust spread (IQR / 1.349, falling back to
    the standard deviation, then to the mean absolute deviation). With ``scaling="robust"``
    (the default) values further than 3 spreads from the median are compressed
    logarithmically: ``sign(z) * (3 + log1p(|z| - 3))``, so one extreme amount cannot
    dominate the loss while the order of values is kept.
``boolean``
    bool columns, encoded 0/1.
``categorical``
    string, ``category`` and object columns, integer columns with 3 to
    ``max_int_categories`` distinct values, and any column named in
    ``categorical_columns``. One-hot encoded, with one extra *unseen* slot that is 0
    for every training row and 1 for a category never seen in training. A cell must hold
    one value: a list, dict, set or array in a categorical column raises, naming the
    column and the row, at fit and at scoring time.

Date and time columns are refused at fit (convert them to numbers first); dates or times
at scoring time in a column that was numeric in training raise too, naming the column.
A column whose values are so large that its centre, spread or scaled values overflow
float64 (values near 1e308) is refused at fit, naming the column and suggesting a
divisor; rescale it or take a log.

Missing values
--------------
``missing="impute"`` (default): a NaN in a numeric column is replaced by the training
median, and a NaN in a boolean column by the training majority value (False on a tie);
for columns that had NaNs in training, a 0/1 indicator feature ``"col=<missing>"`` is
added; a NaN in a numeric or boolean column that had none in training is imputed the
same way with a :class:`~genad.errors.GenadWarning`. A missing category is its own
category, distinct from every string (the literal string ``"<missing>"`` is an ordinary
category, named ``col='<missing>'``). ``missing="raise"``: any NaN raises
:class:`~genad.errors.InvalidInputError` naming the column and the row. ``inf`` is never
accepted: it raises, naming the column and row.

Columns
-------
Constant columns (one value in every training row) are dropped with a warning. Extra
columns at scoring time are ignored; a missing column raises, naming it, and so does a
column the model uses that appears more than once. An adapter fitted on an array uses
later input by position (as does one fitted on a DataFrame or file and given an array);
:class:`~genad.Detector` then warns as scikit-learn does ("X has feature names, but ...
was fitted without feature names", and the reverse).

Files
-----
``.csv`` and ``.txt`` files are read with the delimiter :func:`sniff_delimiter` finds
(``,``, ``;``, tab or ``|``; comma when unsure), so a semicolon- or tab-separated file
named ``.csv`` is read as the table it is; ``.tsv`` files default to tab.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from genad._params import Constraint, Integer, OneOf, StringList, validate_params
from genad.bundle_schema import (
    DocumentError,
    boolean,
    category,
    enum,
    integer,
    list_of,
    number,
    obj,
    string,
)
from genad.contributions import top_contributions
from genad.data.base import Adapter, SampleSet, TensorSampleSet, register_adapter
from genad.errors import GenadWarning, InvalidInputError, NotFittedError, warnings_once

__all__ = ["TabularAdapter", "read_table", "sniff_delimiter", "split_labels"]

_TAIL = 3.0  # robust z beyond which tails are log-compressed
_CLIP = 1e4  # hard clip on encoded features, keeps scores finite for any finite input
_ENCODE_ROWS = 2048  # rows encoded at a time (a block of a few hundred KiB stays in cache)
#: in memory and in new bundles the missing category is ``None`` (JSON null), which no
#: real category can equal; adapter documents without a ``version`` (format 1) stored it as
#: this string, and are read back with that meaning
_LEGACY_MISSING = "<missing>"
_SPECIAL_LABELS = {"<missing>", "<unseen>"}  # slot names a literal category must not take
_STATE_VERSION = 2
_TABLE_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
}
_DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 200

def _rule(name: str) -> Any:
    """The constructor rule of parameter ``name`` (``parameter_constraints``) as a check
    of a model document's value, raising :class:`DocumentError`."""

    def check(value: Any, where: str) -> None:
        try:
            TabularAdapter.parameter_constraints[name].check(where, value)
        except InvalidInputError as exc:
            raise DocumentError(str(exc)) from None

    return check


#: the options a model document may give the adapter: the constructor's own rules
_PARAM_CHECKS = {name: _rule(name) for name in (
    "categorical_columns", "missing", "scaling", "max_int_categories", "max_categories")}
#: the state document of :meth:`TabularAdapter.get_state`; ``version`` is absent in
#: documents written by genad 0.1.0
_STATE = obj(
    {
        "params": obj(_PARAM_CHECKS),
        "input_kind": enum("dataframe", "array"),
        "input_columns": list_of(string, min_len=1, unique=True),
        "dropped_columns": list_of(string, unique=True),
        "columns": list_of(obj({
            "name": string,
            "kind": enum("numeric", "boolean", "categorical"),
            "indicator": boolean,
            "categories": list_of(category, unique=True),
            "median": number(),
        }), min_len=1),
    },
    {"version": integer(1, _STATE_VERSION)},
)


def sniff_delimiter(path: str | Path, default: str = ",") -> str:
    """The field delimiter of a text table: one of ``, ; tab |``, else ``default``.

    :class:`csv.Sniffer` reads the first whole lines (at most 64 KB). Its guess is kept
    only when it splits the header line into two or more fields, so a genuine
    one-column file, or one whose text values hold a ``;``, keeps ``default``.

    Parameters
    ----------
    path : str or Path
        A CSV-like text file.
    default : str, default ","
        The delimiter used when sniffing finds nothing better.

    Returns
    -------
    str
        The delimiter to read the file with.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a;b;c\\n1;2;3\\n4;5;6\\n")
    >>> sniff_delimiter(p)
    ';'
    """
    with open(path, "rb") as fh:
        raw = fh.read(_SNIFF_BYTES)
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if len(raw) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()][:_SNIFF_LINES]
    if not lines:
        return default
    try:
        guess = csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return default
    if guess == default or guess not in _DELIMITERS:
        return default
    header = next(csv.reader([lines[0]], delimiter=guess))
    return guess if len(header) >= 2 else default


def read_table(source: Any) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet path, or wrap a DataFrame or 2-D array as a DataFrame.

    Raises
    ------
    InvalidInputError
        The file does not exist, cannot be parsed as a table, or the array is not 2-D.
    """
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InvalidInputError(f"file not found: {path}")
        if path.is_dir():
            raise InvalidInputError(f"{path} is a folder, not a table file")
        kind = _TABLE_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise InvalidInputError(
                f"{path}: unsupported table format {path.suffix!r}; use .csv, .tsv or .parquet"
            )
        try:
            if kind == "parquet":
                df = pd.read_parquet(path)
            else:
                sep = sniff_delimiter(path, "\t" if kind == "tsv" else ",")
                df = pd.read_csv(path, sep=sep)
        except Exception as exc:  # any parser failure means "not a table"
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInputError(f"{path} is not a readable {kind} table: {first}") from exc
        if df.shape[1] == 0:
            raise InvalidInputError(f"{path} holds no columns")
        return df
    if isinstance(source, pd.Series):
        return source.to_frame()
    if hasattr(source, "tocsr") or type(source).__module__.startswith("scipy.sparse"):
        raise InvalidInputError(
            "sparse input is not supported; convert it with X.toarray() (or a DataFrame)"
        )
    try:
        arr = np.asarray(source)
    except Exception as exc:
        kind = type(source).__name__
        raise InvalidInputError(f"cannot read input of type {kind} as a table") from exc
    if arr.ndim == 1:
        raise InvalidInputError(
            f"expected a 2-D table (rows x columns), got a 1-D array of {arr.shape[0]} values; "
            "Reshape your data with X.reshape(-1, 1) for a single column"
        )
    if arr.ndim != 2:
        raise InvalidInputError(f"expected a 2-D table (rows x columns), got shape {arr.shape}")
    if arr.dtype.kind in "OUS":
        return pd.DataFrame(arr.astype(object), columns=[f"x{i}" for i in range(arr.shape[1])])
    if np.iscomplexobj(arr):
        raise InvalidInputError("Complex data not supported; pass real numbers")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidInputError(f"array of dtype {arr.dtype} is not numeric")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])], copy=False)


@dataclass
class _Column:
    name: str
    kind: str  # numeric | boolean | categorical
    indicator: bool = False  # numeric: NaN indicator feature
    categories: list[Any] = field(default_factory=list)
    median: float = 0.0  # numeric imputation value, original units


def _is_intlike(s: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _first_bad(mask: np.ndarray, index: pd.Index) -> Any:
    return index[int(np.flatnonzero(mask)[0])]


def _bool_values(s: pd.Series, name: str) -> pd.Series:
    """A bool column as pandas' nullable boolean, or an error naming the bad row."""
    if s.dtype == bool:
        return s.astype("boolean")
    try:
        return s.astype("boolean")
    except (TypeError, ValueError):
        ok = s.isna() | s.isin([True, False, 0, 1])
        row = s.index[int(np.flatnonzero(~ok.to_numpy())[0])]
        raise InvalidInputError(
            f"column {name!r} is boolean but row {row!r} holds {s.loc[row]!r}"
        ) from None


def _missing_error(name: str, mask: np.ndarray, index: pd.Index) -> InvalidInputError:
    return InvalidInputError(
        f"column {name!r} has a missing value in row {_first_bad(mask, index)!r} (missing='raise')"
    )


def _category_key(value: Any) -> Any:
    """Categories are stored as JSON-safe keys: strings, ints, or floats."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        v = float(value)
        return int(v) if v.is_integer() else v
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    return value if isinstance(value, (int, float, str)) else str(value)


def _category_label(value: Any) -> str:
    """A category's name in ``feature_names_out_``; a literal ``"<missing>"`` is quoted."""
    if value is None:
        return _LEGACY_MISSING
    return repr(value) if value in _SPECIAL_LABELS else str(value)


def _duplicate_name(names: list[str]) -> str | None:
    """The first name that appears twice, or None."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _factorize(s: pd.Series, name: str) -> tuple[np.ndarray, Any]:
    """``pd.factorize`` of a categorical column (missing -> -1), or an error naming the
    first cell that is not a single value (a list, dict, set or array)."""
    try:
        return pd.factorize(s, use_na_sentinel=True)
    except TypeError:
        for row, value in zip(s.index, s.to_numpy(dtype=object), strict=True):
            try:
                hash(value)
            except TypeError:
                raise InvalidInputError(
                    f"column {name!r} holds a {type(value).__name__} in row {row!r} "
                    f"({_short_repr(value)}); a categorical cell must be one string or "
                    "number: flatten or drop the column"
                ) from None
        raise


#: the last column Index seen and its labels: scoring row after row passes frames that
#: share one Index, and listing string labels costs more than the rest of a small call
_LAST_LABELS: list[Any] = [None, []]


def _labels(columns: pd.Index) -> list[Any]:
    """``columns.tolist()``, remembered for the last Index object (do not modify it)."""
    last = _LAST_LABELS
    if last[0] is columns:
        return last[1]
    names = columns.tolist()
    _LAST_LABELS[:] = [columns, names]
    return names


def _dtypes(df: pd.DataFrame) -> list[Any]:
    """The dtype of each column, in order (without building a Series when all agree)."""
    mgr = getattr(df, "_mgr", None)
    blocks = getattr(mgr, "blocks", ())
    if len(blocks) == 1 and isinstance(blocks[0].dtype, np.dtype):
        return [blocks[0].dtype] * df.shape[1]
    return df.dtypes.tolist()


def _holds_dates(dtype: Any) -> bool:
    """Whether a column of ``dtype`` holds dates, times or periods."""
    if isinstance(dtype, np.dtype):  # the common case, checked fast
        return dtype.kind in "Mm"
    types = pd.api.types
    return bool(types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype)
                or isinstance(dtype, pd.PeriodDtype))


def _plain_number(value: float) -> str:
    """``1e308`` rather than ``1e+308``."""
    return f"{value:.3g}".replace("e+", "e")


def _check_statistics(name: str, values: np.ndarray, stats: tuple[float, ...]) -> None:
    """Refuse a column whose centre, scale or median (``stats``) or whose scaled values
    ``(values - center) / scale`` are not finite in float64, with advice to rescale it."""
    center, scale = stats[0], stats[1]
    with np.errstate(over="ignore", invalid="ignore"):
        ok = all(math.isfinite(v) for v in stats) and bool(
            np.all(np.isfinite((values - center) / scale)))
    if ok:
        return
    top = float(np.max(np.abs(values)))
    divisor = 10.0 ** max(0, math.floor(math.log10(top)) - 8) if top > 0 else 1.0
    raise InvalidInputError(
        f"column {name!r}: values up to {_plain_number(top)} overflow float64 statistics; "
        f"rescale the column, e.g. divide by {_plain_number(divisor)} or take a log"
    )


def split_labels(df: pd.DataFrame, column: str, source: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop the 0/1 label ``column`` from ``df`` (read from ``source``): (features, labels).

    Raises
    ------
    InvalidInputError
        The column is missing, or holds a value other than 0 or 1 (the row is named).
    """
    from genad._params import plain
    from genad._text import require_columns

    require_columns([column], [str(c) for c in df.columns], str(source), "label column")
    raw = df[column]
    values = raw.to_numpy()
    numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"label column {column!r} must hold 0 (normal) or 1 (anomaly); "
            f"row {plain(raw.index[i])} holds {plain(values[i])}"
        )
    return df.drop(columns=[column]), numeric.astype(np.int64)


@register_adapter
class TabularAdapter(Adapter):
    """Learns a table's schema and scaling on training normals, then encodes tables.

    Parameters
    ----------
    categorical_columns : list of str, optional
        Columns to treat as categorical whatever their dtype.
    missing : {"impute", "raise"}, default "impute"
        Policy for NaN values (see the module docstring).
    scaling : {"robust", "standard"}, default "robust"
        ``"robust"``: median / IQR with log-compressed tails. ``"standard"``: mean / std.
    max_int_categories : int, default 10
        Integer columns with 3 to this many distinct values are categorical.
    max_categories : int, default 100
        Most frequent categories kept per column; rarer ones use the unseen slot.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "a"]})
    >>> ad = TabularAdapter().fit(df)
    >>> ad.transform(df).shape
    (4, 4)
    >>> ad.feature_names_out_
    ['amount', 'kind=a', 'kind=b', 'kind=<unseen>']
    """

    kind = "tabular"
    fallback = True
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "categorical_columns": StringList(),
        "missing": OneOf(("impute", "raise")),
        "scaling": OneOf(("robust", "standard")),
        "max_int_categories": Integer(0),
        "max_categories": Integer(1),
    }
    data_noun = "table"
    sample_noun = "row"

    def __init__(
        self,
        categorical_columns: list[str] | None = None,
        missing: str = "impute",
        scaling: str = "robust",
        max_int_categories: int = 10,
        max_categories: int = 100,
    ) -> None:
        self.categorical_columns = categorical_columns
        self.missing = missing
        self.scaling = scaling
        self.max_int_categories = max_int_categories
        self.max_categories = max_categories

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any) -> TabularAdapter:
        """Learn the schema and scaling statistics from training normals ``X``."""
        validate_params(self.get_params(deep=False), self.parameter_constraints)
        df = read_table(X)
        self.input_kind_ = "dataframe" if isinstance(X, (pd.DataFrame, str, Path)) else "array"
        if len(df) == 0:
            raise InvalidInputError("the training table is empty (0 rows)")
        if df.shape[1] == 0:
            raise InvalidInputError("the training table has no columns")
        names = [str(c) for c in df.columns]
        dup = _duplicate_name(names)
        if dup is not None:
            raise InvalidInputError(f"column {dup!r} appears more than once")
        df = df.set_axis(names, axis=1)
        declared = set(self.categorical_columns or [])
        unknown = declared - set(names)
        if unknown:
            missing_name = sorted(unknown)[0]
            raise InvalidInputError(f"categorical column {missing_name!r} is not in the table")

        columns: list[_Column] = []
        dropped: list[str] = []
        centers: list[float] = []
        scales: list[float] = []
        for name in names:
            s = df[name]
            kind = self._kind(s, name in declared)
            if kind == "numeric":
                values = self._numeric_values(s, name)
                finite = values[~np.isnan(values)]
                nan_mask = np.isnan(values)
                if nan_mask.any() and self.missing == "raise":
                    raise _missing_error(name, nan_mask, df.index)
                if finite.size == 0:
                    dropped.append(name)  # entirely missing: reported with the constant ones
                    continue
                if np.all(finite == finite[0]) and not nan_mask.any():
                    dropped.append(name)
                    continue
                center, scale = self._center_scale(finite)
                with np.errstate(over="ignore", invalid="ignore"):
                    median = float(np.median(finite))
                _check_statistics(name, finite, (center, scale, median))
                columns.append(_Column(name, "numeric", indicator=bool(nan_mask.any()),
                                       median=median))
                centers.append(center)
                scales.append(scale)
            elif kind == "boolean":
                b = _bool_values(s, name)
                isna = b.isna().to_numpy()
                if isna.any() and self.missing == "raise":
                    raise _missing_error(name, isna, df.index)
                present = b.dropna()
                if len(present) == 0 or (present.nunique() <= 1 and not isna.any()):
                    dropped.append(name)
                    continue
                # imputation value: the training majority (False on a tie)
                columns.append(_Column(name, "boolean", indicator=bool(isna.any()),
                                       median=float(present.mean() > 0.5)))
            else:
                isna = s.isna().to_numpy()
                if isna.any() and self.missing == "raise":
                    raise _missing_error(name, isna, df.index)
                counts = self._category_counts(s, name)
                if len(counts) <= 1:
                    dropped.append(name)
                    continue
                if len(counts) > self.max_categories:
                    warnings.warn(
                        f"column {name!r} has {len(counts)} categories; keeping the "
                        f"{self.max_categories} most frequent, the rest share the unseen slot",
                        GenadWarning, stacklevel=2,
                    )
                    counts = counts.iloc[: self.max_categories]
                cats = sorted(counts.index.tolist(), key=lambda c: (type(c).__name__, str(c)))
                columns.append(_Column(name, "categorical", categories=cats))
        if dropped:
            warnings.warn(
                f"dropped {len(dropped)} constant column(s) (the same value, or only missing "
                "values, in every training row): "
                + ", ".join(repr(d) for d in dropped[:10]) + (" ..." if len(dropped) > 10 else ""),
                GenadWarning, stacklevel=2,
            )
        if not columns:
            raise InvalidInputError("every column is constant or empty: nothing to learn from")
        self.input_columns_ = names
        self.columns_ = columns
        self.dropped_columns_ = dropped
        self.center_ = np.asarray(centers, dtype=np.float64)
        self.scale_ = np.asarray(scales, dtype=np.float64)
        self._build_layout()
        return self

    @staticmethod
    def _category_counts(s: pd.Series, name: str) -> pd.Series:
        """Rows per category key, most frequent first; missing values count as ``None``."""
        codes, uniques = _factorize(s, name)
        per_unique = np.bincount(codes[codes >= 0], minlength=len(uniques))
        counts: dict[Any, int] = {}
        for value, n in zip(uniques, per_unique, strict=True):
            key = _category_key(value)
            counts[key] = counts.get(key, 0) + int(n)
        n_missing = int(np.count_nonzero(codes < 0))
        if n_missing:
            counts[None] = n_missing
        ordered = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep order
        return pd.Series([n for _, n in ordered], index=pd.Index([k for k, _ in ordered],
                                                                 dtype=object), dtype=np.int64)

    def _kind(self, s: pd.Series, declared: bool) -> str:
        if declared:
            return "categorical"
        if pd.api.types.is_bool_dtype(s.dtype):
            return "boolean"
        if _holds_dates(s.dtype):
            raise InvalidInputError(
                f"column {s.name!r} holds dates/times; convert it to numbers (e.g. seconds) first"
            )
        if isinstance(s.dtype, pd.CategoricalDtype):
            return "categorical"
        if pd.api.types.is_complex_dtype(s.dtype):
            raise InvalidInputError(
                f"Complex data not supported: column {s.name!r} holds complex numbers"
            )
        if _is_intlike(s):
            n = s.nunique(dropna=True)
            return "categorical" if 3 <= n <= self.max_int_categories else "numeric"
        if pd.api.types.is_numeric_dtype(s.dtype):
            return "numeric"
        # object / string: categorical unless it is a numeric column with stray strings
        non_null = s.dropna()
        if len(non_null) == 0:
            return "numeric"
        parsed = pd.to_numeric(non_null, errors="coerce")
        ok = parsed.notna().to_numpy()
        if ok.mean() >= 0.9 and not ok.all():
            bad = non_null.index[int(np.flatnonzero(~ok)[0])]
            raise InvalidInputError(
                f"column {s.name!r} is numeric but row {bad!r} holds the string "
                f"{str(non_null.loc[bad])!r}; fix the value or declare the column categorical"
            )
        if ok.all():
            return "numeric"
        return "categorical"

    def _numeric_values(self, s: pd.Series, name: str, index: pd.Index | None = None) -> np.ndarray:
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            parsed = pd.to_numeric(s, errors="coerce")
            bad = parsed.isna().to_numpy() & s.notna().to_numpy()
            if bad.any():
                row = _first_bad(bad, s.index)
                raise InvalidInputError(
                    f"column {name!r} must be numeric but row {row!r} holds {s.loc[row]!r}"
                )
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        inf = np.isinf(values)
        if inf.any():
            raise InvalidInputError(
                f"column {name!r} holds an infinite value in row {_first_bad(inf, s.index)!r}; "
                "replace it with a finite number or NaN"
            )
        return values

    def _center_scale(self, x: np.ndarray) -> tuple[float, float]:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: _check_statistics
            return self._center_scale_unchecked(x)

    def _center_scale_unchecked(self, x: np.ndarray) -> tuple[float, float]:
        if self.scaling == "standard":
            center, scale = float(np.mean(x)), float(np.std(x))
        else:
            center = float(np.median(x))
            q75, q25 = np.percentile(x, [75, 25])
            scale = float(q75 - q25) / 1.349
            if scale <= 1e-12:
                scale = float(np.std(x))
        if scale <= 1e-12:
            scale = float(np.mean(np.abs(x - center))) or 1.0
        return center, scale

    def _build_layout(self) -> None:
        names: list[str] = []
        owner: list[int] = []
        for j, col in enumerate(self.columns_):
            if col.kind == "categorical":
                for c in col.categories:
                    names.append(f"{col.name}={_category_label(c)}")
                    owner.append(j)
                names.append(f"{col.name}=<unseen>")
                owner.append(j)
            else:
                names.append(col.name)
                owner.append(j)
                if col.indicator:
                    names.append(f"{col.name}=<missing>")
                    owner.append(j)
        self.feature_names_out_ = names
        self.feature_owner_ = np.asarray(owner, dtype=np.int64)
        self.n_features_out_ = len(names)
        group = np.zeros((len(names), len(self.columns_)), dtype=np.float32)
        group[np.arange(len(names)), self.feature_owner_] = 1.0
        self._group = group

    # ------------------------------------------------------------ transform
    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("this TabularAdapter is not fitted yet; call fit first")

    @property
    def column_names_(self) -> list[str]:
        """Names of the columns the model uses (after dropping constant ones)."""
        self._check_fitted()
        return [c.name for c in self.columns_]

    def _align(self, X: Any) -> pd.DataFrame:
        df = read_table(X)
        if len(df) == 0:
            raise InvalidInputError("the table to score is empty (0 rows)")
        positional = not isinstance(X, (pd.DataFrame, str, Path))
        if positional or self.input_kind_ == "array":
            if df.shape[1] != len(self.input_columns_):
                raise InvalidInputError(
                    f"X has {df.shape[1]} features, but genad is expecting "
                    f"{len(self.input_columns_)} features as input (the training columns, in "
                    "order)"
                )
            return df.set_axis(self.input_columns_, axis=1)
        names = _labels(df.columns)
        if not all(type(c) is str for c in names):
            names = [str(c) for c in names]
            df = df.set_axis(names, axis=1)
        have = set(names)
        for col in self.columns_:
            if col.name not in have:
                raise InvalidInputError(
                    f"column {col.name!r} is missing; the model was trained on "
                    f"{len(self.columns_)} columns: {', '.join(self.column_names_[:8])}"
                    + (" ..." if len(self.columns_) > 8 else "")
                )
        self._check_used_columns(df)
        return df

    def _check_used_columns(self, df: pd.DataFrame) -> None:
        """Each column the model uses appears once, and a numeric one holds no dates."""
        if not df.columns.is_unique:
            used = set(self.column_names_)
            dup = _duplicate_name([c for c in df.columns if c in used])
            if dup is not None:
                raise InvalidInputError(
                    f"column {dup!r} appears more than once in the table; rename or drop "
                    "the copies"
                )
        dtype_of = dict(zip(_labels(df.columns), _dtypes(df), strict=True))
        for col in self.columns_:
            if col.kind == "numeric" and _holds_dates(dtype_of[col.name]):
                raise InvalidInputError(
                    f"column {col.name!r} was numeric in training but holds dates/times here; "
                    "convert it to the same numbers as in training (e.g. seconds)"
                )

    def check_feature_names(self, X: Any, estimator: str) -> None:
        """Warn, as scikit-learn does, when ``X`` has column names and the model was fitted
        on an array, or the reverse; ``X`` is then used by position.

        Parameters
        ----------
        X : the input about to be scored
        estimator : str
            The fitted estimator's class name, for the message.
        """
        self._check_fitted()
        has_names = isinstance(X, (str, Path)) or (
            isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in _labels(X.columns)))
        if has_names and self.input_kind_ == "array":
            warnings.warn(f"X has feature names, but {estimator} was fitted without feature "
                          "names", GenadWarning, stacklevel=3)
        elif not isinstance(X, pd.DataFrame) and not has_names \
                and self.input_kind_ == "dataframe":
            warnings.warn(f"X does not have valid feature names, but {estimator} was fitted "
                          "with feature names", GenadWarning, stacklevel=3)

    def _check_missing(self, col: _Column, nan_mask: np.ndarray, index: pd.Index,
                       fill: str) -> None:
        """The missing-value policy at scoring time: raise, or warn when the column had no
        missing value in training (``fill`` says what replaces them)."""
        if not nan_mask.any():
            return
        if self.missing == "raise":
            raise _missing_error(col.name, nan_mask, index)
        if not col.indicator:
            warnings.warn(
                f"column {col.name!r} had no missing values in training but has "
                f"{int(nan_mask.sum())} here; imputed with {fill}",
                GenadWarning, stacklevel=3,
            )

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` (same schema as in ``fit``) as a float32 matrix."""
        return self._encode(X)[0]

    def _encode(self, X: Any) -> tuple[np.ndarray, pd.Index]:
        """The float32 matrix of ``X`` and the index of its rows."""
        self._check_fitted()
        df = self._align(X)
        n = len(df)
        out = np.empty((n, self.n_features_out_), dtype=np.float32)
        pos = 0
        numeric_slots: list[int] = []
        numeric_vals: list[np.ndarray] = []
        numeric, has_nan = self._numeric_block(df)
        if has_nan.any():  # imputed in place below: work on our own copy
            numeric = numeric.copy(order="K")
        for col in self.columns_:
            s = df[col.name] if numeric is None or col.kind != "numeric" else None
            if col.kind == "numeric":
                j = len(numeric_slots)
                values = numeric[:, j] if s is None else self._numeric_values(s, col.name)
                nan_mask = (np.isnan(values) if s is not None or has_nan[j]
                            else np.zeros(n, dtype=bool) if col.indicator else None)
                if nan_mask is not None and nan_mask.any():
                    if self.missing == "raise":
                        raise _missing_error(col.name, nan_mask, df.index)
                    if not col.indicator:
                        warnings.warn(
                            f"column {col.name!r} had no missing values in training but has "
                            f"{int(nan_mask.sum())} here; imputed with the training median",
                            GenadWarning, stacklevel=2,
                        )
                    if s is None:
                        values[nan_mask] = col.median  # a column of our own copy
                    else:
                        values = np.where(nan_mask, col.median, values)
                numeric_slots.append(pos)
                numeric_vals.append(values)
                pos += 1
                if col.indicator:
                    out[:, pos] = nan_mask
                    pos += 1
            elif col.kind == "boolean":
                b = _bool_values(s, col.name)
                isna = b.isna().to_numpy()
                self._check_missing(col, isna, df.index,
                                    f"the training majority value ({bool(col.median)})")
                out[:, pos] = b.to_numpy(dtype=np.float32, na_value=col.median)
                pos += 1
                if col.indicator:
                    out[:, pos] = isna
                    pos += 1
            else:
                isna = s.isna().to_numpy()
                if isna.any() and self.missing == "raise":
                    raise _missing_error(col.name, isna, df.index)
                lookup = {c: i for i, c in enumerate(col.categories)}
                unseen = len(col.categories)
                # map each distinct value once, then broadcast (fast for long columns)
                value_codes, uniques = _factorize(s, col.name)
                per_unique = np.fromiter(
                    (lookup.get(_category_key(u), unseen) for u in uniques), dtype=np.int64,
                    count=len(uniques),
                )
                missing_code = lookup.get(None, unseen)
                codes = np.where(value_codes >= 0, per_unique[np.maximum(value_codes, 0)],
                                 missing_code) if len(uniques) else np.full(n, missing_code)
                block = np.zeros((n, unseen + 1), dtype=np.float32)
                block[np.arange(n), codes] = 1.0
                out[:, pos : pos + unseen + 1] = block
                pos += unseen + 1
        if numeric_vals:
            if numeric is None:
                numeric = np.empty((n, len(numeric_vals)), dtype=np.float64, order="F")
                for j, v in enumerate(numeric_vals):
                    numeric[:, j] = v
            self._encode_numeric(numeric, out, numeric_slots)
        return out, df.index

    def _numeric_block(self, df: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
        """The numeric columns as one float64 ``(n, k)`` array, and which hold NaN.

        ``(None, [])`` when a column needs the per-column path (:meth:`_numeric_values`):
        a non-numeric dtype (strings to parse, dates, booleans), an infinite value (that
        path names it), or duplicate names. The array is C- or F-ordered like the
        frame's values, and may be a view of the caller's data: never write to it.
        """
        none = (None, np.zeros(0, dtype=bool))
        names = [c.name for c in self.columns_ if c.kind == "numeric"]
        if not names:
            return none
        columns = _labels(df.columns)
        where = {c: i for i, c in enumerate(columns)}
        if len(where) != len(columns):
            return none  # duplicate names
        positions = [where[name] for name in names]
        dtypes = _dtypes(df)
        types = pd.api.types
        for p in positions:
            dtype = dtypes[p]
            if isinstance(dtype, np.dtype):  # the common case, checked fast
                if dtype.kind not in "fiu":  # not bool, complex, dates, objects
                    return none
            elif not types.is_numeric_dtype(dtype) or types.is_bool_dtype(dtype):
                return none
        sub = df if positions == list(range(len(columns))) else df.take(positions, axis=1)
        block = sub.to_numpy(dtype=np.float64, na_value=np.nan, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):
            total = block.sum()  # finite only if every value is (a fast first check)
        if np.isfinite(total):
            return block, np.zeros(len(names), dtype=bool)
        finite = np.isfinite(block)
        if finite.all():
            return block, np.zeros(len(names), dtype=bool)
        if np.isinf(block).any():
            return none
        return block, ~finite.all(axis=0)

    def _encode_numeric(self, z: np.ndarray, out: np.ndarray, slots: list[int]) -> None:
        """Centre, scale, log-compress the tails and clip ``z`` (float64, left as it is),
        then write it as float32 into the columns ``slots`` of ``out``.

        Works on :data:`_ENCODE_ROWS` rows at a time, so each step reads a block that is
        still in the CPU cache rather than the whole table from memory again, and on each
        block as one flat run of values (the centres and scales repeated row after row),
        which vectorises better than broadcasting over a few dozen columns.
        """
        k = z.shape[1]
        first = slots == list(range(k))
        robust = self.scaling == "robust"
        rows_per_block = min(_ENCODE_ROWS, len(z))
        center = np.tile(self.center_, rows_per_block)
        scale = np.tile(self.scale_, rows_per_block)

        def encode(start: int) -> None:
            rows = slice(start, start + rows_per_block)
            zb = np.array(z[rows], order="C")  # our copy of the block, in row order
            flat = zb.reshape(-1)  # a view
            np.subtract(flat, center[: flat.size], out=flat)
            np.divide(flat, scale[: flat.size], out=flat)
            if robust:
                tail = np.flatnonzero(np.abs(flat) > _TAIL)
                if tail.size:  # usually a few percent of the values: work on those only
                    zt = flat[tail]
                    zt = np.sign(zt) * (_TAIL + np.log1p(np.abs(zt) - _TAIL))
                    # only a tail value can pass the clip (an overflow to inf, say)
                    flat[tail] = np.clip(zt, -_CLIP, _CLIP, out=zt)
            else:
                np.clip(flat, -_CLIP, _CLIP, out=flat)
            if first:
                out[rows, :k] = zb
            else:
                out[rows, slots] = zb

        for start in range(0, len(z), rows_per_block):
            encode(start)

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    # --------------------------------------------------------------- maps
    def to_map(self, unit_maps: np.ndarray, samples: SampleSet | None = None, *,
               index: Any = None) -> np.ndarray | pd.DataFrame:
        """Sum per-feature errors back to the input columns (one-hot parts summed).

        Returns a DataFrame with the model's column names (and the rows' index, from
        ``samples`` or ``index``) when the model was fitted on a DataFrame or file, else
        an ndarray with one column per kept input column.
        """
        self._check_fitted()
        if samples is not None:
            index = samples.meta.get("index")
        per_column = np.asarray(unit_maps, dtype=np.float64) @ self._group.astype(np.float64)
        if self.input_kind_ == "dataframe":
            return pd.DataFrame(per_column, columns=self.column_names_, index=index)
        return per_column

    def describe(self, maps: np.ndarray | pd.DataFrame, k: int) -> list[str]:
        """Each row's ``k`` largest column contributions, e.g. ``"amount (80%), ..."``."""
        if not isinstance(maps, pd.DataFrame):
            maps = pd.DataFrame(maps, columns=self.column_names_)
        return top_contributions(maps, k)

    # ------------------------------------------------------- the protocol
    @classmethod
    def accepts(cls, X: Any) -> bool:
        """Tables are the fallback: every input other adapters decline is read as one."""
        return True

    def read(self, X: Any) -> pd.DataFrame | np.ndarray:
        """A file as a DataFrame; a DataFrame as is; anything else as a 2-D array."""
        df = read_table(X)
        return df if isinstance(X, (pd.DataFrame, str, Path)) else df.to_numpy()

    def n_samples(self, data: Any) -> int:
        return len(data)

    def take(self, data: Any, rows: np.ndarray) -> Any:
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return data.iloc[rows] if isinstance(data, pd.DataFrame) else data[rows]

    def read_labelled(self, source: Any, label_column: str | None) -> tuple[Any, Any]:
        """``(table, labels)`` from a file or frame; ``labels`` None without a column."""
        df = read_table(source)
        if label_column is None:
            return df, None
        return split_labels(df, label_column, source)

    def samples(self, X: Any) -> TensorSampleSet:
        """``X`` encoded as one tensor of rows (:meth:`transform`), its index kept."""
        import torch

        z, index = self._encode(X)
        return TensorSampleSet(torch.from_numpy(z), meta={"index": index})

    def chunks(self, X: Any, size: int) -> Iterator[TensorSampleSet]:
        """``X`` in slices of ``size`` rows: a file is read once; DataFrames, Series and
        2-D arrays are sliced (their kind, and so the column matching, is kept); other
        inputs are encoded in one piece. A warning raised by several slices is shown once.
        """
        if isinstance(X, (str, Path)):
            X = read_table(X)
        sliceable = isinstance(X, (pd.DataFrame, pd.Series)) or (
            isinstance(X, np.ndarray) and X.ndim == 2)
        n = len(X) if sliceable else 0
        if n <= size:
            yield self.samples(X)
            return
        framed = isinstance(X, (pd.DataFrame, pd.Series))
        with warnings_once():  # the same warning from each slice, with its own counts
            for start in range(0, n, size):
                part = X.iloc[start : start + size] if framed else X[start : start + size]
                samples = self.samples(part)
                if not framed:
                    samples.meta["index"] = pd.RangeIndex(start, start + len(samples))
                yield samples

    def check_input(self, X: Any, estimator: str) -> None:
        self.check_feature_names(X, estimator)

    @property
    def sample_shape_(self) -> tuple[int, ...]:
        """``(n_features_out_,)``: one encoded row."""
        self._check_fitted()
        return (self.n_features_out_,)

    @property
    def n_features_in_(self) -> int:
        """Number of input columns seen in ``fit`` (constant ones included)."""
        self._check_fitted()
        return len(self.input_columns_)

    @property
    def feature_names_in_(self) -> list[str] | None:
        """The input column names, or None when fitted on an array (positions only)."""
        self._check_fitted()
        return list(self.input_columns_) if self.input_kind_ == "dataframe" else None

    # -------------------------------------------------------------- state
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-safe schema and the scaling arrays, for the model bundle.

        Returns
        -------
        doc : dict
            ``version``, ``params`` (the constructor's), ``input_kind``,
            ``input_columns``, ``dropped_columns`` and one entry per used column
            (``name``, ``kind``, ``indicator``, ``categories``, ``median``); the layout
            :meth:`check_state` checks.
        arrays : dict of str to ndarray
            ``center`` and ``scale``: float64, one entry per numeric column.
        """
        self._check_fitted()
        doc = {
            "version": _STATE_VERSION,
            "params": {
                "categorical_columns": self.categorical_columns,
                "missing": self.missing,
                "scaling": self.scaling,
                "max_int_categories": self.max_int_categories,
                "max_categories": self.max_categories,
            },
            "input_kind": self.input_kind_,
            "input_columns": self.input_columns_,
            "dropped_columns": self.dropped_columns_,
            "columns": [
                {"name": c.name, "kind": c.kind, "indicator": c.indicator,
                 "categories": c.categories, "median": c.median}
                for c in self.columns_
            ],
        }
        return doc, {"center": self.center_, "scale": self.scale_}

    @classmethod
    def check_state(cls, doc: Any, where: str = "adapter"
                    ) -> tuple[tuple[int, ...], dict[str, tuple[Any, tuple[int, ...]]]]:
        """Check a state document (:meth:`get_state`) without building anything.

        The bundle loader calls it before reading any tensor: it needs the shape of one
        encoded row to check the network's tensors, and the arrays' shapes to check the
        file's header.

        Parameters
        ----------
        doc : object
            The parsed state document. Documents written by genad 0.1.0 have no
            ``version`` (it means 1: the missing category was stored as the string
            ``"<missing>"``).
        where : str, default "adapter"
            Where the state is in the model document, for messages.

        Returns
        -------
        sample_shape : tuple of int
            ``(encoded width,)``: one feature per numeric or boolean column, plus its
            missing indicator; one per category plus the unseen slot.
        arrays : dict of str to (dtype, shape)
            What :meth:`from_state` needs besides ``doc``: ``center`` and ``scale``,
            float64, one entry per numeric column.

        Raises
        ------
        DocumentError
            Naming the first field that is missing, unknown, of the wrong type, out of
            range, or inconsistent with another (a used column that is not an input
            column, categories of a numeric column, ...).
        """
        _STATE(doc, where)
        known = set(doc["input_columns"])
        used: set[str] = set()
        width = n_numeric = 0
        for i, col in enumerate(doc["columns"]):
            at = f"{where}.columns[{i}]"
            name, kind = col["name"], col["kind"]
            if name not in known:
                raise DocumentError(f"{at}.name {_short_repr(name)} is not an input column")
            if name in used:
                raise DocumentError(f"{at}.name {_short_repr(name)} is used twice")
            used.add(name)
            if kind == "categorical" and not col["categories"]:
                raise DocumentError(f"{at}.categories is empty for a categorical column")
            if kind != "categorical" and col["categories"]:
                raise DocumentError(f"{at}.categories must be empty for a {kind} column")
            if kind == "categorical" and col["indicator"]:  # missing is a category there
                raise DocumentError(f"{at}.indicator must be false for a categorical column")
            if kind == "categorical":
                width += len(col["categories"]) + 1
            else:
                width += 1 + int(col["indicator"])
            n_numeric += kind == "numeric"
        for name in doc["dropped_columns"]:
            if name not in known or name in used:
                raise DocumentError(
                    f"{where}.dropped_columns: {_short_repr(name)} is not an unused input column"
                )
        return (width,), {"center": (np.float64, (n_numeric,)),
                          "scale": (np.float64, (n_numeric,))}

    @classmethod
    def from_state(cls, doc: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> TabularAdapter:
        """Rebuild a fitted adapter from :meth:`get_state` output.

        ``doc`` is checked (:meth:`check_state`), and so are ``arrays``: exactly
        ``center`` and ``scale`` of the shape ``doc`` describes, finite, ``scale``
        positive. Nothing is set by name from ``doc``.

        Raises
        ------
        DocumentError
            ``doc`` or ``arrays`` is invalid; the message names the field or the array
            (``adapter.scale``).
        """
        (width,), specs = cls.check_state(doc)
        if set(arrays) != set(specs):
            raise DocumentError(f"adapter arrays must be {sorted(specs)}, got {sorted(arrays)}")
        values = {}
        for name, (_, shape) in specs.items():
            a = np.asarray(arrays[name])
            if a.shape != shape or not (np.issubdtype(a.dtype, np.floating)
                                        or np.issubdtype(a.dtype, np.integer)):
                raise DocumentError(f"adapter.{name} must be {shape[0]} numbers, got an array "
                                    f"of shape {list(a.shape)} and dtype {a.dtype}")
            a = a.astype(np.float64)
            bad = ~np.isfinite(a) | ((a <= 0) if name == "scale" else False)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                what = "finite and positive" if name == "scale" else "finite"
                raise DocumentError(f"adapter.{name} must be {what}, but entry {i} is {a[i]!r}")
            values[name] = a
        ad = cls(**doc["params"])
        ad.input_kind_ = doc["input_kind"]
        ad.input_columns_ = list(doc["input_columns"])
        ad.dropped_columns_ = list(doc["dropped_columns"])
        legacy = int(doc.get("version", 1)) < 2
        ad.columns_ = [
            _Column(c["name"], c["kind"], bool(c["indicator"]),
                    [None if legacy and k == _LEGACY_MISSING else k for k in c["categories"]],
                    float(c["median"]))
            for c in doc["columns"]
        ]
        ad.center_ = values["center"]
        ad.scale_ = values["scale"]
        ad._build_layout()
        if ad.n_features_out_ != width:  # check_state counts as _build_layout builds
            raise DocumentError(f"the adapter encodes {ad.n_features_out_} features, not "
                                f"{width}; this is a bug in genad")
        return ad

    def schema(self) -> list[dict[str, Any]]:
        """One row per input column: name, kind, encoded width, and what happens to it."""
        self._check_fitted()
        rows = []
        for c in self.columns_:
            width = len(c.categories) + 1 if c.kind == "categorical" else 1 + int(c.indicator)
            rows.append({"column": c.name, "kind": c.kind, "features": width,
                         "categories": len(c.categories) if c.kind == "categorical" else None,
                         "missing_indicator": c.indicator})
        for d in self.dropped_columns_:
            rows.append({"column": d, "kind": "dropped (constant)", "features": 0,
                         "categories": None, "missing_indicator": False})
        return rows
