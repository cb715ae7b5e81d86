"""Helpers shared by the benchmark suites (:mod:`benchmarks.tabular`, :mod:`benchmarks.images`).

Progress lines, error text, the RSS sampler, atomic writes, the results file's parts and
merge, the command line of a run, name resolution for ``--models`` / ``--sets``, JSON-safe
parameters and the data folder. The Markdown helpers of the reports are in
:mod:`benchmarks._markdown`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

__all__ = [
    "PeakRSS",
    "as_scores",
    "atomic_write",
    "command_line",
    "data_root",
    "error_text",
    "finish_run",
    "jsonable",
    "load_parts",
    "log",
    "merge_parts",
    "parts_dir",
    "report_only",
    "resolve_names",
    "resolve_specs",
    "save_results",
    "time_best",
    "warning_messages",
]

Results = dict[str, Any]
WriteReport = Callable[[Results, Path], None]


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...


Spec = TypeVar("Spec", bound=_Named)


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


def error_text(exc: BaseException, limit: int = 500, one_line: bool = False) -> str:
    """``"<type>: <message>"``, cut to ``limit`` characters (newlines folded if ``one_line``)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if one_line:
        text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def data_root() -> Path:
    """Return the real-data folder: ``$GENAD_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("GENAD_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def command_line(prog: str, argv: Sequence[str] | None) -> str:
    """The command a run records: ``prog`` and its arguments (``sys.argv`` when None)."""
    argv_list = list(sys.argv[1:] if argv is None else argv)
    return prog + (" " + shlex.join(argv_list) if argv_list else "")


# --------------------------------------------------------------------------- models


def jsonable(value: Any) -> Any:
    """Best-effort conversion of a parameter value for JSON (numpy scalars as numbers,
    anything else unknown as its ``repr``)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def as_scores(values: Any, n_rows: int, source: str) -> np.ndarray:
    """Convert to a 1-D float64 array; raise if the shape is not ``(n_rows,)``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n_rows,):
        raise ValueError(f"{source} returned shape {arr.shape}, expected ({n_rows},)")
    return arr


def resolve_names(tokens: Sequence[str] | None, names: Sequence[str],
                  groups: Mapping[str, Iterable[str]], what: str, choices: str,
                  prefixes: bool = False) -> list[str]:
    """Resolve command-line tokens to names, in the order of ``names``.

    A token (case-insensitive, blanks skipped) is a key of ``groups`` (its names), one of
    ``names``, or with ``prefixes`` a prefix followed by ``-`` in names. ``None`` or an
    empty list selects every name.

    Raises
    ------
    ValueError
        A token matches nothing: ``"unknown <what> <token>; choose from <choices>"``.
    """
    if not tokens:
        return list(names)
    by_lower = {n.lower(): n for n in names}
    chosen: set[str] = set()
    for raw in tokens:
        token = raw.strip().lower()
        if not token:
            continue
        if token in groups:
            matches = list(groups[token])
        elif token in by_lower:
            matches = [by_lower[token]]
        elif prefixes:
            matches = [n for n in names if n.lower().startswith(token + "-")]
        else:
            matches = []
        if not matches:
            raise ValueError(f"unknown {what} {raw!r}; choose from {choices}")
        chosen.update(matches)
    return [n for n in names if n in chosen]


def resolve_specs(tokens: Sequence[str] | None, specs: Sequence[Spec],
                  prefixes: bool = False) -> list[Spec]:
    """Resolve ``--models`` tokens (names, ``all``, ``genad``, ``peers``) to model specs
    (objects with ``name`` and ``family``), in registry order; see :func:`resolve_names`."""
    names = [s.name for s in specs]
    genad = [s.name for s in specs if s.family == "genad"]
    peers = [s.name for s in specs if s.family == "peer"]
    groups = {"all": names, "genad": genad, "peer": peers, "peers": peers}
    chosen = set(resolve_names(tokens, names, groups, "model",
                               "all, genad, peers, " + ", ".join(names), prefixes))
    return [s for s in specs if s.name in chosen]


# --------------------------------------------------------------------------- one run


class PeakRSS:
    """Sample the resident set size of this process in a background thread.

    ``tracemalloc`` misses torch's allocations, so the RSS is read from
    ``/proc/self/statm`` every ``interval`` seconds. ``delta_mib`` is the peak RSS seen
    while running minus the RSS at :meth:`start`. Memory freed by an earlier model but
    kept by the allocator can hide part of a later model's growth, so the figure is a
    lower bound on the extra memory a model needs.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.baseline: int | None = None
        self.peak: int | None = None

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm", "rb") as fh:
                return int(fh.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self._rss()
            if rss is not None and (self.peak is None or rss > self.peak):
                self.peak = rss

    def start(self) -> None:
        """Record the baseline and start sampling."""
        self.baseline = self._rss()
        self.peak = self.baseline
        if self.baseline is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling (takes one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = self._rss()
        if rss is not None and self.peak is not None and rss > self.peak:
            self.peak = rss

    @property
    def delta_mib(self) -> float | None:
        """Peak minus baseline, in MiB."""
        if self.baseline is None or self.peak is None:
            return None
        return (self.peak - self.baseline) / 2**20


def time_best(score: Callable[[Any], Any], X: Any, repeats: int) -> tuple[Any, float]:
    """Run ``score(X)`` ``max(1, repeats)`` times; return the first output that is not
    None and the best wall time in seconds."""
    timings, first = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = score(X)
        timings.append(time.perf_counter() - t0)
        if first is None:
            first = out
    return first, min(timings)


def warning_messages(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """The distinct ``"<category>: <message>"`` texts of recorded warnings, sorted."""
    return sorted({f"{w.category.__name__}: {w.message}" for w in caught})


# --------------------------------------------------------------------------- results file


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_results(results: Results, json_path: Path, md_path: Path,
                 write_report: WriteReport) -> None:
    """Write the results JSON and its Markdown report (both atomically)."""
    atomic_write(json_path, json.dumps(results, indent=1, default=str) + "\n")
    write_report(results, md_path)


def finish_run(invocation: dict[str, Any], t_start: float, runs: Sequence[dict[str, Any]],
               save: Callable[[], None], json_path: Path, md_path: Path) -> int:
    """End a run: record when it finished and how long it took in ``invocation``, save,
    log the summary line; return the exit status (0)."""
    invocation["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    invocation["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    save()
    n_bad = sum(r["status"] != "ok" for r in runs)
    log(f"done in {time.perf_counter() - t_start:.0f}s: {len(runs)} entries, {n_bad} failed; "
        f"wrote {json_path} and {md_path}")
    return 0


def report_only(json_path: Path, md_path: Path, write_report: WriteReport) -> int:
    """``--report-only``: rebuild the Markdown from the JSON; the process exit status."""
    if not json_path.exists():
        log(f"no results file at {json_path}")
        return 2
    write_report(json.loads(json_path.read_text()), md_path)
    log(f"wrote {md_path}")
    return 0


def parts_dir(json_path: Path) -> Path:
    """Folder that keeps the part files merged into ``json_path``: ``<out>/<name>/parts``."""
    return json_path.with_suffix("") / "parts"


def load_parts(out_dir: Path, stems: Sequence[str], json_path: Path) -> list[Results] | None:
    """Read the part ``<stem>.json`` files of a merge; None (after a log line) when one is
    missing or found both in ``out_dir`` and in :func:`parts_dir`."""
    parts = []
    for stem in stems:
        candidates = [out_dir / f"{stem}.json", parts_dir(json_path) / f"{stem}.json"]
        found = [path for path in candidates if path.exists()]
        if len(found) != 1:
            where = " and ".join(str(path) for path in candidates)
            log(f"part {stem!r}: " + (f"no results file at {where}" if not found else
                                      f"results files at both {where}; keep one"))
            return None
        parts.append(json.loads(found[0].read_text()))
    return parts


def merge_parts(parts: Sequence[Results], stems: Sequence[str], command: str,
                sorted_keys: Sequence[str]) -> Results:
    """Merge results of part runs: runs keyed by (data set, seed, model), later parts win.

    The merged ``meta`` is the first part's, with every part's invocations (then the merge
    command), the union of the parts' ``sets``, ``seeds`` and ``models`` settings (sorted
    for the keys in ``sorted_keys``, else in order of appearance) and ``merged_from``.
    Per-epoch time lists (``epoch_seconds``) are dropped; their mean and count stay.
    """
    runs: dict[tuple[str, int, str], dict[str, Any]] = {}
    for part in parts:
        for r in part["runs"]:
            runs[(r["dataset"], r["seed"], r["model"])] = {
                k: v for k, v in r.items() if k != "epoch_seconds"}
    meta = json.loads(json.dumps(parts[0]["meta"]))
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta["invocations"] = [i for p in parts for i in p["meta"].get("invocations", [])]
    meta["invocations"].append({"command": command, "started": now, "finished": now})
    settings = meta.setdefault("settings", {})
    for key in ("sets", "seeds", "models"):
        values = [v for p in parts for v in p["meta"].get("settings", {}).get(key, [])]
        settings[key] = sorted(set(values)) if key in sorted_keys else list(
            dict.fromkeys(values))
    settings["merged_from"] = [f"{s}.json" for s in stems]
    return {"meta": meta, "runs": list(runs.values())}
