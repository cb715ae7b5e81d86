"""TabularAdapter and read_table: schema, scaling, encoding, and every kind of bad input.

Each bad input must raise InvalidInputError whose message names the problem (the column,
the row, the file), or follow the documented behaviour (impute + warn, drop + warn).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import genad
from genad.data.tabular import TabularAdapter, read_table
from genad.errors import GenadWarning, InvalidInputError, NotFittedError


@pytest.fixture
def frame(rng):
    n = 60
    return pd.DataFrame({
        "amount": rng.gamma(2.0, 10.0, size=n).round(2),
        "x": rng.normal(size=n),
        "kind": rng.choice(["card", "cash", "wire"], size=n),
    })


# ------------------------------------------------------------------ read_table
def test_read_table_wraps_arrays_and_frames(rng):
    arr = rng.normal(size=(4, 3))
    df = read_table(arr)
    assert list(df.columns) == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(df.to_numpy(), arr)
    frame = pd.DataFrame({"a": [1, 2]})
    assert read_table(frame) is frame
    assert list(read_table(pd.Series([1.0, 2.0], name="s")).columns) == ["s"]


def test_read_table_reads_csv_tsv_and_parquet(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.parquet"):
        got = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    # str paths work as well as Path objects
    assert read_table(str(tmp_path / "t.csv")).shape == frame.shape


def test_1d_array_raises_with_advice():
    with pytest.raises(InvalidInputError, match=r"1-D array of 3 values.*reshape\(-1, 1\)"):
        read_table(np.array([1.0, 2.0, 3.0]))


def test_3d_array_raises():
    with pytest.raises(InvalidInputError, match=r"2-D.*\(2, 2, 2\)"):
        read_table(np.zeros((2, 2, 2)))


def test_missing_path_raises_naming_it(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(InvalidInputError, match="not found") as info:
        read_table(path)
    assert "nope.csv" in str(info.value)


def test_folder_is_not_a_table(tmp_path):
    with pytest.raises(InvalidInputError, match="folder"):
        read_table(tmp_path)


@pytest.mark.parametrize("suffix", [".json", ".png", ".xlsx", ""])
def test_unsupported_suffix_raises_naming_it(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(b"{}" if suffix == ".json" else b"\x89PNG\r\n")
    with pytest.raises(InvalidInputError, match="unsupported table format") as info:
        read_table(path)
    assert repr(suffix) in str(info.value)


@pytest.mark.parametrize("name", ["random.parquet", "random.csv"])
def test_random_bytes_are_not_a_table(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(InvalidInputError, match="not a readable") as info:
        read_table(path)
    assert name in str(info.value)


def test_empty_csv_file_is_not_a_table(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InvalidInputError, match="empty.csv"):
        read_table(path)


def test_detector_fit_on_bad_files_raises(tmp_path):
    det = genad.AutoEncoder(epochs=1, verbose=0)
    bad = tmp_path / "model.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInputError, match="model.parquet"):
        det.fit(bad)
    with pytest.raises(InvalidInputError, match="not found"):
        det.fit(tmp_path / "missing.csv")


# ------------------------------------------------------------------ schema
def test_column_kinds(rng):
    n = 80
    df = pd.DataFrame({
        "f": rng.normal(size=n),                          # float -> numeric
        "big_int": rng.integers(0, 1000, size=n),         # many ints -> numeric
        "low_int": rng.integers(0, 5, size=n),            # 3..10 ints -> categorical
        "two_int": rng.integers(0, 2, size=n),            # 2 ints -> numeric 0/1
        "flag": rng.random(n) > 0.5,                      # bool -> boolean
        "s": rng.choice(["a", "b"], size=n),              # strings -> categorical
        "cat": pd.Categorical(rng.choice(["u", "v", "w"], size=n)),
    })
    ad = TabularAdapter().fit(df)
    kinds = {row["column"]: row["kind"] for row in ad.schema()}
    assert kinds == {"f": "numeric", "big_int": "numeric", "low_int": "categorical",
                     "two_int": "numeric", "flag": "boolean", "s": "categorical",
                     "cat": "categorical"}
    assert ad.feature_names_out_[ad.feature_names_out_.index("low_int=0"):][:6] == [
        "low_int=0", "low_int=1", "low_int=2", "low_int=3", "low_int=4", "low_int=<unseen>"]


def test_declared_categorical_column_overrides_dtype(rng):
    df = pd.DataFrame({"code": rng.integers(0, 50, size=100), "x": rng.normal(size=100)})
    assert TabularAdapter().fit(df).schema()[0]["kind"] == "numeric"
    ad = TabularAdapter(categorical_columns=["code"]).fit(df)
    assert ad.schema()[0]["kind"] == "categorical"
    with pytest.raises(InvalidInputError, match="'nope'"):
        TabularAdapter(categorical_columns=["nope"]).fit(df)


def test_bool_column_is_encoded_zero_one(rng):
    df = pd.DataFrame({"flag": [True, False, True, True], "x": [1.0, 2.0, 3.0, 4.0]})
    ad = TabularAdapter().fit(df)
    out = ad.transform(df)
    np.testing.assert_array_equal(out[:, ad.feature_names_out_.index("flag")], [1, 0, 1, 1])


def test_one_hot_encoding_with_unseen_slot(frame):
    ad = TabularAdapter().fit(frame)
    names = ad.feature_names_out_
    assert names[-4:] == ["kind=card", "kind=cash", "kind=wire", "kind=<unseen>"]
    out = ad.transform(frame)
    block = out[:, -4:]
    np.testing.assert_array_equal(block.sum(axis=1), 1.0)
    assert block[:, -1].sum() == 0  # every training row has a seen category
    new = frame.iloc[:3].assign(kind=["cheque", "card", "bitcoin"])
    block = ad.transform(new)[:, -4:]
    np.testing.assert_array_equal(block[:, -1], [1, 0, 1])
    np.testing.assert_array_equal(block[1], [1, 0, 0, 0])


def test_string_column_in_csv_is_categorical(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    ad = TabularAdapter().fit(tmp_path / "t.csv")
    assert {r["column"]: r["kind"] for r in ad.schema()}["kind"] == "categorical"
    assert ad.input_kind_ == "dataframe"


def test_unseen_category_scores_higher(table, make_detector):
    det = make_detector("ae", epochs=20).fit(table)
    rows = table.iloc[:100]
    changed = rows.assign(kind="never-seen")
    seen, unseen = det.anomaly_score(rows), det.anomaly_score(changed)
    assert unseen.mean() > seen.mean()
    assert np.mean(unseen > seen) >= 0.9
    contrib, base = det.anomaly_map(changed)["kind"], det.anomaly_map(rows)["kind"]
    assert np.mean(contrib > base) >= 0.9
    # the other columns' contributions are about the same: the change is in "kind"
    assert (contrib - base).mean() > 0.5 * (unseen - seen).mean()


def test_too_many_categories_keeps_most_frequent(rng):
    values = np.r_[np.repeat(["a", "b"], 50), [f"r{i}" for i in range(20)]]
    df = pd.DataFrame({"k": values, "x": rng.normal(size=values.size)})
    with pytest.warns(GenadWarning, match="'k' has 22 categories"):
        ad = TabularAdapter(max_categories=2).fit(df)
    assert ad.feature_names_out_[:3] == ["k=a", "k=b", "k=<unseen>"]


# ------------------------------------------------------------------ scaling
def test_robust_scaling_statistics(rng):
    x = rng.normal(5.0, 2.0, size=1001)
    ad = TabularAdapter().fit(pd.DataFrame({"x": x, "y": rng.normal(size=1001)}))
    q75, q25 = np.percentile(x, [75, 25])
    assert ad.center_[0] == pytest.approx(np.median(x))
    assert ad.scale_[0] == pytest.approx((q75 - q25) / 1.349)
    z = ad.transform(pd.DataFrame({"x": [np.median(x)], "y": [0.0]}))
    assert z[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_standard_scaling_statistics(rng):
    x = rng.normal(5.0, 2.0, size=500)
    ad = TabularAdapter(scaling="standard").fit(pd.DataFrame({"x": x, "y": x ** 2}))
    assert ad.center_[0] == pytest.approx(x.mean())
    assert ad.scale_[0] == pytest.approx(x.std())
    out = ad.transform(pd.DataFrame({"x": x, "y": x ** 2}))
    assert out[:, 0].mean() == pytest.approx(0.0, abs=1e-5)
    assert out[:, 0].std() == pytest.approx(1.0, abs=1e-4)


def test_bad_scaling_or_missing_parameter_raises(frame):
    with pytest.raises(InvalidInputError, match="scaling"):
        TabularAdapter(scaling="minmax").fit(frame)
    with pytest.raises(InvalidInputError, match="missing"):
        TabularAdapter(missing="zero").fit(frame)


def test_heavy_tail_compression_is_monotone_and_bounded(rng):
    x = rng.normal(size=500)
    ad = TabularAdapter().fit(pd.DataFrame({"x": x, "y": rng.normal(size=500)}))
    probe = np.r_[-1e300, -1e30, np.linspace(-1e6, 1e6, 2001), 1e30, 1e300]
    z = ad.transform(pd.DataFrame({"x": probe, "y": 0.0}))[:, 0].astype(np.float64)
    assert np.all(np.isfinite(z))
    assert np.all(np.diff(z) >= 0)  # order kept
    middle = z[2:-2]
    assert np.all(np.diff(middle) > 0)  # strictly, away from the float32 ceiling
    assert middle.max() < 30  # log-compressed: 1e6 is not 1e6 spreads away
    # inside 3 spreads the transform is the plain robust z-score
    inside = np.linspace(-2, 2, 9) * ad.scale_[0] + ad.center_[0]
    zi = ad.transform(pd.DataFrame({"x": inside, "y": 0.0}))[:, 0]
    np.testing.assert_allclose(zi, np.linspace(-2, 2, 9), atol=1e-5)


def test_scaling_is_fitted_on_training_normals_only(table, make_detector):
    X = table.copy()
    outliers = X.index[:40]
    X.loc[outliers, "a"] = 1000.0  # labelled anomalies, far away
    y = np.zeros(len(X), int)
    y[:40] = 1
    det = make_detector("ae").fit(X, y)
    normals = X.iloc[40:]
    numeric = [c.name for c in det.adapter_.columns_ if c.kind == "numeric"]
    j = numeric.index("a")
    assert det.adapter_.center_[j] == pytest.approx(np.median(normals["a"]))
    assert det.adapter_.center_[j] != pytest.approx(np.median(X["a"]))


# ------------------------------------------------------------------ missing values
def test_nan_at_fit_is_imputed_with_indicator(frame):
    df = frame.copy()
    df.loc[[3, 7], "x"] = np.nan
    ad = TabularAdapter().fit(df)
    assert "x=<missing>" in ad.feature_names_out_
    out = ad.transform(df)
    ind = out[:, ad.feature_names_out_.index("x=<missing>")]
    np.testing.assert_array_equal(np.flatnonzero(ind), [3, 7])
    xi = ad.feature_names_out_.index("x")
    assert np.all(np.isfinite(out))
    # imputed with the training median (z = (median - center) / scale)
    median = np.nanmedian(df["x"])
    expected = (median - ad.center_[1]) / ad.scale_[1]
    assert out[3, xi] == pytest.approx(expected, abs=1e-5)


def test_nan_at_fit_with_missing_raise_names_column_and_row(frame):
    df = frame.copy()
    df.loc[7, "x"] = np.nan
    with pytest.raises(InvalidInputError, match=r"column 'x'.*row 7"):
        TabularAdapter(missing="raise").fit(df)


def test_nan_in_categorical_with_missing_raise_names_column_and_row(frame):
    df = frame.astype({"kind": object})
    df.loc[5, "kind"] = None
    with pytest.raises(InvalidInputError, match=r"column 'kind'.*row 5"):
        TabularAdapter(missing="raise").fit(df)
    ad = TabularAdapter().fit(df)  # impute: a missing category is its own category
    assert "kind=<missing>" in ad.feature_names_out_


def test_nan_at_score_time_in_column_without_training_nan_warns(frame):
    ad = TabularAdapter().fit(frame)
    new = frame.iloc[:5].copy()
    new.loc[2, "x"] = np.nan
    with pytest.warns(GenadWarning, match=r"'x' had no missing values in training"):
        out = ad.transform(new)
    assert np.all(np.isfinite(out))
    median = frame["x"].median()
    assert out[2, 1] == pytest.approx((median - ad.center_[1]) / ad.scale_[1], abs=1e-5)


def test_nan_at_score_time_in_column_with_training_nan_is_silent(frame):
    df = frame.copy()
    df.loc[1, "x"] = np.nan
    ad = TabularAdapter().fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ad.transform(df.iloc[:3])
    assert out[1, ad.feature_names_out_.index("x=<missing>")] == 1


def test_nan_at_score_time_with_missing_raise_names_column_and_row(frame):
    ad = TabularAdapter(missing="raise").fit(frame)
    new = frame.iloc[:5].copy()
    new.loc[4, "amount"] = np.nan
    with pytest.raises(InvalidInputError, match=r"column 'amount'.*row 4"):
        ad.transform(new)


def test_detector_scores_rows_with_nan(make_detector, table):
    det = make_detector("ae").fit(table)
    new = table.iloc[:10].copy()
    new.loc[3, "c"] = np.nan
    with pytest.warns(GenadWarning, match="'c'"):
        s = det.anomaly_score(new)
    assert np.all(np.isfinite(s))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_at_fit_names_column_and_row(frame, value):
    df = frame.copy()
    df.loc[9, "amount"] = value
    with pytest.raises(InvalidInputError, match=r"column 'amount'.*infinite.*row 9"):
        TabularAdapter().fit(df)


def test_inf_at_score_time_names_column_and_row(frame):
    ad = TabularAdapter().fit(frame)
    new = frame.iloc[:4].copy()
    new.loc[2, "x"] = np.inf
    with pytest.raises(InvalidInputError, match=r"column 'x'.*infinite.*row 2"):
        ad.transform(new)


def test_entirely_missing_column_is_dropped_with_warning(frame):
    with pytest.warns(GenadWarning, match="constant column.*'empty'"):
        ad = TabularAdapter().fit(frame.assign(empty=np.nan))
    assert "empty" in ad.dropped_columns_
    assert "empty" not in ad.column_names_


# ------------------------------------------------------------------ strings in numbers
def _csv_with_stray_string(tmp_path, frame, row, name="bad.csv"):
    df = frame.astype({"amount": object})
    df.loc[row, "amount"] = "n/a?"
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_string_in_numeric_csv_column_at_fit_names_column_and_row(tmp_path, frame):
    path = _csv_with_stray_string(tmp_path, frame, 11)
    with pytest.raises(InvalidInputError, match=r"column 'amount'.*row 11.*'n/a\?'"):
        TabularAdapter().fit(path)
    with pytest.raises(InvalidInputError, match=r"'amount'.*row 11"):
        genad.AutoEncoder(epochs=1, verbose=0).fit(path)


def test_string_in_numeric_csv_column_at_score_time_names_column_and_row(tmp_path, frame):
    frame.to_csv(tmp_path / "good.csv", index=False)
    ad = TabularAdapter().fit(tmp_path / "good.csv")
    path = _csv_with_stray_string(tmp_path, frame, 23)
    with pytest.raises(InvalidInputError, match=r"column 'amount'.*row 23.*'n/a\?'"):
        ad.transform(path)


def test_mostly_string_column_is_categorical_not_an_error(frame):
    df = frame.astype({"amount": object})
    df.loc[: len(df) // 2, "amount"] = "unknown"
    ad = TabularAdapter().fit(df)
    assert {r["column"]: r["kind"] for r in ad.schema()}["amount"] == "categorical"


def test_numeric_strings_are_numeric(frame):
    df = frame.assign(x=frame["x"].map(str))
    ad = TabularAdapter().fit(df)
    assert {r["column"]: r["kind"] for r in ad.schema()}["x"] == "numeric"
    np.testing.assert_allclose(ad.transform(df), TabularAdapter().fit(frame).transform(frame),
                               atol=1e-5)


def test_datetime_column_raises_naming_it(frame):
    df = frame.assign(when=pd.date_range("2024-01-01", periods=len(frame), freq="h"))
    with pytest.raises(InvalidInputError, match=r"'when'.*dates"):
        TabularAdapter().fit(df)
    with pytest.raises(InvalidInputError, match="'when'"):
        TabularAdapter().fit(frame.assign(when=pd.to_timedelta(np.arange(len(frame)), "s")))


# ------------------------------------------------------------------ constant / layout
def test_constant_column_is_dropped_with_warning_and_model_still_scores(table, make_detector):
    X = table.assign(const=3.5, const_cat="same")
    with pytest.warns(GenadWarning, match=r"constant column.*'const'"):
        det = make_detector("ae").fit(X)
    assert set(det.adapter_.dropped_columns_) == {"const", "const_cat"}
    assert "const" not in det.adapter_.column_names_
    s = det.anomaly_score(X)
    assert s.shape == (len(X),) and np.all(np.isfinite(s))
    # the dropped column is not needed at score time
    np.testing.assert_array_equal(det.anomaly_score(X.drop(columns=["const", "const_cat"])), s)
    assert "const" not in det.anomaly_map(X).columns


def test_all_constant_table_raises():
    with pytest.raises(InvalidInputError, match="every column is constant"):
        TabularAdapter().fit(pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": ["x", "x", "x"]}))


def test_duplicate_column_names_raise():
    df = pd.DataFrame(np.arange(6.0).reshape(3, 2), columns=["a", "a"])
    with pytest.raises(InvalidInputError, match="'a' appears more than once"):
        TabularAdapter().fit(df)


def test_missing_column_at_score_time_names_it(frame):
    ad = TabularAdapter().fit(frame)
    with pytest.raises(InvalidInputError, match="column 'x' is missing"):
        ad.transform(frame.drop(columns="x"))


def test_extra_columns_at_score_time_are_ignored_and_order_does_not_matter(frame):
    ad = TabularAdapter().fit(frame)
    base = ad.transform(frame)
    shuffled = frame[["kind", "x", "amount"]].assign(extra=1.0, other="z")
    np.testing.assert_array_equal(ad.transform(shuffled), base)


def test_array_fitted_adapter_checks_width(rng):
    ad = TabularAdapter().fit(rng.normal(size=(20, 3)))
    assert ad.input_kind_ == "array"
    with pytest.raises(InvalidInputError, match="X has 2 features, but genad is expecting 3"):
        ad.transform(rng.normal(size=(5, 2)))


def test_empty_table_at_fit_and_score(frame):
    with pytest.raises(InvalidInputError, match="empty"):
        TabularAdapter().fit(frame.iloc[:0])
    ad = TabularAdapter().fit(frame)
    with pytest.raises(InvalidInputError, match="empty"):
        ad.transform(frame.iloc[:0])
    with pytest.raises(InvalidInputError, match="no columns"):
        TabularAdapter().fit(pd.DataFrame(index=range(5)))


def test_empty_table_at_detector_fit_and_score(table, make_detector):
    with pytest.raises(InvalidInputError, match="empty"):
        make_detector("ae").fit(table.iloc[:0])
    det = make_detector("ae").fit(table)
    for method in (det.anomaly_score, det.predict, det.anomaly_map):
        with pytest.raises(InvalidInputError, match="empty"):
            method(table.iloc[:0])


def test_not_fitted_adapter_raises(frame):
    with pytest.raises(NotFittedError):
        TabularAdapter().transform(frame)


# ------------------------------------------------------------------ maps and state
def test_to_map_sums_one_hot_parts_back_to_columns(frame):
    ad = TabularAdapter().fit(frame)
    errors = np.arange(ad.n_features_out_, dtype=float)[None, :].repeat(2, axis=0)
    m = ad.to_map(errors, index=[10, 11])
    assert isinstance(m, pd.DataFrame)
    assert list(m.columns) == ["amount", "x", "kind"]
    assert list(m.index) == [10, 11]
    assert m.loc[10, "kind"] == sum(range(2, 6))
    np.testing.assert_allclose(m.sum(axis=1), errors.sum(axis=1))


def test_to_map_is_ndarray_for_array_input(rng):
    ad = TabularAdapter().fit(rng.normal(size=(20, 3)))
    m = ad.to_map(np.ones((4, 3)))
    assert isinstance(m, np.ndarray) and m.shape == (4, 3)


def test_get_state_from_state_round_trip(frame):
    df = frame.copy()
    df.loc[2, "x"] = np.nan
    df = df.assign(flag=df["x"] > 0, level=np.arange(len(df)) % 4)
    ad = TabularAdapter(scaling="robust").fit(df)
    doc, arrays = ad.get_state()
    doc = json.loads(json.dumps(doc))  # must survive JSON, as in the bundle
    clone = TabularAdapter.from_state(doc, {k: np.array(v) for k, v in arrays.items()})
    probe = pd.concat([df, df.iloc[:3].assign(kind="new", level=9)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenadWarning)
        np.testing.assert_array_equal(clone.transform(probe), ad.transform(probe))
    assert clone.feature_names_out_ == ad.feature_names_out_
    assert clone.schema() == ad.schema()


def test_transform_output_is_float32_and_finite(frame):
    out = TabularAdapter().fit_transform(frame)
    assert out.dtype == np.float32
    assert out.shape == (len(frame), 2 + 4)
    assert np.all(np.isfinite(out))


def test_complex_values_are_rejected(rng):
    X = rng.normal(size=(10, 2)) + 1j
    with pytest.raises(InvalidInputError, match="[Cc]omplex"):
        TabularAdapter().fit(X)


def test_sparse_input_error_says_sparse(rng):
    import scipy.sparse

    with pytest.raises(InvalidInputError, match="sparse"):
        read_table(scipy.sparse.csr_matrix(rng.normal(size=(5, 3))))


def test_numpy_string_array_is_read_like_an_object_array():
    arr = np.array([["tcp", "1.5"], ["udp", "2.5"], ["tcp", "0.5"]])
    df = read_table(arr)
    pd.testing.assert_frame_equal(df, read_table(arr.astype(object)))


def test_non_boolean_value_in_bool_column_names_column_and_row():
    df = pd.DataFrame({"flag": [True, False, True, False], "x": [1.0, 2.0, 3.0, 4.0]})
    ad = TabularAdapter().fit(df)
    with pytest.raises(InvalidInputError, match=r"column 'flag'.*row 2"):
        ad.transform(df.assign(flag=[True, False, "maybe", False]))


# ------------------------------------------------------------------ input gaps (issue #11)
def test_duplicate_used_column_at_score_time_names_it(frame):
    ad = TabularAdapter().fit(frame)
    for name in ("x", "kind"):
        dup = pd.concat([frame, frame[[name]]], axis=1)
        with pytest.raises(InvalidInputError, match=f"column '{name}' appears more than once"):
            ad.transform(dup)


def test_duplicate_extra_column_at_score_time_is_ignored(frame):
    ad = TabularAdapter().fit(frame)
    extra = pd.DataFrame({"note": ["a"] * len(frame), "note2": ["b"] * len(frame)})
    extra.columns = ["note", "note"]
    np.testing.assert_array_equal(ad.transform(pd.concat([frame, extra], axis=1)),
                                  ad.transform(frame))


def _with_cell(frame, column, row, value):
    df = frame.astype({column: object})
    df.at[row, column] = value
    return df


@pytest.mark.parametrize("cell", [[1, 2], {"a": 1}, {1, 2}], ids=["list", "dict", "set"])
def test_unhashable_cell_in_categorical_column_at_fit_names_column_and_row(frame, cell):
    kind = type(cell).__name__
    with pytest.raises(InvalidInputError, match=rf"column 'kind' holds a {kind} in row 7"):
        TabularAdapter().fit(_with_cell(frame, "kind", 7, cell))


@pytest.mark.parametrize("cell", [[1, 2], {"a": 1}], ids=["list", "dict"])
def test_unhashable_cell_in_categorical_column_at_score_time_names_column_and_row(frame, cell):
    ad = TabularAdapter().fit(frame)
    kind = type(cell).__name__
    with pytest.raises(InvalidInputError, match=rf"column 'kind' holds a {kind} in row 4"):
        ad.transform(_with_cell(frame, "kind", 4, cell))


@pytest.mark.parametrize("sep", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_csv_file_with_another_delimiter_is_read_with_it(tmp_path, frame, sep):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False, sep=sep)
    got = read_table(path)
    assert list(got.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    ad = TabularAdapter().fit(path)
    assert ad.column_names_ == ["amount", "x", "kind"]


def test_one_column_csv_is_still_one_column(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("note\na;b\nc;d\ne|f\ng;h\n")
    got = read_table(path)
    assert list(got.columns) == ["note"]
    assert got["note"].tolist() == ["a;b", "c;d", "e|f", "g;h"]
    path.write_text("value\n1.5\n2\n3\n")
    assert read_table(path)["value"].tolist() == [1.5, 2.0, 3.0]


def test_comma_csv_with_semicolons_in_text_stays_comma_separated(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text\n1,a;b;c\n2,d;e;f\n3,g;h;i\n")
    got = read_table(path)
    assert list(got.columns) == ["id", "text"]
    assert got["text"].tolist() == ["a;b;c", "d;e;f", "g;h;i"]


def test_sniff_delimiter_defaults_when_unsure(tmp_path):
    from genad.data.tabular import sniff_delimiter

    path = tmp_path / "t.csv"
    path.write_text("")
    assert sniff_delimiter(path) == ","
    path.write_text("a\n1\n2\n")
    assert sniff_delimiter(path, "\t") == "\t"
    path.write_text("a;b\n1;2\n")
    assert sniff_delimiter(path) == ";"


@pytest.mark.parametrize("values", [
    pd.date_range("2024-01-01", periods=5, freq="h"),
    pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC"),
    pd.to_timedelta(np.arange(5), "s"),
], ids=["datetime", "datetime-tz", "timedelta"])
def test_dates_at_score_time_in_a_numeric_column_raise_naming_it(frame, values):
    ad = TabularAdapter().fit(frame)
    rows = frame.iloc[:5].assign(x=values)
    with pytest.raises(InvalidInputError, match=r"column 'x' was numeric in training.*dates"):
        ad.transform(rows)


def _bool_frame(n=40):
    return pd.DataFrame({"x": np.arange(n, dtype=float),
                         "flag": np.arange(n) % 4 != 0})  # majority True


def test_nan_in_boolean_column_at_score_time_warns_and_imputes_the_majority():
    df = _bool_frame()
    ad = TabularAdapter().fit(df)
    new = df.iloc[:4].astype({"flag": object})
    new.loc[0, "flag"] = np.nan  # the training majority is True, row 0 was False
    with pytest.warns(GenadWarning, match=r"'flag' had no missing values in training.*True"):
        out = ad.transform(new)
    j = ad.feature_names_out_.index("flag")
    np.testing.assert_array_equal(out[:, j], [1, 1, 1, 1])


def test_nan_in_boolean_column_at_score_time_with_missing_raise_names_column_and_row():
    df = _bool_frame()
    ad = TabularAdapter(missing="raise").fit(df)
    new = df.iloc[:4].astype({"flag": object})
    new.loc[2, "flag"] = None
    with pytest.raises(InvalidInputError, match=r"column 'flag'.*row 2"):
        ad.transform(new)


def test_nan_in_boolean_column_at_fit_gets_an_indicator():
    df = _bool_frame().astype({"flag": "boolean"})
    df.loc[[1, 5], "flag"] = pd.NA
    ad = TabularAdapter().fit(df)
    assert "flag=<missing>" in ad.feature_names_out_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ad.transform(df)
    ind = out[:, ad.feature_names_out_.index("flag=<missing>")]
    np.testing.assert_array_equal(np.flatnonzero(ind), [1, 5])
    np.testing.assert_array_equal(out[[1, 5], ad.feature_names_out_.index("flag")], [1, 1])


def _missing_literal_frame():
    return pd.DataFrame({
        "x": np.arange(12, dtype=float),
        "kind": ["<missing>"] * 4 + [None] * 4 + ["a"] * 4,
    })


def test_literal_missing_string_is_a_category_distinct_from_a_real_nan():
    df = _missing_literal_frame()
    ad = TabularAdapter().fit(df)
    names = ad.feature_names_out_
    assert "kind=<missing>" in names and "kind='<missing>'" in names
    assert len(set(names)) == len(names)
    out = ad.transform(df)
    literal, real = out[0], out[4]
    assert not np.array_equal(literal, real)
    assert literal[names.index("kind='<missing>'")] == 1
    assert real[names.index("kind=<missing>")] == 1


def test_missing_category_survives_the_state_round_trip():
    df = _missing_literal_frame()
    ad = TabularAdapter().fit(df)
    doc, arrays = ad.get_state()
    doc = json.loads(json.dumps(doc))
    clone = TabularAdapter.from_state(doc, arrays)
    assert clone.feature_names_out_ == ad.feature_names_out_
    np.testing.assert_array_equal(clone.transform(df), ad.transform(df))


def test_format_1_state_reads_the_missing_string_as_a_real_nan():
    df = pd.DataFrame({"x": np.arange(12, dtype=float), "kind": [None] * 4 + ["a"] * 8})
    ad = TabularAdapter().fit(df)
    doc, arrays = ad.get_state()
    doc = json.loads(json.dumps(doc))
    # what the format-1 code wrote: no version, the missing category as "<missing>"
    del doc["version"]
    doc["columns"][1]["categories"] = ["<missing>" if c is None else c
                                       for c in doc["columns"][1]["categories"]]
    old = TabularAdapter.from_state(doc, arrays)
    assert old.feature_names_out_ == ad.feature_names_out_
    np.testing.assert_array_equal(old.transform(df), ad.transform(df))


@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_values_overflowing_float64_statistics_are_refused_with_advice(rng, scaling):
    X = rng.normal(size=(50, 3))
    X[:, 1] = np.sign(X[:, 1]) * 1e308
    with pytest.raises(InvalidInputError,
                       match=r"column 'x1': values up to 1e308 overflow float64 statistics; "
                             r"rescale the column, e\.g\. divide by 1e300 or take a log"):
        TabularAdapter(scaling=scaling).fit(X)


def test_values_whose_scaled_form_overflows_are_refused(rng):
    # the median and spread are finite, but (x - median) is not for the other sign
    X = rng.normal(size=(41, 2))
    X[:, 0] = np.where(np.arange(41) < 5, -1e308, 1.2e308 + rng.normal(size=41) * 1e306)
    center, scale = TabularAdapter()._center_scale(X[:, 0])
    assert np.isfinite(center) and np.isfinite(scale)
    with pytest.raises(InvalidInputError, match=r"'x0'.*overflow float64"):
        TabularAdapter().fit(X)


def test_large_but_safe_values_are_accepted(rng):
    X = rng.normal(size=(50, 2)) * 1e300
    out = TabularAdapter().fit_transform(X)
    assert np.all(np.isfinite(out))
# ------------------------------------------------------- numeric block encoding
def _reference_numeric(ad: TabularAdapter, df: pd.DataFrame) -> np.ndarray:
    """The numeric encoding computed column by column, as the module docstring states."""
    cols = []
    for j, col in enumerate(c for c in ad.columns_ if c.kind == "numeric"):
        v = pd.to_numeric(df[col.name]).to_numpy(dtype=np.float64, na_value=np.nan)
        v = np.where(np.isnan(v), col.median, v)
        z = (v - ad.center_[j]) / ad.scale_[j]
        if ad.scaling == "robust":
            tail = np.abs(z) > 3.0
            z[tail] = np.sign(z[tail]) * (3.0 + np.log1p(np.abs(z[tail]) - 3.0))
        cols.append(np.clip(z, -1e4, 1e4).astype(np.float32))
    return np.column_stack(cols)


def _mixed_numeric_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"f{i}": rng.standard_t(2, size=n) * 10.0 ** (i - 3) for i in range(6)})
    df["f32"] = df["f1"].astype(np.float32)
    df["int"] = rng.integers(0, 1000, size=n)
    df["nullable"] = pd.array(rng.integers(0, 1000, size=n), dtype="Int64")
    df["text_numbers"] = rng.normal(size=n).round(3).astype(str).astype(object)
    df["kind"] = rng.choice(["a", "b", "c"], size=n)
    df["flag"] = rng.random(n) > 0.5
    df.loc[::7, "f2"] = np.nan
    df.loc[::5, "nullable"] = pd.NA
    return df


@pytest.mark.parametrize("scaling", ["robust", "standard"])
@pytest.mark.parametrize("columns", ["numeric_dtypes", "with_text_numbers", "reordered"])
def test_numeric_encoding_equals_the_column_by_column_reference(scaling, columns):
    # the numeric columns are encoded as one block; the result must be bit-identical to
    # the per-column definition, whatever the dtypes and the column order
    ad = TabularAdapter(scaling=scaling).fit(_mixed_numeric_table(3000, 0))
    df = _mixed_numeric_table(5000, 1)
    if columns == "numeric_dtypes":
        df = df.drop(columns="text_numbers")
        ad = TabularAdapter(scaling=scaling).fit(_mixed_numeric_table(3000, 0).drop(
            columns="text_numbers"))
    elif columns == "reordered":
        df = df[df.columns[::-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenadWarning)
        z = ad.transform(df)
    names = ad.feature_names_out_
    slots = [names.index(c.name) for c in ad.columns_ if c.kind == "numeric"]
    expected = _reference_numeric(ad, df)
    assert np.abs(expected).max() > 3.0  # the tails are exercised
    np.testing.assert_array_equal(z[:, slots].view(np.int32), expected.view(np.int32))


def test_numeric_encoding_does_not_modify_the_input(frame):
    ad = TabularAdapter().fit(frame)
    before = frame.copy()
    with_nan = frame.copy()
    with_nan.iloc[0, 0] = np.nan
    snapshot = with_nan.copy()
    ad.transform(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenadWarning)
        ad.transform(with_nan)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(with_nan, snapshot)
