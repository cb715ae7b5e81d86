"""The benchmark loop: splits x models, with timing, memory and failure recording.

Usage (from the repository root)::

    python -m benchmarks.tabular [--quick] [--sets creditcard,nsl-kdd,adbench]
        [--seeds 0,1,2] [--models all|genad|peers|NAME,...] [--out benchmarks/results]
        [--resume] [--adbench NAME,...] [--epochs N] [--device auto|cpu|cuda]
        [--score-repeats 3] [--report-only]

Every (data set, seed, model) run becomes one entry of ``<out>/<name>.json``; the file
is rewritten (atomically) after every split, and the Markdown report after every split
too, so an interrupted run loses at most the split in progress. A model that fails to
build, fit or score, or that returns NaN / inf scores, is recorded with its error and
the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

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
from benchmarks.tabular import datasets as ds
from benchmarks.tabular import models as md
from benchmarks.tabular.report import write_report

__all__ = ["main", "run_one"]

SCHEMA = 1
TORCH_THREADS = 2


# --------------------------------------------------------------------------- one run


def _nonfinite_message(scores: np.ndarray) -> str | None:
    """Describe NaN / inf scores, or return None when all are finite."""
    n = scores.size
    n_nan = int(np.isnan(scores).sum())
    n_inf = int(np.isinf(scores).sum())
    if n_nan == 0 and n_inf == 0:
        return None
    parts = []
    if n_nan:
        parts.append(f"NaN for {n_nan}/{n} rows")
    if n_inf:
        parts.append(f"inf for {n_inf}/{n} rows")
    return "non-finite scores: " + ", ".join(parts)


def _threshold_metrics(
    det: md.Contender, X_train: Any, X_test: Any, y_test: np.ndarray, entry: dict[str, Any]
) -> None:
    """Add F1 / precision / recall / test FPR at the detector's threshold to ``entry``."""
    pred, rule = det.predict(X_test, X_train)
    tp = int(((pred == 1) & (y_test == 1)).sum())
    fp = int(((pred == 1) & (y_test == 0)).sum())
    fn = int(((pred == 0) & (y_test == 1)).sum())
    n_neg = int((y_test == 0).sum())
    entry.update(
        f1=float(f1_score(y_test, pred, zero_division=0)),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        test_fpr=fp / n_neg if n_neg else None,
        threshold_rule=rule,
    )


def run_one(
    spec: md.ModelSpec, split: ds.Split, ctx: md.BuildContext, score_repeats: int = 3
) -> dict[str, Any]:
    """Build, fit and score one model on one split; never raises.

    Returns the results entry: metrics and costs when ``status == "ok"``, else
    ``status`` in ``{"error", "nonfinite"}`` with ``error``, ``stage`` and a traceback tail.
    """
    entry: dict[str, Any] = {
        "group": split.group,
        "dataset": split.dataset,
        "seed": split.seed,
        "model": spec.name,
        "family": spec.family,
        "status": "ok",
        **split.describe(),
    }
    stage = "build"
    if spec.family == "peer":
        # encode / scale once per split outside the measurement; a failure here recurs
        # inside the measured block below and is recorded there
        try:
            split.peer_view()
        except Exception:  # noqa: BLE001
            pass
    gc.collect()
    mem = PeakRSS()
    mem.start()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught_list:
            warnings.simplefilter("always")
            caught = caught_list
            det = spec.build(split.seed, ctx)
            entry["params"] = det.params()
            if det.view == "raw":
                X_train, X_test = split.X_train, split.X_test
            else:
                stage = "encode"
                X_train, X_test = split.peer_view()
            entry["n_features_model_input"] = int(np.shape(X_train)[1])

            stage = "fit"
            t0 = time.perf_counter()
            det.fit(X_train)
            entry["fit_seconds"] = time.perf_counter() - t0
            entry["n_epochs"] = det.n_epochs
            if det.epoch_seconds:
                entry["epoch_seconds"] = det.epoch_seconds
                entry["sec_per_epoch"] = float(np.mean(det.epoch_seconds))

            stage = "score"
            scores, best = time_best(det.score, X_test, score_repeats)
            assert scores is not None
            entry["score_seconds_best"] = best
            entry["score_rows_per_s"] = split.n_test / max(best, 1e-12)

            stage = "metrics"
            problem = _nonfinite_message(scores)
            if problem is not None:
                entry.update(status="nonfinite", stage="score", error=problem)
            else:
                entry["auroc"] = float(roc_auc_score(split.y_test, scores))
                entry["auprc"] = float(average_precision_score(split.y_test, scores))
                if split.threshold_metrics:
                    stage = "threshold"
                    try:
                        _threshold_metrics(det, X_train, X_test, split.y_test, entry)
                    except Exception as exc:  # noqa: BLE001 - recorded, AUROC is kept
                        entry["threshold_error"] = error_text(exc)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the run goes on
        entry.update(status="error", stage=stage, error=error_text(exc),
                     traceback=traceback.format_exc(limit=-4).splitlines()[-12:])
    finally:
        mem.stop()
    entry["peak_rss_delta_mib"] = mem.delta_mib
    entry["rss_before_mib"] = None if mem.baseline is None else mem.baseline / 2**20
    messages = warning_messages(caught)
    if messages:
        entry["warnings"] = [m[:300] for m in messages[:5]]
        entry["n_warning_kinds"] = len(messages)
    return entry


