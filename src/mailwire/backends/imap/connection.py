"""`ImapConnection`: one client connection to an IMAP server.

Theory of operation. A read-feed-act-write loop around the sans-io core:
`_next_event` asks the `ResponseParser` for an event and, when it needs data,
reads from the `ImapStream` and feeds it; `_run` writes an encoded command's
first chunk, answers each "+" continuation with the next chunk (synchronising
literals, SASL without SASL-IR), collects untagged responses and returns on
the tagged one. Everything a command does happens inside `asyncio.timeout`;
a timeout, a protocol error, a lost connection or a cancelled command closes
the connection for good (`broken`), since the server's state is then unknown:
a cancelled command's reply would otherwise be read as the next command's.

Opening: connect (implicit TLS or plain), read the greeting, learn the
capabilities, and for STARTTLS upgrade the stream and learn them again (RFC
3501 section 6.2.1: capabilities from before TLS must be discarded). A
connection that was asked for STARTTLS never continues in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

from mailwire.backends.imap import auth
from mailwire.backends.imap.errors import (
    CommandFailedError,
    ConnectionClosedError,
    ImapAuthenticationError,
    ImapConnectionError,
    ImapProtocolError,
    ImapTimeoutError,
    ImapTlsError,
)
from mailwire.backends.imap.idle import IdleSession
from mailwire.backends.imap.stream import ImapStream
from mailwire.backends.imap.transcript import MASK, LineHook, render_command, render_event
from mailwire.logs import get_logger
from mailwire.net.tls import client_context
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.commands import Command, EncodedCommand, EncodingContext, Tagger
from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.parser import NEED_DATA, Limits, ResponseParser
from mailwire.protocols.imap.responses import (
    Capability,
    Continuation,
    Enabled,
    Event,
    Greeting,
    ResponseCode,
    Tagged,
    Untagged,
    UntaggedStatus,
)

log = get_logger(__name__)

Security = Literal["tls", "starttls", "none"]
#: Untagged responses one command may collect before the connection gives up. Each
#: is kept until the command ends, so a server flooding them (millions of `* 1
#: RECENT`) would otherwise grow memory until the command timeout; the sync fetches
#: in batches far below this.
MAX_UNTAGGED_PER_COMMAND = 250_000
#: Answers an unexpected continuation during a command (SASL challenges).
ContinuationHandler = Callable[[Continuation], bytes]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The tagged OK of a command and the untagged responses received while it ran."""

    tagged: Tagged
    untagged: list[Untagged] = field(default_factory=list)


