"""`mailwire serve` refuses to start on data it cannot use: exit 2, one clear line.

stderr also carries the JSON log lines written before the refusal (the store's
migration notes); the refusal itself must be exactly one plain line, with no
traceback anywhere, no secret echoed, and the data left as it was.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from mailwire.testing.ports import find_free_port
from mailwire.testing.server import MailwireServer, clean_environment, mailwire_cli

OTHER_SECRET = "a-different-secret-0123456789"


def serve(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `mailwire serve` to completion (it must refuse; a start would time out)."""
    return mailwire_cli(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(find_free_port()),
        "--data-dir",
        str(data_dir),
        env=clean_environment(env),
        timeout=30,
    )


def refusal_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one plain line among the JSON log lines on stderr."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    assert "listening" not in result.stdout
    plain = []
    for line in result.stderr.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            plain.append(line)
            continue
        assert isinstance(parsed, dict), line
    assert len(plain) == 1, result.stderr
    assert plain[0].startswith("mailwire: error: ")
    return plain[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_different_secret_on_the_same_data_dir_is_refused(server: MailwireServer) -> None:
    secret_file = server.data_dir / "secret"
    before = secret_file.read_text()

    result = serve(server.data_dir, {"MAILWIRE_SECRET": OTHER_SECRET})

    line = refusal_line(result)
    assert "secret" in line.lower()
    assert "MAILWIRE_SECRET" in line
    assert OTHER_SECRET not in result.stderr + result.stdout
    assert secret_file.read_text() == before
    # The running server is not disturbed by the refused one.
    assert httpx.get(f"{server.url}/health", timeout=10).json()["store"] == "ok"


@pytest.mark.slow
def test_a_secret_other_than_the_one_the_data_was_written_with_is_refused(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = clean_environment({"MAILWIRE_SECRET": "the-original-secret-42"})
    issued = mailwire_cli("tokens", "issue", "--data-dir", str(data_dir), env=first)
    assert issued.returncode == 0, issued.stderr
    database = digest(data_dir / "mailwire.db")

    result = serve(data_dir, {"MAILWIRE_SECRET": OTHER_SECRET})

    assert "MAILWIRE_SECRET" in refusal_line(result)
    assert not (data_dir / "secret").exists(), "a refused start must not write a secret file"
    assert digest(data_dir / "mailwire.db") == database


@pytest.mark.slow
def test_a_missing_secret_file_is_refused_not_regenerated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    issued = mailwire_cli("tokens", "issue", "--data-dir", str(data_dir))
    assert issued.returncode == 0, issued.stderr
    (data_dir / "secret").unlink()

    result = serve(data_dir)

    line = refusal_line(result)
    assert "secret" in line
    assert not (data_dir / "secret").exists(), "Mailwire re-keyed silently"


def test_a_garbage_database_file_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    garbage = data_dir / "mailwire.db"
    garbage.write_bytes(b"this is not a SQLite database\n" * 100)
    before = digest(garbage)

    result = serve(data_dir)

    line = refusal_line(result)
    assert str(data_dir) in line
    assert "database" in line
    assert digest(garbage) == before
    assert not (data_dir / "secret").exists()


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be\n")

    result = serve(not_a_dir)

    assert "not a directory" in refusal_line(result)
    assert not_a_dir.read_text() == "a file where the data directory should be\n"


@pytest.mark.slow
def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    issued = mailwire_cli("tokens", "issue", "--data-dir", str(data_dir))
    assert issued.returncode == 0, issued.stderr
    (data_dir / "secret").chmod(0o644)

    result = serve(data_dir)

    assert "chmod 600" in refusal_line(result)
    assert (data_dir / "secret").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("workers", ["1", "2"])
def test_busy_port_is_one_line_and_exit_2(tmp_path: Path, workers: str) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = mailwire_cli(
            "serve", "--port", str(port), "--workers", workers, "--data-dir", str(tmp_path / "d")
        )
    finally:
        holder.close()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"mailwire: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in result.stderr