# --------------------------------------------------------------------------- run-wide


def _versions() -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "sklearn", "torch", "pyod"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except Exception as exc:  # noqa: BLE001
            out[name] = f"not importable ({type(exc).__name__})"
    try:
        genad = md.import_genad()
        out["genad"] = str(getattr(genad, "__version__", "?"))
    except ImportError as exc:
        out["genad"] = str(exc)
    return out


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    info["mem_total_gib"] = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        pass
    return info


def _parse_ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _parse_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m benchmarks.tabular``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.tabular",
        description="genad tabular benchmark: creditcard, NSL-KDD and ADBench against "
        "PyOD / scikit-learn peers.",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: seed 0, creditcard + NSL-KDD + 6 small ADBench sets, "
                   f"{md.QUICK_EPOCHS} epochs for every neural model")
    p.add_argument("--sets", default=",".join(ds.ALL_GROUPS),
                   help="comma list of creditcard, nsl-kdd, adbench (default: all)")
    p.add_argument("--seeds", default=None,
                   help="comma list of seeds (default 0,1,2; --quick: 0)")
    p.add_argument("--models", default="all",
                   help="comma list of model names, name prefixes (pyod-ae), or all / genad "
                   "/ peers (default all)")
    p.add_argument("--adbench", default=None,
                   help="restrict ADBench to these file stems (or substrings), comma list")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--name", default=None,
                   help="output file stem (default tabular; --quick: tabular-quick)")
    p.add_argument("--resume", action="store_true",
                   help="keep the entries of an existing results file and skip every "
                   "(set, seed, model) already recorded as ok or nonfinite; failed "
                   "entries are run again")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the epochs of every neural model (default: each model's "
                   "own; --quick sets it)")
    p.add_argument("--device", default="auto", help="device for the neural models")
    p.add_argument("--threads", type=int, default=TORCH_THREADS,
                   help=f"torch.set_num_threads (default {TORCH_THREADS}); 1 is far faster "
                   "than 2 when other processes keep the cores busy")
    p.add_argument("--score-repeats", type=int, default=3,
                   help="scoring passes timed on the test set; the best is reported")
    p.add_argument("--merge", default=None,
                   help="comma list of result stems to merge into --name (default tabular), "
                   "each read from --out or from <out>/<name>/parts/: runs are "
                   "concatenated, a later file wins on the same (set, seed, model); every "
                   "invocation's command is kept")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild the Markdown report from the JSON")
    return p


def _settings_key(settings: dict[str, Any]) -> tuple[Any, ...]:
    return (settings.get("quick"), settings.get("epochs"), json.dumps(settings.get("matched")))


