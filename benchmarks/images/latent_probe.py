"""A probe, not a genad feature: does a distance in the conv AE's latent space separate
anomalies that its reconstruction error misses?

``python -m benchmarks.images.latent_probe SET [SET ...]`` fits ``genad.ConvAutoEncoder``
(``ImageAdapter(size=S)`` at the benchmark's resolution, 30 epochs, seed 0) on each set's
training normals, encodes the training and test images with the fitted encoder, scales
each code dimension by the training codes' mean and standard deviation, and scores each
test image by:

- ``knn1``, ``knn5``, ``knn20``: the mean Euclidean distance to its k nearest training
  codes;
- ``mahalanobis``: the Mahalanobis distance to the training codes' Gaussian;
- ``rec_top_k`` (genad's default image score) and ``rec_model`` (the mean squared
  reconstruction error), from the same fit.

It writes ``benchmarks/results/images-latent-probe.{json,md}`` (one row per set, image
AUROC of each score; a later run replaces the rows of the sets it names). The next step
it informs: a latent-density term beside the reconstruction error (``docs/status.md``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks._shared import atomic_write, command_line
from benchmarks.images.datasets import RESOLUTION, load_set

EPOCHS, SEED, KS = 30, 0, (1, 5, 20)
SCORES = (*(f"knn{k}" for k in KS), "mahalanobis", "rec_top_k", "rec_model")
OUT = Path(__file__).resolve().parents[1] / "results" / "images-latent-probe"


def _codes(det, images: np.ndarray) -> np.ndarray:
    import torch

    units = det.adapter_.samples(images).stacked()
    with torch.no_grad():
        return torch.cat([det.model_.encoder(units[i : i + 512])
                          for i in range(0, len(units), 512)]).double().numpy()


def probe(name: str) -> dict[str, object]:
    """The AUROC of each score on one set."""
    import torch

    import genad
    from genad.data import ImageAdapter
    from genad.metrics import auroc

    size = RESOLUTION[name]
    data = load_set(name, size=size)
    t0 = time.perf_counter()
    det = genad.ConvAutoEncoder(adapter=ImageAdapter(size=size), epochs=EPOCHS,
                                random_state=SEED, verbose=0).fit(data.train)
    fit_seconds = time.perf_counter() - t0
    train, test = _codes(det, data.train), _codes(det, data.test)
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-9
    train, test = (train - mean) / std, (test - mean) / std
    dist = torch.cdist(torch.from_numpy(test), torch.from_numpy(train))
    scores = {f"knn{k}": dist.topk(k, largest=False).values.mean(dim=1).numpy() for k in KS}
    precision = np.linalg.inv(np.cov(train.T) + 1e-6 * np.eye(train.shape[1]))
    scores["mahalanobis"] = np.einsum("ij,jk,ik->i", test, precision, test)
    scores["rec_top_k"] = det.anomaly_score(data.test)
    det.adapter_.score = "model"
    scores["rec_model"] = det.anomaly_score(data.test)
    return {"dataset": name, "resolution": size, "n_epochs": int(det.n_epochs_),
            "fit_seconds": round(fit_seconds, 1),
            "auroc": {k: float(auroc(data.y_test, v)) for k, v in scores.items()}}


def main(argv: list[str] | None = None) -> None:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    names = list(sys.argv[1:] if argv is None else argv)
    path = OUT.with_suffix(".json")
    doc = json.loads(path.read_text()) if path.exists() else {"commands": [], "rows": []}
    doc["commands"].append(command_line("python -m benchmarks.images.latent_probe", names))
    rows = {r["dataset"]: r for r in doc["rows"]}
    for name in names:
        rows[name] = probe(name)
        print(json.dumps(rows[name]), flush=True)
    doc["rows"] = [rows[k] for k in sorted(rows)]
    atomic_write(path, json.dumps(doc, indent=2) + "\n")
    head = "| set | px | " + " | ".join(SCORES) + " |"
    lines = ["# Latent-distance probe (`benchmarks/images/latent_probe.py`)", "",
             "Commands:", "", *(f"- `{c}`" for c in doc["commands"]), "",
             f"conv-ae, {EPOCHS} epochs, seed {SEED}; image AUROC of each score from one "
             "fit (the module docstring defines them).", "", head,
             "|" + " --- |" * 2 + " ---: |" * len(SCORES)]
    lines += [f"| `{r['dataset']}` | {r['resolution']} | "
              + " | ".join(f"{r['auroc'][s]:.3f}" for s in SCORES) + " |"
              for r in doc["rows"]]
    mnist = [r for r in doc["rows"] if r["dataset"].startswith("mnist-")]
    if mnist:
        lines += ["", f"MNIST leave-one-digit-out, mean over the {len(mnist)} digits run: "
                  + ", ".join(f"{s} {np.mean([r['auroc'][s] for r in mnist]):.3f}"
                              for s in SCORES)]
    atomic_write(OUT.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
