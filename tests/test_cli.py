"""The ``genad`` command line, end to end through typer's CliRunner.

One small model is trained once per module (3 epochs on a few hundred rows) and reused;
every error case checks the contract: exit code != 0, exactly one ``error: ...`` line
on stderr, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import genad
from genad.cli import app

runner = CliRunner()


def _table(n: int = 300, seed: int = 0, n_anomalies: int = 15) -> pd.DataFrame:
    """Numeric, categorical and integer columns plus a 0/1 ``label`` column."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame({
        "amount": np.exp(rng.normal(3.0, 1.0, size=n)).round(2),
        "a": a,
        "b": 2.0 * a + 0.1 * rng.normal(size=n),
        "kind": rng.choice(["card", "cash", "wire"], size=n),
        "hour": rng.integers(0, 24, size=n),
    })
    label = np.zeros(n, dtype=int)
    label[:n_anomalies] = 1
    df.loc[: n_anomalies - 1, "b"] = -2.0 * df.loc[: n_anomalies - 1, "a"] + 6.0
    df["label"] = label
    return df


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int | None = None, contains: str | None = None) -> str:
    """The CLI failed cleanly: one ``error:`` line on stderr, no traceback."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert all(ln.startswith(("error: ", "warning: ")) for ln in lines), result.stderr
    if contains is not None:
        assert contains in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    _table().to_csv(path / "train.csv", index=False)
    _table(seed=1).to_csv(path / "test.csv", index=False)
    return path


@pytest.fixture(scope="module")
def model_file(workdir) -> Path:
    result = run("train", workdir / "train.csv", "--model", "ae", "--label-column", "label",
                 "--out", workdir / "model.genad", "--epochs", "3", "--random-state", "0",
                 "--target-fpr", "0.05", "--categorical", "hour")
    assert result.exit_code == 0, result.output
    return workdir / "model.genad"


# ------------------------------------------------------------------ basics
def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert genad.__version__ in result.stdout


def test_model_choices_match_the_registry():
    from genad import registry
    from genad.cli import ModelName

    assert [m.value for m in ModelName] == list(registry.names())
    assert [m.value for m in ModelName] == list(genad.MODELS)
    assert all(isinstance(m, str) for m in ModelName)


def test_train_help_lists_every_preset():
    from genad import registry

    result = run("train", "--help")
    assert result.exit_code == 0
    for p in registry.PRESETS.values():
        assert p.name in result.stdout


def test_help_lists_commands():
    result = run("--help")
    assert result.exit_code == 0
    for name in ("train", "score", "evaluate", "report", "info", "demo"):
        assert name in result.stdout


def test_no_arguments_shows_help():
    result = run()
    assert result.exit_code != 0 or "Usage" in result.output
    assert "train" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------- round trip
def test_train_prints_summary(model_file, workdir):
    result = run("train", workdir / "train.csv", "--label-column", "label", "--out",
                 workdir / "again", "--epochs", "2", "--random-state", "0", "-q")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "285 normal rows of 300" in out
    assert "15 labelled anomalies left out" in out
    assert "epochs:" in out and "threshold:" in out
    assert str(workdir / "again.genad") in out
    assert (workdir / "again.genad").exists()


def test_train_excludes_label_from_features(model_file):
    det = genad.load(model_file)
    assert "label" not in det.adapter_.column_names_
    assert det.n_epochs_ == 3
    assert det.threshold_setting_ == pytest.approx(0.05)
    kinds = {row["column"]: row["kind"] for row in det.adapter_.schema()}
    assert kinds["hour"] == "categorical"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_writes_table(model_file, workdir, suffix):
    out = workdir / f"scores{suffix}"
    result = run("score", model_file, workdir / "test.csv", "--out", out, "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scored 300 rows; flagged ")
    scores = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(scores.columns) == ["anomaly_score", "p_value", "is_anomaly", "top_features"]
    assert len(scores) == 300
    assert np.isfinite(scores["anomaly_score"]).all()
    assert set(scores["is_anomaly"].unique()) <= {0, 1}
    assert scores["p_value"].between(0, 1).all()
    assert all(s.count("%") == 2 for s in scores["top_features"])
    # same scores as the library (the label column is ignored by the model)
    det = genad.load(model_file)
    expected = det.anomaly_score(pd.read_csv(workdir / "test.csv"))
    np.testing.assert_allclose(scores["anomaly_score"].to_numpy(), expected, rtol=1e-6)
    n_flagged = int(scores["is_anomaly"].sum())
    assert f"flagged {n_flagged:,}" in result.stdout


def test_evaluate_table_and_json(model_file, workdir):
    result = run("evaluate", model_file, workdir / "test.csv", "--label-column", "label")
    assert result.exit_code == 0, result.output
    for name in ("AUROC", "AUPRC", "precision@15", "recall", "F1"):
        assert name in result.stdout

    result = run("evaluate", model_file, workdir / "test.csv", "-l", "label", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 300 and metrics["n_anomalies"] == 15
    assert 0.0 <= metrics["auroc"] <= 1.0
    assert 0.0 <= metrics["auprc"] <= 1.0
    assert {"precision", "recall", "f1", "precision_at_k", "tp", "fp", "fn", "tn"} <= set(metrics)
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == 300


def test_evaluate_one_class_gives_null_not_crash(model_file, workdir):
    df = _table(seed=2, n_anomalies=1)
    df["label"] = 0
    df.to_csv(workdir / "normal_only.csv", index=False)
    result = run("evaluate", model_file, workdir / "normal_only.csv", "-l", "label", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["auroc"] is None


def test_report(model_file, workdir):
    out = workdir / "sub" / "report.html"
    result = run("report", model_file, workdir / "test.csv", "--label-column", "label",
                 "--out", out, "--title", "CLI report")
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "CLI report" in html
    assert "AUROC" in html
    assert html.count("data:image/png;base64,") >= 5


def test_report_without_labels(model_file, workdir):
    out = workdir / "report_nolabel.html"
    result = run("report", model_file, workdir / "test.csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert "No labels were given" in out.read_text(encoding="utf-8")


def test_info(model_file):
    result = run("info", model_file)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "AutoEncoder" in out
    assert "threshold" in out and "target_fpr" in out
    assert "3 epochs" in out and "averaged" not in out  # tables: no weight averaging
    det = genad.load(model_file)
    widths = " \u2192 ".join(map(str, [det.adapter_.n_features_out_, *det.hidden_sizes_]))
    assert f"network    MLP, {widths} \u2192 latent {det.latent_dim_}" in " ".join(
        out.split(" \n"))
    assert ("hit the epoch cap" in out) == genad.load(model_file).history_["hit_epoch_cap"]
    for column in ("amount", "kind", "hour"):
        assert column in out
    assert "torch" in out

    result = run("info", model_file, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["detector"] == "AutoEncoder"
    assert doc["fitted"]["n_epochs_"] == 3


# ------------------------------------------------------------------- errors
def test_train_missing_file(tmp_path):
    result = run("train", tmp_path / "nope.csv", "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 1, contains="nope.csv")


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.csv", bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4),
        ("notes.txt", b"This is not a table.\nJust some words, and more words, and more.\n"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ("empty.csv", b""),
    ],
)
def test_train_not_a_table(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    result = run("train", path, "--out", tmp_path / "m.genad", "--epochs", "1")
    assert_one_line_error(result, 1)
    assert not (tmp_path / "m.genad").exists()


@pytest.mark.parametrize("bad", [2, "yes", -1])
def test_train_label_not_binary(tmp_path, bad):
    df = _table(n=60)
    df["label"] = df["label"].astype(object)
    df.loc[7, "label"] = bad
    df.to_csv(tmp_path / "d.csv", index=False)
    result = run("train", tmp_path / "d.csv", "--label-column", "label",
                 "--out", tmp_path / "m.genad", "--epochs", "1")
    line = assert_one_line_error(result, 1, contains="label")
    assert "row 7" in line


def test_train_label_column_missing(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--label-column", "Class",
                 "--out", tmp_path / "m.genad", "--epochs", "1")
    assert_one_line_error(result, 1, contains="'Class'")


def test_train_unknown_model(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--model", "gan9000",
                 "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 2, contains="gan9000")


def test_train_bad_target_fpr(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--target-fpr", "1.5",
                 "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 2, contains="--target-fpr")


def test_train_unknown_categorical_column(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--categorical", "nope",
                 "--out", tmp_path / "m.genad", "--epochs", "1")
    assert_one_line_error(result, 1, contains="nope")


def test_score_missing_column(model_file, tmp_path):
    _table(n=40).drop(columns=["b"]).to_csv(tmp_path / "short.csv", index=False)
    result = run("score", model_file, tmp_path / "short.csv", "--out", tmp_path / "s.csv")
    assert_one_line_error(result, 1, contains="'b'")
    assert not (tmp_path / "s.csv").exists()


def test_score_bad_output_suffix(model_file, workdir, tmp_path):
    result = run("score", model_file, workdir / "test.csv", "--out", tmp_path / "s.xlsx")
    assert_one_line_error(result, 1, contains=".csv or .parquet")


@pytest.mark.parametrize("command", ["score", "evaluate", "report", "info"])
def test_truncated_model(model_file, workdir, tmp_path, command):
    data = model_file.read_bytes()
    broken = tmp_path / "broken.genad"
    broken.write_bytes(data[: len(data) // 2])
    args = {
        "score": ["score", broken, workdir / "test.csv", "--out", tmp_path / "s.csv"],
        "evaluate": ["evaluate", broken, workdir / "test.csv", "-l", "label"],
        "report": ["report", broken, workdir / "test.csv", "--out", tmp_path / "r.html"],
        "info": ["info", broken],
    }[command]
    assert_one_line_error(run(*args), 1, contains="broken.genad")


def test_model_file_missing(workdir, tmp_path):
    result = run("info", tmp_path / "absent.genad")
    assert_one_line_error(result, 1, contains="absent.genad")


def test_model_file_is_not_a_model(workdir, tmp_path):
    fake = tmp_path / "fake.genad"
    fake.write_text("hello")
    result = run("score", fake, workdir / "test.csv", "--out", tmp_path / "s.csv")
    assert_one_line_error(result, 1, contains="fake.genad")


def test_evaluate_needs_label_column(model_file, workdir):
    result = run("evaluate", model_file, workdir / "test.csv")
    assert_one_line_error(result, 2, contains="--label-column")


def test_unknown_command():
    assert_one_line_error(run("fly"), 2, contains="fly")


@pytest.mark.slow  # a fresh interpreter imports torch: several seconds
def test_console_script_errors_are_one_line(tmp_path):
    """Through a real process (``python -m genad.cli``): stderr is one line, exit 1."""
    proc = subprocess.run(
        [sys.executable, "-m", "genad.cli", "info", str(tmp_path / "absent.genad")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------ inputs are never destroyed
def _same_file_variants(tmp_path: Path, target: Path) -> dict[str, Path]:
    """``target`` by its own path, a relative-looking detour, a symlink and a hard link."""
    detour = tmp_path / "sub"
    detour.mkdir(exist_ok=True)
    link = tmp_path / f"link{target.suffix}"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    hard = tmp_path / f"hard{target.suffix}"
    hard.unlink(missing_ok=True)
    hard.hardlink_to(target)
    return {"same": target, "detour": detour / ".." / target.name, "symlink": link,
            "hardlink": hard}


@pytest.mark.parametrize("how", ["same", "detour", "symlink", "hardlink"])
def test_score_refuses_to_overwrite_its_data(model_file, tmp_path, how):
    data = tmp_path / "data.csv"
    _table(n=40).to_csv(data, index=False)
    before = data.read_bytes()
    out = _same_file_variants(tmp_path, data)[how]
    result = run("score", model_file, data, "--out", out)
    assert_one_line_error(result, 1, contains="is the data file being read")
    assert data.read_bytes() == before


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_score_refuses_to_overwrite_its_model(model_file, workdir, tmp_path, how):
    model = tmp_path / "m.csv"  # a model under a table's name: still never overwritten
    model.write_bytes(model_file.read_bytes())
    out = _same_file_variants(tmp_path, model)[how]
    result = run("score", model, workdir / "test.csv", "--out", out)
    assert_one_line_error(result, 1, contains="is the model file being read")
    assert model.read_bytes() == model_file.read_bytes()


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_report_refuses_to_overwrite_its_model(model_file, workdir, tmp_path, how):
    model = tmp_path / "m.genad"
    model.write_bytes(model_file.read_bytes())
    out = _same_file_variants(tmp_path, model)[how]
    result = run("report", model, workdir / "test.csv", "--out", out)
    assert_one_line_error(result, 1, contains="is the model file being read")
    assert model.read_bytes() == model_file.read_bytes()
    assert genad.load(model).threshold_ == genad.load(model_file).threshold_


def test_report_refuses_to_overwrite_its_data(model_file, tmp_path):
    data = tmp_path / "d.csv"
    _table(n=40).to_csv(data, index=False)
    before = data.read_bytes()
    result = run("report", model_file, data, "--out", data)
    assert_one_line_error(result, 1, contains="is the data file being read")
    assert data.read_bytes() == before


@pytest.mark.parametrize("command", ["train", "calibrate"])
@pytest.mark.parametrize("out", ["", "folder"])
def test_model_out_must_be_a_file_name(model_file, workdir, tmp_path, command, out):
    (tmp_path / "folder").mkdir()
    out = str(tmp_path / out) if out else out
    args = {"train": ["train", workdir / "train.csv", "--epochs", "1"],
            "calibrate": ["calibrate", model_file, "--target-fpr", "0.2"]}[command]
    result = run(*args, "--out", out)
    assert_one_line_error(result, 1, contains="--out needs a file name")
    assert not (tmp_path / "folder.genad").exists()


# ------------------------------------------------------------ analyst workflow
def test_score_id_and_keep_columns(model_file, workdir, tmp_path):
    test = _table(seed=1)
    test.insert(0, "tx", [f"t{i}" for i in range(len(test))])
    test.to_csv(tmp_path / "with_id.csv", index=False)
    out = tmp_path / "s.csv"
    result = run("score", model_file, tmp_path / "with_id.csv", "--out", out,
                 "--id-column", "tx", "--keep-columns", "amount,kind", "--keep-columns", "hour")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["tx", "amount", "kind", "hour", "anomaly_score", "p_value",
                                    "is_anomaly", "top_features"]
    assert scores["tx"].tolist() == test["tx"].tolist()
    assert scores["kind"].tolist() == test["kind"].tolist()


@pytest.mark.parametrize("option", ["--id-column", "--keep-columns"])
def test_score_unknown_column_suggests_and_lists(model_file, workdir, tmp_path, option):
    result = run("score", model_file, workdir / "test.csv", "--out", tmp_path / "s.csv",
                 option, "Kind")
    line = assert_one_line_error(result, 1, contains="'Kind'")
    assert "did you mean 'kind'?" in line
    assert "'amount', 'a', 'b', 'kind', 'hour', 'label'" in line
    assert not (tmp_path / "s.csv").exists()


def test_train_exclude_columns(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "-l", "label", "--exclude-columns", "a,hour",
                 "--out", tmp_path / "m.genad", "--epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    det = genad.load(tmp_path / "m.genad")
    assert det.adapter_.column_names_ == ["amount", "b", "kind"]
    # extra columns at score time are ignored: the full test table still scores
    assert np.isfinite(det.anomaly_score(pd.read_csv(workdir / "test.csv"))).all()


def test_train_exclude_unknown_column(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--exclude-columns", "amount,Hour",
                 "--out", tmp_path / "m.genad", "--epochs", "1")
    line = assert_one_line_error(result, 1, contains="'Hour'")
    assert "did you mean 'hour'?" in line and "'label'" in line
    assert not (tmp_path / "m.genad").exists()


def test_label_column_typo_suggests_and_lists(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--label-column", "Label",
                 "--out", tmp_path / "m.genad", "--epochs", "1")
    line = assert_one_line_error(result, 1, contains="'Label'")
    assert "did you mean 'label'?" in line
    assert "available columns: 'amount', 'a', 'b', 'kind', 'hour', 'label'" in line


def test_train_seed_defaults_to_zero_and_is_stored(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m.genad", "--epochs", "1",
                 "-q")
    assert result.exit_code == 0, result.output
    assert genad.load(tmp_path / "m.genad").random_state == 0
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m7.genad", "--epochs",
                 "1", "-q", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert genad.load(tmp_path / "m7.genad").random_state == 7


def test_train_random_state_is_a_hidden_alias_of_seed(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m.genad", "--epochs", "1",
                 "-q", "--random-state", "5")
    assert result.exit_code == 0, result.output
    assert genad.load(tmp_path / "m.genad").random_state == 5
    for command in ("train", "demo"):
        help_text = run(command, "--help").stdout
        assert "--seed" in help_text and "--random-state" not in help_text


def test_train_progress_lines_when_not_a_terminal(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m.genad",
                 "--epochs", "4")
    assert result.exit_code == 0, result.output
    epochs = [ln for ln in result.stderr.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("loss " in ln and "val " in ln for ln in epochs)


def test_train_quiet_prints_no_progress(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m.genad",
                 "--epochs", "4", "-q")
    assert result.exit_code == 0, result.output
    assert not [ln for ln in result.stderr.splitlines() if ln.startswith("epoch ")]


def test_train_warns_when_it_hits_the_epoch_cap(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--out", tmp_path / "m.genad",
                 "--epochs", "2", "-q")
    assert result.exit_code == 0, result.output
    warning = [ln for ln in result.stderr.splitlines() if "epoch cap" in ln]
    assert len(warning) == 1 and warning[0].startswith("warning: ")
    assert "--epochs" in warning[0]


def test_train_set_passes_parameters_to_the_saved_model(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "-l", "label", "--out", tmp_path / "m.genad",
                 "--epochs", "1", "-q", "--set", "learning_rate=2e-4",
                 "--set", "hidden_sizes=[16, 8]", "--set", "scaling=robust",
                 "--set", "weight_averaging=none", "--set", "normalize_errors=true")
    assert result.exit_code == 0, result.output
    det = genad.load(tmp_path / "m.genad")
    assert det.learning_rate == 2e-4 and list(det.hidden_sizes) == [16, 8]
    assert det.scaling == "robust" and det.weight_averaging is None
    assert det.normalize_errors is True
    assert run("info", tmp_path / "m.genad").stdout.count("0.0002") == 1


def test_train_members_saves_an_ensemble_of_tables(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "-l", "label", "--out", tmp_path / "m.genad",
                 "--epochs", "2", "-q", "--members", "2")
    assert result.exit_code == 0, result.output
    assert "2 members from different random starts" in result.stdout
    det = genad.load(tmp_path / "m.genad")
    assert det.n_members == 2 and len(det.model_.members) == 2
    assert det.history_["member_epochs"] == [2, 2]
    result = run("train", workdir / "train.csv", "--out", tmp_path / "x.genad",
                 "--members", "0")
    assert result.exit_code == 2 and "--members" in result.output


@pytest.mark.parametrize("text, value", [
    ("0.5", 0.5), ("1e-4", 1e-4), ("3", 3), ("[64, 32]", [64, 32]), ("None", None),
    ("none", None), ("null", None), ("True", True), ("false", False), ("robust", "robust"),
    ("'robust'", "robust"), (" 0.5 ", 0.5),
])
def test_set_values_are_literals_or_text(text, value):
    from genad.cli import _setting_value

    parsed = _setting_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("settings, contains", [
    (["learning_rat=1e-4"], "model 'ae' has no parameter 'learning_rat' (did you mean "
                            "'learning_rate'?); its parameters: backbone"),
    (["epochs=3"], "--set epochs: use --epochs instead"),
    (["random_state=3"], "use --seed instead"),
    (["categorical_columns=['kind']"], "use --categorical instead"),
    (["learning_rate"], "expected NAME=VALUE"),
    (["=3"], "expected NAME=VALUE"),
    (["learning_rate=1", "learning_rate=2"], "--set learning_rate is given twice"),
    (["learning_rate=fast"], "learning_rate must be a number"),
    (["pause_discriminator_below=0.5"], "model 'ae' has no parameter"),
])
def test_train_set_refuses_bad_settings(workdir, tmp_path, settings, contains):
    args = [a for s in settings for a in ("--set", s)]
    result = run("train", workdir / "train.csv", "-l", "label", "--out", tmp_path / "m.genad",
                 "--epochs", "1", "-q", *args)
    assert_one_line_error(result, 1, contains=contains)
    assert not (tmp_path / "m.genad").exists()


def test_train_diverged_error_says_how_to_set_its_advice(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "-l", "label", "--out", tmp_path / "m.genad",
                 "--epochs", "3", "-q", "--set", "learning_rate=1e12")
    line = assert_one_line_error(result, 1, contains="training diverged")
    assert "learning_rate" in line and "set a parameter with --set NAME=VALUE" in line


@pytest.mark.parametrize("command", ["train", "score", "evaluate", "report", "info",
                                     "calibrate", "demo"])
def test_help_shows_flags_as_flags(command):
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout


def test_root_help_shows_flags_as_flags():
    result = run("--help")
    assert "--version" in result.stdout and "<bool>" not in result.stdout


def test_bad_choice_message_has_no_value_error_prefix(workdir, tmp_path):
    result = run("train", workdir / "train.csv", "--model", "gan9000",
                 "--out", tmp_path / "m.genad")
    line = assert_one_line_error(result, 2, contains="'gan9000' is not one of")
    assert "Value error" not in line


# ------------------------------------------------------------------ calibrate
def test_calibrate_on_stored_normals(model_file, tmp_path):
    before = genad.load(model_file)
    out = tmp_path / "recal.genad"
    result = run("calibrate", model_file, "--target-fpr", "0.2", "--out", out)
    assert result.exit_code == 0, result.output
    after = genad.load(out)
    assert after.threshold_setting_ == pytest.approx(0.2)
    assert after.threshold_ < before.threshold_
    np.testing.assert_array_equal(after.calibration_scores_, before.calibration_scores_)
    assert f"{before.threshold_:.6g} -> {after.threshold_:.6g}" in result.stdout
    rate = np.mean(after.calibration_scores_ > after.threshold_)
    assert f"expected alert rate on normal rows: {rate:.3%}" in result.stdout
    assert genad.load(model_file).threshold_ == before.threshold_  # MODEL untouched


def test_calibrate_on_new_normals_leaves_labelled_anomalies_out(model_file, workdir, tmp_path):
    out = tmp_path / "recal.genad"
    result = run("calibrate", model_file, "--target-fpr", "0.1", "--data",
                 workdir / "test.csv", "--label-column", "label", "--out", out)
    assert result.exit_code == 0, result.output
    det = genad.load(out)
    test = pd.read_csv(workdir / "test.csv")
    normals = test[test["label"] == 0]
    assert len(det.calibration_scores_) == len(normals) == 285
    np.testing.assert_allclose(np.sort(det.calibration_scores_),
                               np.sort(det.anomaly_score(normals)), rtol=1e-6)
    assert np.mean(det.anomaly_score(normals) > det.threshold_) <= 0.1
    assert "285 normal rows of test.csv" in result.stdout


def test_calibrate_in_place(model_file, tmp_path):
    model = tmp_path / "m.genad"
    model.write_bytes(model_file.read_bytes())
    result = run("calibrate", model, "--target-fpr", "0.2", "--out", model)
    assert result.exit_code == 0, result.output
    assert genad.load(model).threshold_setting_ == pytest.approx(0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.genad"]  # no stray temp file


def test_calibrate_rate_too_small_leaves_the_model(model_file, tmp_path):
    model = tmp_path / "m.genad"
    model.write_bytes(model_file.read_bytes())
    result = run("calibrate", model, "--target-fpr", "0.0001", "--out", model)
    line = assert_one_line_error(result, 1, contains="target_fpr=0.0001")
    assert "np." not in line
    assert model.read_bytes() == model_file.read_bytes()


def test_calibrate_label_column_needs_data(model_file, tmp_path):
    result = run("calibrate", model_file, "--label-column", "label",
                 "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 2, contains="--data")


def test_calibrate_split_is_for_images_and_needs_data(model_file, workdir, tmp_path):
    result = run("calibrate", model_file, "--split", "test", "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 2, contains="--data")
    result = run("calibrate", model_file, "--data", workdir / "test.csv", "--split", "test",
                 "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 1, contains="--split is for image models")
    assert not (tmp_path / "m.genad").exists()


def test_calibrate_unknown_label_column(model_file, workdir, tmp_path):
    result = run("calibrate", model_file, "--data", workdir / "test.csv", "--label-column",
                 "labels", "--out", tmp_path / "m.genad")
    assert_one_line_error(result, 1, contains="did you mean 'label'?")


# ---------------------------------------------------------------- signing key
def test_bundle_key_from_the_environment_signs_and_checks(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAD_BUNDLE_KEY", "secret")
    result = run("train", workdir / "train.csv", "--out", tmp_path / "signed.genad",
                 "--epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    assert genad.load(tmp_path / "signed.genad", key="secret").threshold_ > 0
    assert run("info", tmp_path / "signed.genad").exit_code == 0
    monkeypatch.setenv("GENAD_BUNDLE_KEY", "other")
    assert_one_line_error(run("info", tmp_path / "signed.genad"), 1, contains="signed.genad")
