"""Config rendering and the passwd-file rules of the Dovecot launcher (no server needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from mailwire.testing.dovecot_files import (
    MAX_CONNECTIONS,
    SPECIAL_USE_FOLDERS,
    ConfigValues,
    DovecotPaths,
    PasswdFile,
    check_credentials,
    render_config,
)
from mailwire.testing.maildir import Owner
from mailwire.testing.tls import TLSCertificate


def test_config_keeps_everything_under_root_and_on_loopback(tls_cert: TLSCertificate) -> None:
    paths = DovecotPaths(Path("/scratch/dc"))
    values = ConfigValues(
        instance_name="mailwire-test-x",
        host="127.0.0.1",
        imap_port=10143,
        imaps_port=10993,
        tls=tls_cert,
        owner=Owner(65534, 65534),
        privileges="",
    )
    text = render_config(paths, values)
    assert "listen = 127.0.0.1\n" in text
    assert "base_dir = /scratch/dc/run\n" in text
    assert "port = 10143\n" in text
    assert "port = 10993\n    ssl = yes\n" in text
    assert "args = uid=65534 gid=65534 home=/scratch/dc/home/%u\n" in text
    assert f"mail_max_userip_connections = {MAX_CONNECTIONS}\n" in text
    for name, flag in SPECIAL_USE_FOLDERS:
        assert f"mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n" in text
    assert "$" not in text


def test_passwd_file_lines_and_mode(tmp_path: Path) -> None:
    passwd = PasswdFile(tmp_path / "passwd")
    passwd.set("alice", "pw-a")
    passwd.set("bob@example.org", "pw-b")
    passwd.write()
    assert passwd.path.read_text() == (
        "alice:{PLAIN}pw-a::::::\nbob@example.org:{PLAIN}pw-b::::::\n"
    )
    assert passwd.path.stat().st_mode & 0o777 == 0o644


def test_same_size_rewrite_moves_mtime_to_a_new_second(tmp_path: Path) -> None:
    # Dovecot would miss a change that keeps both the size and the mtime second.
    passwd = PasswdFile(tmp_path / "passwd")
    passwd.set("alice", "aaaa")
    first = passwd.write()
    passwd.set("alice", "bbbb")
    second = passwd.write()
    assert second > first
    assert math.floor(os.stat(passwd.path).st_mtime) == second


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("Alice", "pw"),
        ("a:b", "pw"),
        ("-a", "pw"),
        ("", "pw"),
        ("a", ""),
        ("a", "p:w"),
        ("a", "p\nw"),
    ],
)
def test_credentials_that_would_corrupt_the_file_are_rejected(name: str, password: str) -> None:
    with pytest.raises(ValueError, match=r"user name|password"):
        check_credentials(name, password)
