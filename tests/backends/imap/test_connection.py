"""ImapConnection against the rig's real Dovecot, over real sockets."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from mailwire.backends.imap.connection import ImapConnection, Security
from mailwire.backends.imap.errors import (
    CommandFailedError,
    ConnectionClosedError,
    ImapAuthenticationError,
    ImapTlsError,
)
from mailwire.backends.imap.transcript import LineHook
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.commands import EncodingContext, SequenceSet
from mailwire.protocols.imap.responses import Exists, Fetch
from mailwire.testing.dovecot import Dovecot, MailUser


def _message(subject: str) -> bytes:
    return (
        f"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n\r\nHello {subject}\r\n"
    ).encode()


async def _plain(dovecot: Dovecot, on_line: LineHook | None = None) -> ImapConnection:
    return await ImapConnection.open(
        dovecot.host, dovecot.imap_port, security="none", command_timeout=10, on_line=on_line
    )


async def test_plain_login_learns_capabilities(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    lines: list[tuple[str, str]] = []
    conn = await _plain(dovecot, on_line=lambda src, text: lines.append((src, text)))
    assert "IMAP4REV1" in conn.capabilities
    await conn.login(dovecot_user.name, dovecot_user.password)
    assert conn.authenticated
    assert "IDLE" in conn.capabilities
    await conn.logout()
    assert conn.broken
    assert any(src == "c" and "LOGIN" in text for src, text in lines)
    assert all(dovecot_user.password not in text for _, text in lines)


async def test_starttls_verifies_against_the_rig_certificate(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    conn = await ImapConnection.open(
        "localhost", dovecot.imap_port, security="starttls", ca_file=dovecot.cert.cert
    )
    assert "STARTTLS" not in conn.capabilities  # refreshed after the upgrade
    await conn.authenticate_plain(dovecot_user.name, dovecot_user.password)
    assert conn.authenticated
    await conn.logout()


async def test_implicit_tls(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    conn = await ImapConnection.open(
        "127.0.0.1", dovecot.imaps_port, security="tls", ca_file=dovecot.cert.cert
    )
    await conn.login(dovecot_user.name, dovecot_user.password)
    await conn.logout()


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_self_signed_fails_by_default_and_passes_without_verification(
    dovecot: Dovecot, security: Security
) -> None:
    port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    with pytest.raises(ImapTlsError):
        await ImapConnection.open(dovecot.host, port, security=security)
    conn = await ImapConnection.open(dovecot.host, port, security=security, verify=False)
    assert "IMAP4REV1" in conn.capabilities
    await conn.logout()


async def test_wrong_password_is_an_auth_error_without_the_password(
    dovecot: Dovecot, dovecot_user: MailUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire")
    wrong = "wrong-" + uuid.uuid4().hex
    lines: list[str] = []
    conn = await _plain(dovecot, on_line=lambda _src, text: lines.append(text))
    with pytest.raises(ImapAuthenticationError) as caught:
        await conn.login(dovecot_user.name, wrong)
    assert wrong not in str(caught.value)
    assert caught.value.server_text
    with pytest.raises(ImapAuthenticationError) as caught:
        await conn.authenticate_plain(dovecot_user.name, wrong)
    assert wrong not in str(caught.value)
    assert all(wrong not in line for line in lines)
    await conn.logout()
    assert "imap_auth_failed" in caplog.text
    assert wrong not in caplog.text


async def test_select_and_uid_fetch_a_delivered_message(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    subject = "fetch-" + uuid.uuid4().hex
    dovecot.deliver(dovecot_user.name, _message(subject))
    conn = await _plain(dovecot)
    await conn.login(dovecot_user.name, dovecot_user.password)
    selected = await conn.execute(commands.select("INBOX"))
    assert selected.tagged.code is not None
    fetched = await conn.execute(
        commands.uid_fetch(SequenceSet.span(1), ["UID", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    )
    bodies = [s.data or b"" for e in fetched.untagged if isinstance(e, Fetch) for s in e.sections]
    assert any(subject.encode() in body for body in bodies)
    with pytest.raises(CommandFailedError) as caught:
        await conn.execute(commands.select("No/Such/Mailbox"))
    assert caught.value.status == "NO"
    await conn.logout()


@pytest.mark.parametrize("literal_plus", [True, False])
async def test_append_with_and_without_literal_plus(
    dovecot: Dovecot, dovecot_user: MailUser, literal_plus: bool
) -> None:
    lines: list[str] = []
    conn = await _plain(dovecot, on_line=lambda _src, text: lines.append(text))
    await conn.login(dovecot_user.name, dovecot_user.password)
    assert "LITERAL+" in conn.capabilities  # Dovecot advertises it
    caps = conn.capabilities if literal_plus else conn.capabilities - {"LITERAL+"}
    message = _message("append-" + uuid.uuid4().hex)
    result = await conn.execute(commands.append("INBOX", message), context=EncodingContext(caps))
    assert result.tagged.code is not None
    assert result.tagged.code.name == "APPENDUID"
    went_ahead = any(line.startswith("+") for line in lines)  # the server's "+" go-ahead
    assert went_ahead is not literal_plus
    assert all(b"append-" not in line.encode() for line in lines)
    await conn.logout()


async def test_idle_sees_a_message_appended_elsewhere(
    dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    watcher = await _plain(dovecot)
    await watcher.login(dovecot_user.name, dovecot_user.password)
    await watcher.execute(commands.select("INBOX"))
    other = await _plain(dovecot)
    await other.login(dovecot_user.name, dovecot_user.password)
    seen: list[object] = []
    async with watcher.idle() as session:
        await other.execute(commands.append("INBOX", _message("idle")))
        for _ in range(20):
            event = await session.next(wait=0.5)
            if isinstance(event, Exists):
                seen.append(event)
                break
    assert seen
    assert session.ended
    await watcher.execute(commands.noop())
    await other.logout()
    await watcher.logout()


async def test_compress_deflate_for_real(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    conn = await _plain(dovecot)
    await conn.login(dovecot_user.name, dovecot_user.password)
    assert "COMPRESS=DEFLATE" in conn.capabilities
    assert await conn.compress()
    await conn.execute(commands.select("INBOX"))
    await conn.execute(commands.append("INBOX", _message("compressed")))
    result = await conn.execute(commands.uid_fetch(SequenceSet.span(1), ["UID"]))
    assert any(isinstance(e, Fetch) for e in result.untagged)
    await conn.logout()


async def test_closed_connection_refuses_commands(dovecot: Dovecot) -> None:
    conn = await _plain(dovecot)
    await conn.close()
    with pytest.raises(ConnectionClosedError, match="closed"):
        await asyncio.wait_for(conn.execute(commands.noop()), 5)
