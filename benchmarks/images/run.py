"""The image benchmark loop: data sets x seeds x models, with timing, memory and failures.

Usage (from the repository root)::

    python -m benchmarks.images [--sets GROUP|DATASET ...] [--models all|genad|peers|NAME ...]
        [--seeds 0 1 2] [--quick] [--epochs N] [--out benchmarks/results] [--name STEM]
        [--device auto] [--threads 2] [--score-repeats 3] [--resume]
        [--merge STEM ...] [--report-only]

Every (data set, seed, model) run becomes one entry of ``<out>/<name>.json``; the file and
its Markdown report are rewritten (atomically) after every data set, so an interrupted run
keeps what it finished. A model that fails to build, fit, score or map, or returns NaN /
inf scores, is recorded with ``status = "failed: <reason>"`` and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._shared import (
    PeakRSS,
    command_line,
    error_text,
    finish_run,
    load_parts,
    log,
    merge_parts,
    report_only,
    save_results,
    time_best,
    warning_messages,
)
from benchmarks.images import datasets as ds
from benchmarks.images import models as md
from benchmarks.images.report import write_report

__all__ = ["build_parser", "main", "merge_results", "run_one"]

SCHEMA = 1
THREADS = 2
#: MNIST digits run under ``--quick`` (unless ``--sets`` names data sets).
QUICK_DIGITS = (0, 1)
#: The keys every run entry has (metrics are None where they do not apply or failed).
RUN_KEYS = ("group", "dataset", "model", "family", "seed", "status", "image_auroc",
            "image_auprc", "pixel_auroc", "aupro", "fit_seconds", "seconds_per_epoch",
            "n_epochs", "images_per_s", "peak_rss_delta_mib")


def _error_text(exc: BaseException) -> str:
    return error_text(exc, limit=400, one_line=True)


def _nonfinite(values: np.ndarray) -> str | None:
    bad = int((~np.isfinite(values)).sum())
    return f"non-finite values for {bad}/{values.size}" if bad else None


def pixel_metric_functions() -> dict[str, Any]:
    """``{"pixel_auroc": f or None, "aupro": f or None}`` from :mod:`genad.metrics`.

    Imported lazily: the pixel metrics land in genad separately, and until then the
    entries say "not available".
    """
    import genad.metrics as gm

    return {"pixel_auroc": getattr(gm, "pixel_auroc", None), "aupro": getattr(gm, "aupro", None)}


def _pixel_metrics(masks: np.ndarray, maps: np.ndarray, entry: dict[str, Any]) -> None:
    """Fill ``pixel_auroc`` / ``aupro`` and say in ``pixel_status`` what happened."""
    notes = []
    for key, fn in pixel_metric_functions().items():
        if fn is None:
            notes.append(f"{key}: not available (genad.metrics has no {key} yet)")
            continue
        try:
            value = fn(masks, maps) if key == "pixel_auroc" else fn(masks, maps, fpr_limit=0.3)
            entry[key] = float(value)
        except Exception as exc:  # noqa: BLE001 - recorded; image metrics stay valid
            notes.append(f"{key}: failed: {_error_text(exc)}")
    entry["pixel_status"] = "; ".join(notes) if notes else "ok"


def _by_kind(y: np.ndarray, scores: np.ndarray, kind: np.ndarray | None) -> dict[str, float]:
    """AUROC of normals against each defect type alone (where the set names types)."""
    if kind is None:
        return {}
    from genad.metrics import auroc

    out = {}
    normal = y == 0
    for name in sorted(set(kind[y == 1].tolist())):
        sel = normal | (kind == name)
        out[name] = auroc(y[sel], scores[sel])
    return out


def run_one(spec: md.ModelSpec, data: ds.ImageSet, seed: int, ctx: md.BuildContext,
            score_repeats: int = 3) -> dict[str, Any]:
    """Build, fit and score one model on one data set; never raises.

    Returns
    -------
    dict
        The results entry (:data:`RUN_KEYS` and more). ``status`` is ``"ok"`` or
        ``"failed: <reason>"``, with ``stage`` (build, fit, score, map, metrics) and a
        traceback tail on failure.
    """
    from genad.metrics import auprc, auroc

    entry: dict[str, Any] = dict.fromkeys(RUN_KEYS)
    entry.update(group=data.group, dataset=data.dataset, model=spec.name, family=spec.family,
                 seed=seed, status="ok", **data.describe())
    stage = "build"
    gc.collect()
    mem = PeakRSS()
    mem.start()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught_list:
            warnings.simplefilter("always")
            caught = caught_list
            det = spec.build(seed, ctx, int(data.train.shape[1]))
            entry["params"] = det.params()

            stage = "fit"
            t0 = time.perf_counter()
            det.fit(data.train)
            entry["fit_seconds"] = time.perf_counter() - t0
            entry["n_epochs"] = det.n_epochs
            if det.epoch_seconds:
                entry["epoch_seconds"] = det.epoch_seconds
                entry["seconds_per_epoch"] = float(np.mean(det.epoch_seconds))
            entry.update(det.extra())

            stage = "score"
            scores, best = time_best(det.score, data.test, score_repeats)
            assert scores is not None
            entry["score_seconds_best"] = best
            entry["images_per_s"] = len(data.test) / max(best, 1e-12)
            problem = _nonfinite(scores)
            if problem is not None:
                raise FloatingPointError(f"scores: {problem}")

            stage = "metrics"
            entry["image_auroc"] = auroc(data.y_test, scores)
            entry["image_auprc"] = auprc(data.y_test, scores)
            alternatives = det.alternative_scores(data.test)
            if alternatives:
                entry["image_auroc_by_score"] = {k: auroc(data.y_test, v)
                                                 for k, v in alternatives.items()}
            by_kind = _by_kind(data.y_test, scores, data.test_kind)
            if by_kind:
                entry["image_auroc_by_kind"] = by_kind

            if data.masks is None:
                entry["pixel_status"] = "no masks in this data set"
            elif not det.has_map:
                entry["pixel_status"] = "the model gives no pixel map"
            else:
                stage = "map"
                t0 = time.perf_counter()
                maps = det.anomaly_map(data.test)
                entry["map_seconds"] = time.perf_counter() - t0
                if maps.shape != data.masks.shape:
                    raise ValueError(f"anomaly_map returned shape {maps.shape}, expected "
                                     f"{data.masks.shape}")
                problem = _nonfinite(maps)
                if problem is not None:
                    raise FloatingPointError(f"maps: {problem}")
                stage = "pixel metrics"
                _pixel_metrics(data.masks, maps, entry)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the run goes on
        entry.update(status=f"failed: {_error_text(exc)}", stage=stage,
                     traceback=traceback.format_exc(limit=-4).splitlines()[-12:])
    finally:
        mem.stop()
    entry["peak_rss_delta_mib"] = mem.delta_mib
    messages = warning_messages(caught)
    if messages:
        entry["warnings"] = [m[:300] for m in messages[:5]]
    return entry


# --------------------------------------------------------------------------- run-wide


def _versions() -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "sklearn", "PIL", "torch", "genad"):
        if name == "torch" and "torch" not in sys.modules:
            out[name] = "not imported (peers only)"
            continue
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except Exception as exc:  # noqa: BLE001
            out[name] = f"not importable ({type(exc).__name__})"
    genad = sys.modules.get("genad")
    if genad is not None and getattr(genad, "__file__", None):
        src = Path(genad.__file__).resolve().parents[1]
        try:
            commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        out["genad_source"] = str(src) + (f" at commit {commit}" if commit else "")
    return out


def _machine(threads: int) -> dict[str, Any]:
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "threads": threads}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in fh
                                     if line.startswith("model name"))
        with open("/proc/meminfo") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal"))
            info["mem_total_gib"] = round(kib / 2**20, 1)
    except (OSError, StopIteration):
        pass
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["cuda_available"] = bool(torch.cuda.is_available())
    return info


def _split_tokens(values: Sequence[str] | None) -> list[str] | None:
    """Accept both ``--x a b`` and ``--x a,b``."""
    if values is None:
        return None
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m benchmarks.images``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.images",
        description="genad image benchmark: genad's image detectors against pixel-space "
        "peers on the image data sets of $GENAD_DATA.")
    p.add_argument("--sets", nargs="*", default=None,
                   help=f"groups ({', '.join(ds.GROUPS)}), data sets (e.g. "
                   "xray-baggage-matched, mnist-3) or all (default all)")
    p.add_argument("--models", nargs="*", default=None,
                   help="model names, genad, peers or all (default all): "
                   + ", ".join(s.name for s in md.MODEL_SPECS))
    p.add_argument("--seeds", nargs="*", default=None,
                   help="seeds (default 0 1 2; --quick: 0)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: seed 0, {md.QUICK_EPOCHS} epochs, MNIST digits "
                   f"{', '.join(map(str, QUICK_DIGITS))} only; writes images-quick.*")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs of every genad model (default {md.EPOCHS})")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--name", default=None,
                   help="output file stem (default images; --quick: images-quick)")
    p.add_argument("--device", default="auto", help="device for the genad models")
    p.add_argument("--threads", type=int, default=THREADS,
                   help=f"torch and BLAS threads (default {THREADS})")
    p.add_argument("--score-repeats", type=int, default=3,
                   help="timed scoring passes over the test set; the best is reported")
    p.add_argument("--resume", action="store_true",
                   help="keep the ok entries of an existing results file and run the rest")
    p.add_argument("--merge", nargs="*", default=None,
                   help="merge these result stems (read from --out or <out>/<name>/parts/) "
                   "into --name without running anything; a later file wins on the same "
                   "(data set, seed, model)")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild the Markdown from the JSON")
    return p



def merge_results(parts: Sequence[dict[str, Any]], stems: Sequence[str], command: str
                  ) -> dict[str, Any]:
    """Merge results of part runs: runs keyed by (data set, seed, model), later parts win.

    The merged ``meta`` is the first part's, with every part's invocations (then the merge
    command), the union of sets, seeds and models, every data set's description, and
    ``merged_from``. Per-epoch time lists are dropped (their mean and count stay). When the
    parts ran with different ``--epochs``, ``settings["epochs"]`` lists each value once
    (sorted); each run's ``n_epochs`` says what it trained.
    """
    merged = merge_parts(parts, stems, command, sorted_keys=("seeds",))
    meta = merged["meta"]
    epochs = sorted({p["meta"].get("settings", {}).get("epochs") for p in parts} - {None})
    if len(epochs) > 1:
        meta["settings"]["epochs"] = epochs
    meta["datasets"] = {k: v for p in parts for k, v in p["meta"].get("datasets", {}).items()}
    meta["model_info"] = {k: v for p in parts
                          for k, v in p["meta"].get("model_info", {}).items()}
    return merged


def _merge(out_dir: Path, stems: list[str], json_path: Path, md_path: Path,
           command: str) -> int:
    parts = load_parts(out_dir, stems, json_path)
    if parts is None:
        return 2
    if not parts:
        log("--merge needs at least one stem")
        return 2
    merged = merge_results(parts, stems, command)
    save_results(merged, json_path, md_path, write_report)
    log(f"merged {len(stems)} files, {len(merged['runs'])} runs -> {json_path}, {md_path}")
    return 0


def _dataset_meta(data: ds.ImageSet) -> dict[str, Any]:
    return json.loads(json.dumps(data.meta, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = build_parser().parse_args(argv)
    command = command_line("python -m benchmarks.images", argv)
    out_dir = Path(args.out)
    stem = args.name or ("images-quick" if args.quick else "images")
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"

    if args.merge is not None:
        return _merge(out_dir, _split_tokens(args.merge) or [], json_path, md_path, command)
    if args.report_only:
        return report_only(json_path, md_path, write_report)

    try:
        specs = md.resolve_models(_split_tokens(args.models))
        set_tokens = _split_tokens(args.sets)
        datasets = ds.resolve_sets(set_tokens)
        seeds = [int(s) for s in _split_tokens(args.seeds) or []] or (
            [0] if args.quick else [0, 1, 2])
    except ValueError as exc:
        log(str(exc))
        return 2
    if args.quick and not any(t in ds.DATASETS and t.startswith("mnist-")
                              for t in set_tokens or []):
        datasets = [d for d in datasets if not d.startswith("mnist-")
                    or int(d.split("-")[1]) in QUICK_DIGITS]
    epochs = args.epochs if args.epochs is not None else (
        md.QUICK_EPOCHS if args.quick else md.EPOCHS)
    ctx = md.BuildContext(epochs=epochs, device=args.device)
    if any(s.family == "genad" for s in specs):
        import torch

        torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)

    root = ds.data_root()
    settings = {
        "quick": args.quick, "sets": datasets, "seeds": seeds,
        "models": [s.name for s in specs], "epochs": epochs, "device": args.device,
        "threads": args.threads, "score_repeats": args.score_repeats,
        "pca_variance": md.PCA_VARIANCE, "iforest_side": md.IFOREST_SIDE,
        "data_root": str(root.resolve()),
    }
    invocation: dict[str, Any] = {
        "command": command, "started": dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="seconds"), "finished": None, "load_avg_start": list(os.getloadavg())}
    runs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    dataset_meta: dict[str, Any] = {}
    if args.resume and json_path.exists():
        old = json.loads(json_path.read_text())
        old_settings = old.get("meta", {}).get("settings", {})
        if (old_settings.get("quick"), old_settings.get("epochs")) != (args.quick, epochs):
            log(f"--resume: {json_path} was made with other settings (quick/epochs); use "
                "another --name or drop --resume")
            return 2
        runs = [r for r in old.get("runs", []) if r.get("status") == "ok"]
        history = old.get("meta", {}).get("invocations", [])
        dataset_meta = old.get("meta", {}).get("datasets", {})
        log(f"--resume: {len(runs)} ok entries kept from {json_path}")
    done = {(r["dataset"], r["seed"], r["model"]) for r in runs}
    meta: dict[str, Any] = {
        "schema": SCHEMA, "settings": settings, "invocations": history + [invocation],
        "machine": _machine(args.threads), "versions": _versions(),
        "model_info": {s.name: {"family": s.family, "description": s.description}
                       for s in md.MODEL_SPECS},
        "datasets": dataset_meta,
    }
    out_dir.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        invocation["load_avg_now"] = list(os.getloadavg())
        meta["versions"] = _versions()
        save_results({"meta": meta, "runs": runs}, json_path, md_path, write_report)

    total = len(datasets) * len(seeds) * len(specs)
    log(f"{command}\n{len(datasets)} data sets x {len(seeds)} seeds x {len(specs)} models = "
        f"{total} runs; data from {root.resolve()}; results -> {json_path}")
    t_start = time.perf_counter()
    count = 0
    for name in datasets:
        todo = [(seed, spec) for seed in seeds for spec in specs
                if (name, seed, spec.name) not in done]
        count += len(seeds) * len(specs) - len(todo)
        if not todo:
            continue
        try:
            data = ds.load_set(name, root)
        except Exception as exc:  # noqa: BLE001 - a set that cannot load fails its runs
            error = _error_text(exc)
            log(f"{name}: cannot load: {error}")
            for seed, spec in todo:
                runs.append({**dict.fromkeys(RUN_KEYS), "group": ds.group_of(name),
                             "dataset": name, "model": spec.name, "family": spec.family,
                             "seed": seed, "status": f"failed: {error}", "stage": "load"})
            save()
            continue
        meta["datasets"][name] = _dataset_meta(data)
        for seed, spec in todo:
            count += 1
            entry = run_one(spec, data, seed, ctx, args.score_repeats)
            runs.append(entry)
            head = (f"[{count}/{total} {time.perf_counter() - t_start:6.0f}s] {name} s{seed} "
                    f"{spec.name}")
            if entry["status"] == "ok":
                pix = (f" pixAUROC={entry['pixel_auroc']:.4f}"
                       if entry.get("pixel_auroc") is not None else "")
                spe = entry.get("seconds_per_epoch")
                log(f"{head}: AUROC={entry['image_auroc']:.4f} AUPRC={entry['image_auprc']:.4f}"
                    f"{pix} fit={entry['fit_seconds']:.1f}s"
                    + (f" {spe:.2f}s/ep" if spe else "")
                    + f" {entry['images_per_s']:.0f} img/s")
            else:
                log(f"{head}: {entry['status']} (at {entry.get('stage')})")
        del data
        save()

    return finish_run(invocation, t_start, runs, save, json_path, md_path)
