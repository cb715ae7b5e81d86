"""Rerun the data READMEs' baseline figures with this benchmark's loaders and peers.

Usage (from the repository root)::

    python -m benchmarks.images.readme_check [--sets GROUP|DATASET ...] [--out DIR]
        [--threads 1]

Every :class:`~benchmarks.images.reference.Reference` that has a ``check`` is rerun under
the README's own protocol: the images loaded by :func:`~benchmarks.images.datasets.load_set`
at the README's input size (Pillow, bilinear, straight from the stored file), then
``PCA(n_components=..., svd_solver="full")`` reconstruction error,
``IsolationForest(n_estimators=200, random_state=0)`` or the mean pixel value (brighter =
more anomalous), fitted on the train normals. A README figure ``matches`` when ours
rounds to it (at the README's precision, 3 decimals but one at 2), is ``close`` within 0.01
and a ``mismatch`` beyond.
Writes ``<out>/images-readme-check.{json,md}``. This checks the loaders and the peers'
code; the benchmark's own peers run at the benchmark's resolution and settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._markdown import fmt, md_table
from benchmarks._shared import command_line
from benchmarks.images import datasets as ds
from benchmarks.images import models as md
from benchmarks.images.reference import REFERENCES, Check, Reference

__all__ = ["agreement", "main", "run_check"]


def agreement(ours: float | None, reference: float | None, digits: int = 3) -> str:
    """``"matches"`` (ours rounds to the README figure), ``"close"`` (within 0.01),
    ``"mismatch"``, or ``"–"`` when either is missing.

    Examples
    --------
    >>> agreement(0.93348, 0.933), agreement(0.9391, 0.933), agreement(0.95, 0.933)
    ('matches', 'close', 'mismatch')
    """
    if ours is None or reference is None:
        return "–"
    if abs(round(ours, digits) - reference) < 0.5 * 10 ** -digits:
        return "matches"
    return "close" if abs(ours - reference) <= 0.01 else "mismatch"


def _contender(check: Check) -> md.Contender:
    if check.method == "pca":
        param = check.param if check.param is not None else 0.9
        return md.PCAContender(int(param) if param >= 1 else param)
    if check.method == "iforest":
        return md.IsolationForestContender(seed=0, side=check.size)
    if check.method == "mean":
        return md.MeanIntensityContender()
    raise ValueError(f"unknown check method {check.method!r}")


def run_check(refs: Sequence[Reference], root: Path | None = None) -> list[dict[str, Any]]:
    """Rerun ``refs`` (each with a ``check``); one result row per reference."""
    from genad.metrics import auprc, auroc

    cache: dict[tuple[str, int, str], ds.ImageSet] = {}
    fitted: dict[tuple[str, Check], tuple[np.ndarray, dict[str, Any]]] = {}
    rows = []
    for ref in refs:
        check = ref.check
        assert check is not None
        key = (ref.dataset, check.size, check.mode)
        if key not in cache:
            cache[key] = ds.load_set(ref.dataset, root, size=check.size, mode=check.mode)
        data = cache[key]
        if (ref.dataset, check) not in fitted:
            det = _contender(check)
            t0 = time.perf_counter()
            det.fit(data.train)
            scores = det.score(data.test)
            fitted[(ref.dataset, check)] = (scores, {**det.extra(),
                                                     "seconds": time.perf_counter() - t0})
        scores, extra = fitted[(ref.dataset, check)]
        y = data.y_test
        if ref.subset:
            kind = ref.subset.split(" vs ")[1]
            assert data.test_kind is not None
            sel = (y == 0) | (data.test_kind == kind)
            y, scores = y[sel], scores[sel]
        ours_roc, ours_prc = auroc(y, scores), auprc(y, scores)
        rows.append({
            "dataset": ref.dataset, "method": ref.method, "input": ref.input,
            "subset": ref.subset, "readme_auroc": ref.auroc, "readme_auprc": ref.auprc,
            "auroc": ours_roc, "auprc": ours_prc,
            "auroc_agreement": agreement(ours_roc, ref.auroc, ref.digits),
            "auprc_agreement": agreement(ours_prc, ref.auprc, ref.digits), **extra})
    return rows


def render(rows: Sequence[dict[str, Any]], command: str, started: str) -> str:
    """Markdown of the check."""
    table = [[f"`{r['dataset']}`", r["method"] + (f" — {r['subset']}" if r["subset"] else ""),
              r["input"], str(r.get("pca_components", "")), fmt(r["readme_auroc"]),
              fmt(r["auroc"], 4), r["auroc_agreement"], fmt(r["readme_auprc"]),
              fmt(r["auprc"], 4), r["auprc_agreement"]] for r in rows]
    counts = {k: sum(r["auroc_agreement"] == k for r in rows)
              for k in ("matches", "close", "mismatch")}
    return "\n".join([
        f"# `{command}`", "",
        f"The data READMEs' baseline figures rerun with `benchmarks.images` loaders and peer "
        f"code under each README's protocol (started {started} UTC). AUROC: "
        f"{counts['matches']} match to 3 decimals, {counts['close']} within 0.01, "
        f"{counts['mismatch']} further off.", "",
        *md_table(["data set", "method", "input", "k", "README AUROC", "ours", "",
                   "README AUPRC", "ours", ""], table, "llllrrlrrl"),
        "", "`k`: the PCA components kept. `matches` = ours rounds to the "
        "README figure (at its precision: 3 decimals, 0.82 for the content-box mean), "
        "`close` = within 0.01.", ""])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; return the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.images.readme_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="*", default=None, help="groups or data sets (default all)")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--name", default="images-readme-check", help="output file stem")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = p.parse_args(argv)
    command = command_line("python -m benchmarks.images.readme_check", argv)
    try:
        wanted = set(ds.resolve_sets(args.sets))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    refs = [r for r in REFERENCES if r.check is not None and r.dataset in wanted]
    rows = run_check(refs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": {"command": command, "started": started,
                        "load_avg": list(os.getloadavg()),
                        "data_root": str(ds.data_root().resolve())}, "rows": rows}
    (out / f"{args.name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    (out / f"{args.name}.md").write_text(render(rows, command, started))
    for r in rows:
        print(f"{r['dataset']:22s} {r['input']:11s} {r['method'][:44]:44s} "
              f"{r['subset'] or '':18s} README {r['readme_auroc']:.3f} ours {r['auroc']:.4f} "
              f"{r['auroc_agreement']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
