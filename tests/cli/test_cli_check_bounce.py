"""`mailwire check-bounce FILE`: the bounce or complaint a message reports, as JSON."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLES = Path(__file__).parent.parent / "protocols" / "mime" / "bounce_samples"


def test_a_dsn_prints_the_bounce_data(cli: Cli) -> None:
    result = cli("check-bounce", str(SAMPLES / "dsn_postfix.eml"))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kind"] == "bounce"
    assert found["raisesEvent"] is True
    assert found["data"]["action"] == "failed"
    assert found["data"]["messageId"].startswith("<")


def test_a_feedback_report_prints_the_complaint(cli: Cli) -> None:
    result = cli("check-bounce", str(SAMPLES / "complaint_arf.eml"))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kind"] == "complaint"
    assert found["data"]["arf"]["originalRcptTo"]


def test_an_ordinary_message_is_neither(cli: Cli, tmp_path: Path) -> None:
    message = tmp_path / "plain.eml"
    message.write_bytes(b"From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n")
    result = cli("check-bounce", str(message))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"kind": None}


def test_a_missing_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("check-bounce", str(tmp_path / "nope.eml"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
