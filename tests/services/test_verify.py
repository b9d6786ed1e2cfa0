"""Checking account settings against real peers: the private Dovecot and an aiosmtpd sink."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mailwire.services.verify import VerifyService
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.ports import find_free_port
from mailwire.testing.smtp_sink import SmtpSink
from mailwire.testing.tls import TLSCertificate

WRONG_PASSWORD = "wrong-Pa55-planted-1b7e"  # searched for in the answers
SMTP_USER, SMTP_PASSWORD = "carol", "smtp-Pa55-planted-6a0c"
NO_CHECK = {"rejectUnauthorized": False}


def imap_settings(dovecot: Dovecot, user: MailUser, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "host": dovecot.host,
        "port": dovecot.imap_port,
        "secure": False,
        "tls": NO_CHECK,
        "auth": {"user": user.name, "pass": user.password},
    }
    settings.update(extra)
    return settings


@pytest.fixture(scope="module")
def auth_sink(tls_cert: TLSCertificate) -> Iterator[SmtpSink]:
    """A sink that offers STARTTLS and AUTH for one user."""
    with SmtpSink(users={SMTP_USER: SMTP_PASSWORD}, tls=tls_cert) as sink:
        yield sink


async def test_right_password_over_starttls_with_mailboxes(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    answer = await VerifyService().verify(
        {"imap": imap_settings(dovecot, dovecot_user), "mailboxes": True}
    )

    assert answer["imap"] == {"success": True}
    by_path = {entry["path"]: entry for entry in answer["mailboxes"]}
    assert by_path["INBOX"]["specialUse"] == "\\Inbox"
    assert by_path["INBOX"]["specialUseSource"] == "name"
    assert by_path["Sent"]["specialUse"] == "\\Sent"
    assert by_path["Sent"]["specialUseSource"] == "extension"
    assert by_path["Sent"]["subscribed"] is True
    assert dovecot_user.password not in json.dumps(answer)


async def test_implicit_tls(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    settings = imap_settings(dovecot, dovecot_user, port=dovecot.imaps_port, secure=True)

    answer = await VerifyService().verify({"imap": settings})

    assert answer == {"imap": {"success": True}}


async def test_untrusted_certificate_is_refused_by_default(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    settings = imap_settings(dovecot, dovecot_user, port=dovecot.imaps_port, secure=True)
    del settings["tls"]

    answer = await VerifyService().verify({"imap": settings})

    assert answer["imap"]["success"] is False
    assert answer["imap"]["code"] == "ETLS"
    assert dovecot_user.password not in json.dumps(answer)


async def test_wrong_password_is_a_result_without_the_password(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    settings = imap_settings(dovecot, dovecot_user)
    settings["auth"] = {"user": dovecot_user.name, "pass": WRONG_PASSWORD}

    answer = await VerifyService().verify({"imap": settings, "mailboxes": True})

    assert answer["imap"]["success"] is False
    assert answer["imap"]["code"] == "AUTHENTICATIONFAILED"
    assert answer["imap"]["error"]
    assert "mailboxes" not in answer
    assert WRONG_PASSWORD not in json.dumps(answer)


async def test_closed_ports_are_connection_errors(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    port = find_free_port()
    imap = imap_settings(dovecot, dovecot_user, port=port)
    smtp = {"host": "127.0.0.1", "port": port, "auth": {"user": "u", "pass": WRONG_PASSWORD}}

    answer = await VerifyService().verify({"imap": imap, "smtp": smtp})

    assert answer["imap"]["success"] is False
    assert answer["imap"]["code"] == "ECONNREFUSED"
    assert answer["smtp"]["success"] is False
    assert answer["smtp"]["code"] == "ECONNREFUSED"
    assert WRONG_PASSWORD not in json.dumps(answer)


async def test_smtp_sink_without_auth(smtp_sink: SmtpSink) -> None:
    smtp = {"host": smtp_sink.host, "port": smtp_sink.port, "tls": NO_CHECK}

    answer = await VerifyService().verify({"smtp": smtp, "smtpEhloName": "verify.example"})

    assert answer == {"smtp": {"success": True}}


async def test_smtp_login_right_and_wrong(auth_sink: SmtpSink) -> None:
    base = {"host": auth_sink.host, "port": auth_sink.port, "tls": NO_CHECK}
    right = {**base, "auth": {"user": SMTP_USER, "pass": SMTP_PASSWORD}}
    wrong = {**base, "auth": {"user": SMTP_USER, "pass": WRONG_PASSWORD}}

    good = await VerifyService().verify({"smtp": right})
    bad = await VerifyService().verify({"smtp": wrong})

    assert good == {"smtp": {"success": True}}
    assert bad["smtp"]["success"] is False
    assert bad["smtp"]["code"] == "EAUTH"
    assert WRONG_PASSWORD not in json.dumps(bad)
    # Both connections are closed by now: a socket left for the garbage collector
    # shows up here as an unraisable ResourceWarning, which pytest turns into an error.
    gc.collect()
