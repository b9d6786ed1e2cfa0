"""Tests for `mailwire.store.secret_file`: the generated secret in the data directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwire.errors import DataDirError
from mailwire.store.secret_file import (
    MAX_SECRET_FILE_BYTES,
    SECRET_FILE_NAME,
    read_secret_file,
    write_secret_file,
)

CURRENT = "a7" * 32
PREVIOUS = "1f" * 32


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / SECRET_FILE_NAME


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_raw(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that leaves new files world-readable, as on a careless host."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# ------------------------------------------------------------------ write and read back


def test_round_trip_keeps_order(path: Path) -> None:
    write_secret_file(path, [CURRENT, PREVIOUS])
    assert read_secret_file(path) == [CURRENT, PREVIOUS]


def test_written_file_is_0600_with_a_header(path: Path) -> None:
    write_secret_file(path, [CURRENT])
    assert _mode(path) == 0o600
    text = path.read_text()
    assert text.startswith("# ")
    assert "chmod 600" in text
    assert text.endswith(f"{CURRENT}\n")


@pytest.mark.usefixtures("open_umask")
def test_written_file_is_0600_whatever_the_umask(path: Path) -> None:
    write_secret_file(path, [CURRENT])
    assert _mode(path) == 0o600
    assert read_secret_file(path) == [CURRENT]


def test_rewrite_replaces_and_leaves_no_temp_files(path: Path) -> None:
    write_secret_file(path, [PREVIOUS])
    write_secret_file(path, [CURRENT, PREVIOUS])
    assert read_secret_file(path) == [CURRENT, PREVIOUS]
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRET_FILE_NAME]


def test_rewrite_fixes_a_loose_mode(path: Path) -> None:
    _write_raw(path, f"{PREVIOUS}\n".encode(), mode=0o644)
    write_secret_file(path, [CURRENT, PREVIOUS])
    assert _mode(path) == 0o600


def test_failed_write_names_the_path_and_leaves_no_temp_files(path: Path) -> None:
    path.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(DataDirError, match=SECRET_FILE_NAME) as caught:
        write_secret_file(path, [CURRENT])
    assert CURRENT not in str(caught.value)
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRET_FILE_NAME]


def test_write_into_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / SECRET_FILE_NAME
    with pytest.raises(DataDirError, match="missing"):
        write_secret_file(missing, [CURRENT])


@pytest.mark.parametrize(
    "bad",
    [[], [""], [f"{CURRENT}\n"], [f"{CURRENT}\r{PREVIOUS}"], [f" {CURRENT}"], ["#secret"]],
    ids=["none", "empty", "newline", "cr-inside", "padded", "comment"],
)
def test_secrets_that_would_not_read_back_are_refused(path: Path, bad: list[str]) -> None:
    with pytest.raises(ValueError) as caught:  # noqa: PT011  (messages vary; checked below)
        write_secret_file(path, bad)
    assert CURRENT not in str(caught.value)
    assert not path.exists()


# ------------------------------------------------------------------ read


def test_missing_file_is_none(path: Path) -> None:
    assert read_secret_file(path) is None


def test_comments_blank_lines_and_whitespace_are_ignored(path: Path) -> None:
    content = f"# a comment\n\n  {CURRENT}  \r\n   \n# {PREVIOUS}\n\t{PREVIOUS}\n\n"
    _write_raw(path, content.encode())
    assert read_secret_file(path) == [CURRENT, PREVIOUS]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# only a comment\n"])
def test_file_without_secret_is_refused(path: Path, content: bytes) -> None:
    _write_raw(path, content)
    with pytest.raises(DataDirError, match="holds no secret"):
        read_secret_file(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o601])
def test_file_readable_by_others_is_refused(path: Path, mode: int) -> None:
    _write_raw(path, f"{CURRENT}\n".encode(), mode=mode)
    with pytest.raises(DataDirError, match="chmod 600") as caught:
        read_secret_file(path)
    assert str(path) in str(caught.value)
    assert CURRENT not in str(caught.value)
    assert _mode(path) == mode  # reported, not silently fixed


def test_owner_only_modes_are_accepted(path: Path) -> None:
    _write_raw(path, f"{CURRENT}\n".encode(), mode=0o400)
    assert read_secret_file(path) == [CURRENT]


def test_directory_in_place_of_the_file_is_refused(path: Path) -> None:
    path.mkdir(mode=0o700)
    with pytest.raises(DataDirError, match="not a regular file"):
        read_secret_file(path)


def test_file_under_a_non_directory_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "a-file"
    parent.write_text("")
    with pytest.raises(DataDirError, match="cannot open"):
        read_secret_file(parent / SECRET_FILE_NAME)


def test_non_utf8_file_is_refused_without_quoting_it(path: Path) -> None:
    _write_raw(path, b"\xff" + CURRENT.encode() + b"\n")
    with pytest.raises(DataDirError, match="not UTF-8") as caught:
        read_secret_file(path)
    assert CURRENT not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_oversized_file_is_refused(path: Path) -> None:
    _write_raw(path, b"#" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(DataDirError, match="larger than"):
        read_secret_file(path)


def test_file_at_the_size_limit_is_read(path: Path) -> None:
    line = f"{CURRENT}\n".encode()
    _write_raw(path, b"#" * (MAX_SECRET_FILE_BYTES - len(line) - 1) + b"\n" + line)
    assert read_secret_file(path) == [CURRENT]
