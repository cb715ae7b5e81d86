"""The estimator contract, checked for every preset of :mod:`genad.registry`."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.exceptions
import torch

import genad
from genad import calibration as cal
from genad import registry
from genad.data.tabular import TabularAdapter
from genad.errors import InvalidInputError, NotFittedError


def _state_equal(a, b):
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_models_follow_the_registry():
    assert list(genad.MODELS) == list(registry.names())
    for name, cls in genad.MODELS.items():
        assert issubclass(cls, genad.Detector)
        assert cls.model_name == name
        assert registry.preset_for(cls) is registry.preset(name)


def test_public_preset_names_are_kept():
    # saved scripts and CLI calls use these names: removing or renaming one must be a
    # deliberate change of this test, not a side effect of editing the registry
    assert {"ae", "dae", "vae", "pca-cae"} <= set(genad.MODELS)


# ------------------------------------------------------------------ fit / score
def test_fit_returns_self(model_name, make_detector, table):
    det = make_detector(model_name, epochs=2)
    assert det.fit(table) is det
    for attr in ("model_", "adapter_", "threshold_", "history_", "calibration_scores_",
                 "n_features_in_", "feature_names_in_"):
        assert hasattr(det, attr), attr
    assert det.n_features_in_ == table.shape[1]
    assert list(det.feature_names_in_) == list(table.columns)


def test_anomaly_score_shape_dtype_finite(fitted, table):
    s = fitted.anomaly_score(table)
    assert isinstance(s, np.ndarray)
    assert s.shape == (len(table),)
    assert s.dtype == np.float64
    assert np.all(np.isfinite(s))


def test_anomaly_map_is_a_named_dataframe_whose_rows_sum_to_the_score(fitted, table):
    rows = table.iloc[50:80]
    m = fitted.anomaly_map(rows)
    assert isinstance(m, pd.DataFrame)
    assert list(m.columns) == fitted.adapter_.column_names_ == list(table.columns)
    assert list(m.index) == list(rows.index)
    if fitted.model_.additive_map:  # a latent distance (GANomaly) is not its map's sum
        np.testing.assert_allclose(m.sum(axis=1).to_numpy(), fitted.anomaly_score(rows),
                                   rtol=1e-4)


def test_anomaly_map_is_an_ndarray_when_fitted_on_an_array(fitted_on_array, array_data):
    m = fitted_on_array.anomaly_map(array_data[:25])
    assert isinstance(m, np.ndarray)
    assert m.shape == (25, array_data.shape[1])
    if fitted_on_array.model_.additive_map:
        np.testing.assert_allclose(m.sum(axis=1),
                                   fitted_on_array.anomaly_score(array_data[:25]), rtol=1e-4)
    assert not hasattr(fitted_on_array, "feature_names_in_")


def test_categorical_one_hot_parts_are_summed_back_to_the_column(fitted, table):
    rows = table.iloc[:20]
    z = torch.from_numpy(fitted.adapter_.transform(rows))
    with torch.no_grad():
        elem = fitted.model_.element_scores(z).double().numpy()
    names = fitted.adapter_.feature_names_out_
    kind_slots = [i for i, n in enumerate(names) if n.startswith("kind=")]
    assert [names[i] for i in kind_slots] == ["kind=high", "kind=low", "kind=mid",
                                              "kind=<unseen>"]
    m = fitted.anomaly_map(rows)
    np.testing.assert_allclose(m["kind"].to_numpy(), elem[:, kind_slots].sum(axis=1),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(m["a"].to_numpy(), elem[:, names.index("a")], rtol=1e-4,
                               atol=1e-7)


def test_predict_is_binary_and_equals_score_above_threshold(fitted, table, outlier_table,
                                                           expects_detection):
    X = pd.concat([table, outlier_table], ignore_index=True)
    pred = fitted.predict(X)
    assert pred.dtype.kind == "i"
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (fitted.anomaly_score(X) > fitted.threshold_))
    assert pred[-len(outlier_table):].all()


def test_score_samples_is_negated_anomaly_score(fitted, table):
    np.testing.assert_array_equal(fitted.score_samples(table), -fitted.anomaly_score(table))


def test_decision_function_is_negative_exactly_for_predicted_anomalies(fitted, table,
                                                                       outlier_table):
    X = pd.concat([table, outlier_table], ignore_index=True)
    d = fitted.decision_function(X)
    np.testing.assert_array_equal(d < 0, fitted.predict(X) == 1)
    np.testing.assert_allclose(d, fitted.threshold_ - fitted.anomaly_score(X))


def test_p_values_are_conformal_in_unit_interval_and_decrease_with_score(
        fitted, table, outlier_table, expects_detection):
    X = pd.concat([table, outlier_table], ignore_index=True)
    p, s = fitted.p_value(X), fitted.anomaly_score(X)
    assert np.all((p > 0) & (p <= 1))
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(p[order]) <= 0)
    np.testing.assert_array_equal(p, cal.conformal_p_values(fitted.calibration_scores_, s))
    n = fitted.calibration_scores_.size
    assert np.all(p[-len(outlier_table):] == 1 / (n + 1))  # above every calibration score


def test_explain_table(fitted, table):
    rows = table.iloc[:10]
    ex = fitted.explain(rows, top_k=2)
    assert list(ex.columns) == ["anomaly_score", "p_value", "is_anomaly", "top_features"]
    np.testing.assert_allclose(ex["anomaly_score"], fitted.anomaly_score(rows), rtol=1e-4)
    np.testing.assert_array_equal(ex["is_anomaly"], fitted.predict(rows))
    top = fitted.anomaly_map(rows).iloc[0].sort_values(ascending=False).index[:2]
    assert ex["top_features"].iloc[0].startswith(f"{top[0]} (")
    assert f", {top[1]} (" in ex["top_features"].iloc[0]


@pytest.mark.parametrize("top_k", [2.5, -1, 0, True, "2", None])
def test_explain_refuses_a_top_k_that_is_not_a_positive_integer(fitted_factory, table, top_k):
    with pytest.raises(InvalidInputError, match=r"top_k must be an integer >= 1"):
        fitted_factory("ae").explain(table.iloc[:3], top_k=top_k)


def test_explain_top_k_above_the_column_count_lists_every_column(fitted_factory, table):
    ex = fitted_factory("ae").explain(table.iloc[:3], top_k=50)
    assert ex["top_features"].str.count(r"\(").tolist() == [table.shape[1]] * 3


# ------------------------------------------------------------------ labels
def test_rows_labelled_anomalous_are_left_out_of_training(model_name, make_detector, table,
                                                          rng, expects_detection):
    cluster = table.iloc[:30].copy()
    cluster[["a", "b", "c"]] = rng.normal(6.0, 0.3, size=(30, 3))
    X = pd.concat([table, cluster], ignore_index=True)
    y = np.r_[np.zeros(len(table), int), np.ones(30, int)]
    with_labels = make_detector(model_name, epochs=3).fit(X, y)
    without = make_detector(model_name, epochs=3).fit(table)
    assert with_labels.threshold_ == without.threshold_
    assert _state_equal(with_labels, without)
    np.testing.assert_array_equal(with_labels.anomaly_score(X), without.anomaly_score(X))
    np.testing.assert_array_equal(with_labels.adapter_.center_, without.adapter_.center_)
    # and the labelled cluster is seen as anomalous
    assert with_labels.predict(cluster).mean() > 0.9


def test_labels_as_series_and_bools_work(make_detector, table):
    y = pd.Series(np.zeros(len(table), bool), index=table.index + 1000)
    det = make_detector("ae", epochs=2).fit(table, y)
    assert det.threshold_ == make_detector("ae", epochs=2).fit(table).threshold_


@pytest.mark.parametrize(
    "y,match",
    [(np.arange(400) % 3, r"row 2 holds"), (np.array(["normal"] * 400), "0 \\(normal\\)"),
     (np.r_[np.nan, np.zeros(399)], "row 0"), (np.zeros(5), r"\b5\b.*X has 400 rows")],
)
def test_labels_other_than_zero_one_raise(make_detector, table, y, match):
    with pytest.raises(InvalidInputError, match=match):
        make_detector("ae", epochs=1).fit(table, y)


def test_all_anomaly_labels_raise(make_detector, table):
    with pytest.raises(InvalidInputError, match="every training row is labelled 1"):
        make_detector("ae", epochs=1).fit(table, np.ones(len(table), int))


# ------------------------------------------------------------------ determinism
def test_scores_are_deterministic(model_name, fitted, make_detector, table):
    a, b = fitted.anomaly_score(table), fitted.anomaly_score(table)
    np.testing.assert_array_equal(a, b)
    refit = make_detector(model_name).fit(table)
    np.testing.assert_array_equal(refit.anomaly_score(table), a)
    assert refit.threshold_ == fitted.threshold_
    assert _state_equal(refit, fitted)


def test_streaming_scores_match_batch_scores_closely(fitted, table):
    batch = fitted.anomaly_score(table)
    chunks = np.concatenate([fitted.anomaly_score(table.iloc[i:i + 7])
                             for i in range(0, len(table), 7)])
    np.testing.assert_allclose(chunks, batch, rtol=1e-5)


def test_streaming_scores_are_identical_to_batch_scores(fitted, table):
    batch = fitted.anomaly_score(table)[:80]
    one_by_one = np.concatenate([fitted.anomaly_score(table.iloc[i:i + 1]) for i in range(80)])
    np.testing.assert_array_equal(one_by_one, batch)


def test_row_order_does_not_change_scores_beyond_rounding(fitted, table):
    perm = np.random.default_rng(0).permutation(len(table))
    np.testing.assert_allclose(fitted.anomaly_score(table.iloc[perm]),
                               fitted.anomaly_score(table)[perm], rtol=1e-5)


# ------------------------------------------------------------------ detection
def test_obvious_outliers_score_above_threshold_and_rank_above_normals(
        fitted, table, outlier_table, expects_detection):
    normal = fitted.anomaly_score(table)
    outl = fitted.anomaly_score(outlier_table)
    assert np.all(outl > fitted.threshold_)
    assert outl.min() > normal.max()
    assert fitted.predict(outlier_table).tolist() == [1] * len(outlier_table)
    # most training normals are below the threshold (target_fpr = 5% on held-out rows)
    assert fitted.predict(table).mean() < 0.15


def test_detects_outliers_when_fitted_on_an_array(fitted_on_array, array_data):
    far = array_data[:3] + np.array([[6.0, -6.0, 6.0, 6.0]])
    assert np.all(fitted_on_array.anomaly_score(far) > fitted_on_array.threshold_)


# ------------------------------------------------------------------ inputs
def test_fit_on_parquet_path_equals_fit_on_dataframe(make_detector, table, tmp_path):
    path = tmp_path / "train.parquet"
    table.to_parquet(path)
    from_path = make_detector("ae", epochs=2).fit(path)
    from_frame = make_detector("ae", epochs=2).fit(table)
    np.testing.assert_array_equal(from_path.anomaly_score(path), from_frame.anomaly_score(table))
    assert isinstance(from_path.anomaly_map(path), pd.DataFrame)


def test_list_input_and_array_input_agree(make_detector, array_data):
    det = make_detector("ae", epochs=2).fit(array_data.tolist())
    again = make_detector("ae", epochs=2).fit(array_data)
    np.testing.assert_array_equal(det.anomaly_score(array_data),
                                  again.anomaly_score(array_data.tolist()))


def test_array_fitted_detector_rejects_wrong_width(fitted_on_array, array_data):
    with pytest.raises(InvalidInputError, match="X has 3 features, but genad is expecting 4"):
        fitted_on_array.anomaly_score(array_data[:, :3])


def test_dataframe_fitted_detector_names_a_missing_column(fitted, table):
    with pytest.raises(InvalidInputError, match="column 'b' is missing"):
        fitted.predict(table.drop(columns="b"))


def test_one_row_training_table_raises(make_detector, table):
    with pytest.raises(InvalidInputError):
        make_detector("ae", epochs=1).fit(table.iloc[:1])


def test_one_row_training_table_error_says_rows(make_detector, table):
    with pytest.raises(InvalidInputError, match="row"):
        make_detector("ae", epochs=1).fit(table.iloc[:1])


def test_refit_on_array_forgets_feature_names(make_detector, table):
    det = make_detector("ae", epochs=1).fit(table)
    det.fit(table[["a", "b", "c"]].to_numpy())
    assert not hasattr(det, "feature_names_in_")


@pytest.mark.parametrize(
    "name,params",
    [
        ("vae", {"beta": 0.0}),
        ("vae", {"score_method": "likelihood"}),
        ("ae", {"missing": "zero"}),
        ("ae", {"scaling": "minmax"}),
        ("vae", {"n_samples": 0, "score_method": "reconstruction_probability"}),
        ("dae", {"mask_prob": 1.5}),
        ("dae", {"noise_std": -1.0}),
        ("ae", {"dropout": 1.0}),
        ("dae", {"dropout": -0.1}),
        ("pca-cae", {"pca_weight": 2.0}),
        ("pca-cae", {"n_components": 0}),
        ("pca-cae", {"conv_width": 0}),
        ("ae", {"random_state": -1}),
        ("ae", {"random_state": "abc"}),
        ("ae", {"verbose": "loud"}),
    ],
)
def test_bad_model_parameters_raise_naming_them(name, params, make_detector, table):
    det = make_detector(name, epochs=1, **params)
    with pytest.raises(InvalidInputError, match=next(iter(params))):
        det.fit(table)


@pytest.mark.parametrize("model_name", ["ae", "dae"])
def test_dropout_is_used_in_training_and_off_when_scoring(model_name, make_detector, table,
                                                          tmp_path):
    det = make_detector(model_name, dropout=0.3).fit(table)
    drops = [m for m in det.model_.modules() if type(m).__name__ == "Dropout"]
    assert drops and all(m.p == 0.3 for m in drops)
    first = det.anomaly_score(table)
    np.testing.assert_array_equal(first, det.anomaly_score(table))  # eval mode: no dropout
    loaded = genad.load(det.save(tmp_path / "dropout.genad"))
    assert loaded.dropout == 0.3
    np.testing.assert_array_equal(loaded.anomaly_score(table), first)


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip_gives_identical_scores(fitted, table, outlier_table, tmp_path):
    X = pd.concat([table, outlier_table], ignore_index=True)
    path = fitted.save(tmp_path / "model")
    assert path.name == "model.genad" and path.exists()
    loaded = genad.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.anomaly_score(X), fitted.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.p_value(X), fitted.p_value(X))
    pd.testing.assert_frame_equal(loaded.anomaly_map(X), fitted.anomaly_map(X))
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.history_ == fitted.history_
    assert list(loaded.feature_names_in_) == list(fitted.feature_names_in_)


def test_save_load_round_trip_for_array_input(fitted_on_array, array_data, tmp_path):
    loaded = genad.load(fitted_on_array.save(tmp_path / "m.genad"))
    np.testing.assert_array_equal(loaded.anomaly_score(array_data),
                                  fitted_on_array.anomaly_score(array_data))
    assert isinstance(loaded.anomaly_map(array_data), np.ndarray)


# ------------------------------------------------------------------ not fitted
@pytest.mark.parametrize("method", ["anomaly_score", "anomaly_map", "predict", "score_samples",
                                    "decision_function", "p_value", "explain", "calibrate",
                                    "save"])
def test_methods_before_fit_raise_not_fitted(model_name, method, table, tmp_path):
    det = genad.MODELS[model_name]()
    args = (tmp_path / "m.genad",) if method == "save" else (table,)
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(det, method)(*args)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        getattr(det, method)(*args)
    assert not (tmp_path / "m.genad").exists()


# ------------------------------------------------------------------ feature names
_NAMES_WARNING = "X has feature names, but AutoEncoder was fitted without feature names"
_NO_NAMES_WARNING = ("X does not have valid feature names, but AutoEncoder was fitted with "
                     "feature names")


@pytest.mark.parametrize("method", ["anomaly_score", "anomaly_map", "explain", "predict"])
def test_array_fitted_detector_warns_on_named_columns_and_uses_them_by_position(
        fitted_factory, array_data, method):
    det = fitted_factory("ae", "array")
    named = pd.DataFrame(array_data[:20, ::-1].copy(), columns=["d", "c", "b", "a"])
    with pytest.warns(UserWarning, match=_NAMES_WARNING):
        getattr(det, method)(named)
    with pytest.warns(UserWarning, match=_NAMES_WARNING):
        by_name = det.anomaly_score(named)
    np.testing.assert_array_equal(by_name, det.anomaly_score(array_data[:20, ::-1].copy()))


def test_array_fitted_detector_warns_on_a_file_with_a_header(fitted_factory, array_data,
                                                              tmp_path):
    det = fitted_factory("ae", "array")
    path = tmp_path / "x.csv"
    pd.DataFrame(array_data[:10], columns=list("pqrs")).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=_NAMES_WARNING):
        scores = det.anomaly_score(path)
    np.testing.assert_allclose(scores, det.anomaly_score(array_data[:10]), rtol=1e-6)


@pytest.mark.parametrize("method", ["anomaly_score", "anomaly_map", "explain"])
def test_dataframe_fitted_detector_warns_on_an_array_and_uses_it_by_position(
        fitted_factory, table, method):
    det = fitted_factory("ae")
    values = table.iloc[:15].to_numpy()
    with pytest.warns(UserWarning, match=_NO_NAMES_WARNING):
        getattr(det, method)(values)
    with pytest.warns(UserWarning, match=_NO_NAMES_WARNING):
        by_position = det.anomaly_score(values)
    np.testing.assert_allclose(by_position, det.anomaly_score(table.iloc[:15]), rtol=1e-6)


def test_matching_input_kinds_give_no_feature_name_warning(fitted_factory, array_data,
                                                           table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted_factory("ae", "array").anomaly_score(array_data[:5])
        fitted_factory("ae", "array").anomaly_score(pd.DataFrame(array_data[:5]))  # int names
        fitted_factory("ae").anomaly_score(table.iloc[:5])


# ------------------------------------------------------------------ overflowing values
def test_values_near_the_float64_limit_are_refused_with_advice_for_every_model(
        model_name, make_detector, normal_array):
    X = pd.DataFrame(normal_array, columns=["a", "b", "c", "d", "e"])
    X["b"] = np.sign(X["b"]) * 1e308
    with pytest.raises(InvalidInputError,
                       match=r"column 'b': values up to 1e308 overflow float64 statistics; "
                             r"rescale the column, e\.g\. divide by 1e300 or take a log"):
        make_detector(model_name).fit(X)
# ------------------------------------------------------------------ chunked scoring
def _bigger_table(n: int = 700) -> pd.DataFrame:
    from tests.conftest import normal_table

    df = normal_table(n, seed=5)
    return df.set_axis(pd.Index(np.arange(n) * 3 + 1000), axis=0)  # an index to keep


def test_chunked_scoring_is_identical_to_one_call(fitted, monkeypatch):
    df = _bigger_table()
    one_score, one_map = fitted.anomaly_score(df), fitted.anomaly_map(df)
    one_explain = fitted.explain(df, top_k=2)
    seen: list[int] = []
    encode = type(fitted.adapter_)._encode

    def spy(self, X):
        seen.append(len(X))
        return encode(self, X)

    monkeypatch.setattr(TabularAdapter, "score_chunk_size", 64)
    monkeypatch.setattr(type(fitted.adapter_), "_encode", spy)
    np.testing.assert_array_equal(fitted.anomaly_score(df), one_score)
    assert max(seen) == 64 and sum(seen) == len(df)  # it was really scored in slices
    pd.testing.assert_frame_equal(fitted.anomaly_map(df), one_map)
    pd.testing.assert_frame_equal(fitted.explain(df, top_k=2), one_explain)


def test_chunked_scoring_of_arrays_and_files(fitted_on_array, fitted, monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    path = tmp_path / "big.parquet"
    _bigger_table(300).reset_index(drop=True).to_parquet(path)
    expected = (fitted_on_array.anomaly_map(X), fitted_on_array.explain(X),
                fitted.explain(path))
    monkeypatch.setattr(TabularAdapter, "score_chunk_size", 64)
    np.testing.assert_array_equal(fitted_on_array.anomaly_map(X), expected[0])
    got = fitted_on_array.explain(X)
    pd.testing.assert_frame_equal(got, expected[1])
    assert list(got.index) == list(range(300))
    pd.testing.assert_frame_equal(fitted.explain(path), expected[2])


def test_chunked_scoring_warns_once_per_column(fitted, monkeypatch):
    df = _bigger_table(300)
    df.loc[df.index[::3], "c"] = np.nan  # "c" had no NaN in training: imputed, with a warning
    monkeypatch.setattr(TabularAdapter, "score_chunk_size", 64)
    with pytest.warns(genad.errors.GenadWarning, match="'c'") as record:
        scores = fitted.anomaly_score(df)
    assert len([w for w in record if "'c'" in str(w.message)]) == 1
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("n", [1, 5, 16, 17, 255, 256, 257, 4095])
def test_a_rows_score_does_not_depend_on_the_padded_batch_size(fitted, n):
    # small calls pad to 16 or 256 rows instead of 4,096: the rows' scores are the same
    # bits as in a full 4,096-row batch (same positions), for every model
    from genad.runtime import predict_in_batches

    rng = np.random.default_rng(7)
    z = torch.from_numpy(fitted.adapter_.transform(_bigger_table(4096)))
    z = z + torch.from_numpy(rng.normal(scale=0.1, size=z.shape).astype(np.float32))
    cpu = torch.device("cpu")
    for fn in (fitted.model_.score, fitted.model_.element_scores):
        full = predict_in_batches(fn, z, cpu)
        assert torch.equal(predict_in_batches(fn, z[:n], cpu), full[:n])


def test_a_single_row_is_padded_to_a_small_batch(fitted, table, monkeypatch):
    shapes: list[int] = []
    score = fitted.model_.score

    def spy(x):
        shapes.append(x.shape[0])
        return score(x)

    monkeypatch.setattr(fitted.model_, "score", spy)
    fitted.anomaly_score(table.iloc[:1])
    assert shapes == [16]


@pytest.mark.parametrize("width", [7, 30])
def test_a_rows_score_does_not_depend_on_its_position_in_the_batch(model_name, make_detector,
                                                                    width):
    # with narrow layer outputs (an AE's 10-wide bottleneck on 30 features, PCA + conv AE
    # on 7) the CPU kernels computed a row differently at different batch positions: a
    # row scored alone, or in a table starting a few rows later, differed in the last bit
    rng = np.random.default_rng(width)
    X = rng.normal(size=(1000, width)) * rng.uniform(0.1, 10.0, size=width)
    mlp = registry.preset(model_name).architecture == "mlp"
    default_sizes = {"hidden_sizes": None} if mlp else {}
    det = make_detector(model_name, epochs=2, latent_dim=None, **default_sizes).fit(X)
    rows = rng.normal(size=(300, width)) * 3.0
    batch = det.anomaly_score(rows)
    one_by_one = np.concatenate([det.anomaly_score(rows[i : i + 1]) for i in range(40)])
    np.testing.assert_array_equal(one_by_one, batch[:40])
    np.testing.assert_array_equal(det.anomaly_score(rows[5:]), batch[5:])
    np.testing.assert_array_equal(det.anomaly_map(rows[3:]), det.anomaly_map(rows)[3:])


# ------------------------------------------------ composition: adapter x backbone x model
def test_adapter_options_are_nested_parameters(table):
    det = genad.AutoEncoder(adapter=TabularAdapter(scaling="standard"), epochs=2, verbose=0,
                            random_state=0)
    assert det.get_params()["adapter__scaling"] == "standard"
    det.set_params(adapter__scaling="robust")
    assert det.adapter.scaling == "robust"
    det.fit(table)
    assert det.adapter_ is not det.adapter  # the fitted adapter is a clone
    assert det.adapter_.scaling == "robust" and not hasattr(det.adapter, "columns_")


def test_the_table_shortcuts_still_work_and_equal_the_adapter_form(table):
    short = genad.AutoEncoder(scaling="standard", missing="raise", epochs=2, verbose=0,
                              random_state=0).fit(table)
    nested = genad.AutoEncoder(adapter=TabularAdapter(scaling="standard", missing="raise"),
                               epochs=2, verbose=0, random_state=0).fit(table)
    assert short.adapter_.get_params() == nested.adapter_.get_params()
    np.testing.assert_array_equal(short.anomaly_score(table), nested.anomaly_score(table))


def test_a_shortcut_and_the_adapter_setting_the_same_option_are_refused(table):
    det = genad.AutoEncoder(adapter=TabularAdapter(scaling="standard"), scaling="robust")
    with pytest.raises(InvalidInputError, match="scaling is given twice"):
        det.fit(table)


def test_table_shortcuts_are_refused_for_another_kind_of_data(table, monkeypatch):
    class Other(TabularAdapter):
        kind = "other"

    det = genad.AutoEncoder(adapter=Other(), categorical_columns=["kind"])
    with pytest.raises(InvalidInputError, match="categorical_columns applies only to tables"):
        det.fit(table)


def test_the_adapter_must_be_an_adapter(table):
    with pytest.raises(InvalidInputError, match="adapter must be a genad adapter"):
        genad.AutoEncoder(adapter="tabular").fit(table)


def test_sample_shape_is_fitted_state(fitted):
    assert fitted.sample_shape_ == (fitted.adapter_.n_features_out_,)


def test_the_autoencoder_runs_on_the_conv1d_backbone(table):
    det = genad.AutoEncoder(backbone="conv1d", epochs=2, verbose=0, random_state=0).fit(table)
    assert type(det.model_.encoder).__name__ == "Conv1dEncoder"
    scores = det.anomaly_score(table)
    assert scores.shape == (len(table),) and np.isfinite(scores).all()
    np.testing.assert_allclose(det.anomaly_map(table).sum(axis=1), scores, rtol=1e-5)


def test_a_backbone_the_model_cannot_use_is_refused(table):
    with pytest.raises(InvalidInputError, match="backbone must be 'auto' or one of 'mlp'"):
        genad.VAE(backbone="conv1d").fit(table)
    with pytest.raises(InvalidInputError, match="backbone must be"):
        genad.AutoEncoder(backbone="transformer").fit(table)


def test_x_val_is_read_and_encoded_once(table, monkeypatch):
    encode = TabularAdapter._encode
    calls: list[int] = []

    def spy(self, X):
        calls.append(len(X))
        return encode(self, X)

    monkeypatch.setattr(TabularAdapter, "_encode", spy)
    labels = np.zeros(100, int)
    labels[:5] = 1
    genad.AutoEncoder(epochs=1, verbose=0, random_state=0).fit(
        table.iloc[:300], X_val=table.iloc[300:], y_val=labels)
    assert calls == [300, 100]  # the training rows, then X_val once (normals and anomalies)


# --------------------------------------------------- VAE-GAN's paused discriminator
def test_vaegan_pause_reaches_the_model_the_history_and_the_bundle(table, tmp_path):
    det = genad.VAEGAN(pause_discriminator_below=0.5, hidden_sizes=[8], epochs=2,
                       random_state=0, verbose=0).fit(table)
    assert det.model_.pause_discriminator_below == 0.5
    pauses = det.history_["parts"]["d_pause"]
    assert len(pauses) == det.n_epochs_ and all(0 <= p <= 1 for p in pauses)
    loaded = genad.load(det.save(tmp_path / "m.genad"))
    assert loaded.pause_discriminator_below == 0.5
    assert loaded.model_.pause_discriminator_below == 0.5
    np.testing.assert_allclose(loaded.anomaly_score(table), det.anomaly_score(table),
                               rtol=1e-5)
    plain = genad.VAEGAN(pause_discriminator_below=None, hidden_sizes=[8], epochs=1,
                         random_state=0, verbose=0).fit(table)
    assert "d_pause" not in plain.history_["parts"]  # None never pauses


def test_vaegan_pauses_by_default_on_images_only(table, tmp_path):
    """``"auto"`` is 0.5 with the conv2d backbone (images) and off with the MLP (tables);
    the model a bundle rebuilds has the same value."""
    on_table = genad.VAEGAN(hidden_sizes=[8], epochs=1, random_state=0, verbose=0).fit(table)
    assert on_table.pause_discriminator_below == "auto"
    assert on_table.model_.pause_discriminator_below is None
    assert "d_pause" not in on_table.history_["parts"]
    images = np.random.default_rng(0).random((40, 16, 16))
    on_images = genad.VAEGAN(epochs=1, target_fpr=0.3, random_state=0, verbose=0).fit(images)
    assert on_images.model_.pause_discriminator_below == 0.5
    assert "d_pause" in on_images.history_["parts"]
    path = on_images.save(tmp_path / "m.genad")
    assert genad.load(path).model_.pause_discriminator_below == 0.5


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), "0.5"])
def test_vaegan_pause_must_be_a_positive_number(table, bad):
    with pytest.raises(InvalidInputError, match="pause_discriminator_below"):
        genad.VAEGAN(pause_discriminator_below=bad, verbose=0).fit(table)


# ------------------------------------------------------------------------ DRAEM
def test_draem_with_its_reconstruction_round_trips_through_a_bundle(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, size=(40, 20, 20), dtype=np.uint8)
    det = genad.DRAEM(reconstruction=True, conv_width=4, epochs=1, target_fpr=0.3,
                      random_state=0, verbose=0).fit(images)
    assert det.model_.reconstructor is not None
    assert set(det.history_["parts"]) >= {"focal", "dice", "reconstruction"}
    loaded = genad.load(det.save(tmp_path / "d.genad"))
    assert loaded.reconstruction is True and loaded.model_.reconstructor is not None
    np.testing.assert_allclose(loaded.anomaly_score(images), det.anomaly_score(images),
                               rtol=1e-5)
    plain = genad.DRAEM(conv_width=4, epochs=1, target_fpr=0.3, random_state=0,
                        verbose=0).fit(images)
    assert plain.model_.reconstructor is None and "reconstruction" not in plain.history_["parts"]


def test_draem_refuses_tables_and_a_bad_reconstruction_flag(table):
    with pytest.raises(InvalidInputError, match="DRAEM takes image input"):
        genad.DRAEM(verbose=0).fit(table)
    images = np.zeros((20, 16, 16), dtype=np.uint8)
    with pytest.raises(InvalidInputError, match="reconstruction must be"):
        genad.DRAEM(reconstruction="yes", verbose=0).fit(images)


# -------------------------------------------------------------------- ensembles
def test_one_member_is_the_plain_fit(make_detector, table):
    plain = make_detector("ae").fit(table)
    one = make_detector("ae", n_members=1).fit(table)
    np.testing.assert_array_equal(one.anomaly_score(table), plain.anomaly_score(table))
    assert "member_epochs" not in one.history_


def test_members_are_trained_apart_and_saved_together(make_detector, table, outlier_table,
                                                      tmp_path):
    from genad.models.ensemble import MemberAverage

    X = pd.concat([table, outlier_table], ignore_index=True)
    plain = make_detector("ae").fit(table)
    det = make_detector("ae", n_members=3).fit(table)
    assert isinstance(det.model_, MemberAverage) and len(det.model_.members) == 3
    assert len(det.history_["member_epochs"]) == 3
    first, second = (m.state_dict() for m in det.model_.members[:2])
    assert not all(torch.equal(first[k], second[k]) for k in first)  # other random starts
    mine = plain.model_.state_dict()
    assert all(torch.equal(first[k], mine[k]) for k in mine)  # member 0 is the plain fit
    scores = det.anomaly_score(X)
    assert not np.array_equal(scores, plain.anomaly_score(X))
    assert scores[-5:].min() > np.quantile(scores[:-5], 0.99)
    amap = det.anomaly_map(X)
    np.testing.assert_allclose(amap.sum(axis=1), scores, rtol=1e-5)
    loaded = genad.load(det.save(tmp_path / "members.genad"))
    assert loaded.n_members == 3 and loaded.history_ == det.history_
    np.testing.assert_array_equal(loaded.anomaly_score(X), scores)


def test_zero_members_are_refused(make_detector, table):
    with pytest.raises(InvalidInputError, match="n_members"):
        make_detector("ae", n_members=0).fit(table)


def test_a_diverged_member_is_named_with_the_advice(make_detector, normal_array):
    from genad.errors import TrainingDivergedError

    det = make_detector("ae", learning_rate=1e6, epochs=5, n_members=2)
    with pytest.raises(TrainingDivergedError, match=r"member 1 of 2 \(n_members\).*learning_rate"):
        det.fit(normal_array)
    assert not hasattr(det, "model_")


@pytest.mark.parametrize("name", registry.names("tabular"))
def test_sample_on_tables_says_samples_become_data_only_for_images(name, fitted_factory):
    with pytest.raises(InvalidInputError, match="cannot generate samples: samples turn back "
                       "into data only for images"):
        fitted_factory(name).sample(3)
