"""Issue 12's must-hold check: the modality-free spine leaves tabular results unchanged.

Two parts, written to ``benchmarks/results/tabular-spine-check.{json,md}``:

1. **AUROC unchanged.** The genad runs of a benchmark made with this checkout (card
   fraud seed 0, NSL-KDD and ADBench seed 0, every genad model of
   ``benchmarks.tabular``) against the same (data set, seed, model) in the committed
   ``benchmarks/results/tabular.json``: each AUROC within +-0.002 (bit-identical is
   better; both are reported).
2. **Scoring throughput not lower.** The AE on the card-fraud test part, rows/s of
   ``anomaly_score``, measured for the code before the spine (``--baseline-src``) and this
   checkout in fresh processes, alternating, in one run (the measurement of
   ``benchmarks.tabular.scale``).

Run from the repository root::

    # the runs (two processes, one thread each; about 40 minutes on 2 cores)
    python -m benchmarks.tabular --sets creditcard,nsl-kdd --seeds 0 --models genad \\
        --name spine-cc-nsl --out /tmp/spine --threads 1
    python -m benchmarks.tabular --sets adbench --seeds 0 --models genad \\
        --name spine-adbench --out /tmp/spine --threads 1
    # the comparison and the throughput (git archive 93527e0 src | tar -x -C /tmp/genad-prespine)
    python -m benchmarks.tabular.spine_check /tmp/spine/spine-cc-nsl.json \\
        /tmp/spine/spine-adbench.json --baseline-src /tmp/genad-prespine/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.tabular.scale import run_worker

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TOLERANCE = 0.002


def _key(run: dict[str, Any]) -> tuple[str, int, str]:
    return run["dataset"], int(run["seed"]), run["model"]


def _group(dataset: str) -> str:
    return dataset if dataset in ("creditcard", "nsl-kdd") else "adbench"


def compare(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """Each new genad run against the reference run of the same set, seed and model."""
    ref = {_key(r): r for r in reference if r.get("status") == "ok"}
    rows, missing, failed = [], [], []
    for run in runs:
        if not run["model"].startswith("genad"):
            continue
        if run.get("status") != "ok":
            failed.append({"key": list(_key(run)), "status": run.get("status"),
                           "error": run.get("error")})
            continue
        old = ref.get(_key(run))
        if old is None:
            missing.append(list(_key(run)))
            continue
        diff = float(run["auroc"]) - float(old["auroc"])
        rows.append({"dataset": run["dataset"], "group": _group(run["dataset"]),
                     "seed": int(run["seed"]), "model": run["model"],
                     "auroc_reference": float(old["auroc"]), "auroc": float(run["auroc"]),
                     "diff": diff, "identical": float(run["auroc"]) == float(old["auroc"]),
                     "within": abs(diff) <= TOLERANCE})
    return {"rows": rows, "missing_reference": missing, "failed": failed,
            "n": len(rows), "n_identical": sum(r["identical"] for r in rows),
            "n_within": sum(r["within"] for r in rows),
            "max_abs_diff": max((abs(r["diff"]) for r in rows), default=0.0)}


def throughput(baseline: Path, current: Path, data_root: str, repeats: int) -> dict[str, Any]:
    """Card-fraud AE rows/s for both versions, alternating, ``repeats`` times each."""
    spec = {"kind": "creditcard", "data_root": data_root}
    out: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    for i in range(repeats):
        for name, src in (("baseline", baseline), ("current", current)):
            sys.stderr.write(f"card fraud throughput {i + 1}/{repeats} [{name}]\n")
            out[name].append(run_worker(src, spec, timeout=1800.0))
    summary = {}
    for name, results in out.items():
        rates = [r["rows_per_s"] for r in results if "rows_per_s" in r]
        summary[name] = {"rows_per_s": rates, "median": statistics.median(rates) if rates else None,
                         "preprocessing_share": [r.get("preprocessing_share") for r in results]}
    base, cur = summary["baseline"]["median"], summary["current"]["median"]
    summary["ratio"] = cur / base if base and cur else None
    summary["runs"] = out
    return summary


def markdown(doc: dict[str, Any]) -> str:
    cmp, tp = doc["auroc"], doc.get("throughput")
    lines = [
        "# Tabular results after the modality-free spine (issue 12)", "",
        f"Command: `{doc['command']}`  ",
        f"Runs made with: {', '.join(f'`{c}`' for c in doc['run_commands'])}  ",
        f"Date: {doc['date']}; machine: {doc['machine']}; checkout: `{doc['commit']}`; the "
        f"runs were made at `{doc['runs_made_at']}`.", "",
        "## AUROC against the committed `benchmarks/results/tabular.json`", "",
        f"{cmp['n']} genad runs compared: **{cmp['n_identical']} bit-identical**, "
        f"{cmp['n_within']} within +-{TOLERANCE}; largest difference "
        f"{cmp['max_abs_diff']:.2g}.", "",
    ]
    if cmp["failed"] or cmp["missing_reference"]:
        lines += [f"Failed runs: {cmp['failed']}; without a reference: "
                  f"{cmp['missing_reference']}.", ""]
    lines += ["| data | model | runs | bit-identical | within +-0.002 | max abs diff | "
              "mean AUROC (reference) | mean AUROC (now) |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in cmp["rows"]:
        groups.setdefault((r["group"], r["model"]), []).append(r)
    for (group, model), rs in sorted(groups.items()):
        lines.append(
            f"| {group} | {model} | {len(rs)} | {sum(r['identical'] for r in rs)} | "
            f"{sum(r['within'] for r in rs)} | {max(abs(r['diff']) for r in rs):.2g} | "
            f"{statistics.fmean(r['auroc_reference'] for r in rs):.4f} | "
            f"{statistics.fmean(r['auroc'] for r in rs):.4f} |")
    not_identical = [r for r in cmp["rows"] if not r["identical"]]
    if not_identical:
        lines += ["", "Runs that are not bit-identical:", "",
                  "| data | model | reference | now | diff |", "|---|---|---:|---:|---:|"]
        lines += [f"| {r['dataset']} | {r['model']} | {r['auroc_reference']:.6f} | "
                  f"{r['auroc']:.6f} | {r['diff']:+.2g} |" for r in not_identical]
    if tp:
        lines += ["", "## Card-fraud scoring throughput, before and after the spine", "",
                  f"AE on the card-fraud test part (85,443 rows), `anomaly_score` rows/s, best "
                  f"of 5 calls, each version in {len(tp['baseline']['rows_per_s'])} fresh "
                  "processes, alternating.", "",
                  "| version | rows/s per process | median |", "|---|---|---:|"]
        for name in ("baseline", "current"):
            rates = ", ".join(f"{v:,.0f}" for v in tp[name]["rows_per_s"])
            lines.append(f"| {name} (`{doc['sources'][name]}`) | {rates} | "
                         f"{tp[name]['median']:,.0f} |")
        lines += ["", f"Current / baseline: **{tp['ratio']:.3f}**."]
    lines += ["", "Must hold: every AUROC within +-0.002 of the committed benchmark, and the "
              "scoring throughput not lower than before the spine.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tabular.spine_check",
                                description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="result JSONs of benchmarks.tabular runs")
    p.add_argument("--reference", default=str(RESULTS / "tabular.json"))
    p.add_argument("--baseline-src", default="/tmp/genad-prespine/src",
                   help="src folder of the code before the spine (skip the throughput: '')")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("GENAD_DATA", str(ROOT.parent / "shared"
                                                                       / "data")))
    p.add_argument("--name", default="tabular-spine-check")
    p.add_argument("--runs-made-at", default="",
                   help="the commit the runs were made with, when not this checkout")
    args = p.parse_args(argv)
    runs, commands = [], []
    for path in args.runs:
        doc = json.loads(Path(path).read_text())
        runs += doc["runs"]
        commands += [inv["command"] for inv in doc["meta"].get("invocations", [])]
    reference = json.loads(Path(args.reference).read_text())["runs"]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    doc: dict[str, Any] = {
        "command": "python -m benchmarks.tabular.spine_check "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "run_commands": commands, "commit": commit, "runs_made_at": args.runs_made_at or commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "auroc": compare(runs, reference),
        "sources": {"baseline": args.baseline_src, "current": str(ROOT / "src")},
    }
    if args.baseline_src:
        doc["throughput"] = throughput(Path(args.baseline_src), ROOT / "src", args.data,
                                       args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(doc))
    sys.stderr.write(f"wrote {RESULTS / args.name}.json and .md\n")


if __name__ == "__main__":
    main()
