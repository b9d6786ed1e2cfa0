"""Delivering one message over SMTP, with the failure classified for retrying.

Transport rule (as `POST /v1/verifyAccount` uses it): `secure` is implicit TLS
from the first byte; otherwise STARTTLS when the server offers it, in clear
only when it offers none; `rejectUnauthorized: false` accepts any certificate.
Logging in uses PLAIN/LOGIN with a password, or XOAUTH2 with an access token.

Outcome. A success returns the server's final reply. A failure raises
`SmtpDeliveryError` with `temporary` set when trying again may help: replies
in the 4xx class, and 503 (bad sequence, which some servers send for a
transient state), connection failures, timeouts and TLS failures; every other
5xx reply is permanent (RFC 5321 section 4.2.1). When some recipients are
refused and others accepted, the message counts as sent (the accepted ones
got it; sending again would duplicate it for them) and the refusals are
returned beside the reply.

DSN (RFC 3461): RET and ENVID on MAIL FROM, NOTIFY and ORCPT on each RCPT TO,
only when the server announces the DSN extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiosmtplib

from mailwire.domain.sending import SmtpAnswer
from mailwire.errors import MailwireError
from mailwire.net.tls import shared_client_context

#: One delivery attempt, connect to QUIT, at most this long (seconds).
SEND_TIMEOUT_S = 120.0
#: How long a closed SMTP connection may take to let go of its socket.
CLOSE_WAIT_S = 1.0
#: How long a pooled connection may take to answer NOOP before it is dropped.
NOOP_TIMEOUT_S = 5.0
#: Longest server reply kept (replies are stored and sent in webhooks).
MAX_REPLY_CHARS = 2048


@dataclass(frozen=True, slots=True)
class SmtpRoute:
    """Where and how to send: the account's SMTP server or a gateway."""

    host: str
    port: int
    secure: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    reject_unauthorized: bool = True
    min_tls: str | None = None
    local_hostname: str | None = None


@dataclass(frozen=True, slots=True)
class Dsn:
    """Delivery status notification request (RFC 3461)."""

    ret: str | None = None  # "headers" or "full"
    envelope_id: str | None = None
    notify: tuple[str, ...] = ()  # never, success, failure, delay
    recipient: str | None = None  # ORCPT


@dataclass(frozen=True, slots=True)
class Delivered:
    answer: SmtpAnswer
    #: Recipients the server refused while accepting others: address -> reply.
    refused: Mapping[str, str] = field(default_factory=dict)


