"""ImapConnection against tiny in-test servers, for behaviour Dovecot cannot show."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mailwire.backends.imap import auth
from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.errors import (
    ImapAuthenticationError,
    ImapConnectError,
    ImapTimeoutError,
    ImapTlsError,
)
from mailwire.net.tls import client_context
from mailwire.protocols.imap import commands
from mailwire.testing.tls import TLSCertificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_starttls_required_but_not_offered_is_refused(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake\r\n")
        while line := await reader.readline():
            received.append(line)
        writer.close()

    port = await serve(handler)
    with pytest.raises(ImapTlsError, match="STARTTLS"):
        await ImapConnection.open("127.0.0.1", port, security="starttls", greeting_timeout=2)
    await asyncio.sleep(0.1)
    assert received == []  # nothing at all was sent in clear


async def test_starttls_required_and_refused_sends_nothing_else(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK fake\r\n")
        while line := await reader.readline():
            received.append(line)
            tag = line.split()[0]
            if b"CAPABILITY" in line:
                writer.write(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + tag + b" OK done\r\n")
            else:
                writer.write(tag + b" NO not today\r\n")
        writer.close()

    port = await serve(handler)
    with pytest.raises(ImapTlsError, match="refused"):
        await ImapConnection.open("127.0.0.1", port, security="starttls", greeting_timeout=2)
    await asyncio.sleep(0.1)
    assert [line.split()[1] for line in received] == [b"CAPABILITY", b"STARTTLS"]


async def test_no_greeting_times_out_within_the_limit(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets
        writer.close()

    port = await serve(handler)
    started = time.monotonic()
    with pytest.raises(ImapTimeoutError, match="greeting"):
        await ImapConnection.open("127.0.0.1", port, security="none", greeting_timeout=0.3)
    assert time.monotonic() - started < 2


async def test_command_timeout_closes_the_connection(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] fake\r\n")
        await reader.read()  # never answers
        writer.close()

    port = await serve(handler)
    conn = await ImapConnection.open("127.0.0.1", port, security="none", command_timeout=0.3)
    with pytest.raises(ImapTimeoutError):
        await conn.login("bob", "secret-password-123")
    assert conn.broken


async def test_xoauth2_failure_surfaces_the_decoded_error(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    token = "ya29.secret-token-" + "x" * 20
    error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] gimap\r\n")
        line = await reader.readline()
        received.append(line)
        writer.write(b"+ " + base64.b64encode(json.dumps(error).encode()) + b"\r\n")
        received.append(await reader.readline())
        writer.write(line.split()[0] + b" NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
        await reader.read()
        writer.close()

    port = await serve(handler)
    lines: list[str] = []
    conn = await ImapConnection.open(
        "127.0.0.1", port, security="none", on_line=lambda _s, text: lines.append(text)
    )
    with pytest.raises(ImapAuthenticationError) as caught:
        await conn.authenticate_xoauth2("bob@example.com", token)
    assert caught.value.detail is not None
    assert '"401"' in caught.value.detail
    assert token not in str(caught.value)
    assert received[1] == b"\r\n"
    sent = base64.b64decode(received[0].split()[-1])
    assert sent == f"user=bob@example.com\x01auth=Bearer {token}\x01\x01".encode()
    assert all(token not in line and received[0].split()[-1].decode() not in line for line in lines)
    await conn.close()


async def test_authenticate_plain_without_sasl_ir_waits_for_the_continuation(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev2 IMAP4rev1 ENABLE AUTH=PLAIN] fake\r\n")
        while line := await reader.readline():
            received.append(line)
            tag = line.split()[0]
            if b"AUTHENTICATE" in line:
                writer.write(b"+ \r\n")
                received.append(await reader.readline())
                writer.write(tag + b" OK [CAPABILITY IMAP4rev2 IMAP4rev1 ENABLE] in\r\n")
            elif b"ENABLE" in line:
                writer.write(b"* ENABLED IMAP4rev2\r\n" + tag + b" OK enabled\r\n")
        writer.close()

    port = await serve(handler)
    conn = await ImapConnection.open("127.0.0.1", port, security="none")
    await conn.authenticate_plain("bob", "pw-123456")
    assert received[0].split()[1:] == [b"AUTHENTICATE", b"PLAIN"]
    assert base64.b64decode(received[1]) == b"\x00bob\x00pw-123456"
    assert received[2].split()[1:] == [b"ENABLE", b"IMAP4rev2"]
    assert conn.enabled == {"IMAP4REV2"}
    await conn.close()


def test_rev2_decision() -> None:
    offered = frozenset({"IMAP4REV1", "IMAP4REV2", "ENABLE"})
    assert auth.should_enable_rev2(offered, disable_rev2=False)
    assert not auth.should_enable_rev2(offered, disable_rev2=True)
    assert not auth.should_enable_rev2(frozenset({"IMAP4REV1", "ENABLE"}), disable_rev2=False)
    assert not auth.should_enable_rev2(frozenset({"IMAP4REV2"}), disable_rev2=False)


def test_login_disabled_decision() -> None:
    assert auth.login_allowed(frozenset({"IMAP4REV1"}))
    assert not auth.login_allowed(frozenset({"LOGINDISABLED"}))


def test_client_context_verifies_by_default() -> None:
    verifying = client_context()
    assert verifying.verify_mode == ssl.CERT_REQUIRED
    assert verifying.check_hostname
    assert verifying.minimum_version == ssl.TLSVersion.TLSv1_2
    lax = client_context(verify=False)
    assert lax.verify_mode == ssl.CERT_NONE
    assert not lax.check_hostname
    assert lax.minimum_version == ssl.TLSVersion.TLSv1_2


def test_min_tls_version_raises_the_floor_and_never_lowers_it() -> None:
    assert client_context(min_version="TLSv1.3").minimum_version == ssl.TLSVersion.TLSv1_3
    for older in ("TLSv1", "TLSv1.1", "TLSv1.2", None, "bogus"):
        assert client_context(min_version=older).minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(("min_tls", "accepted"), [("TLSv1.2", True), ("TLSv1.3", False)])
async def test_min_tls_version_refuses_an_older_server(
    tls_cert: TLSCertificate, min_tls: str, accepted: bool
) -> None:
    # The server speaks TLS 1.2 at most; an account asking for TLS 1.3 must not connect.
    server_context = tls_cert.server_context()
    server_context.maximum_version = ssl.TLSVersion.TLSv1_2

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
        with contextlib.suppress(OSError):
            await writer.drain()
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        if accepted:
            conn = await ImapConnection.open(
                "127.0.0.1", port, security="tls", verify=False, min_tls=min_tls
            )
            await conn.close()
        else:
            # The handshake fails: a TLS alert, or the server dropping the connection.
            with pytest.raises(ImapConnectError):
                await ImapConnection.open(
                    "127.0.0.1", port, security="tls", verify=False, min_tls=min_tls
                )
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("during", ["command", "idle"])
async def test_a_cancelled_command_drops_the_connection_without_logout(
    serve: Callable[[Handler], Awaitable[int]], during: str
) -> None:
    # The server never answers the command (or keeps IDLE open): a cancelled
    # caller leaves a reply in flight, so the connection must not be reused,
    # not even for LOGOUT, whose reader would take the old reply for its own.
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 IDLE] fake\r\n")
        while line := await reader.readline():
            received.append(line)
            if line.endswith(b"IDLE\r\n"):
                writer.write(b"+ idling\r\n")
        writer.close()

    port = await serve(handler)
    conn = await ImapConnection.open("127.0.0.1", port, security="none", greeting_timeout=2)

    async def stuck() -> None:
        if during == "command":
            await conn.execute(commands.noop())
        else:
            async with conn.idle() as session:
                await session.next(60)

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.broken
    await conn.logout()
    await asyncio.sleep(0.1)
    assert [line.split(b" ", 1)[1] for line in received] == [
        b"NOOP\r\n" if during == "command" else b"IDLE\r\n"
    ]
