"""Seeded fits give the same model when several run at once in threads.

Training noise (dropout, denoising corruption, the VAE's sampling) comes from a per-fit
generator and weight initialisation is seeded under a lock, so threads cannot
interleave their draws from the process-global torch RNG.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import MODEL_NAMES, make_detector

_CASES = [(name, {}) for name in MODEL_NAMES] + [("ae", {"dropout": 0.3})]


def _data() -> np.ndarray:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    X[:, 1] = 2.0 * X[:, 0] + 0.1 * X[:, 1]
    return X


@pytest.mark.parametrize(("name", "extra"), _CASES, ids=[f"{n}{e or ''}" for n, e in _CASES])
def test_threaded_fits_match_the_serial_fit(name: str, extra: dict) -> None:
    X = _data()

    def fit_and_score(_: int) -> np.ndarray:
        det = make_detector(name, epochs=4, random_state=0, **extra)
        return det.fit(X).anomaly_score(X)

    serial = fit_and_score(0)
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(fit_and_score, range(3)))
    for scores in threaded:
        np.testing.assert_array_equal(scores, serial)
