"""genad.scoring.score_file: the score file, read and written in row batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genad.scoring as scoring
from genad.data.tabular import read_table
from genad.errors import InvalidInputError
from tests.conftest import normal_table


def _data(n: int = 500) -> pd.DataFrame:
    df = normal_table(n, seed=11)
    df.insert(0, "id", [f"tx{i:05d}" for i in range(n)])
    df.loc[3, "c"] = np.nan  # an imputed value, and float ids' formatting, in one batch
    df["amount"] = np.random.default_rng(0).gamma(2.0, 10.0, size=n).round(2)
    return df


def _whole_table(detector, path, **kw) -> pd.DataFrame:
    """What score_file wrote before streaming: the whole table explained at once."""
    df = read_table(path)
    table = detector.explain(df, top_k=kw.get("top_k", 3)).reset_index(drop=True)
    keep = [kw["id_column"], *kw.get("keep_columns", ())] if "id_column" in kw else []
    return pd.concat([df[keep].reset_index(drop=True), table], axis=1) if keep else table


def _write(df: pd.DataFrame, path) -> None:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")


@pytest.mark.parametrize("source", ["data.csv", "data.tsv", "data.parquet"])
@pytest.mark.parametrize("target", ["out.csv", "out.parquet"])
def test_streamed_score_file_equals_scoring_the_whole_table(
    fitted_factory, tmp_path, monkeypatch, source, target
):
    detector = fitted_factory("ae")
    src, out = tmp_path / source, tmp_path / target
    _write(_data(), src)
    monkeypatch.setattr(scoring, "STREAM_ROWS", 64)  # 500 rows: 8 batches
    batches: list[int] = []
    explain = type(detector).explain

    def spy(self, X, top_k=3):
        batches.append(len(X))
        return explain(self, X, top_k=top_k)

    monkeypatch.setattr(type(detector), "explain", spy)
    kw = {"id_column": "id", "keep_columns": ["amount"], "top_k": 2}
    summary = scoring.score_file(detector, src, out, **kw)
    assert max(batches) == 64 and sum(batches) == 500
    expected = _whole_table(detector, src, **kw)
    assert summary.n_rows == 500
    assert summary.n_flagged == int(expected["is_anomaly"].sum())
    if target.endswith(".csv"):
        reference = tmp_path / "reference.csv"
        expected.to_csv(reference, index=False)
        assert out.read_bytes() == reference.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_streamed_score_file_without_passthrough_columns(fitted_factory, tmp_path,
                                                         monkeypatch):
    detector = fitted_factory("vae")
    src, out = tmp_path / "d.parquet", tmp_path / "o.parquet"
    _write(_data(130), src)
    monkeypatch.setattr(scoring, "STREAM_ROWS", 50)
    scoring.score_file(detector, src, out)
    pd.testing.assert_frame_equal(pd.read_parquet(out), _whole_table(detector, src))


@pytest.mark.parametrize("content", ["", "a,b,c\n"])
def test_empty_files_raise_the_usual_errors(fitted_factory, tmp_path, content):
    src = tmp_path / "empty.csv"
    src.write_text(content)
    with pytest.raises(InvalidInputError, match="empty|not a readable"):
        scoring.score_file(fitted_factory("ae"), src, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_missing_file_and_bad_suffix_raise_read_tables_errors(fitted_factory, tmp_path):
    with pytest.raises(InvalidInputError, match="file not found"):
        scoring.score_file(fitted_factory("ae"), tmp_path / "no.csv", tmp_path / "o.csv")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(InvalidInputError, match="unsupported table format"):
        scoring.score_file(fitted_factory("ae"), tmp_path / "d.xlsx", tmp_path / "o.csv")


def test_a_warning_repeated_in_every_batch_is_shown_once(fitted_factory, tmp_path,
                                                         monkeypatch, recwarn):
    df = _data(300)
    df.loc[::10, "c"] = np.nan  # "c" had no NaN in training: a warning in every batch
    src = tmp_path / "d.csv"
    _write(df, src)
    monkeypatch.setattr(scoring, "STREAM_ROWS", 64)
    scoring.score_file(fitted_factory("ae"), src, tmp_path / "o.csv")
    assert len([w for w in recwarn if "'c'" in str(w.message)]) == 1
