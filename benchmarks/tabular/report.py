"""Turn the benchmark's JSON results into a Markdown report.

Usage: ``python -m benchmarks.tabular --report-only [--out DIR] [--name STEM]`` or
:func:`write_report` / :func:`render` from Python.

Aggregation rules
-----------------
* A model's figure on one data set is the mean over the seeds that ran ``ok``; the std is
  the population std (``ddof=0``, as in the data READMEs). The ``seeds`` column shows
  how many seeds ran ok out of how many were recorded.
* A model's ADBench mean uses only the sets on which **all** its recorded seeds ran ok;
  the ``sets`` column says on how many. Target checks that compare models on ADBench use
  the sets common to every model compared, and say how many those are.
* Nothing is dropped silently: every failed or non-finite entry is listed under
  *Failures*.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._markdown import (
    RunIndex,
    date_line,
    fmt,
    fmt_pm,
    fmt_rate,
    fmt_secs,
    is_ok,
    md_table,
    models_table,
    render_sections,
)
from benchmarks._shared import atomic_write

__all__ = ["render", "write_report"]

GROUP_TITLES = {"creditcard": "Credit-card fraud", "nsl-kdd": "NSL-KDD", "adbench": "ADBench"}
MET, MISSED, NA = "**met**", "**missed**", "n/a"

# --------------------------------------------------------------------------- helpers


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


class Results(RunIndex):
    """Index of the runs by data set and model, with the aggregations the report needs."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.group_of: dict[str, str] = {r["dataset"]: r["group"] for r in self.runs}
        self.datasets = self._dataset_order()

    def _dataset_order(self) -> list[str]:
        def key(name: str) -> tuple[int, int, str]:
            group = self.group_of[name]
            head = name.split("_", 1)[0]
            return (["creditcard", "nsl-kdd", "adbench"].index(group),
                    int(head) if head.isdigit() else 0, name)

        return sorted(self.group_of, key=key)

    def family(self, model: str) -> str:
        info = self.model_info.get(model)
        if info:
            return str(info.get("family", "?"))
        return "genad" if model.startswith("genad") else "peer"

    def in_group(self, group: str) -> list[str]:
        return [d for d in self.datasets if self.group_of[d] == group]

    def group_mean(
        self, group: str, model: str, key: str, only: Sequence[str] | None = None
    ) -> tuple[float | None, int]:
        """Mean over the group's data sets (seed means first) where the model is complete."""
        return self.mean_over_complete(only if only is not None else self.in_group(group),
                                       model, key)

    def common_sets(self, group: str, models: Sequence[str]) -> list[str]:
        return [d for d in self.in_group(group) if all(self.complete(d, m) for m in models)]


# --------------------------------------------------------------------------- sections