def _merge(out_dir: Path, stems: list[str], json_path: Path, md_path: Path,
           command: str) -> int:
    """Merge several results files (e.g. runs split over processes) into one.

    Each part ``<stem>.json`` is read from ``out_dir`` (where a run writes it) or from
    :func:`benchmarks._shared.parts_dir` (where merged parts are kept); a stem found in
    both is refused.
    The merged file keeps every entry but not the per-epoch time lists
    (``epoch_seconds``): their mean (``sec_per_epoch``) and count (``n_epochs``) stay, and
    the lists stay in the part files. Without this the merged file of the full protocol
    is over 4 MiB, two thirds of it epoch timings.
    """
    parts = load_parts(out_dir, stems, json_path)
    if parts is None:
        return 2
    results = merge_parts(parts, stems, command, sorted_keys=("sets", "seeds"))
    save_results(results, json_path, md_path, write_report)
    log(f"merged {len(stems)} files, {len(results['runs'])} runs -> {json_path}, {md_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = build_parser().parse_args(argv)
    command = command_line("python -m benchmarks.tabular", argv)
    out_dir = Path(args.out)
    stem = args.name or ("tabular-quick" if args.quick else "tabular")
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"

    if args.merge:
        return _merge(out_dir, _parse_list(args.merge) or [], json_path, md_path, command)

    if args.report_only:
        return report_only(json_path, md_path, write_report)

    try:
        specs = md.resolve_models(_parse_list(args.models))
    except ValueError as exc:
        log(str(exc))
        return 2
    if any(s.family == "genad" for s in specs):
        try:
            md.import_genad()
        except ImportError as exc:
            log(str(exc))
            return 2
    groups = [g.lower() for g in (_parse_list(args.sets) or [])]
    unknown = [g for g in groups if g not in ds.ALL_GROUPS]
    if unknown:
        log(f"unknown set(s) {unknown}; choose from {', '.join(ds.ALL_GROUPS)}")
        return 2
    seeds = _parse_ints(args.seeds) if args.seeds else ([0] if args.quick else [0, 1, 2])
    adbench_names = _parse_list(args.adbench)
    if args.quick and adbench_names is None:
        adbench_names = list(ds.QUICK_ADBENCH)
    epochs = args.epochs if args.epochs is not None else (md.QUICK_EPOCHS if args.quick else None)
    ctx = md.BuildContext(epochs=epochs, device=args.device)

    import torch

    torch.set_num_threads(args.threads)
    root = ds.data_root()
    adbench_files = ds.select_adbench(adbench_names, root) if "adbench" in groups else []
    datasets_planned = [g for g in ds.ALL_GROUPS if g in groups and g != "adbench"]
    datasets_planned += [p.stem for p in adbench_files]
    seeds_for = {g: seeds for g in ds.ALL_GROUPS}

    settings = {
        "quick": args.quick,
        "sets": [g for g in ds.ALL_GROUPS if g in groups],
        "seeds": seeds,
        "models": [s.name for s in specs],
        "adbench": adbench_names,
        "epochs": epochs,
        "device": args.device,
        "torch_threads": args.threads,
        "score_repeats": args.score_repeats,
        "matched": md.MATCHED,
        "data_root": str(root.resolve()),
    }
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    invocation = {"command": command, "started": started, "finished": None,
                  "load_avg_start": list(os.getloadavg())}
    runs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    if args.resume and json_path.exists():
        old = json.loads(json_path.read_text())
        old_settings = old.get("meta", {}).get("settings", {})
        if _settings_key(old_settings) != _settings_key(settings):
            log(f"--resume: {json_path} was made with other settings (quick/epochs/matched: "
                f"{_settings_key(old_settings)} vs {_settings_key(settings)}); use another "
                "--name or drop --resume")
            return 2
        runs = old.get("runs", [])
        history = old.get("meta", {}).get("invocations", [])
        log(f"--resume: {len(runs)} entries loaded from {json_path}")
    done = {(r["dataset"], r["seed"], r["model"]) for r in runs
            if r.get("status") in ("ok", "nonfinite")}
    runs = [r for r in runs if (r["dataset"], r["seed"], r["model"]) in done]

    model_info = {s.name: {"family": s.family, "description": s.description,
                           "neural": s.neural} for s in md.MODEL_SPECS}
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "settings": settings,
        "invocations": history + [invocation],
        "machine": _machine(),
        "versions": _versions(),
        "model_info": model_info,
        "quick_epochs": md.QUICK_EPOCHS,
    }
    out_dir.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        invocation["load_avg_now"] = list(os.getloadavg())
        save_results({"meta": meta, "runs": runs}, json_path, md_path, write_report)

    total = len(datasets_planned) * len(seeds) * len(specs)
    log(f"{command}\n{len(datasets_planned)} data sets x {len(seeds)} seeds x {len(specs)} "
        f"models = {total} runs; data from {root.resolve()}; results -> {json_path}")
    t_start = time.perf_counter()
    count = 0
    for split in ds.iter_splits(groups, seeds_for, adbench_names, root):
        for spec in specs:
            count += 1
            key = (split.dataset, split.seed, spec.name)
            if key in done:
                continue
            entry = run_one(spec, split, ctx, args.score_repeats)
            runs.append(entry)
            elapsed = time.perf_counter() - t_start
            head = f"[{count}/{total} {elapsed:6.0f}s] {split.dataset} s{split.seed} {spec.name}"
            if entry["status"] == "ok":
                f1 = f" F1={entry['f1']:.3f}" if "f1" in entry else ""
                spe = entry.get("sec_per_epoch")
                spe_text = f" {spe:.2f}s/ep" if spe else ""
                log(f"{head}: AUROC={entry['auroc']:.4f} AUPRC={entry['auprc']:.4f}{f1} "
                    f"fit={entry['fit_seconds']:.1f}s{spe_text} "
                    f"score={entry['score_rows_per_s']:.0f} rows/s")
            else:
                log(f"{head}: {entry['status'].upper()} at {entry.get('stage')}: "
                    f"{entry.get('error')}")
        save()

    return finish_run(invocation, t_start, runs, save, json_path, md_path)
