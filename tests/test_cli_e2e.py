"""The real ``genad`` console script, end to end: every step in its own process.

In-process tests (tests/test_cli.py) share the test session's imports, so they cannot see
a defect that only shows in a fresh interpreter: saved models once failed to load in any
new process ("unknown detector class") while every in-process test passed. Here each
step runs the installed console script with ``subprocess``: every model preset is
trained (``train``) and loaded in a fresh interpreter (``python -c "import genad;
genad.load(P)"``); one preset of each kind (``PIPELINE_MODELS``) also runs ``info`` ->
``score`` -> ``evaluate`` -> ``report`` -> ``calibrate``, commands that do not depend on
the preset.

One model per preset is trained once per module (2 epochs on a few hundred rows); each
process still pays the import of torch, so this file takes a few minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import genad
from genad import registry
from genad.bundle import read_document


def _console_script() -> Path | None:
    """The ``genad`` script installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "genad"
    if beside.exists():
        return beside
    found = shutil.which("genad")
    return Path(found) if found else None


GENAD = _console_script()
pytestmark = pytest.mark.skipif(GENAD is None, reason="the genad console script is not "
                                "installed (pip install -e .)")

MODEL_NAMES = sorted(registry.names("tabular"))
N_TEST = 120


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in a new process with this environment (PYTHONPATH included)."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)


def genad_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return _run(GENAD, *args)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    progress = re.compile(r"(member \d+/\d+  )?epoch \d+/\d+  ")
    assert all(line.startswith("warning: ") or progress.match(line)
               for line in proc.stderr.splitlines() if line.strip()), proc.stderr


