"""`mailwire tokens issue|list|revoke` against a private SQLite data directory."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue(cli: Cli, data_dir: Path, *args: str) -> str:
    result = cli("tokens", "issue", "--data-dir", str(data_dir), *args)
    assert result.returncode == 0, result.stderr
    # Only the token, on one line: scripts capture it with $(mailwire tokens issue).
    assert HEX64.fullmatch(result.stdout.removesuffix("\n")), result.stdout
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""
    return result.stdout.strip()


def listed(cli: Cli, data_dir: Path, *args: str) -> list[list[str]]:
    result = cli("tokens", "list", "--data-dir", str(data_dir), *args)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_issue_prints_only_the_token_and_list_shows_its_id(cli: Cli, data_dir: Path) -> None:
    token = issue(cli, data_dir)

    rows = listed(cli, data_dir)
    result = cli("tokens", "list", "--data-dir", str(data_dir))

    assert [row[0] for row in rows] == [sha256(token)]
    assert token not in result.stdout + result.stderr
    [row] = rows
    assert row[1:3] == ["-", "*"]  # no account; the default scope reaches everything
    assert datetime.fromisoformat(row[3]).tzinfo is not None
    assert row[4] == "-"  # never used
    assert row[5] == "Issued from the command line"
    # The store keeps a hash, never the token.
    assert token.encode() not in (data_dir / "mailwire.db").read_bytes()


@pytest.mark.slow
def test_issue_with_scopes_account_and_description(cli: Cli, data_dir: Path) -> None:
    token = issue(
        cli,
        data_dir,
        "--scope",
        "api",
        "--scope",
        "smtp",
        "--account",
        "user123",
        "--description",
        "Agent for user123",
    )
    other = issue(cli, data_dir, "--scope", "metrics")

    rows = {row[0]: row for row in listed(cli, data_dir)}
    for_account = listed(cli, data_dir, "--account", "user123")

    assert rows[sha256(token)][1:3] == ["user123", "api,smtp"]
    assert rows[sha256(token)][5] == "Agent for user123"
    assert rows[sha256(other)][1:3] == ["-", "metrics"]
    assert [row[0] for row in for_account] == [sha256(token)]
    assert token != other


@pytest.mark.slow
def test_issue_with_expiry(cli: Cli, data_dir: Path) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0, tzinfo=None)
    issue(cli, data_dir, "--expires", expires.isoformat())

    past = cli("tokens", "issue", "--data-dir", str(data_dir), "--expires", "2001-01-01T00:00:00")

    assert past.returncode == 1
    assert len(past.stderr.splitlines()) == 1
    assert "expir" in past.stderr
    assert past.stdout == ""
    assert len(listed(cli, data_dir)) == 1


def test_issue_refuses_an_unknown_scope(cli: Cli, data_dir: Path) -> None:
    result = cli("tokens", "issue", "--data-dir", str(data_dir), "--scope", "root")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "root" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()


@pytest.mark.slow
def test_revoke_by_id_then_again(cli: Cli, data_dir: Path) -> None:
    kept = issue(cli, data_dir)
    token = issue(cli, data_dir, "--description", "to revoke")

    revoked = cli("tokens", "revoke", sha256(token), "--data-dir", str(data_dir))
    again = cli("tokens", "revoke", sha256(token), "--data-dir", str(data_dir))

    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == "revoked"
    assert again.returncode == 1
    assert len(again.stderr.splitlines()) == 1
    assert "Traceback" not in again.stderr
    assert [row[0] for row in listed(cli, data_dir)] == [sha256(kept)]


@pytest.mark.slow
def test_revoke_by_token_then_again(cli: Cli, data_dir: Path) -> None:
    token = issue(cli, data_dir)

    revoked = cli("tokens", "revoke", f"  {token.upper()}  ", "--data-dir", str(data_dir))
    again = cli("tokens", "revoke", token, "--data-dir", str(data_dir))

    assert revoked.returncode == 0, revoked.stderr
    assert again.returncode == 1
    assert again.stdout == ""
    assert token not in again.stderr
    assert listed(cli, data_dir) == []


def test_revoke_unknown_is_exit_1(cli: Cli, data_dir: Path) -> None:
    result = cli("tokens", "revoke", "not-a-token", "--data-dir", str(data_dir))

    assert result.returncode == 1
    assert result.stderr.startswith("mailwire: error: ")
    assert len(result.stderr.splitlines()) == 1
