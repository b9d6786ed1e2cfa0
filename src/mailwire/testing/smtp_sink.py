"""An SMTP server on loopback that accepts every message and remembers it.

Built on aiosmtpd's threaded `Controller`: the server runs its own event loop
in a background thread, so synchronous tests (smtplib) and asynchronous ones
(an asyncio client on the test's loop) talk to it alike. Every accepted
message is appended, under a lock, to a list of `ReceivedMessage`; `wait_for`
blocks (bounded) until enough have arrived.

Options: AUTH PLAIN and LOGIN against a user/password mapping (offered
without TLS, since the sink listens on loopback only), requiring AUTH before
MAIL, STARTTLS with a certificate from `mailwire.testing.tls`, and `refuse`,
which may answer a DATA with a failure instead of accepting it (temporary or
permanent refusals for delivery tests).

Requiring AUTH is enforced in the MAIL hook rather than with aiosmtpd's
`auth_required` flag: that flag, combined with AUTH allowed in clear text,
makes aiosmtpd emit a UserWarning inside its server thread, which a test run
that turns warnings into errors reports as a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailwire.testing.errors import PeerError, PeerStartError, PeerTimeoutError
from mailwire.testing.lifecycle import StartStop
from mailwire.testing.ports import LOOPBACK
from mailwire.testing.tls import TLSCertificate

#: Largest message accepted (advertised as SIZE); generous for attachment tests.
DATA_SIZE_LIMIT = 32 * 1024 * 1024
_READY_TIMEOUT = 5.0
_DEFAULT_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as the sink saw it: envelope, raw content and session facts."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer: tuple[str, int]
    auth_user: str | None
    tls: bool
    mail_options: tuple[str, ...] = ()
    #: When it was accepted (`time.monotonic()`).
    at: float = 0.0


#: `refuse(attempt, content)`: the reply to a DATA (attempt 1, 2, ... over the sink's
#: life), or None to accept and record the message.
Refusal = Callable[[int, bytes], str | None]


class _Recorder:
    """aiosmtpd handler: gates MAIL on AUTH when asked, checks logins, records DATA."""

    def __init__(
        self,
        users: Mapping[str, str],
        require_auth: bool,
        record: Callable[[ReceivedMessage], int],
        refuse: Refusal | None = None,
    ) -> None:
        self._users = dict(users)
        self._require_auth = require_auth
        self._record = record
        self._refuse = refuse
        self._attempts = 0

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        """aiosmtpd authenticator: accept a PLAIN or LOGIN pair found in `users`."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        expected = self._users.get(login)
        if expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), auth_data.password
        ):
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    # aiosmtpd finds its hooks by these exact (upper-case) names.
    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._attempts += 1
        if self._refuse is not None:
            reply = self._refuse(self._attempts, envelope.original_content or b"")
            if reply is not None:
                return reply
        host, port = session.peer if isinstance(session.peer, tuple) else ("", 0)
        auth_user = session.auth_data if session.authenticated else None
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
            peer=(str(host), int(port)),
            auth_user=auth_user if isinstance(auth_user, str) else None,
            tls=session.ssl is not None,
            mail_options=tuple(envelope.mail_options),
            at=time.monotonic(),
        )
        number = self._record(message)
        return f"250 2.0.0 OK queued as {number}"


class _LoopbackController(Controller):
    """A Controller that binds port 0 and learns the port the kernel chose.

    aiosmtpd connects once to its fresh server (`_trigger_server`, its hook
    for subclasses) and, by default, to the configured port; with port 0 that
    would fail, so this override reads the bound port first. No free-port
    probing, hence no race with other processes.
    """

    #: Connections accepted so far; clients may keep theirs open (Mailwire pools them).
    transports: list[asyncio.BaseTransport]

    def factory(self) -> SMTP:
        session: SMTP = super().factory()  # type: ignore[no-untyped-call]
        if not hasattr(self, "transports"):
            self.transports = []
        made = session.connection_made
        receive_eof = session.eof_received

        def connection_made(transport: asyncio.BaseTransport) -> None:
            self.transports.append(transport)
            made(transport)

        def eof_received() -> bool:
            # A client that went away (a killed process) half-closes: asyncio then
            # keeps the transport open for the protocol, which aiosmtpd never closes,
            # leaving the socket to the garbage collector. False: asyncio closes it.
            receive_eof()
            return False

        session.connection_made = connection_made  # type: ignore[method-assign]
        session.eof_received = eof_received  # type: ignore[method-assign]
        return session

    def close_sessions(self) -> None:
        """Drop every client connection (from the caller's thread) and wait until the
        loop has closed their sockets: a stopped asyncio server leaves its accepted
        connections to whoever holds them, and a transport still flushing to a dead
        peer would wait forever."""
        transports = list(getattr(self, "transports", ()))
        self.transports = []
        if not transports:
            return
        done = threading.Event()

        def abort_all() -> None:
            for transport in transports:
                if isinstance(transport, asyncio.Transport):
                    transport.abort()
            # Scheduled after the aborts' own callbacks, which close the sockets.
            self.loop.call_soon(done.set)

        self.loop.call_soon_threadsafe(abort_all)
        done.wait(_READY_TIMEOUT)

    def _trigger_server(self) -> None:
        server = self.server
        if not isinstance(server, asyncio.Server) or not server.sockets:
            raise PeerStartError("aiosmtpd server has no listening socket")
        self.port = int(server.sockets[0].getsockname()[1])
        with socket.create_connection((self.hostname, self.port), timeout=_READY_TIMEOUT) as probe:
            probe.recv(1024)