def _header(res: Results) -> list[str]:
    meta = res.meta
    invocations = meta.get("invocations", [])
    last = invocations[-1] if invocations else {}
    command = last.get("command", "python -m benchmarks.tabular")
    machine = meta.get("machine", {})
    versions = meta.get("versions", {})
    settings = meta.get("settings", {})
    lines = [f"# `{command}`", "",
             "genad tabular benchmark report, written by the command above (run from the "
             "repository root).", ""]
    if len(invocations) > 1:
        earlier = "; ".join(f"`{i.get('command')}` ({i.get('started')})"
                            for i in invocations[:-1])
        lines.append(f"- **Resumed or merged** from entries recorded by: {earlier}")
    lines.append(date_line(last))
    load = last.get("load_avg_start")
    load_text = ""
    if load:
        load_text = f"; load average at start {load[0]:.2f}"
        if last.get("load_avg_now"):
            load_text += f", at last save {last['load_avg_now'][0]:.2f}"
    lines.append(
        f"- **Machine:** {machine.get('cpu_count', '?')} CPU cores "
        f"({machine.get('cpu_model', 'unknown CPU')}), {machine.get('mem_total_gib', '?')} GiB "
        f"RAM, torch threads {machine.get('torch_threads', '?')} (as set by the harness; a "
        "library may change it while it trains), CUDA available: "
        f"{machine.get('cuda_available', '?')}, device setting `{settings.get('device')}`"
        f"{load_text}"
    )
    lines.append("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    epochs = settings.get("epochs")
    epoch_text = (f"every neural model trained for **{epochs} epochs** (override)"
                  if epochs is not None else "each model's own epochs")
    lines.append(
        f"- **Settings:** sets {settings.get('sets')}, seeds {settings.get('seeds')}, "
        f"{epoch_text}, quick={settings.get('quick')}, MATCHED = {settings.get('matched')}, "
        f"scoring timed best of {settings.get('score_repeats')}"
    )
    cores = machine.get("cpu_count") or 0
    busiest = max([x[0] for x in (load, last.get("load_avg_now")) if x] or [0.0])
    if cores and busiest > cores:
        lines.append(
            f"- **Warning: the machine was busy** (load average up to {busiest:.1f} on "
            f"{cores} cores). Other processes competed for the cores, so fit times, s/epoch "
            "and rows/s are unreliable; torch with more than one thread slows down by one to "
            "two orders of magnitude under such contention. Re-run on an idle machine before "
            "quoting timings.")
    if settings.get("quick"):
        lines.append("- **Quick mode**: a smoke test; the figures are not the benchmark's "
                     "results (few epochs, one seed, a subset of ADBench).")
    lines.append(f"- **Data:** `{settings.get('data_root')}`")
    lines.append("")
    return lines


def _models_section(res: Results) -> list[str]:
    lines = models_table(res)
    lines += [
        "",
        "genad models get the raw inputs (NSL-KDD as a DataFrame with its string columns). "
        "Peers get a float matrix scaled by a `StandardScaler` fitted on the train normals "
        "(NSL-KDD: the 38 numeric columns, then one-hot `protocol_type`/`service`/`flag` "
        "with the full-train categories, as in the data README). Peer score = "
        "`decision_function` (PyOD) or `-score_samples` (IsolationForest).",
        "",
    ]
    return lines


def _summary(res: Results) -> list[str]:
    ad_sets = res.in_group("adbench")
    has_cc = bool(res.in_group("creditcard"))
    has_kdd = bool(res.in_group("nsl-kdd"))
    header = ["model", "family"]
    if ad_sets:
        header += ["ADBench AUROC", "ADBench AUPRC", "ADBench sets"]
    if has_cc:
        header += ["creditcard AUROC", "creditcard AUPRC"]
    if has_kdd:
        header += ["NSL-KDD AUROC", "NSL-KDD AUPRC", "NSL-KDD F1"]
    header += ["failed runs"]
    rows = []
    for m in res.models:
        row = [f"`{m}`", res.family(m)]
        if ad_sets:
            auroc, n = res.group_mean("adbench", m, "auroc")
            auprc, _ = res.group_mean("adbench", m, "auprc")
            row += [fmt(auroc), fmt(auprc), f"{n}/{len(ad_sets)}"]
        if has_cc:
            row += [fmt_pm(res.values("creditcard", m, "auroc"), 4),
                    fmt_pm(res.values("creditcard", m, "auprc"), 4)]
        if has_kdd:
            row += [fmt_pm(res.values("nsl-kdd", m, "auroc"), 4),
                    fmt_pm(res.values("nsl-kdd", m, "auprc"), 4),
                    fmt_pm(res.values("nsl-kdd", m, "f1"), 3)]
        n_fail = sum(not is_ok(r) for r in res.runs if r["model"] == m)
        n_all = sum(r["model"] == m for r in res.runs)
        row.append(f"{n_fail}/{n_all}" if n_fail else "0")
        rows.append(row)
    lines = ["## Summary", ""]
    lines += md_table(header, rows, "ll" + "r" * (len(header) - 2))
    lines += [
        "",
        "ADBench: mean over seeds, then over the sets on which the model ran ok for every "
        "seed (`sets` column). creditcard / NSL-KDD: mean ± std (population) over seeds. "
        "NSL-KDD F1 is at the model's own threshold: genad `predict()` (calibrated), peers "
        "the 99th percentile of their scores on the train normals (1 % train FPR).",
        "",
    ]
    return lines


def _best(res: Results, models: Sequence[str], dataset_or_group: str, key: str,
          group: bool = False, only: Sequence[str] | None = None
          ) -> tuple[str | None, float | None]:
    best_m, best_v = None, None
    for m in models:
        if group:
            v, _ = res.group_mean(dataset_or_group, m, key, only)
        else:
            v = res.mean(dataset_or_group, m, key)
        if v is not None and (best_v is None or v > best_v):
            best_m, best_v = m, v
    return best_m, best_v


def _who(model: str | None, value: float | None, digits: int = 4) -> str:
    return f"{fmt(value, digits)} (`{model}`)" if model else "no result"


def _targets(res: Results) -> list[str]:
    genad = [m for m in res.models if res.family(m) == "genad"]
    peers = [m for m in res.models if res.family(m) != "genad"]
    pyod_ae = [m for m in peers if m.startswith("pyod-AE")]
    pyod_vae = [m for m in peers if m.startswith("pyod-VAE")]
    rows: list[list[str]] = []
    if not genad:
        return ["## Targets", "", "No genad model was run, so no target can be evaluated.", ""]

    def add(target: str, ok: bool | None, figures: str) -> None:
        rows.append([target, NA if ok is None else (MET if ok else MISSED), figures])

    # creditcard
    if res.in_group("creditcard"):
        m_roc, roc = _best(res, genad, "creditcard", "auroc")
        add("creditcard: best genad AUROC ≥ 0.960", None if roc is None else roc >= 0.960,
            _who(m_roc, roc))
        m_prc, prc = _best(res, genad, "creditcard", "auprc")
        add("creditcard: best genad AUPRC ≥ 0.70", None if prc is None else prc >= 0.70,
            _who(m_prc, prc))
        p_m, p_prc = _best(res, pyod_ae, "creditcard", "auprc")
        ok = None if prc is None or p_prc is None else prc >= p_prc + 0.05
        add("creditcard: best genad AUPRC ≥ best PyOD AE AUPRC + 0.05", ok,
            f"genad {_who(m_prc, prc)} vs PyOD AE {_who(p_m, p_prc)}")
    # NSL-KDD
    if res.in_group("nsl-kdd"):
        m_roc, roc = _best(res, genad, "nsl-kdd", "auroc")
        add("NSL-KDD: best genad AUROC ≥ 0.965", None if roc is None else roc >= 0.965,
            _who(m_roc, roc))
        p_m, p_roc = _best(res, peers, "nsl-kdd", "auroc")
        missing = [p for p in peers if res.mean("nsl-kdd", p, "auroc") is None]
        ok = None if roc is None or p_roc is None else roc > p_roc
        note = f"; peers without a result: {', '.join(missing)}" if missing else ""
        add("NSL-KDD: best genad AUROC above every peer", ok,
            f"genad {_who(m_roc, roc)} vs best peer {_who(p_m, p_roc)}{note}")
    # ADBench: best genad against each peer, on the sets both ran ok
    ad_rows: list[list[str]] = []
    if res.in_group("adbench"):
        n_all = len(res.in_group("adbench"))
        wins: list[bool | None] = []
        for p in peers:
            common = res.common_sets("adbench", [p])
            common = [d for d in common if any(res.complete(d, g) for g in genad)]
            g_usable = [g for g in genad if all(res.complete(d, g) for d in common)]
            g_m, g_v = _best(res, g_usable, "adbench", "auroc", group=True, only=common)
            p_v, n = res.group_mean("adbench", p, "auroc", common)
            ok = None if g_v is None or p_v is None or not common else g_v > p_v
            wins.append(ok)
            ad_rows.append([f"`{p}`", f"{n}/{n_all}", _who(g_m, g_v, 3), fmt(p_v, 3),
                            NA if ok is None else ("✓" if ok else "✗")])
        n_win = sum(w is True for w in wins)
        n_lost = sum(w is False for w in wins)
        verdict = False if n_lost else (None if None in wins or not wins else True)
        add("ADBench: best genad mean AUROC above every peer", verdict,
            f"above {n_win}/{len(wins)} peers, below {n_lost}, {len(wins) - n_win - n_lost} "
            "not evaluable; each peer compared on the sets where it and the genad model ran "
            "ok (table below)")
    # genad AE / VAE vs PyOD AE / VAE
    lines_detail: list[list[str]] = []
    verdicts: list[bool] = []
    for g_model, p_models in (("genad-AE", pyod_ae), ("genad-VAE", pyod_vae)):
        if not p_models:
            continue
        if g_model not in res.models:
            lines_detail.append([f"`{g_model}` vs PyOD", "all", "–", "not run", "–", NA])
            continue
        for group in ("creditcard", "nsl-kdd", "adbench"):
            sets = res.in_group(group)
            if not sets:
                continue
            for p_model in p_models:
                for key in ("auroc", "auprc"):
                    if group == "adbench":
                        common = res.common_sets(group, [g_model, p_model])
                        g_v, n = res.group_mean(group, g_model, key, common)
                        p_v, _ = res.group_mean(group, p_model, key, common)
                        where = f"ADBench ({n} common sets)"
                    else:
                        g_v, p_v = res.mean(group, g_model, key), res.mean(group, p_model, key)
                        where = group
                    ok = None if g_v is None or p_v is None else g_v > p_v
                    if ok is not None:
                        verdicts.append(ok)
                    lines_detail.append([
                        f"`{g_model}` vs `{p_model}`", where, key.upper(), fmt(g_v, 4),
                        fmt(p_v, 4), NA if ok is None else ("✓" if ok else "✗")])
    issue_rows = [r for r in lines_detail if r[1].startswith("ADBench") and r[2] == "AUROC"]
    if issue_rows:
        won = [r[-1] == "✓" for r in issue_rows if r[-1] != NA]
        ok_issue = None if len(won) < len(issue_rows) else all(won)
        add("ADBench: genad's default AE and VAE each beat PyOD's same-named model (default "
            "and matched) on mean AUROC", ok_issue,
            "; ".join(f"{r[0]}: {r[3]} vs {r[4]}" for r in issue_rows))
    if lines_detail:
        n_na = sum(r[-1] == NA for r in lines_detail)
        ok_all = (all(verdicts) if verdicts else None) if n_na == 0 else (
            False if verdicts and not all(verdicts) else None)
        add("stricter than the issue: genad AE and VAE beat PyOD's AE and VAE (both "
            "configs, AUROC and AUPRC, every benchmark)", ok_all,
            f"{sum(verdicts)}/{len(lines_detail)} comparisons won, "
            f"{len(verdicts) - sum(verdicts)} lost, {n_na} not evaluable (table below)")
    # speed: s/epoch
    speed_rows = []
    for d in ("creditcard", "nsl-kdd"):
        g = res.mean(d, "genad-AE-matched", "sec_per_epoch")
        p = res.mean(d, "pyod-AE-matched", "sec_per_epoch")
        if d in res.datasets:
            speed_rows.append((d, g, p))
    if speed_rows:
        ratios = [(d, g / p if g is not None and p else None) for d, g, p in speed_rows]
        ok = None if any(r is None for _, r in ratios) else all(r <= 0.5 for _, r in ratios)
        figs = "; ".join(f"{d}: {fmt_secs(g)} s vs {fmt_secs(p)} s = {fmt(r, 2)}×"
                         for (d, g, p), (_, r) in zip(speed_rows, ratios, strict=True))
        add("genad s/epoch ≤ 0.5× PyOD AE (matched), creditcard and NSL-KDD", ok,
            f"`genad-AE-matched` / `pyod-AE-matched`: {figs}")
    # scoring throughput
    if "creditcard" in res.datasets and genad:
        figs, oks = [], []
        for m in genad:
            v = res.mean("creditcard", m, "score_rows_per_s")
            figs.append(f"`{m}` {fmt_rate(v)}")
            oks.append(None if v is None else v >= 500_000)
        ok = None if any(o is None for o in oks) else all(oks)
        add("genad scoring ≥ 500,000 rows/s on the creditcard test set (every genad model)",
            ok, ", ".join(figs) + " rows/s")
    lines = ["## Targets", ""]
    if not rows:
        return lines + ["No target can be evaluated with the sets run.", ""]
    lines += md_table(["target", "status", "figures"], rows, "lll")
    lines += ["", "`n/a`: a model the target needs has no result (see Failures) or was not run.",
              ""]
    if ad_rows:
        lines += ["### ADBench: best genad model against each peer", ""]
        lines += md_table(["peer", "sets", "best genad (mean AUROC)", "peer mean AUROC",
                         "genad above"], ad_rows, "lrlrr")
        lines.append("")
    if lines_detail:
        lines += ["### genad AE / VAE against PyOD AE / VAE", ""]
        lines += md_table(["pair", "benchmark", "metric", "genad", "PyOD", "genad wins"],
                        lines_detail, "lllrrr")
        lines.append("")
    return lines


def _detail_table(res: Results, dataset: str, threshold: bool) -> list[str]:
    header = ["model", "AUROC", "AUPRC"]
    if threshold:
        header += ["F1", "precision", "recall", "test FPR"]
    header += ["fit s", "s/epoch", "epochs", "score rows/s", "peak ΔRSS MiB", "seeds ok"]
    rows = []
    for m in res.models:
        ents = res.entries(dataset, m)
        if not ents:
            continue
        row = [f"`{m}`", fmt_pm(res.values(dataset, m, "auroc"), 4),
               fmt_pm(res.values(dataset, m, "auprc"), 4)]
        if threshold:
            row += [fmt_pm(res.values(dataset, m, k), 3)
                    for k in ("f1", "precision", "recall", "test_fpr")]
        epochs = sorted({r["n_epochs"] for r in ents if r.get("n_epochs") is not None})
        mem = [r["peak_rss_delta_mib"] for r in ents if is_ok(r)
               and r.get("peak_rss_delta_mib") is not None]
        row += [
            fmt_secs(res.mean(dataset, m, "fit_seconds")),
            fmt_secs(res.mean(dataset, m, "sec_per_epoch")),
            "/".join(str(e) for e in epochs) or "–",
            fmt_rate(res.mean(dataset, m, "score_rows_per_s")),
            fmt(max(mem), 0) if mem else "–",
            res.seeds_text(dataset, m),
        ]
        rows.append(row)
    return md_table(header, rows)


def _split_line(res: Results, dataset: str) -> str:
    ents = [r for m in res.models for r in res.entries(dataset, m)]
    if not ents:
        return ""
    r = ents[0]
    return (f"Train normals {r.get('n_train'):,}, test rows {r.get('n_test'):,} "
            f"({r.get('n_test_anomalies'):,} anomalies), {r.get('n_features_raw')} raw "
            f"features; seeds {sorted({e['seed'] for e in ents})}.")


def _group_sections(res: Results) -> list[str]:
    lines: list[str] = []
    for dataset in res.in_group("creditcard") + res.in_group("nsl-kdd"):
        group = res.group_of[dataset]
        lines += [f"## {GROUP_TITLES[group]}", "", _split_line(res, dataset), ""]
        lines += _detail_table(res, dataset, threshold=group == "nsl-kdd")
        notes = [
            "",
            "Times are means over seeds; `s/epoch` is the mean of the per-epoch times "
            "(genad `history_['epoch_seconds']`; PyOD timed through its `epoch_update` hook); "
            "`score rows/s` is the best of the timed scoring passes over the test set; "
            "`peak ΔRSS` is the largest increase of the process RSS over its value before "
            "the model was built (max over seeds).",
        ]
        if group == "nsl-kdd":
            notes += [
                "",
                "NSL-KDD thresholds: genad models use `predict()` (their calibrated "
                "threshold); peers flag a row when its score exceeds the 99th percentile of "
                "their scores on the train normals (1 % FPR on the training data). `test FPR` "
                "is the share of test normals flagged."]
        lines += notes + [""]
    ad_sets = res.in_group("adbench")
    if not ad_sets:
        return lines
    lines += ["## ADBench", ""]
    for key, title in (("auroc", "AUROC"), ("auprc", "AUPRC")):
        lines += [f"### {title} per set (mean over seeds)", ""]
        header = ["set"] + [f"`{m}`" for m in res.models]
        rows = []
        for d in ad_sets:
            row = [d]
            for m in res.models:
                ents = res.entries(d, m)
                if not ents:
                    row.append("")
                    continue
                v = res.mean(d, m, key)
                flag = "" if res.complete(d, m) else " †"
                row.append((fmt(v) if v is not None else "fail") + flag)
            rows.append(row)
        means = ["**mean**"]
        for m in res.models:
            v, n = res.group_mean("adbench", m, key)
            means.append(f"**{fmt(v)}** ({n})")
        rows.append(means)
        lines += md_table(header, rows) + [""]
    lines += ["`fail`: no seed ran ok; `†`: some seed failed (the set is then left out of the "
              "model's mean; the count of sets in the mean is in brackets). See Failures.", ""]
    lines += ["### ADBench costs per model", ""]
    rows = []
    for m in res.models:
        ents = [r for d in ad_sets for r in res.entries(d, m) if is_ok(r)]
        if not ents:
            rows.append([f"`{m}`", "–", "–", "–", "–", "0"])
            continue
        spe = [r["sec_per_epoch"] for r in ents if r.get("sec_per_epoch")]
        rates = [r["score_rows_per_s"] for r in ents if r.get("score_rows_per_s")]
        mem = [r["peak_rss_delta_mib"] for r in ents if r.get("peak_rss_delta_mib") is not None]
        rows.append([f"`{m}`", fmt_secs(sum(r.get("fit_seconds", 0.0) for r in ents)),
                     fmt_secs(float(np.median(spe))) if spe else "–",
                     fmt_rate(float(np.median(rates))) if rates else "–",
                     fmt(max(mem), 0) if mem else "–", str(len(ents))])
    lines += md_table(["model", "total fit s", "median s/epoch", "median score rows/s",
                     "max peak ΔRSS MiB", "ok runs"], rows)
    lines += [""]
    return lines


def _ratio_section(res: Results) -> list[str]:
    g, p = "genad-AE-matched", "pyod-AE-matched"
    if g not in res.models or p not in res.models:
        return []
    rows = []
    logs: list[float] = []
    for d in res.datasets:
        gs, ps = res.mean(d, g, "sec_per_epoch"), res.mean(d, p, "sec_per_epoch")
        ratio = gs / ps if gs is not None and ps else None
        if ratio is not None and res.group_of[d] == "adbench":
            logs.append(math.log(ratio))
        d_roc = _diff(res.mean(d, g, "auroc"), res.mean(d, p, "auroc"))
        d_prc = _diff(res.mean(d, g, "auprc"), res.mean(d, p, "auprc"))
        rows.append([d, fmt_secs(gs), fmt_secs(ps), fmt(ratio, 2),
                     _fmt_signed(d_roc), _fmt_signed(d_prc)])
    lines = ["## genad vs PyOD, identically sized AutoEncoders", "",
             f"`{g}` and `{p}` share MATCHED (hidden sizes, epochs, batch size). Ratio = "
             "genad s/epoch ÷ PyOD s/epoch (below 1: genad faster). Δ = genad − PyOD "
             "(means over seeds).", ""]
    lines += md_table(["set", "genad s/epoch", "PyOD s/epoch", "ratio", "Δ AUROC", "Δ AUPRC"],
                    rows)
    if logs:
        lines += ["", f"Geometric mean of the ratio over {len(logs)} ADBench sets: "
                  f"{math.exp(float(np.mean(logs))):.2f}."]
    return lines + [""]


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _fmt_signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.4f}"