def _table(n: int, seed: int) -> pd.DataFrame:
    """An id, a timestamp-like column to exclude, features, and a 0/1 ``Class`` column."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame({
        "tx_id": [f"tx{seed}-{i:04d}" for i in range(n)],
        "Time": np.arange(n, dtype=float) + 1000.0 * seed,
        "amount": np.exp(rng.normal(3.0, 1.0, size=n)).round(2),
        "a": a,
        "b": 2.0 * a + 0.1 * rng.normal(size=n),
        "kind": rng.choice(["card", "cash"], size=n),
    })
    label = np.zeros(n, dtype=int)
    label[:10] = 1
    df.loc[:9, "b"] = -2.0 * df.loc[:9, "a"] + 5.0
    df["Class"] = label
    return df


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("e2e")
    _table(300, 0).to_csv(folder / "train.csv", index=False)
    _table(N_TEST, 1).to_parquet(folder / "test.parquet", index=False)
    return SimpleNamespace(folder=folder, train=folder / "train.csv",
                           test=folder / "test.parquet")


def _train_args(data: SimpleNamespace, name: str, out: Path) -> list[str | Path]:
    return ["train", data.train, "--model", name, "--label-column", "Class",
            "--exclude-columns", "tx_id,Time", "--epochs", "2", "--target-fpr", "0.05",
            "--out", out]


def _train(data: SimpleNamespace, name: str, out: Path) -> subprocess.CompletedProcess[str]:
    return genad_cli(*_train_args(data, name, out))


#: presets that run every command below; the others are trained and loaded in a fresh
#: interpreter (the per-preset risk: rebuilding its network from a bundle), since the
#: commands after ``train`` do not depend on the preset. One of each kind: a plain AE, a
#: VAE (noise), PCA + AE (a scikit-learn stage in the bundle), a two-phase GAN.
PIPELINE_MODELS = ["ae", "fanogan", "pca-cae", "vae"]


@pytest.fixture(scope="module")
def _trainings(data) -> dict[str, SimpleNamespace]:
    return {}


def _trained_once(name: str, data: SimpleNamespace,
                  cache: dict[str, SimpleNamespace]) -> SimpleNamespace:
    """``genad train`` of one preset, once per module: the process and the model path."""
    if name not in cache:
        model = data.folder / f"{name}.genad"
        proc = _train(data, name, model)
        assert_ok(proc)
        cache[name] = SimpleNamespace(name=name, model=model, proc=proc)
    return cache[name]


@pytest.fixture(scope="module", params=MODEL_NAMES)
def trained(request, data, _trainings) -> SimpleNamespace:
    """Every preset, trained by the console script."""
    return _trained_once(request.param, data, _trainings)


@pytest.fixture(scope="module", params=PIPELINE_MODELS)
def pipeline(request, data, _trainings) -> SimpleNamespace:
    """The presets of :data:`PIPELINE_MODELS`, trained by the console script."""
    return _trained_once(request.param, data, _trainings)


# -------------------------------------------------------- the pipeline, per preset
def test_train(trained):
    assert trained.model.is_file()
    assert f"saved {trained.model}" in trained.proc.stdout
    assert "290 normal rows of 300" in trained.proc.stdout
    # stderr is not a terminal: one progress line per few epochs, for logs
    assert "epoch 2/2  loss " in trained.proc.stderr


def test_info(pipeline):
    proc = genad_cli("info", pipeline.model, "--json")
    assert_ok(proc)
    doc = json.loads(proc.stdout)
    assert doc["detector"] == genad.MODELS[pipeline.name].__name__
    assert doc["params"]["random_state"] == 0  # --seed defaults to 0, stored in the bundle
    used = [c["name"] for c in doc["adapter"]["columns"]]
    assert used == ["amount", "a", "b", "kind"]  # tx_id, Time excluded; Class is the label


def test_score(pipeline, data):
    out = data.folder / f"{pipeline.name}-scores.csv"
    proc = genad_cli("score", pipeline.model, data.test, "--out", out, "--id-column", "tx_id",
                     "--keep-columns", "amount")
    assert_ok(proc)
    assert f"scored {N_TEST:,} rows" in proc.stdout
    scores = pd.read_csv(out)
    assert len(scores) == N_TEST  # one row per input row, in input order
    assert list(scores.columns) == ["tx_id", "amount", "anomaly_score", "p_value",
                                    "is_anomaly", "top_features"]
    test = pd.read_parquet(data.test)
    assert scores["tx_id"].tolist() == test["tx_id"].tolist()
    assert np.isfinite(scores["anomaly_score"]).all()
    expected = genad.load(pipeline.model).anomaly_score(test)
    np.testing.assert_allclose(scores["anomaly_score"], expected, rtol=1e-6)


def test_evaluate(pipeline, data):
    proc = genad_cli("evaluate", pipeline.model, data.test, "--label-column", "Class", "--json")
    assert_ok(proc)
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == N_TEST and metrics["n_anomalies"] == 10
    assert 0.0 <= metrics["auroc"] <= 1.0


def test_report(pipeline, data):
    out = data.folder / f"{pipeline.name}-report.html"
    proc = genad_cli("report", pipeline.model, data.test, "--label-column", "Class",
                     "--out", out)
    assert_ok(proc)
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "AUROC" in html


def test_calibrate(pipeline):
    before = read_document(pipeline.model)["fitted"]
    out = pipeline.model.with_name(f"{pipeline.name}-fpr20.genad")
    proc = genad_cli("calibrate", pipeline.model, "--target-fpr", "0.2", "--out", out)
    assert_ok(proc)
    assert f"threshold: {before['threshold_']:.6g} -> " in proc.stdout
    assert "expected alert rate" in proc.stdout
    after = read_document(out)["fitted"]
    assert after["threshold_setting_"] == pytest.approx(0.2)
    assert after["threshold_"] < before["threshold_"]  # 20 % false positives, not 5 %
    assert read_document(pipeline.model)["fitted"] == before  # the input is untouched


def test_fresh_interpreter_loads_and_scores(trained, data):
    code = ("import sys, genad, pandas as pd; det = genad.load(sys.argv[1]); "
            "print(repr(float(det.anomaly_score(pd.read_parquet(sys.argv[2]).head(1))[0])))")
    proc = _run(sys.executable, "-c", code, trained.model, data.test)
    assert_ok(proc)
    expected = genad.load(trained.model).anomaly_score(pd.read_parquet(data.test).head(1))[0]
    assert float(proc.stdout) == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ seeds
def test_cli_training_is_reproducible_by_default(data):
    """No seed given: the console script and an in-process run give byte-identical scores."""
    from typer.testing import CliRunner

    from genad.cli import app

    first, second = data.folder / "repro-1.genad", data.folder / "repro-2.genad"
    assert_ok(_train(data, "vae", first))  # the VAE draws noise: the strictest case
    result = CliRunner().invoke(app, [str(a) for a in _train_args(data, "vae", second)])
    assert result.exit_code == 0, result.output
    test = pd.read_parquet(data.test)
    a, b = (genad.load(p).anomaly_score(test) for p in (first, second))
    assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ start-up
def test_help_of_every_command_stays_torch_free():
    """``--help`` must not import torch (it would take seconds)."""
    code = (
        "import sys\n"
        "from genad.cli import app\n"
        "for cmd in ([], ['train'], ['calibrate'], ['score'], ['evaluate'], ['report'],\n"
        "            ['info'], ['demo']):\n"
        "    try:\n"
        "        app([*cmd, '--help'], prog_name='genad')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (cmd, exc.code)\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "False"
    assert "--target-fpr" in proc.stdout and "--id-column" in proc.stdout
