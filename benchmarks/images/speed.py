"""Scoring speed of the conv AE on 128 x 128 gray images (issue 13's speed target).

``python -m benchmarks.images.speed`` fits ``genad.ConvAutoEncoder`` (the preset's
defaults, one epoch: speed does not depend on the weights) on 256 random 128 x 128 uint8
images and times ``anomaly_score`` on 1,024 more, best of three passes; it writes
``benchmarks/results/images-speed.{json,md}`` with the command, the machine's load and the
figure.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks._shared import atomic_write

SIDE, N_FIT, N_SCORE, PASSES = 128, 256, 1024, 3


def main() -> None:
    import genad
    from genad.data import ImageAdapter

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    fit = rng.integers(0, 255, size=(N_FIT, SIDE, SIDE), dtype=np.uint8)
    det = genad.ConvAutoEncoder(adapter=ImageAdapter(size=SIDE), epochs=1, random_state=0,
                                verbose=0).fit(fit)
    test = rng.integers(0, 255, size=(N_SCORE, SIDE, SIDE), dtype=np.uint8)
    load_start = os.getloadavg()[0]
    times = []
    for _ in range(PASSES):
        t0 = time.perf_counter()
        det.anomaly_score(test)
        times.append(time.perf_counter() - t0)
    result = {
        "command": "python -m benchmarks.images.speed",
        "model": "conv-ae (ConvAutoEncoder defaults, conv_width 16)",
        "input": f"{N_SCORE} random {SIDE}x{SIDE} gray uint8 images (array)",
        "images_per_s": N_SCORE / min(times),
        "seconds": times,
        "load_average": [load_start, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "genad": genad.__version__,
    }
    out = Path(__file__).resolve().parents[1] / "results"
    atomic_write(out / "images-speed.json", json.dumps(result, indent=2) + "\n")
    atomic_write(out / "images-speed.md", "\n".join([
        f"# `{result['command']}`", "",
        f"- {result['model']}, {result['input']}, best of {PASSES} passes: "
        f"**{result['images_per_s']:.0f} images/s** (target >= 200).",
        f"- {result['cpu_count']} CPU cores, load average {load_start:.2f} at the start; "
        f"python {result['python']}, genad {result['genad']}.", ""]))
    print(f"{result['images_per_s']:.0f} images/s", file=sys.stdout)


if __name__ == "__main__":
    main()
