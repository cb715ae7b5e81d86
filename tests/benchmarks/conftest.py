"""Put the repository root first on ``sys.path`` so that ``benchmarks`` is the repository's
package under a bare ``pytest`` too (``python -m pytest`` adds the working directory
itself; without it, ``tests/benchmarks`` would be found as a namespace package)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
