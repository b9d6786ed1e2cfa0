"""`AccountWorker`: keeps one account's sync connection, from login to reconnect.

Theory of operation. One worker is one asyncio task running a loop of
attempts. Each attempt:

    connecting --open+login--> syncing --session calls ready()--> connected
        |                         |                                   |
        | auth refused            | any other failure                 | any failure
        v                         v                                   v
    authenticationError       connectError (+ event)            disconnected
        |                         |                                   |
        +-- long backoff ---------+-- backoff with jitter ------------+--> next attempt

A failure before the session reported ready is a failure to connect
(`connectError`, with an event unless it repeats the stored error); a
connection that was up and dropped is `disconnected`, with no event. Every
state change is written with its events in one transaction
(`AccountStateStore`), and only while this node still holds the lease.

Opening a connection first takes one of the account's connection slots
(`ConnectionCap`) and a token of the host's rate limiter, so restarts ramp
up per mail server. Connection failures back off exponentially with full
jitter; a connection that stayed healthy resets the backoff. Login failures
back off far longer and after `auth_threshold` in a row the breaker opens:
the worker makes no more attempts and waits to be replaced, which the
supervisor does when the account's `revision` changes (new credentials, or a
reconnect request). An account that does not want a connection (no IMAP, or
`imap.disabled`) holds none: its state is written and the worker waits.

Transport security: `imap.secure` means implicit TLS. Otherwise the worker
asks for STARTTLS, and only when the server does not offer it at all falls
back to a plain connection, as EmailEngine does (imapflow upgrades when
STARTTLS is advertised). A failed TLS handshake or a refused STARTTLS is an
error, never a reason to continue in clear. `imap.tls.rejectUnauthorized:
false` turns certificate verification off.

Every await is bounded (connect, greeting and command timeouts on the
connection, LOGOUT with its own timeout), so a hostile server stalls only its
own account.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mailwire.backends.imap.connection import ImapConnection, Security
from mailwire.backends.imap.errors import (
    ImapAuthenticationError,
    ImapConnectionError,
    ImapTlsError,
)
from mailwire.backends.imap.transcript import LineHook
from mailwire.domain.accounts import (
    CREDENTIAL_SCOPE,
    Account,
    AccountState,
    ImapSettings,
    initial_state,
)
from mailwire.domain.events import EventName
from mailwire.errors import StoreError
from mailwire.logs import get_logger, log_context
from mailwire.store.account_states import AccountStateStore
from mailwire.store.secrets import SecretStore
from mailwire.workers.backoff import AuthBreaker, Backoff, BackoffPolicy
from mailwire.workers.commands import POOL_SIZE, CommandPool
from mailwire.workers.errors import NO_CREDENTIALS, auth_error_data, connect_error_data
from mailwire.workers.limits import ConnectionCap, HostRateLimiter
from mailwire.workers.protocol_log import ProtocolLogFlusher
from mailwire.workers.session import Session

log = get_logger(__name__)

#: How long LOGOUT may take when a connection is closed on purpose (seconds).
LOGOUT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ConnectTimeouts:
    """Bounds on opening a connection and on each command (seconds)."""

    connect: float = 30.0
    greeting: float = 30.0
    command: float = 60.0


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What every worker of one supervisor shares."""

    states: AccountStateStore
    secrets: SecretStore
    session: Session
    limiter: HostRateLimiter
    caps: ConnectionCap
    protocol_logs: ProtocolLogFlusher
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    timeouts: ConnectTimeouts = field(default_factory=ConnectTimeouts)
    command_connections: int = POOL_SIZE


class _NoCredentialsError(ImapAuthenticationError):
    """The account has neither `imap.pass` nor `imap.accessToken`."""


