"""Atomic outputs: all or nothing, no stray temporary file, named errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genad._io import atomic_path
from genad.errors import OutputError


def test_success_replaces_the_target_and_leaves_only_it(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers never see a half-written file
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_new_files_get_the_umask_mode_not_a_private_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "report.html") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o644


def test_an_unwritable_place_is_an_output_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write") as info, \
            atomic_path(blocker / "out.csv"):
        pass
    assert isinstance(info.value, OSError)
    assert info.value.filename == str(blocker / "out.csv")


def test_a_folder_as_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder"), atomic_path(tmp_path):
        pass
