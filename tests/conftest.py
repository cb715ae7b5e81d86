"""Shared fixtures: small synthetic tables, model factories, the real-data folder.

Everything here is small on purpose: the whole core suite must run in a few minutes
on two CPU cores, so detectors train for a handful of epochs on a few hundred rows.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import genad
from genad import registry

REPO_ROOT = Path(__file__).resolve().parents[1]

#: every preset that takes tables, in registry order (the image presets have their own tests)
MODEL_NAMES = list(registry.names("tabular"))
#: every preset that takes images
IMAGE_MODEL_NAMES = list(registry.names("image"))


def small_params(name: str, **overrides):
    """Constructor arguments that train model ``name`` quickly on a small table
    (the preset's :meth:`~genad.registry.Preset.test_params`)."""
    return registry.preset(name).test_params(**overrides)


def make_detector(name: str, **overrides) -> genad.Detector:
    """A fresh, unfitted detector of kind ``name`` with the small test settings."""
    return registry.load_class(name)(**small_params(name, **overrides))


def normal_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Correlated numeric columns, a string categorical, a bool and a low-cardinality int.

    The categorical follows the sign of ``a`` (so it is predictable from the numbers) and
    ``b`` is about ``2 a``, so a reconstruction model can learn the structure.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 2.0 * a + 0.1 * rng.normal(size=n)
    c = rng.normal(size=n)
    kind = np.where(a > 0.5, "high", np.where(a < -0.5, "low", "mid"))
    return pd.DataFrame({
        "a": a,
        "b": b,
        "c": c,
        "kind": kind,
        "flag": c > 0,
        "level": rng.integers(0, 4, size=n),
    })


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small networks on a shared 2-core machine: one intra-op thread is an order of
    magnitude faster than two under contention (genad's own loop does the same)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def table() -> pd.DataFrame:
    """400 normal rows of mixed types (see :func:`normal_table`)."""
    return normal_table()


@pytest.fixture
def normal_array() -> np.ndarray:
    """300 x 5 correlated Gaussian rows (no categorical)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 2))
    mix = np.array([[1.0, 0.5, -0.3, 0.8, 0.0], [0.0, 1.0, 0.7, -0.4, 1.2]])
    return z @ mix + 0.05 * rng.normal(size=(300, 5))


@pytest.fixture
def outlier_table(table) -> pd.DataFrame:
    """Rows far from the normal data: numbers off the b = 2a line and an unseen category."""
    out = table.iloc[:5].copy()
    out["a"] = [8.0, -8.0, 9.0, -9.0, 10.0]
    out["b"] = [-16.0, 16.0, -18.0, 18.0, -20.0]
    out["c"] = 7.0
    out["kind"] = ["mid", "mid", "low", "high", "mid"]
    return out.reset_index(drop=True)


_FITTED_CACHE: dict[tuple[str, str], genad.Detector] = {}


def fitted_detector(name: str, data: str = "table") -> genad.Detector:
    """A detector fitted once per session on ``table`` or ``array`` data.

    Callers must not modify the returned object; use the ``fitted_copy`` fixture to mutate.
    """
    key = (name, data)
    if key not in _FITTED_CACHE:
        X = normal_table() if data == "table" else _array_data()
        _FITTED_CACHE[key] = make_detector(name).fit(X)
    return _FITTED_CACHE[key]


def _array_data() -> np.ndarray:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 2))
    return np.column_stack([z[:, 0], z[:, 1], z[:, 0] + z[:, 1], z[:, 0] - z[:, 1]]) + \
        0.05 * rng.normal(size=(300, 4))


@pytest.fixture(params=MODEL_NAMES)
def model_name(request) -> str:
    """Every preset of :mod:`genad.registry`."""
    return request.param


#: presets whose published score misses obvious table outliers, with the reason; the
#: detection tests expect them to fail (strictly: a fix shows as an unexpected pass)
MISSES_OBVIOUS_OUTLIERS = {
    "ganomaly": "GANomaly's latent distance ||E(x) - E(G(E(x)))||^2 (the published score) "
                "ranks far-off table rows below normal ones: the re-encoder maps both near "
                "the training codes (see docs/status.md)",
}


@pytest.fixture
def expects_detection(request, model_name) -> None:
    """Mark the test as an expected failure for presets in :data:`MISSES_OBVIOUS_OUTLIERS`."""
    reason = MISSES_OBVIOUS_OUTLIERS.get(model_name)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture
def fitted(model_name) -> genad.Detector:
    """A session-cached detector fitted on :func:`normal_table`; do not mutate."""
    return fitted_detector(model_name, "table")


@pytest.fixture
def fitted_on_array(model_name) -> genad.Detector:
    """A session-cached detector fitted on a 300 x 4 ndarray; do not mutate."""
    return fitted_detector(model_name, "array")


@pytest.fixture
def array_data() -> np.ndarray:
    """The 300 x 4 ndarray the ``fitted_on_array`` detectors were trained on."""
    return _array_data()


@pytest.fixture(name="make_detector")
def make_detector_fixture():
    """Factory: ``make_detector(name, **overrides)`` gives a fresh, fast detector."""
    return make_detector


@pytest.fixture(name="small_params")
def small_params_fixture():
    """Factory: ``small_params(name, **overrides)`` gives fast constructor arguments."""
    return small_params


@pytest.fixture(scope="session")
def fitted_factory():
    """Factory: ``fitted_factory(name, data="table")`` gives the session-cached detector."""
    return fitted_detector


@pytest.fixture
def fitted_copy(fitted) -> genad.Detector:
    """A private deep copy of ``fitted`` that the test may modify (e.g. re-calibrate)."""
    return copy.deepcopy(fitted)


def resolve_data_dir() -> Path:
    """``$GENAD_DATA`` when set, else ``<repo>/../shared/data``."""
    env = os.environ.get("GENAD_DATA")
    return Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The read-only real-data folder; the test is skipped when it is absent."""
    path = resolve_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path} (set GENAD_DATA)")
    return path


def scores_in_fresh_interpreter(model_path, data: np.ndarray, tmp_path,
                                check: str = "True") -> list[float]:
    """``genad.load(model_path).anomaly_score(data)`` in a new Python process (what a
    user's next session sees), after asserting the expression ``check`` on ``d``, the
    loaded detector."""
    import subprocess
    import sys

    np.save(tmp_path / "fresh_input.npy", data)
    code = ("import sys, numpy as np, genad; d = genad.load(sys.argv[1]); "
            f"assert {check}, d.get_params(); "
            "print(repr(d.anomaly_score(np.load(sys.argv[2])).tolist()))")
    proc = subprocess.run([sys.executable, "-c", code, str(model_path),
                           str(tmp_path / "fresh_input.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout)  # noqa: S307 - our own output

