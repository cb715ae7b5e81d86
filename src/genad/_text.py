"""Small helpers for error messages that name things the user can fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from genad.errors import InvalidInputError

__all__ = ["counted", "did_you_mean", "name_list", "unknown_name", "require_columns"]


def counted(n: int, noun: str) -> str:
    """``n`` with thousands separators and ``noun``, plural unless ``n`` is 1.

    Examples
    --------
    >>> counted(1, "image"), counted(2500, "row")
    ('1 image', '2,500 rows')
    """
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def did_you_mean(name: str, choices: Iterable[object]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close.

    Examples
    --------
    >>> did_you_mean("class", ["Time", "Amount", "Class"])
    " (did you mean 'Class'?)"
    >>> did_you_mean("zzz", ["Time"])
    ''
    """
    names = [str(c) for c in choices]
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower and by_lower[name.lower()] != name:
        return f" (did you mean {by_lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def name_list(names: Iterable[object]) -> str:
    """Every name, quoted and comma-separated (the user needs the full list to fix a typo).

    Examples
    --------
    >>> name_list(["a", "b"])
    "'a', 'b'"
    """
    return ", ".join(repr(str(n)) for n in names)


def unknown_name(what: str, name: str, choices: Iterable[object], where: str = "") -> str:
    """``"<what> 'name' is not in <where> (did you mean ...?); available: ..."``.

    Examples
    --------
    >>> print(unknown_name("label column", "class", ["Time", "Class"], "d.csv"))
    label column 'class' is not in d.csv (did you mean 'Class'?); available columns: 'Time', 'Class'
    """
    names = [str(c) for c in choices]
    place = f" in {where}" if where else ""
    return (f"{what} {name!r} is not{place}{did_you_mean(name, names)}; available columns: "
            f"{name_list(names)}")


def require_columns(
    names: Iterable[str], columns: Iterable[object], where: str, what: str = "column"
) -> None:
    """Raise :class:`~genad.errors.InvalidInputError` for the first of ``names`` that is
    not in ``columns``, with a did-you-mean and the full list of ``columns``.

    Examples
    --------
    >>> require_columns(["Class"], ["Time", "Class"], "d.csv")
    >>> try:
    ...     require_columns(["class"], ["Time", "Class"], "d.csv", "label column")
    ... except InvalidInputError as exc:
    ...     print(exc)
    label column 'class' is not in d.csv (did you mean 'Class'?); available columns: 'Time', 'Class'
    """
    available = list(columns)
    for name in names:
        if name not in available:
            raise InvalidInputError(unknown_name(what, name, available, where))
