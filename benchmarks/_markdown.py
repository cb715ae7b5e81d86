"""Markdown pieces shared by the benchmark reports (:mod:`benchmarks.tabular.report`,
:mod:`benchmarks.images.report`): number formats, tables, and the index of the runs by
data set and model with the aggregations both reports make.

Aggregation: a model's figure on a data set is the mean (± population std, ``ddof=0``)
over the seeds that ran ``ok``; a mean over several data sets takes only those on which
every recorded seed of the model ran ok (:meth:`RunIndex.mean_over_complete`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "RunIndex",
    "Runs",
    "date_line",
    "fmt",
    "fmt_pm",
    "fmt_rate",
    "fmt_secs",
    "is_ok",
    "md_table",
    "models_table",
    "render_sections",
]

Runs = list[dict[str, Any]]
Index = TypeVar("Index", bound="RunIndex")


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; ``–`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_pm(values: Sequence[float], digits: int = 3) -> str:
    """Mean ± population std of ``values`` (the value alone when there is one)."""
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def fmt_rate(value: float | None) -> str:
    """A rate per second: ``1.2 M``, ``3.4 k`` or a whole number."""
    if value is None:
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def fmt_secs(value: float | None) -> str:
    """Seconds with fewer decimals the longer they are."""
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """Markdown table; ``align`` gives one of l/r per column (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def is_ok(entry: dict[str, Any]) -> bool:
    """Whether a run entry finished with status ``ok``."""
    return entry.get("status") == "ok"


def date_line(invocation: dict[str, Any]) -> str:
    """The report header's date line of the last invocation of a run."""
    finished = invocation.get("finished")
    wall = invocation.get("wall_seconds")
    return (f"- **Date (UTC):** started {invocation.get('started', '?')}, "
            + (f"finished {finished}" if finished else "**in progress or interrupted**")
            + (f", {wall / 60:.1f} min" if wall else ""))


class RunIndex:
    """Index of the runs by data set and model.

    ``models`` lists the models that have runs, in the order of ``meta["model_info"]``
    (unknown ones last, sorted).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.meta: dict[str, Any] = data.get("meta", {})
        self.runs: Runs = list(data.get("runs", []))
        self.model_info: dict[str, dict[str, Any]] = self.meta.get("model_info", {})
        seen = {r["model"] for r in self.runs}
        self.models = [m for m in self.model_info if m in seen] + sorted(
            seen - set(self.model_info))
        self.by: dict[tuple[str, str], Runs] = defaultdict(list)
        for r in self.runs:
            self.by[(r["dataset"], r["model"])].append(r)

    def family(self, model: str) -> str:
        return str(self.model_info.get(model, {}).get("family", "?"))

    def entries(self, dataset: str, model: str) -> Runs:
        return sorted(self.by.get((dataset, model), []), key=lambda r: r["seed"])

    def values(self, dataset: str, model: str, key: str) -> list[float]:
        """``key`` of every ok seed that has a number there."""
        return [float(r[key]) for r in self.entries(dataset, model)
                if is_ok(r) and isinstance(r.get(key), (int, float))]

    def mean(self, dataset: str, model: str, key: str) -> float | None:
        vals = self.values(dataset, model, key)
        return float(np.mean(vals)) if vals else None

    def complete(self, dataset: str, model: str) -> bool:
        ents = self.entries(dataset, model)
        return bool(ents) and all(is_ok(r) for r in ents)

    def seeds_text(self, dataset: str, model: str) -> str:
        ents = self.entries(dataset, model)
        return f"{sum(is_ok(r) for r in ents)}/{len(ents)}"

    def mean_over_complete(self, datasets: Sequence[str], model: str, key: str
                           ) -> tuple[float | None, int]:
        """Mean over the data sets (seed means first) where the model is complete, and
        how many those are."""
        vals = [self.mean(d, model, key) for d in datasets if self.complete(d, model)]
        clean = [v for v in vals if v is not None]
        return (float(np.mean(clean)) if clean else None, len(clean))


def models_table(res: RunIndex) -> list[str]:
    """The ``## Models`` heading and table (model, family, configuration)."""
    rows = [[f"`{m}`", res.family(m), res.model_info.get(m, {}).get("description", "")]
            for m in res.models]
    return ["## Models", ""] + md_table(["model", "family", "configuration"], rows, "lll")


def render_sections(res: Index, header: Callable[[Index], list[str]],
                    sections: Sequence[Callable[[Index], list[str]]]) -> str:
    """The report's Markdown: the header, then each section (or "No results yet.")."""
    lines = header(res)
    if not res.runs:
        return "\n".join(lines + ["No results yet.", ""])
    for section in sections:
        lines += section(res)
    return "\n".join(lines).rstrip() + "\n"
