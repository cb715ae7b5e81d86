"""Atomic file output: write to a temporary file in the target folder, then rename.

A reader never sees a half-written file, a failed write leaves the old file (if any)
untouched, and no stray temporary file is left behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genad.errors import OutputError

__all__ = ["atomic_path"]


def _new_temporary(path: Path) -> Path:
    """Create an empty, unique temporary file beside ``path`` with the umask's mode (as
    any new file gets; ``tempfile.mkstemp`` would make it private to its owner)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The parent folder is created when missing. On any exception the temporary file is
    removed and ``path`` is left as it was; an ``OSError`` (an unwritable folder, a full or
    read-only disk) is raised as :class:`~genad.errors.OutputError` naming ``path``, any
    other exception propagates unchanged.

    Examples
    --------
    >>> import tempfile, os
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(os.listdir(target.parent))
    ('done', ['out.txt'])
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temporary(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", path) from exc
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
