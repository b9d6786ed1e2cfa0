"""Maildir++ naming and flag rules used by `Dovecot.deliver` (no server needed)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from mailwire.testing.maildir import MaildirWriter, folder_dirname, info_flags


@pytest.mark.parametrize(
    ("folder", "dirname"),
    [
        ("INBOX", ""),
        ("inbox", ""),
        ("Sent", ".Sent"),
        ("Archive/2020", ".Archive.2020"),
        ("R&D", ".R&-D"),
    ],
)
def test_folder_dirname(folder: str, dirname: str) -> None:
    assert folder_dirname(folder) == dirname


@pytest.mark.parametrize("folder", ["", "a.b", "a//b", "/a", "Ünïcode", "a*"])
def test_folder_dirname_rejects(folder: str) -> None:
    with pytest.raises(ValueError, match="folder name"):
        folder_dirname(folder)


def test_info_flags_sorted_and_deduplicated() -> None:
    assert info_flags("SFSD") == "DFS"
    assert info_flags("") == ""
    with pytest.raises(ValueError, match="unknown Maildir flags"):
        info_flags("s")


def test_writer_builds_maildir_and_sets_mtime(tmp_path: Path) -> None:
    writer = MaildirWriter(owner=None)
    maildir = tmp_path / "home" / "Maildir"
    folder = writer.ensure_folder(maildir, "Archive/2020")
    when = dt.datetime(2019, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    first = writer.write(folder, b"a\r\n", flags="RS", internaldate=when)
    second = writer.write(folder, b"bb\r\n")
    assert folder == maildir / ".Archive.2020"
    assert (folder / "maildirfolder").is_file()
    assert {p.name for p in maildir.iterdir()} >= {"cur", "new", "tmp", ".Archive.2020"}
    assert first.parent == folder / "cur"
    assert first.name.endswith(",S=3:2,RS")
    assert second.name.endswith(",S=4:2,")
    assert first.name != second.name
    assert os.stat(first).st_mtime == when.timestamp()
    assert list((folder / "tmp").iterdir()) == []