class AccountWorker:
    """Runs one account's connection loop; see the module docstring."""

    def __init__(self, account: Account, context: WorkerContext) -> None:
        self.account = account
        self._ctx = context
        #: Set by the supervisor when a sync was requested; handed to the session.
        self.wakeup = asyncio.Event()
        self.backoff = Backoff(context.policy)
        self.breaker = AuthBreaker(context.policy)
        #: Logins attempted by this worker (for tests and metrics).
        self.login_attempts = 0
        self._ready_at: float | None = None
        #: Whether `authenticationSuccess` was considered since the last failed login.
        self._auth_announced = False
        #: Command connections for API requests; None while the account has no IMAP.
        self.commands: CommandPool | None = None

    async def run(self) -> None:
        """Connect, run the session, reconnect; returns only when cancelled."""
        with log_context(account=self.account.id):
            imap = self.account.imap()
            if imap is None or not self.account.wants_sync():
                await self._set_state(initial_state(self.account.settings))
                await asyncio.Event().wait()
                return
            self.commands = CommandPool(
                functools.partial(self._extra_connection, imap), size=self._ctx.command_connections
            )
            try:
                await self._run_connected(imap)
            finally:
                await self.commands.close()

    async def _run_connected(self, imap: ImapSettings) -> None:
        while True:
            if self.breaker.open:
                log.warning("account.auth_breaker_open", failures=self.breaker.failures)
                await asyncio.Event().wait()
            try:
                delay = await self._attempt(imap)
            except StoreError as error:
                log.warning("account.store_error", error=str(error))
                delay = self.backoff.next_delay()
            log.info("account.reconnect_wait", delay_s=round(delay, 3))
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, imap: ImapSettings) -> float:
        """One connection from open to failure; returns the delay before the next."""
        self._ready_at = None
        await self._set_state(AccountState.CONNECTING)
        loop = asyncio.get_running_loop()
        try:
            async with self._ctx.caps.slot(self.account.id):
                await self._connect_and_run(imap)
            error: BaseException = ConnectionError("the session ended")
        except ImapAuthenticationError as auth_error:
            return await self._auth_failed(auth_error)
        except (ImapConnectionError, OSError) as failure:
            error = failure
        except StoreError:
            raise
        except Exception as failure:  # a session bug must not end the account's worker
            log.exception("account.session_failed")
            error = failure
        ready_at = self._connected_since()
        if ready_at is None:
            await self._ctx.states.failed(
                self.account.id,
                AccountState.CONNECT_ERROR,
                EventName.CONNECT_ERROR,
                connect_error_data(error),
            )
        else:
            self.backoff.connected_for(loop.time() - ready_at)
            await self._set_state(AccountState.DISCONNECTED)
        log.info("account.connection_lost", error=str(error), was_ready=ready_at is not None)
        return self.backoff.next_delay()

    async def _connect_and_run(self, imap: ImapSettings) -> None:
        protocol_log = self._ctx.protocol_logs.open(self.account.id) if self.account.logs else None
        try:
            connection = await self._open(imap, protocol_log.on_line if protocol_log else None)
            try:
                await self._login(connection, imap)
                self.breaker.succeeded()
                await self._ctx.states.authenticated(
                    self.account.id, imap.user, announce=not self._auth_announced
                )
                self._auth_announced = True
                await self._ctx.session(
                    self.account,
                    connection,
                    self._ready,
                    self.wakeup,
                    connect=functools.partial(self._extra_connection, imap),
                )
            finally:
                await _close(connection)
        finally:
            if protocol_log is not None:
                await self._ctx.protocol_logs.close(protocol_log)

    @contextlib.asynccontextmanager
    async def _extra_connection(self, imap: ImapSettings) -> AsyncIterator[ImapConnection]:
        """Another logged-in connection (a subconnection), within the account's cap."""
        async with self._ctx.caps.slot(self.account.id):
            connection = await self._open(imap, None)
            try:
                await self._login(connection, imap)
                yield connection
            finally:
                await _close(connection)

    async def _open(self, imap: ImapSettings, on_line: LineHook | None) -> ImapConnection:
        security: Security = "tls" if imap.secure else "starttls"
        try:
            return await self._open_with(imap, security, on_line)
        except ImapTlsError as error:
            if security != "starttls" or not _starttls_not_offered(error):
                raise
        log.info("account.starttls_not_offered", host=imap.host)
        return await self._open_with(imap, "none", on_line)

    async def _open_with(
        self, imap: ImapSettings, security: Security, on_line: LineHook | None
    ) -> ImapConnection:
        await self._ctx.limiter.acquire(imap.host)
        timeouts = self._ctx.timeouts
        return await ImapConnection.open(
            imap.host,
            imap.port,
            security=security,
            verify=imap.tls.reject_unauthorized,
            min_tls=imap.tls.min_version,
            connect_timeout=timeouts.connect,
            greeting_timeout=timeouts.greeting,
            command_timeout=timeouts.command,
            on_line=on_line,
            disable_rev2=imap.disable_rev2,
        )

    async def _login(self, connection: ImapConnection, imap: ImapSettings) -> None:
        if connection.authenticated:  # PREAUTH greeting
            return
        secrets = self._ctx.secrets
        password = await secrets.get(CREDENTIAL_SCOPE, self.account.id, "imap.pass")
        self.login_attempts += 1
        if password is not None:
            await connection.login(imap.user, password)
            return
        token = await secrets.get(CREDENTIAL_SCOPE, self.account.id, "imap.accessToken")
        if token is None:
            raise _NoCredentialsError("the account has no IMAP password or access token")
        await connection.authenticate_xoauth2(imap.user, token)

    def _connected_since(self) -> float | None:
        """When the session reported ready on the current connection (loop time)."""
        return self._ready_at

    async def _ready(self) -> None:
        """The session's initial sync is done."""
        if self._ready_at is not None:
            return
        self._ready_at = asyncio.get_running_loop().time()
        await self._ctx.states.connected(self.account.id)
        log.info("account.connected")

    # ------------------------------------------------------------------ outcomes

    async def _auth_failed(self, error: ImapAuthenticationError) -> float:
        data = auth_error_data(error)
        if isinstance(error, _NoCredentialsError):
            data = {"response": str(error), "serverResponseCode": NO_CREDENTIALS}
        await self._ctx.states.failed(
            self.account.id,
            AccountState.AUTHENTICATION_ERROR,
            EventName.AUTHENTICATION_ERROR,
            data,
        )
        self._auth_announced = False
        delay = self.breaker.failed()
        log.warning("account.auth_failed", failures=self.breaker.failures, server=data["response"])
        return 0.0 if self.breaker.open else delay

    async def _set_state(self, state: AccountState) -> None:
        if not await self._ctx.states.transition(self.account.id, state):
            log.info("account.not_owned", state=str(state))


def _starttls_not_offered(error: ImapTlsError) -> bool:
    # The connection raises this one without a cause; handshake failures and a
    # refused STARTTLS carry theirs (ssl.SSLError, CommandFailedError).
    return error.__cause__ is None and "does not offer STARTTLS" in str(error)


async def _close(connection: ImapConnection) -> None:
    """LOGOUT when the connection is healthy, bounded; close the socket in any case."""
    try:
        async with asyncio.timeout(LOGOUT_TIMEOUT_S):
            await connection.logout()
    except (TimeoutError, ImapConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ImapConnectionError, OSError):
            await connection.close()
