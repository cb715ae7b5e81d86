"""Study: input scaling, error normalisation, dropout and LR schedule, on train-split rows only.

Usage (from the repository root)::

    python -m benchmarks.tabular.scaling_study {creditcard,adbench} SEED
        [--model {ae,vae,pca-cae}] [--variants NAME,...] [--out benchmarks/results] [--report-only]

The split is the benchmark's own (:func:`benchmarks.tabular.datasets.split_70_30`); only its
*train* part is read (:func:`benchmarks.tabular.tuning.validation_split`: 80 % of the train
normals fit, the other 20 % plus every train anomaly validate). The test part is never read,
so a default chosen here can be evaluated without bias by ``python -m benchmarks.tabular``.

Some variants are not public options. They patch the tabular adapter for the duration of a
run: ``tail`` is the robust z beyond which values are log-compressed (the adapter's
``_TAIL``, 3 by default; ``inf`` = no compression) and ``center_scale`` replaces the
median / IQR statistics (``"mean-std"``: mean and standard deviation, still compressed
beyond ``tail``). ``cosine`` anneals the learning rate over 50 epochs (card fraud's
epoch count). ``latent_min`` / ``latent_div`` change the default latent size rule
``min(32, max(2, d // 3))`` to ``min(32, max(latent_min, d // latent_div))``. Everything
else is an estimator keyword.

Each run appends one JSON line to ``<out>/tabular-scaling-study.jsonl``; the Markdown
``<out>/tabular-scaling-study.md`` is rebuilt from every line after each data set.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.tabular import datasets as ds
from benchmarks.tabular.models import import_genad
from benchmarks.tabular.tuning import validation_split

__all__ = ["VARIANTS", "main"]

#: Study settings: estimator keywords plus the patched ``tail``, ``center_scale``, ``cosine``.
VARIANTS: dict[str, dict[str, Any]] = {
    "tail3": {"tail": 3.0},  # the current default
    "tail6": {"tail": 6.0},
    "tail10": {"tail": 10.0},
    "none": {"tail": math.inf},
    "standard": {"scaling": "standard"},
    "tail3-nonorm": {"normalize_errors": False},
    "standard-nonorm": {"scaling": "standard", "normalize_errors": False},
    "std-tail3": {"center_scale": "mean-std", "tail": 3.0},
    "std-tail5": {"center_scale": "mean-std", "tail": 5.0},
    "d2-tail3": {"dropout": 0.2},
    "d2-tail3-nonorm": {"dropout": 0.2, "normalize_errors": False},
    "d2-standard": {"dropout": 0.2, "scaling": "standard"},
    "d2-standard-nonorm": {"dropout": 0.2, "scaling": "standard", "normalize_errors": False},
    "d2-std-tail5": {"dropout": 0.2, "center_scale": "mean-std", "tail": 5.0},
    "cos": {"cosine": True},
    "d2-cos": {"dropout": 0.2, "cosine": True},
    "lr3e-3-cos": {"learning_rate": 3e-3, "cosine": True},
    "latent-min8": {"latent_min": 8},
    "latent-half": {"latent_div": 2},
    "latent-min8-half": {"latent_min": 8, "latent_div": 2},
    "latent-quarter": {"latent_div": 4},
    "latent-fifth": {"latent_div": 5},
    "conv-width-4": {"conv_width": 4},  # PCAConvAutoEncoder only (--model pca-cae)
}

COSINE_EPOCHS = 50
#: Variant keys that :func:`_patched` applies; the rest are estimator keywords.
PATCH_KEYS = ("tail", "center_scale", "cosine", "latent_min", "latent_div")
#: The variant with genad's defaults, against which the report compares the others.
DEFAULT = "tail3"
STEM = "tabular-scaling-study"


@contextlib.contextmanager
def _patched(tail: float | None = None, center_scale: str | None = None, cosine: bool = False,
             latent_min: int | None = None, latent_div: int | None = None) -> Iterator[None]:
    """Apply the study-only settings to genad's modules (None: unchanged); restore on exit."""
    tab = sys.modules["genad.data.tabular"]
    base = sys.modules["genad.models.base"].GenerativeModel
    detector = sys.modules["genad.detector"]
    old_tail, old_cs, old_step = tab._TAIL, tab.TabularAdapter._center_scale, base.train_step
    old_sizes = detector.default_mlp_sizes

    def sizes(n_features: int) -> tuple[list[int], int]:
        hidden, _ = old_sizes(n_features)
        return hidden, min(32, max(latent_min or 2, int(n_features) // (latent_div or 3)))

    def mean_std(self: Any, x: np.ndarray) -> tuple[float, float]:
        # the adapter's own "standard" statistics, while its transform keeps compressing
        return old_cs(SimpleNamespace(scaling="standard"), x)

    def cosine_step(self: Any, x: torch.Tensor, optimizers: list[Any]) -> Any:
        factor = 0.5 * (1 + math.cos(math.pi * self.epoch / COSINE_EPOCHS))
        for opt in optimizers:
            for group in opt.param_groups:
                group.setdefault("lr0", group["lr"])
                group["lr"] = group["lr0"] * factor
        return old_step(self, x, optimizers)

    if tail is not None:
        tab._TAIL = tail
    if center_scale == "mean-std":
        tab.TabularAdapter._center_scale = mean_std
    elif center_scale is not None:
        raise ValueError(f"unknown center_scale {center_scale!r}")
    if cosine:
        base.train_step = cosine_step
    if latent_min is not None or latent_div is not None:
        detector.default_mlp_sizes = sizes
    try:
        yield
    finally:
        tab._TAIL, tab.TabularAdapter._center_scale, base.train_step = (
            old_tail, old_cs, old_step)
        detector.default_mlp_sizes = old_sizes


def _data_sets(which: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    if which == "creditcard":
        yield ("creditcard", *ds.load_creditcard())
        return
    for path in ds.adbench_files():
        yield (path.stem, *ds.load_adbench(path))


def run_one(genad: Any, model: str, name: str, variant: str, seed: int,
            X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Fit one variant on the train-split fit rows; AUROC/AUPRC on the validation rows."""
    kw = dict(VARIANTS[variant])
    patch = {k: kw.pop(k) for k in PATCH_KEYS if k in kw}
    cls = {"ae": genad.AutoEncoder, "vae": genad.VAE, "pca-cae": genad.PCAConvAutoEncoder}[model]
    fit, X_val, y_val = validation_split(X, y, seed)
    t0 = time.perf_counter()
    with _patched(**patch):
        det = cls(random_state=seed, verbose=0, **kw).fit(fit)
        scores = det.anomaly_score(X_val)
    return dict(set=name, variant=variant, model=model, seed=seed,
                auroc=float(roc_auc_score(y_val, scores)),
                auprc=float(average_precision_score(y_val, scores)),
                sec=time.perf_counter() - t0)


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown: per data group and variant, mean AUROC/AUPRC over the complete (set, seed)s."""
    lines = ["# Scaling / normalisation / dropout / LR-schedule study (train-split rows only)",
             "", __doc__.split("\n\n")[3].replace("\n", " "), "",
             "Means are over the (set, seed) pairs that every listed variant completed, so "
             "variants in one table are compared on the same rows.", ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        group = "creditcard" if r["set"] == "creditcard" else "adbench"
        groups[(group, r.get("model", "ae"))].append(r)
    for (group, model), rs in sorted(groups.items()):
        # compare variants on the pairs they share; one table per set of variants run together
        by_pair: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in rs:
            by_pair[(r["set"], r["seed"])][r["variant"]] = r
        variants = [v for v in VARIANTS if any(v in d for d in by_pair.values())]
        lines += [f"## {group}, model `{model}`", "",
                  "| variant | settings | (set, seed) pairs | mean val AUROC | mean val AUPRC |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for v in variants:
            pairs = [d[v] for d in by_pair.values() if v in d and DEFAULT in d]
            if not pairs:
                continue
            lines.append(
                f"| `{v}` | `{json.dumps(VARIANTS[v], default=str)}` | {len(pairs)} | "
                f"{np.mean([p['auroc'] for p in pairs]):.4f} | "
                f"{np.mean([p['auprc'] for p in pairs]):.4f} |")
        base_pairs = [d for d in by_pair.values() if DEFAULT in d]
        lines += ["", f"Same pairs, the default (`{DEFAULT}`) alongside each variant:", "",
                  f"| variant | pairs | variant AUROC | `{DEFAULT}` AUROC | difference |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for v in variants:
            both = [d for d in base_pairs if v in d]
            if v == DEFAULT or not both:
                continue
            a = np.mean([d[v]["auroc"] for d in both])
            b = np.mean([d[DEFAULT]["auroc"] for d in both])
            lines.append(f"| `{v}` | {len(both)} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study for one data group and seed; return the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.tabular.scaling_study",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("data", choices=["creditcard", "adbench"])
    p.add_argument("seed", type=int)
    p.add_argument("--model", choices=["ae", "vae", "pca-cae"], default="ae")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    jsonl = out / f"{STEM}.jsonl"
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        print(f"unknown variants {unknown}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2

    def rebuild() -> None:
        rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
        (out / f"{STEM}.md").write_text(report(rows))

    if args.report_only:
        rebuild()
        return 0
    torch.set_num_threads(1)
    genad = import_genad()
    # the modules _patched reaches
    for module in ("genad.data.tabular", "genad.models.base", "genad.detector"):
        importlib.import_module(module)
    out.mkdir(parents=True, exist_ok=True)
    for name, X, y in _data_sets(args.data):
        for variant in names:
            row = run_one(genad, args.model, name, variant, args.seed, X, y)
            print(json.dumps(row), flush=True)
            with jsonl.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        rebuild()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