def _hint(entry: dict[str, Any], info: dict[str, Any]) -> str:
    """Explain well-understood failures (the error itself is always shown too)."""
    error = entry.get("error", "")
    if "UnboundLocalError" in error and entry["model"].startswith("pyod-"):
        return ("PyOD trains with `drop_last=True`: with fewer train normals than the batch "
                "size no batch runs and `loss` is never assigned")
    if entry["model"] == "pyod-PCA" and entry.get("status") == "nonfinite":
        return ("PyOD PCA keeps every component and divides each distance by the "
                "component's explained-variance ratio; constant columns in the train normals "
                "(47 of 122 on NSL-KDD) give ratios of 0")
    if "cannot import genad" in error or "has no attribute" in error:
        return "the genad model is not available in this checkout"
    return ""


def _failures(res: Results) -> list[str]:
    bad = [r for r in res.runs if not is_ok(r)]
    thr = [r for r in res.runs if is_ok(r) and r.get("threshold_error")]
    lines = ["## Failures", ""]
    if not bad and not thr:
        return lines + ["None: every run finished with finite scores.", ""]
    groups: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for r in bad:
        groups[(r["model"], r["status"], r.get("stage", "?"), r.get("error", ""))].append(
            f"{r['dataset']} s{r['seed']} (n_train {r.get('n_train')})")
    rows = []
    for (model, status, stage, error), where in groups.items():
        sample = next(r for r in bad if r["model"] == model and r.get("error", "") == error)
        hint = _hint(sample, res.model_info.get(model, {}))
        err = error.replace("|", "\\|").replace("\n", " ")
        rows.append([f"`{model}`", status, stage, f"`{err}`" + (f" — {hint}" if hint else ""),
                     f"{len(where)}: " + ", ".join(where)])
    lines += [f"{len(bad)} of {len(res.runs)} runs failed or gave non-finite scores. Each "
              "row is one distinct error, with every (set, seed) it occurred on.", ""]
    lines += md_table(["model", "status", "stage", "error", "runs"], rows, "lllll")
    if thr:
        lines += ["", "Threshold (F1) errors — AUROC/AUPRC of these runs are valid:", ""]
        lines += [f"- `{r['model']}` on {r['dataset']} s{r['seed']}: `{r['threshold_error']}`"
                  for r in thr]
    return lines + [""]


def _details(res: Results) -> list[str]:
    ad_sets = res.in_group("adbench")
    if not ad_sets:
        return []
    lines = ["## ADBench details per set", "", "<details><summary>One table per set "
             "(same columns as the creditcard table)</summary>", ""]
    for d in ad_sets:
        lines += [f"### {d}", "", _split_line(res, d), ""]
        lines += _detail_table(res, d, threshold=False) + [""]
    return lines + ["</details>", ""]


def render(data: dict[str, Any]) -> str:
    """Render the results (as loaded from the JSON) to Markdown."""
    return render_sections(Results(data), _header,
                           (_summary, _targets, _failures, _group_sections, _ratio_section,
                            _models_section, _details))


def write_report(data: dict[str, Any], path: Path) -> None:
    """Render ``data`` and write it to ``path`` (atomically)."""
    atomic_write(path, render(data))