class SmtpDeliveryError(MailwireError):
    """The attempt failed; `temporary` says whether trying again may succeed."""

    def __init__(
        self,
        message: str,
        *,
        temporary: bool,
        answer: SmtpAnswer | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.answer = answer
        self.error_code = code


async def deliver(
    route: SmtpRoute,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    dsn: Dsn | None = None,
    timeout: float = SEND_TIMEOUT_S,  # noqa: ASYNC109 (one bound for the whole session)
    pool: SmtpPool | None = None,
) -> Delivered:
    """Send `message` from `sender` to `recipients` through `route` (see the module doc).

    With `pool`, a logged-in connection to the same route is reused when one is
    idle (and answers NOOP), and the connection goes back to the pool after a
    success; without, each delivery opens and closes its own session."""
    secrets: list[str] = [item for item in (route.password, route.access_token) if item]
    client: aiosmtplib.SMTP | None = None
    used = 0
    kept = False
    try:
        async with asyncio.timeout(timeout):
            try:
                if pool is not None:
                    taken = await pool.take(route)
                    if taken is not None:
                        client, used = taken
                if client is None:
                    client = _client(route, timeout)
                    await client.connect()
                    await _login(client, route)
                mail_options, rcpt_options = _dsn_options(client, dsn)
                refused, reply = await client.sendmail(
                    sender,
                    list(recipients),
                    message,
                    mail_options=mail_options,
                    rcpt_options=rcpt_options,
                )
                if pool is not None:
                    kept = await pool.give_back(route, client, used + 1)
                else:
                    # The message was accepted: a failed QUIT changes nothing.
                    with contextlib.suppress(aiosmtplib.SMTPException):
                        await say_goodbye(client)
            finally:
                if client is not None and not kept:
                    await close(client)
    except aiosmtplib.SMTPRecipientsRefused as error:
        replies = list(error.recipients)
        temporary = any(_temporary(r.code) for r in replies)
        first = replies[0] if replies else None
        answer = (
            SmtpAnswer(_cut(f"{first.code} {first.message}", secrets), first.code, "RCPT TO")
            if first is not None
            else None
        )
        raise SmtpDeliveryError(
            "every recipient was refused", temporary=temporary, answer=answer, code="EENVELOPE"
        ) from None
    except aiosmtplib.SMTPAuthenticationError as error:
        raise SmtpDeliveryError(
            "the server refused the credentials",
            temporary=_temporary(error.code),
            answer=SmtpAnswer(_cut(f"{error.code} {error.message}", secrets), error.code, "AUTH"),
            code="EAUTH",
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        command = _command_of(error)
        raise SmtpDeliveryError(
            f"the server refused the message: {_cut(error.message, secrets)}",
            temporary=_temporary(error.code),
            answer=SmtpAnswer(_cut(f"{error.code} {error.message}", secrets), error.code, command),
            code="EMESSAGE" if command == "DATA" else "EPROTOCOL",
        ) from None
    except TimeoutError:
        raise SmtpDeliveryError(
            f"no answer within {timeout:g} s", temporary=True, code="ETIMEDOUT"
        ) from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise SmtpDeliveryError(
            f"cannot reach {route.host}:{route.port}: {_cut(str(error), secrets)}",
            temporary=True,
            code="ECONNECTION",
        ) from None
    # aiosmtplib hands back the text of the DATA reply; a success is always 250.
    return Delivered(
        SmtpAnswer(_cut(f"250 {reply}", secrets), 250, "DATA"),
        {address: _cut(f"{r.code} {r.message}", secrets) for address, r in refused.items()},
    )


def _client(route: SmtpRoute, timeout: float) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=route.host,
        port=route.port,
        use_tls=route.secure,
        start_tls=False if route.secure else None,
        tls_context=shared_client_context(
            verify=route.reject_unauthorized, min_version=route.min_tls
        ),
        validate_certs=route.reject_unauthorized,
        local_hostname=route.local_hostname,
        timeout=timeout,
    )


class SmtpPool:
    """Idle, logged-in SMTP connections per route, for the next delivery to reuse.

    At most `per_route` idle connections per route (servers limit connections
    per client), each kept `idle_s` seconds and used for `max_messages`
    messages at most, then closed. A taken connection must answer NOOP first:
    one that the server dropped while idle is closed and a new one is made, so a
    message is never handed to a dead session.
    """

    def __init__(
        self, *, per_route: int = 2, idle_s: float = 30.0, max_messages: int = 100
    ) -> None:
        self._per_route = per_route
        self._idle_s = idle_s
        self._max_messages = max_messages
        self._idle: dict[SmtpRoute, list[tuple[aiosmtplib.SMTP, float, int]]] = {}

    async def take(self, route: SmtpRoute) -> tuple[aiosmtplib.SMTP, int] | None:
        """An idle connection to `route` and how many messages it carried, or None."""
        await self._sweep()
        entries = self._idle.get(route)
        while entries:
            client, since, used = entries.pop()
            if time.monotonic() - since > self._idle_s:
                await close(client)
                continue
            try:
                async with asyncio.timeout(NOOP_TIMEOUT_S):
                    await client.noop()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                await close(client)
                continue
            return client, used
        return None

    async def give_back(self, route: SmtpRoute, client: aiosmtplib.SMTP, used: int) -> bool:
        """Keep `client` for the next delivery; False when it is not kept (the caller
        closes it)."""
        entries = self._idle.setdefault(route, [])
        if used >= self._max_messages or len(entries) >= self._per_route:
            return False
        entries.append((client, time.monotonic(), used))
        return True

    async def _sweep(self) -> None:
        """Close connections idle too long on every route, including routes no longer
        used (a changed password makes a new route; the old sessions must not linger)."""
        now = time.monotonic()
        for route in list(self._idle):
            entries = self._idle[route]
            stale = [entry for entry in entries if now - entry[1] > self._idle_s]
            if stale:
                self._idle[route] = [entry for entry in entries if entry not in stale]
                for client, _since, _used in stale:
                    await close(client)
            if not self._idle.get(route):
                self._idle.pop(route, None)

    async def close(self) -> None:
        """Close every idle connection (on shutdown)."""
        idle, self._idle = self._idle, {}
        for entries in idle.values():
            for client, _since, _used in entries:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    async with asyncio.timeout(NOOP_TIMEOUT_S):
                        await say_goodbye(client)
                await close(client)


async def say_goodbye(client: aiosmtplib.SMTP) -> None:
    """Send QUIT and read the answer, leaving the connection for `close` to drop.

    aiosmtplib's own `quit()` also closes the connection, and over TLS that close
    is a shutdown exchange running on after the call returns: the socket was
    then left to the garbage collector (seen as an unclosed socket under load).
    """
    await client.execute_command(b"QUIT")


async def close(client: aiosmtplib.SMTP) -> None:
    """Close the connection and wait (briefly) until its socket is gone.

    `close()` only schedules the transport's teardown (and over TLS, a shutdown
    exchange that can outlast the caller's event loop); returning at once would
    leave the socket to the garbage collector."""
    protocol = client.protocol
    transport = client.transport
    client.close()
    if isinstance(transport, asyncio.Transport):
        # The session is over (QUIT answered, or a failure): drop the socket now
        # rather than wait out a TLS shutdown the server may never answer.
        transport.abort()
    if protocol is None:
        return
    for _ in range(int(CLOSE_WAIT_S / 0.01)):
        if protocol.transport is None:  # connection_lost has run
            return
        await asyncio.sleep(0.01)


async def _login(client: aiosmtplib.SMTP, route: SmtpRoute) -> None:
    if not route.user:
        return
    if route.access_token:
        await client.auth_xoauth2(route.user, route.access_token)
    elif route.password:
        await client.login(route.user, route.password)


def _dsn_options(client: aiosmtplib.SMTP, dsn: Dsn | None) -> tuple[list[str], list[str]]:
    if dsn is None or not client.supports_extension("dsn"):
        return [], []
    mail: list[str] = []
    if dsn.ret in ("headers", "full"):
        mail.append("RET=" + ("HDRS" if dsn.ret == "headers" else "FULL"))
    if dsn.envelope_id:
        mail.append("ENVID=" + _xtext(dsn.envelope_id))
    rcpt: list[str] = []
    if dsn.notify:
        rcpt.append("NOTIFY=" + ",".join(n.upper() for n in dsn.notify))
    if dsn.recipient:
        rcpt.append("ORCPT=rfc822;" + _xtext(dsn.recipient))
    return mail, rcpt


def _xtext(value: str) -> str:
    """RFC 3461 section 4: xtext, "+" and "=" and non-printables as +HH."""
    return "".join(
        ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in value
        if ord(ch) < 128
    )


def _temporary(code: int | None) -> bool:
    if code is None:
        return True
    return 400 <= code < 500 or code == 503


def _command_of(error: aiosmtplib.SMTPResponseException) -> str | None:
    if isinstance(error, aiosmtplib.SMTPSenderRefused):
        return "MAIL FROM"
    if isinstance(error, aiosmtplib.SMTPDataError):
        return "DATA"
    if isinstance(error, aiosmtplib.SMTPHeloError):
        return "EHLO"
    return None


def _cut(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "******")
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPLY_CHARS else text[: MAX_REPLY_CHARS - 1] + "…"
