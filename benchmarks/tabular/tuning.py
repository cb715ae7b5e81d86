"""Choose AutoEncoder settings for card fraud without touching a test part.

Usage (from the repository root)::

    python -m benchmarks.tabular.tuning [--seeds 0,1,2] [--variants NAME,...]
        [--out benchmarks/results] [--threads 1]

For every seed the benchmark's own split is made
(:func:`benchmarks.tabular.datasets.split_70_30`). Only its *train* part is used here:
80 % of the train normals fit the model, and the other 20 % plus every train fraud (frauds
are never used for fitting) form the validation rows on which AUROC and AUPRC are
measured. The test part is not read, so a setting chosen from this table can be evaluated
on the test part by ``python -m benchmarks.tabular`` without bias.

Writes ``<out>/tabular-tuning-creditcard.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.tabular import datasets as ds
from benchmarks.tabular.models import import_genad

__all__ = ["VARIANTS", "main", "validation_split"]

#: AutoEncoder keyword arguments of each variant (on top of the defaults).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "dropout-0.1": {"dropout": 0.1},
    "dropout-0.2": {"dropout": 0.2},
    "dropout-0.3": {"dropout": 0.3},
    "dropout-0.2-epochs100": {"dropout": 0.2, "epochs": 100},
    "dropout-0.2-pyod-shape": {"dropout": 0.2, "hidden_sizes": [64], "latent_dim": 32},
    "batch64-epochs20": {"batch_size": 64, "epochs": 20},
}

VALIDATION_NORMALS = 0.2


def validation_split(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(fit normals, validation X, validation y)`` from the benchmark's train part."""
    X_tr, _, y_tr, _ = ds.split_70_30(X, y, seed)
    normals, frauds = X_tr[y_tr == 0], X_tr[y_tr == 1]
    order = np.random.default_rng(100 + seed).permutation(len(normals))
    n_fit = int((1 - VALIDATION_NORMALS) * len(normals))
    fit, held = normals[order[:n_fit]], normals[order[n_fit:]]
    X_val = np.vstack([held, frauds])
    y_val = np.r_[np.zeros(len(held), dtype=np.int64), np.ones(len(frauds), dtype=np.int64)]
    return fit, X_val, y_val


def _report(runs: list[dict[str, Any]], command: str) -> str:
    lines = [f"# `{command}`", "",
             "Card-fraud AutoEncoder settings, measured on validation rows of the *train* "
             "split only (20 % of the train normals held out from fitting + every train "
             "fraud); the test part is never read. See `benchmarks/tabular/tuning.py`.", "",
             "| variant | params | seeds | val AUROC | val AUPRC | epochs run | fit s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == name]
        roc = [r["val_auroc"] for r in rs]
        prc = [r["val_auprc"] for r in rs]
        lines.append(
            f"| `{name}` | `{json.dumps(VARIANTS[name])}` | {len(rs)} | "
            f"{np.mean(roc):.4f} ± {np.std(roc):.4f} | "
            f"{np.mean(prc):.4f} ± {np.std(prc):.4f} | "
            f"{np.mean([r['n_epochs'] for r in rs]):.0f} | "
            f"{np.mean([r['fit_seconds'] for r in rs]):.0f} |")
    lines += ["", "Per seed:", "", "| variant | seed | val AUROC | val AUPRC |",
              "| --- | ---: | ---: | ---: |"]
    lines += [f"| `{r['variant']}` | {r['seed']} | {r['val_auroc']:.4f} | {r['val_auprc']:.4f} |"
              for r in runs]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tuning grid; return the process exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.tabular.tuning",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma list; known: {', '.join(VARIANTS)}")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        print(f"unknown variants {sorted(unknown)}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        genad = import_genad()
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    X, y = ds.load_creditcard()
    command = "python -m benchmarks.tabular.tuning " + shlex.join(
        list(sys.argv[1:] if argv is None else argv))
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    runs: list[dict[str, Any]] = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        fit, X_val, y_val = validation_split(X, y, seed)
        for name in names:
            t0 = time.perf_counter()
            det = genad.AutoEncoder(random_state=seed, verbose=0, **VARIANTS[name]).fit(fit)
            seconds = time.perf_counter() - t0
            scores = det.anomaly_score(X_val)
            run = dict(variant=name, params=VARIANTS[name], seed=seed,
                       val_auroc=float(roc_auc_score(y_val, scores)),
                       val_auprc=float(average_precision_score(y_val, scores)),
                       n_epochs=int(det.n_epochs_), fit_seconds=seconds,
                       n_fit=len(fit), n_val=len(y_val), n_val_frauds=int(y_val.sum()))
            runs.append(run)
            print(f"seed {seed} {name}: val AUROC={run['val_auroc']:.4f} "
                  f"AUPRC={run['val_auprc']:.4f} ({seconds:.0f} s)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(command=command, started=started,
                finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                torch_threads=args.threads)
    (out / "tabular-tuning-creditcard.json").write_text(
        json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    (out / "tabular-tuning-creditcard.md").write_text(_report(runs, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
