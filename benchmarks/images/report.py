"""Turn the image benchmark's JSON results into a Markdown report.

Usage: ``python -m benchmarks.images --report-only [--out DIR] [--name STEM]`` or
:func:`write_report` / :func:`render` from Python.

Aggregation: a model's figure on a data set is the mean ± population std (``ddof=0``)
over the seeds that ran ok; ``seeds ok`` says how many of how many. The MNIST mean is over
the digits on which the model ran ok for every recorded seed (their count is shown).
Every failed entry is listed under *Failures*; nothing is dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._markdown import (
    RunIndex,
    Runs,
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
from benchmarks.images.datasets import DATASETS
from benchmarks.images.reference import MNIST_README_MEANS, references_for

__all__ = ["render", "write_report"]


class Results(RunIndex):
    """Index of the runs by data set and model."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.dataset_meta: dict[str, dict[str, Any]] = self.meta.get("datasets", {})
        names = {r["dataset"] for r in self.runs}
        self.datasets = [d for d in DATASETS if d in names] + sorted(names - set(DATASETS))

    def mnist(self) -> list[str]:
        return [d for d in self.datasets if d.startswith("mnist-")]

    def mnist_mean(self, model: str, key: str) -> tuple[float | None, int]:
        """Mean over the digits the model completed (seed means first) and their count."""
        return self.mean_over_complete(self.mnist(), model, key)


# --------------------------------------------------------------------------- sections