class ImapConnection:
    """One IMAP client connection; build it with `await ImapConnection.open(...)`."""

    def __init__(
        self,
        stream: ImapStream,
        host: str,
        port: int,
        *,
        command_timeout: float,
        on_line: LineHook | None,
        disable_rev2: bool,
        limits: Limits | None = None,
        max_untagged: int = MAX_UNTAGGED_PER_COMMAND,
    ) -> None:
        self.host = host
        self.port = port
        self.capabilities: frozenset[str] = frozenset()
        self.enabled: frozenset[str] = frozenset()
        self.authenticated = False
        self.broken = False
        self.command_timeout = command_timeout
        self._stream = stream
        self._parser = ResponseParser(limits)
        self.max_untagged = max_untagged
        self._tagger = Tagger()
        self._on_line = on_line
        self._disable_rev2 = disable_rev2

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        security: Security,
        verify: bool = True,
        ca_file: str | Path | None = None,
        min_tls: str | None = None,
        connect_timeout: float = 30.0,
        greeting_timeout: float = 30.0,
        command_timeout: float = 60.0,
        on_line: LineHook | None = None,
        disable_rev2: bool = False,
        limits: Limits | None = None,
        max_untagged: int = MAX_UNTAGGED_PER_COMMAND,
    ) -> Self:
        """Connect, read the greeting and settle TLS; see the module docstring."""
        context = (
            client_context(verify=verify, ca_file=ca_file, min_version=min_tls)
            if security != "none"
            else None
        )
        try:
            async with asyncio.timeout(connect_timeout):
                stream = await ImapStream.connect(
                    host, port, tls=context if security == "tls" else None
                )
        except TimeoutError as error:
            raise ImapTimeoutError(
                f"connecting to {host}:{port} took over {connect_timeout} s"
            ) from error
        conn = cls(
            stream,
            host,
            port,
            command_timeout=command_timeout,
            on_line=on_line,
            disable_rev2=disable_rev2,
            limits=limits,
            max_untagged=max_untagged,
        )
        try:
            await conn._greet(greeting_timeout)
            if security == "starttls":
                assert context is not None
                await conn._starttls(context)
        except BaseException:
            await conn.close()
            raise
        log.info("imap_connected", host=host, port=port, security=security)
        return conn

    async def _greet(self, limit: float) -> None:
        try:
            async with asyncio.timeout(limit):
                event = await self.next_event()
        except TimeoutError as error:
            self._break()
            raise ImapTimeoutError(
                f"{self.host}:{self.port} sent no greeting within {limit} s"
            ) from error
        if not isinstance(event, Greeting):
            raise self.fail(ImapProtocolError(f"expected a greeting, got {render_event(event)}"))
        if event.status == "BYE":
            raise self.fail(ConnectionClosedError("server refused the connection", text=event.text))
        self.authenticated = event.status == "PREAUTH"
        if not self._absorb_code(event.code):
            await self.refresh_capabilities()

    async def _starttls(self, context: ssl.SSLContext) -> None:
        # RFC 3501 section 6.2.1; a PREAUTH session cannot start TLS any more.
        if self.authenticated or "STARTTLS" not in self.capabilities:
            raise self.fail(ImapTlsError(f"{self.host}:{self.port} does not offer STARTTLS"))
        try:
            await self.execute(commands.starttls())
        except CommandFailedError as error:
            raise self.fail(ImapTlsError(f"STARTTLS refused: {error.text}")) from error
        self._require_empty_buffer("STARTTLS")
        await self._stream.start_tls(context, self.host)
        self.capabilities = frozenset()
        await self.refresh_capabilities()

    def _require_empty_buffer(self, command: str) -> None:
        # Bytes already buffered after the OK came before the switch: accepting
        # them would let an attacker inject responses (CVE-2011-0411 style).
        if self._parser.next_event() is not NEED_DATA:
            raise self.fail(ImapProtocolError(f"server sent data after {command} OK"))

    async def refresh_capabilities(self) -> frozenset[str]:
        """Ask for CAPABILITY again (after TLS, or when login did not report them)."""
        result = await self.execute(commands.capability())
        if not self._absorb_code(result.tagged.code):
            for event in result.untagged:
                if isinstance(event, Capability):
                    self.capabilities = frozenset(event.capabilities)
        return self.capabilities

    def _absorb_code(self, code: ResponseCode | None) -> bool:
        if code is not None and code.name == "CAPABILITY":
            self.capabilities = frozenset(item.upper() for item in code.items)
            return True
        return False

    # ------------------------------------------------------------------ authentication

    async def login(self, user: str, password: str) -> None:
        """LOGIN (RFC 3501 section 6.2.3); refused here when the server says LOGINDISABLED."""
        if not auth.login_allowed(self.capabilities):
            raise ImapAuthenticationError(f"{self.host} disabled LOGIN (LOGINDISABLED)")
        await self._authenticate(commands.login(user, password), None)

    async def authenticate_plain(self, user: str, password: str) -> None:
        """AUTHENTICATE PLAIN (RFC 4616), inline with SASL-IR, else after a continuation."""
        payload = auth.plain_payload(user, password)
        await self._authenticate(commands.authenticate("PLAIN", payload), None)

    async def authenticate_xoauth2(self, user: str, access_token: str) -> None:
        """AUTHENTICATE XOAUTH2 (Google's format). A failure's JSON ends up in `detail`."""
        challenges: list[str] = []

        def answer(continuation: Continuation) -> bytes:
            # The server reports the failure in a challenge and waits for an
            # empty answer before its tagged NO.
            challenges.append(auth.decode_challenge(continuation.text))
            return b"\r\n"

        payload = auth.xoauth2_payload(user, access_token)
        await self._authenticate(
            commands.authenticate("XOAUTH2", payload), answer, challenges=challenges
        )

    async def _authenticate(
        self,
        command: Command,
        on_challenge: ContinuationHandler | None,
        *,
        challenges: list[str] | None = None,
    ) -> None:
        handler = on_challenge or (lambda _: commands.SASL_CANCEL)
        try:
            result = await self.execute(command, on_continuation=handler)
        except CommandFailedError as error:
            detail = "; ".join(challenges) if challenges else None
            message = f"{self.host} refused the credentials: {error.text}"
            if detail:
                message += f" ({detail})"
            log.warning("imap_auth_failed", host=self.host, port=self.port, server=error.text)
            raise ImapAuthenticationError(message, server_text=error.text, detail=detail) from None
        self.authenticated = True
        if not self._absorb_code(result.tagged.code):
            await self.refresh_capabilities()
        if auth.should_enable_rev2(self.capabilities, disable_rev2=self._disable_rev2):
            await self.enable("IMAP4rev2")

    # ------------------------------------------------------------------ commands

    def encoding_context(self) -> EncodingContext:
        """What the encoder may assume on this connection (LITERAL+, UTF8=ACCEPT)."""
        return EncodingContext(self.capabilities, utf8_enabled="UTF8=ACCEPT" in self.enabled)

    async def execute(
        self,
        command: Command,
        *,
        context: EncodingContext | None = None,
        on_continuation: ContinuationHandler | None = None,
    ) -> CommandResult:
        """Run one command; raise `CommandFailedError` on NO or BAD.

        `context` overrides `encoding_context()`, e.g. to avoid LITERAL+.
        """
        self._check_usable()
        encoded = commands.encode(
            command, self._tagger.next_tag(), context or self.encoding_context()
        )
        try:
            async with asyncio.timeout(self.command_timeout):
                return await self._run(command, encoded, on_continuation)
        except TimeoutError as error:
            raise self.fail(
                ImapTimeoutError(f"{command.name} took over {self.command_timeout} s")
            ) from error
        except asyncio.CancelledError:
            self._break()
            raise

    async def _run(
        self,
        command: Command,
        encoded: EncodedCommand,
        on_continuation: ContinuationHandler | None,
    ) -> CommandResult:
        await self._send(encoded.chunks[0], render_command(encoded.tag, command))
        pending = list(encoded.chunks[1:])
        untagged: list[Untagged] = []
        while True:
            event = await self.next_event()
            if isinstance(event, Continuation):
                if pending:
                    chunk = pending.pop(0)
                    await self._send(chunk, MASK if encoded.sensitive else "{literal continues}")
                elif on_continuation is not None:
                    await self._send(on_continuation(event), MASK)
                else:
                    raise self.fail(ImapProtocolError(f"unexpected continuation in {command.name}"))
            elif isinstance(event, Tagged):
                if event.tag != encoded.tag:
                    raise self.fail(ImapProtocolError(f"unexpected tag {event.tag!r}"))
                if event.status != "OK":
                    raise CommandFailedError(command.name, event.status, event.text)
                return CommandResult(event, untagged)
            elif isinstance(event, Greeting):
                raise self.fail(ImapProtocolError("a second greeting"))
            else:
                self.note_untagged(event, command.name)
                if len(untagged) >= self.max_untagged:
                    limit = LimitExceededError(
                        "max_untagged_per_command",
                        f"{command.name} drew more than {self.max_untagged} untagged responses",
                    )
                    raise self.fail(
                        ImapProtocolError(f"server broke the protocol: {limit}")
                    ) from limit
                untagged.append(event)

    def note_untagged(self, event: Untagged, command: str) -> None:
        if isinstance(event, Capability):
            self.capabilities = frozenset(event.capabilities)
        elif isinstance(event, Enabled):
            self.enabled |= frozenset(cap.upper() for cap in event.capabilities)
        elif isinstance(event, UntaggedStatus) and event.status == "BYE" and command != "LOGOUT":
            raise self.fail(
                ConnectionClosedError(f"server said BYE: {event.text}", text=event.text)
            )

    async def enable(self, *capabilities: str) -> frozenset[str]:
        """ENABLE (RFC 5161); returns what the server reported as enabled."""
        result = await self.execute(commands.enable(*capabilities))
        return frozenset(
            cap.upper() for e in result.untagged if isinstance(e, Enabled) for cap in e.capabilities
        )

    async def compress(self) -> bool:
        """COMPRESS DEFLATE (RFC 4978) when offered; returns whether it is now on."""
        if "COMPRESS=DEFLATE" not in self.capabilities or self._stream.compressed:
            return self._stream.compressed
        await self.execute(commands.compress_deflate())
        self._require_empty_buffer("COMPRESS")
        self._stream.start_deflate()
        return True

    @asynccontextmanager
    async def idle(self) -> AsyncIterator[IdleSession]:
        """IDLE (RFC 2177): yields an `IdleSession`; leaving the block sends DONE."""
        self._check_usable()
        tag = self._tagger.next_tag()
        encoded = commands.encode(commands.idle(), tag, self.encoding_context())
        session = IdleSession(self, tag)
        try:
            async with asyncio.timeout(self.command_timeout):
                await self._send(encoded.chunks[0], f"{tag} IDLE")
                await session.started()
        except TimeoutError as error:
            raise self.fail(ImapTimeoutError("IDLE was not accepted in time")) from error
        except asyncio.CancelledError:
            self._break()
            raise
        try:
            yield session
        except asyncio.CancelledError:
            self._break()  # no DONE from a cancelled task: the connection is dropped
            raise
        finally:
            if not self.broken and not session.ended:
                try:
                    async with asyncio.timeout(self.command_timeout):
                        await self._send(commands.done(), "DONE")
                        await session.finish()
                except TimeoutError as error:
                    raise self.fail(ImapTimeoutError("IDLE did not end in time")) from error

    async def logout(self) -> None:
        """LOGOUT (RFC 3501 section 6.1.3), then close."""
        if not self.broken:
            with contextlib.suppress(ConnectionClosedError, CommandFailedError):
                await self.execute(commands.logout())
        await self.close()

    async def close(self) -> None:
        """Close the transport without LOGOUT."""
        self.broken = True
        await self._stream.close()

    # ------------------------------------------------------------------ loop internals

    async def _send(self, data: bytes, log_text: str) -> None:
        if self._on_line is not None:
            self._on_line("c", log_text)
        await self._stream.write(data)

    async def next_event(self) -> Event:
        while True:
            try:
                event = self._parser.next_event()
                if event is NEED_DATA:
                    data = await self._stream.read()
                    if not data:
                        raise self.fail(ConnectionClosedError("server closed the connection"))
                    self._parser.receive_data(data)
                    continue
            except ProtocolError as error:
                raise self.fail(ImapProtocolError(f"server broke the protocol: {error}")) from error
            except ConnectionClosedError as error:
                raise self.fail(error) from None
            if self._on_line is not None:
                self._on_line("s", render_event(event))
            return event

    def _check_usable(self) -> None:
        if self.broken:
            raise ConnectionClosedError(f"connection to {self.host}:{self.port} is closed")

    def _break(self) -> None:
        if not self.broken:
            self.broken = True
            self._stream.abort()

    def fail(self, error: ImapConnectionError) -> ImapConnectionError:
        """Mark the connection unusable and return `error` for raising."""
        log.warning("imap_connection_failed", host=self.host, port=self.port, error=str(error))
        self._break()
        return error
