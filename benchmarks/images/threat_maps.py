"""Where the conv AE's maps point on airport baggage threats (issue 13's map check).

``python -m benchmarks.images.threat_maps`` fits ``genad.ConvAutoEncoder`` on the
``xray-baggage`` training normals (the stored 192 px scans; ``ImageAdapter(size=64)``,
30 epochs, seed 0, as in the benchmark), then draws the **first eight threat images and
the first four normal images of the test split, in manifest order** (not picked by
score), each beside its overlay on the detector's fixed colour scale (a normal image
stays cold). It writes ``benchmarks/results/images-baggage-threat-maps.png`` and a
Markdown file with the command, each image's score and flag. SIXray has no boxes: whether
the hot regions fall on the objects is judged by eye and written in the results README
(``benchmarks/images/README.md``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks._shared import atomic_write
from benchmarks.images.datasets import load_set

N_THREATS, N_NORMALS, SIZE, EPOCHS, SEED = 8, 4, 64, 30, 0
STORED = 192  # the side of the stored scans: read as they are


def main() -> None:
    import genad
    from genad.data import ImageAdapter
    from genad.report.images import grid, side_by_side

    warnings.filterwarnings("ignore")
    data = load_set("xray-baggage", size=STORED)
    det = genad.ConvAutoEncoder(adapter=ImageAdapter(size=SIZE), epochs=EPOCHS,
                                random_state=SEED, verbose=0).fit(data.train)
    picked = np.r_[np.flatnonzero(data.y_test == 1)[:N_THREATS],
                   np.flatnonzero(data.y_test == 0)[:N_NORMALS]]
    images = data.test[picked]
    maps, scores = det.anomaly_map(images), det.anomaly_score(images)
    vmin, vmax = det.adapter_.map_scale()
    out = Path(__file__).resolve().parents[1] / "results"
    png = out / "images-baggage-threat-maps.png"
    grid([side_by_side(im, m, vmin=vmin, vmax=vmax) for im, m in zip(images, maps, strict=True)],
         ncols=4).save(png)
    rows = [f"| {k + 1} | {'threat' if data.y_test[i] else 'normal'} | {s:.2f} | "
            f"{'yes' if s > det.threshold_ else 'no'} |"
            for k, (i, s) in enumerate(zip(picked, scores, strict=True))]
    atomic_write(out / "images-baggage-threat-maps.md", "\n".join([
        "# `python -m benchmarks.images.threat_maps`", "",
        f"conv-ae, `ImageAdapter(size={SIZE})` (default `score=\"top_k\"`), {EPOCHS} epochs, "
        f"seed {SEED}, fitted on the {len(data.train)} `xray-baggage` training normals; the "
        f"first {N_THREATS} threat and {N_NORMALS} normal test images in manifest order, "
        f"read left to right, top to bottom in `{png.name}` (image, then its overlay; "
        f"colour scale {vmin:.3g} to {vmax:.3g}, fixed for all). Threshold "
        f"{det.threshold_:.3f} (target FPR 0.01 on held-out normals).", "",
        "| # | label | score | flagged |", "| ---: | --- | ---: | --- |", *rows, ""]))
    print(f"wrote {png}", file=sys.stdout)


if __name__ == "__main__":
    main()