def _header(res: Results) -> list[str]:
    meta = res.meta
    invocations = meta.get("invocations", [])
    last = invocations[-1] if invocations else {}
    settings = meta.get("settings", {})
    machine = meta.get("machine", {})
    lines = [f"# `{last.get('command', 'python -m benchmarks.images')}`", "",
             "genad image benchmark report, written by the command above (run from the "
             "repository root; `.venv/bin/python -m ...`).", ""]
    if len(invocations) > 1:
        lines.append("- **Made by these commands** (resumed or merged): " + "; ".join(
            f"`{i.get('command')}` ({i.get('started')})" for i in invocations[:-1]))
    lines.append(date_line(last))
    load = [x[0] for x in (last.get("load_avg_start"), last.get("load_avg_now")) if x]
    lines.append(
        f"- **Machine:** {machine.get('cpu_count', '?')} CPU cores "
        f"({machine.get('cpu_model', 'unknown CPU')}), {machine.get('mem_total_gib', '?')} "
        f"GiB RAM; torch and BLAS threads {settings.get('threads')}; device setting "
        f"`{settings.get('device')}`"
        + (f"; load average {', '.join(f'{v:.2f}' for v in load)} (start, last save)"
           if load else ""))
    lines.append("- **Versions:** " + ", ".join(
        f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    lines.append(
        f"- **Settings:** seeds {settings.get('seeds')}, genad epochs {_epochs(settings)}, "
        f"PCA variance {settings.get('pca_variance')}, IsolationForest input "
        f"{settings.get('iforest_side')} px, scoring timed best of "
        f"{settings.get('score_repeats')}")
    cores = machine.get("cpu_count") or 0
    if cores and load and max(load) > cores:
        lines.append(f"- **Warning: the machine was busy** (load average up to {max(load):.1f} "
                     f"on {cores} cores): timings are unreliable.")
    if settings.get("quick"):
        lines.append("- **Quick mode**: a smoke test (few epochs, one seed, two MNIST digits); "
                     "the figures are not the benchmark's results.")
    lines += [f"- **Data:** `{settings.get('data_root')}`", ""]
    return lines


def _epochs(settings: dict[str, Any]) -> str:
    """The epochs setting; merged parts that ran with different ``--epochs`` list them."""
    epochs = settings.get("epochs")
    if isinstance(epochs, list):
        return (f"{', '.join(map(str, epochs))} (the parts differ; each row's `epochs` "
                "column says what it trained)")
    return str(epochs)


def _res_text(meta: dict[str, Any]) -> str:
    if not meta:
        return "?"
    channels = meta.get("channels", 1)
    return f"{meta.get('resolution')} px {'RGB' if channels == 3 else 'gray'}"


def _summary(res: Results) -> list[str]:
    header = ["data set", "input"] + [f"`{m}`" for m in res.models]
    rows = []
    for d in res.datasets:
        if d.startswith("mnist-"):
            continue
        rows.append([f"`{d}`", _res_text(res.dataset_meta.get(d, {}))]
                    + [fmt_pm(res.values(d, m, "image_auroc")) if res.entries(d, m) else ""
                       for m in res.models])
    digits = res.mnist()
    if digits:
        row = [f"`mnist` (mean of {len(digits)} digits)",
               _res_text(res.dataset_meta.get(digits[0], {}))]
        for m in res.models:
            value, n = res.mnist_mean(m, "image_auroc")
            row.append("" if not any(res.entries(d, m) for d in digits) else
                       fmt(value) + ("" if n == len(digits) else f" ({n}/{len(digits)})"))
        rows.append(row)
    lines = ["## Summary: image AUROC", ""]
    lines += md_table(header, rows, "ll" + "r" * len(res.models))
    lines += ["", "Mean ± std over seeds (one figure: one seed, or identical across seeds). "
              "Per-set tables below add AUPRC, pixel metrics, costs and the README's "
              "reference figures; their `weights` column says whether a genad model kept "
              "weights averaged over N epochs (`avg N`, the default for images since "
              "`weight_averaging` existed) or its best epoch's raw weights (`raw`: rows "
              "made before, which later parts have not replaced).", ""]
    return lines


def _set_table(res: Results, dataset: str) -> list[str]:
    header = ["model", "family", "image AUROC", "image AUPRC", "pixel AUROC", "AUPRO",
              "fit s", "s/epoch", "epochs", "weights", "images/s", "peak ΔRSS MiB", "seeds ok"]
    rows = []
    for m in res.models:
        ents = res.entries(dataset, m)
        if not ents:
            continue
        epochs = sorted({r["n_epochs"] for r in ents if r.get("n_epochs") is not None})
        mem = [r["peak_rss_delta_mib"] for r in ents
               if is_ok(r) and r.get("peak_rss_delta_mib") is not None]
        rows.append([
            f"`{m}`", res.family(m),
            fmt_pm(res.values(dataset, m, "image_auroc")),
            fmt_pm(res.values(dataset, m, "image_auprc")),
            fmt_pm(res.values(dataset, m, "pixel_auroc")),
            fmt_pm(res.values(dataset, m, "aupro")),
            fmt_secs(res.mean(dataset, m, "fit_seconds")),
            fmt_secs(res.mean(dataset, m, "seconds_per_epoch")),
            "/".join(map(str, epochs)) or "–",
            _weights(ents),
            fmt_rate(res.mean(dataset, m, "images_per_s")),
            fmt(max(mem), 0) if mem else "–",
            res.seeds_text(dataset, m)])
    return md_table(header, rows, "ll" + "r" * (len(header) - 2))


def _weights(ents: Runs) -> str:
    """What a genad model's rows kept: ``avg N`` (weights averaged over N epochs) or
    ``raw`` (the best epoch's weights: rows made before weight averaging, or with it off);
    ``–`` for a peer or when no run fitted."""
    if not ents or ents[0].get("family") != "genad":
        return "–"
    spans = {"raw" if r.get("weight_averaging") is None else f"avg {r['weight_averaging']:g}"
             for r in ents if is_ok(r)}  # a failed run kept no weights
    return "/".join(sorted(spans)) or "–"


def _kind_table(res: Results, dataset: str) -> list[str]:
    kinds: list[str] = []
    for m in res.models:
        for r in res.entries(dataset, m):
            for k in r.get("image_auroc_by_kind") or {}:
                if k not in kinds:
                    kinds.append(k)
    if not kinds:
        return []
    rows = []
    for m in res.models:
        ents = [r for r in res.entries(dataset, m) if is_ok(r) and r.get("image_auroc_by_kind")]
        if not ents:
            continue
        rows.append([f"`{m}`"] + [fmt_pm([r["image_auroc_by_kind"][k] for r in ents
                                           if r["image_auroc_by_kind"].get(k) is not None])
                                  for k in kinds])
    return (["", "Image AUROC of the test normals against each defect type alone:", ""]
            + md_table(["model"] + [f"normal vs {k}" for k in kinds], rows))


def _score_choice_table(res: Results, dataset: str) -> list[str]:
    """Image AUROC of each genad model under each image-score choice (one fit each)."""
    choices = ("model", "max", "top_k")
    rows = []
    for m in res.models:
        ents = [r for r in res.entries(dataset, m) if is_ok(r) and r.get("image_auroc_by_score")]
        if ents:
            rows.append([f"`{m}`"] + [fmt_pm([r["image_auroc_by_score"][c] for r in ents
                                               if r["image_auroc_by_score"].get(c) is not None])
                                      for c in choices])
    if not rows:
        return []
    return (["", "Image AUROC of the same fitted genad models under each image-score choice "
             "(`ImageAdapter(score=...)`; the summary uses each model's configured choice: the "
             "default `top_k`, or the `score` its configuration names in the models table):",
             ""]
            + md_table(["model"] + [f"score={c!r}" for c in choices], rows))


def _ref_table(dataset: str) -> list[str]:
    refs = references_for(dataset)
    if not refs:
        return []
    rows = [[r.kind, r.method + (f" — {r.subset}" if r.subset else ""), r.input,
             fmt(r.auroc), fmt(r.auprc), r.source] for r in refs]
    return (["", "Reference figures (README baselines use their own input size and "
             "settings, given here, and `python -m benchmarks.images.readme_check` reruns "
             "them; published figures are quoted with their source):", ""]
            + md_table(["kind", "method", "input", "AUROC", "AUPRC", "source"], rows, "lllrrl"))


def _matching(meta: dict[str, Any]) -> list[str]:
    info = meta.get("matching")
    if not info:
        return []
    rows = [[f"[{lo:.2f}, {hi:.2f})", str(n0), str(n1), str(kept)]
            for lo, hi, kept, n0, n1 in info["bins"] if n0 and n1]
    empty_one_side = sum(1 for _, _, _, n0, n1 in info["bins"] if not (n0 and n1))
    return [
        "", f"**Brightness matching.** Mean intensity of each test image ({meta.get('resolution')}"
        f" px, in [0, 1]) binned into {info['n_bins']} bins of width {info['bin_width']}; in "
        f"each bin `min(normals, anomalies)` of each class drawn with "
        f"`numpy.random.default_rng({info['seed']})`. Kept {info.get('n_kept_per_class')} "
        f"per class. **Mean-intensity AUROC on this subset: "
        f"{fmt(info.get('mean_intensity_auroc'))}** (full test set: "
        f"{fmt(info.get('mean_intensity_auroc_before'))}). Bins holding both classes:", ""]\
        + md_table(["bin", "normals", "anomalies", "kept per class"], rows) \
        + ["", f"{empty_one_side} other non-empty bins held one class only and were dropped.",
           "" if info.get("n_kept_per_class", 0) >= 50 else
           "With so few test images an AUROC moves by about ±0.1 between equally good "
           "models: read these figures as a sign check, not a ranking."]


def _pixel_notes(res: Results, dataset: str) -> list[str]:
    notes = sorted({r["pixel_status"] for m in res.models for r in res.entries(dataset, m)
                    if is_ok(r) and r.get("pixel_status") not in (None, "ok")
                    and not str(r.get("pixel_status")).startswith(("no masks", "the model"))})
    return ["", "Pixel metrics: " + "; ".join(notes) + "."] if notes else []


def _set_sections(res: Results) -> list[str]:
    lines: list[str] = []
    for d in res.datasets:
        if d.startswith("mnist-"):
            continue
        meta = res.dataset_meta.get(d, {})
        n_test, n_anom = meta.get("n_test"), meta.get("n_test_anomalies")
        sizes = (f"train {meta.get('n_train'):,} normals, test {n_test:,} ({n_anom:,} "
                 f"anomalies; random-scorer AUPRC {n_anom / n_test:.3f})"
                 if n_test else "sizes unknown")
        lines += [f"## `{d}` (group `{meta.get('group', '?')}`)", "",
                  f"Input {_res_text(meta)}, {sizes}"
                  + ("; test masks available" if meta.get("has_masks") else "") + ".",
                  f"Protocol: {meta.get('protocol', '?')}.", ""]
        lines += _set_table(res, d)
        lines += _pixel_notes(res, d)
        lines += _kind_table(res, d)
        lines += _score_choice_table(res, d)
        lines += _matching(meta)
        lines += _ref_table(d)
        lines.append("")
    return lines


def _mnist_section(res: Results) -> list[str]:
    digits = res.mnist()
    if not digits:
        return []
    meta = res.dataset_meta.get(digits[0], {})
    lines = ["## `mnist`: leave one digit out", "",
             f"Input {_res_text(meta)}. Digit d is the anomaly: train on the 4,500 `mnist_5k` "
             "images of the other nine digits, test on all 10,000 test images with label "
             "`digit == d`. README columns: its PCA (0.9 variance) and IsolationForest "
             "(200 trees) at 28 px, seed 0.", ""]
    readme: dict[str, dict[str, tuple[float, float | None]]] = {}
    for d in digits:
        for r in references_for(d):
            readme.setdefault(d, {})[r.method] = (r.auroc, r.auprc)
    methods = list(MNIST_README_MEANS)
    for key, title, index in (("image_auroc", "AUROC", 0), ("image_auprc", "AUPRC", 1)):
        header = ["digit"] + [f"`{m}`" for m in res.models] + [f"README {m}" for m in methods]
        rows = []
        for d in digits:
            rows.append([d.split("-")[1]]
                        + [fmt_pm(res.values(d, m, key)) if res.entries(d, m) else ""
                           for m in res.models]
                        + [fmt(readme.get(d, {}).get(m, (None, None))[index]) for m in methods])
        mean_row = ["**mean**"]
        for m in res.models:
            value, n = res.mnist_mean(m, key)
            mean_row.append(f"**{fmt(value)}**" + ("" if n == len(digits) else f" ({n})"))
        mean_row += [f"**{fmt(MNIST_README_MEANS[m])}**" if index == 0 and len(digits) == 10
                     else "" for m in methods]
        rows.append(mean_row)
        lines += [f"### {title} per anomaly digit", ""] + md_table(header, rows) + [""]
    rows = []
    for m in res.models:
        ents = [r for d in digits for r in res.entries(d, m) if is_ok(r)]
        if not ents:
            continue

        def med(key: str, ents: Runs = ents) -> float | None:
            vals = [r[key] for r in ents if r.get(key) is not None]
            return float(np.median(vals)) if vals else None

        mem = [r["peak_rss_delta_mib"] for r in ents if r.get("peak_rss_delta_mib") is not None]
        rows.append([f"`{m}`", fmt_secs(med("fit_seconds")), fmt_secs(med("seconds_per_epoch")),
                     fmt_rate(med("images_per_s")), fmt(max(mem), 0) if mem else "–",
                     str(len(ents))])
    lines += ["### MNIST costs per model (median over digits and seeds)", ""]
    lines += md_table(["model", "fit s", "s/epoch", "images/s", "max peak ΔRSS MiB", "ok runs"],
                    rows)
    return lines + [""]


def _failures(res: Results) -> list[str]:
    bad = [r for r in res.runs if not is_ok(r)]
    lines = ["## Failures", ""]
    if not bad:
        return lines + ["None: every run finished with finite scores.", ""]
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in bad:
        groups[(r["model"], str(r.get("status")), str(r.get("stage", "?")))].append(
            f"{r['dataset']} s{r['seed']}")
    rows = [[f"`{model}`", stage, "`" + status.replace("|", "\\|") + "`",
             f"{len(where)}: " + ", ".join(where)]
            for (model, status, stage), where in groups.items()]
    lines += [f"{len(bad)} of {len(res.runs)} runs failed. Each row is one distinct error "
              "with every (data set, seed) it occurred on.", ""]
    return lines + md_table(["model", "stage", "status", "runs"], rows, "llll") + [""]


def _models(res: Results) -> list[str]:
    return (models_table(res)
            + ["", "Every model receives the same uint8 arrays at the data set's resolution "
               "(Pillow decoding, bilinear resize; masks nearest). Score: higher = more "
               "anomalous; no sign is ever chosen on a test set. Costs: `fit s` is the wall "
               "time of `fit`, `images/s` the best of the timed scoring passes over the test "
               "set, `peak ΔRSS` the largest rise of the process RSS over its value before "
               "the model was built (max over seeds).", ""])


def render(data: dict[str, Any]) -> str:
    """Render the results (as loaded from the JSON) to Markdown."""
    return render_sections(Results(data), _header,
                           (_summary, _failures, _set_sections, _mnist_section, _models))


def write_report(data: dict[str, Any], path: Path) -> None:
    """Render ``data`` and write it to ``path`` (atomically)."""
    atomic_write(path, render(data))