class SmtpSink(StartStop):
    """SMTP server on a free loopback port that records every message it accepts."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        require_auth: bool = False,
        tls: TLSCertificate | None = None,
        require_starttls: bool = False,
        hostname: str = "localhost",
        data_size_limit: int = DATA_SIZE_LIMIT,
        refuse: Refusal | None = None,
    ) -> None:
        if require_auth and not users:
            raise ValueError("require_auth needs at least one user")
        if require_starttls and tls is None:
            raise ValueError("require_starttls needs a TLS certificate")
        self._messages: list[ReceivedMessage] = []
        self._changed = threading.Condition()
        handler = _Recorder(users or {}, require_auth, self._record, refuse)
        self._controller = _LoopbackController(
            handler,
            hostname=LOOPBACK,
            port=0,
            ready_timeout=_READY_TIMEOUT,
            server_hostname=hostname,
            data_size_limit=data_size_limit,
            tls_context=tls.server_context() if tls is not None else None,
            require_starttls=require_starttls,
            # With users, AUTH is offered in clear text (loopback only); without,
            # aiosmtpd's default hides AUTH until TLS and then refuses every login.
            auth_require_tls=not users,
            authenticator=handler.authenticate if users else None,
        )
        self._port: int | None = None
        self._stopped = False

    @property
    def host(self) -> str:
        """The loopback address the sink listens on."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The port chosen at start; raises before `start()`."""
        if self._port is None:
            raise PeerError("the SMTP sink has no port before start()")
        return self._port

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages received so far, oldest first."""
        with self._changed:
            return list(self._messages)

    def clear(self) -> None:
        """Forget every recorded message (for a sink shared between tests)."""
        with self._changed:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = _DEFAULT_WAIT) -> list[ReceivedMessage]:
        """Block until at least `count` messages arrived; return them all.

        Raises `PeerTimeoutError` after `timeout` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise PeerTimeoutError(
                    f"SMTP sink got {len(self._messages)} of {count} messages in {timeout} s"
                )
            return list(self._messages)

    async def wait_for_async(
        self,
        count: int,
        # The worker thread cannot be cancelled, so the bound must live inside it.
        timeout: float = _DEFAULT_WAIT,  # noqa: ASYNC109
    ) -> list[ReceivedMessage]:
        """`wait_for` for async tests: waits in a worker thread, not on the event loop."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def start(self) -> None:
        """Start serving in a background thread; returns once the port accepts.

        A sink starts once: stopping closes its event loop for good.
        """
        if self._port is not None or self._stopped:
            raise PeerStartError("an SmtpSink starts only once; create a new one")
        try:
            self._controller.start()
        except (OSError, TimeoutError, RuntimeError, PeerStartError) as error:
            self._stopped = True
            # The server thread may be up even though start-up failed after it.
            with contextlib.suppress(RuntimeError):
                self._controller.stop(no_assert=True)
            raise PeerStartError(f"SMTP sink did not start: {error}") from error
        self._port = int(self._controller.port)

    def drop_connections(self) -> None:
        """Hang up on every client connection (as a server does with idle sessions)."""
        self._controller.close_sessions()

    def stop(self) -> None:
        """Stop the server thread; recorded messages and `port` stay readable."""
        if self._port is not None and not self._stopped:
            self._stopped = True
            self._controller.close_sessions()
            self._controller.stop()

    def _record(self, message: ReceivedMessage) -> int:
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()
            return len(self._messages)
