"""The SMTP sink, driven by smtplib over loopback sockets."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator

import pytest

from mailwire.testing.errors import PeerError, PeerStartError, PeerTimeoutError
from mailwire.testing.smtp_sink import SmtpSink
from mailwire.testing.tls import TLSCertificate

RAW = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
USERS = {"carol": "carol-secret"}


@pytest.fixture
def auth_sink(tls_cert: TLSCertificate) -> Iterator[SmtpSink]:
    with SmtpSink(users=USERS, require_auth=True, tls=tls_cert) as sink:
        yield sink


def test_records_message_with_envelope(smtp_sink: SmtpSink) -> None:
    smtp_sink.clear()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        refused = client.sendmail("a@example.org", ["b@example.org", "c@example.org"], RAW)
    assert refused == {}
    [message] = smtp_sink.wait_for(1)
    assert message.mail_from == "a@example.org"
    assert message.rcpt_tos == ("b@example.org", "c@example.org")
    assert message.raw == RAW
    assert message.peer[0] == "127.0.0.1"
    assert message.auth_user is None
    assert message.tls is False


def test_dot_stuffed_lines_come_back_unstuffed(smtp_sink: SmtpSink) -> None:
    smtp_sink.clear()
    raw = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n"
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.sendmail("a@example.org", ["b@example.org"], raw)
    assert smtp_sink.wait_for(1)[0].raw == raw


def test_auth_is_required_before_mail(auth_sink: SmtpSink) -> None:
    with smtplib.SMTP(auth_sink.host, auth_sink.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["b@example.org"], RAW)
        assert refused.value.smtp_code == 530
    assert auth_sink.messages == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_accepted_and_recorded(auth_sink: SmtpSink, mechanism: str) -> None:
    with smtplib.SMTP(auth_sink.host, auth_sink.port, timeout=5) as client:
        client.ehlo()
        assert mechanism in client.esmtp_features["auth"].split()
        client.user, client.password = "carol", USERS["carol"]
        authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        code, _ = client.auth(mechanism, authobject, initial_response_ok=False)
        assert code == 235
        client.sendmail("carol@example.org", ["b@example.org"], RAW)
    [message] = auth_sink.wait_for(1)
    assert message.auth_user == "carol"


def test_wrong_password_is_refused(auth_sink: SmtpSink) -> None:
    with smtplib.SMTP(auth_sink.host, auth_sink.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("carol", "not-the-password")
        assert refused.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("mallory", USERS["carol"])


def test_starttls_verifies_and_is_recorded(smtp_sink: SmtpSink, tls_cert: TLSCertificate) -> None:
    smtp_sink.clear()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=tls_cert.client_context())
        assert code == 220
        client.sendmail("a@example.org", ["b@example.org"], RAW)
    [message] = smtp_sink.wait_for(1)
    assert message.tls is True


def test_required_starttls_refuses_clear_text_mail(tls_cert: TLSCertificate) -> None:
    with (
        SmtpSink(tls=tls_cert, require_starttls=True) as sink,
        smtplib.SMTP(sink.host, sink.port, timeout=5) as client,
    ):
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["b@example.org"], RAW)
        assert refused.value.smtp_code == 530
        client.starttls(context=tls_cert.client_context())
        client.sendmail("a@example.org", ["b@example.org"], RAW)
        assert sink.wait_for(1)[0].tls is True


def test_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    smtp_sink.clear()
    with pytest.raises(PeerTimeoutError, match="0 of 1"):
        smtp_sink.wait_for(1, timeout=0.05)


async def test_wait_for_async_from_an_async_test(smtp_sink: SmtpSink) -> None:
    smtp_sink.clear()

    def send() -> None:
        with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
            client.sendmail("a@example.org", ["b@example.org"], RAW)

    sending = asyncio.create_task(asyncio.to_thread(send))
    messages = await smtp_sink.wait_for_async(1)
    await sending
    assert messages[0].raw == RAW


def test_lifecycle_rules() -> None:
    sink = SmtpSink()
    with pytest.raises(PeerError, match="no port"):
        _ = sink.port
    with sink:
        port = sink.port
    assert sink.port == port
    with pytest.raises(PeerStartError, match="only once"):
        sink.start()
    with pytest.raises(ValueError, match="at least one user"):
        SmtpSink(require_auth=True)
