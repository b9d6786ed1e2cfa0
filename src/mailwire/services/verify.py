"""Checking account settings before they are saved (`POST /v1/verifyAccount`).

Each side (IMAP, SMTP) connects, logs in and leaves; a failure is a result
(`success: false` with a message and a stable `code`), never an exception, and
no answer ever carries the password or token it was given: every text taken
from an error is scrubbed of them before it is returned.

Transport rule, the same for both protocols:
- `secure: true` is implicit TLS from the first byte;
- otherwise the connection upgrades with STARTTLS when the server offers it, and
  stays in clear text only when the server offers no STARTTLS (as the reference
  does; the password then crosses the wire in clear, so only use such servers
  on trusted networks);
- `tls.rejectUnauthorized: false` accepts any certificate; by default the
  certificate must be valid for the host.

Every attempt is bounded by `VERIFY_TIMEOUT_S` overall.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any

import aiosmtplib

from mailwire.backends.imap.connection import ImapConnection, Security
from mailwire.backends.imap.errors import (
    ImapAuthenticationError,
    ImapConnectError,
    ImapConnectionError,
    ImapTimeoutError,
    ImapTlsError,
)
from mailwire.backends.imap.listing import list_mailboxes, with_special_uses
from mailwire.backends.smtp.delivery import close, say_goodbye
from mailwire.domain.mailboxes import ListedMailbox
from mailwire.logs import get_logger
from mailwire.net.tls import client_context

log = get_logger(__name__)

#: Upper bound of one protocol's whole check: connect, TLS, login, listing, logout.
VERIFY_TIMEOUT_S = 15.0
#: Most folders reported back by `mailboxes: true`.
MAX_LISTED_MAILBOXES = 1000
#: Longest server text passed back in `responseText`.
MAX_RESPONSE_TEXT = 1024

Result = dict[str, Any]


class VerifyService:
    async def verify(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Check the `imap` and `smtp` sections given; list folders when `mailboxes`."""
        answer: dict[str, Any] = {}
        imap, smtp = document.get("imap"), document.get("smtp")
        if isinstance(imap, Mapping):
            answer["imap"], found = await verify_imap(
                imap, list_mailboxes=bool(document.get("mailboxes"))
            )
            if found is not None:
                answer["mailboxes"] = found
        if isinstance(smtp, Mapping):
            answer["smtp"] = await verify_smtp(smtp, ehlo_name=document.get("smtpEhloName"))
        return answer


# ---------------------------------------------------------------------- IMAP


async def verify_imap(
    imap: Mapping[str, Any], *, list_mailboxes: bool = False
) -> tuple[Result, list[dict[str, Any]] | None]:
    auth = imap.get("auth") or {}
    secrets = _secrets_of(auth)
    host, port = str(imap.get("host", "")), int(imap.get("port") or 993)
    tls = imap.get("tls") or {}
    verify = bool(tls.get("rejectUnauthorized", True))
    found: list[dict[str, Any]] | None = None
    try:
        async with asyncio.timeout(VERIFY_TIMEOUT_S):
            conn = await _open_imap(
                host,
                port,
                secure=bool(imap.get("secure")),
                verify=verify,
                min_tls=tls.get("minVersion"),
            )
            try:
                await _imap_login(conn, auth)
                if list_mailboxes:
                    found = await _list_mailboxes(conn)
                await conn.logout()
            finally:
                await conn.close()
    except ImapAuthenticationError as error:
        return _failure(str(error), "AUTHENTICATIONFAILED", secrets, error.server_text), None
    except (ImapConnectionError, TimeoutError, OSError) as error:
        return _failure(_describe(error), _code(error), secrets), None
    log.info("account.verified", protocol="imap", host=host, port=port)
    return {"success": True}, found


async def _open_imap(
    host: str, port: int, *, secure: bool, verify: bool, min_tls: str | None
) -> ImapConnection:
    options: dict[str, Any] = {
        "verify": verify,
        "min_tls": min_tls,
        "connect_timeout": VERIFY_TIMEOUT_S,
        "greeting_timeout": VERIFY_TIMEOUT_S,
        "command_timeout": VERIFY_TIMEOUT_S,
    }
    if secure:
        return await ImapConnection.open(host, port, security="tls", **options)
    conn = await ImapConnection.open(host, port, security="none", **options)
    if "STARTTLS" not in conn.capabilities:
        return conn
    # Reconnect with STARTTLS required, so the upgrade cannot be skipped from here on.
    await conn.logout()
    await conn.close()
    security: Security = "starttls"
    return await ImapConnection.open(host, port, security=security, **options)


async def _imap_login(conn: ImapConnection, auth: Mapping[str, Any]) -> None:
    user = str(auth.get("user", ""))
    if auth.get("accessToken"):
        await conn.authenticate_xoauth2(user, str(auth["accessToken"]))
    else:
        await conn.login(user, str(auth.get("pass", "")))


async def _list_mailboxes(conn: ImapConnection) -> list[dict[str, Any]]:
    """The folders in the API's shape, decided as the sync engine decides them."""
    listed = with_special_uses(await list_mailboxes(conn), {})
    return [describe_mailbox(item) for item in listed[:MAX_LISTED_MAILBOXES]]


def describe_mailbox(item: ListedMailbox) -> dict[str, Any]:
    """One listed folder in the API's shape (RFC 3501 section 7.2.2, RFC 6154)."""
    info = item.info
    entry: dict[str, Any] = {
        "path": info.path,
        "delimiter": info.delimiter,
        "name": info.name,
        "listed": True,
        "subscribed": info.subscribed,
    }
    if info.parent_path is not None:
        entry["parentPath"] = info.parent_path
    if any(flag.lower() == "\\noinferiors" for flag in info.flags):
        entry["noInferiors"] = True
    if item.special_use is not None:
        entry["specialUse"] = item.special_use
        entry["specialUseSource"] = item.special_use_source
    return entry


# ---------------------------------------------------------------------- SMTP


async def verify_smtp(smtp: Mapping[str, Any], *, ehlo_name: str | None = None) -> Result:
    auth = smtp.get("auth") or {}
    secrets = _secrets_of(auth)
    host, port = str(smtp.get("host", "")), int(smtp.get("port") or 587)
    secure = bool(smtp.get("secure"))
    tls = smtp.get("tls") or {}
    verify = bool(tls.get("rejectUnauthorized", True))
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        use_tls=secure,
        # None: STARTTLS when the server offers it (see the module docstring).
        start_tls=False if secure else None,
        tls_context=client_context(verify=verify, min_version=tls.get("minVersion")),
        validate_certs=verify,
        local_hostname=ehlo_name or None,
        timeout=VERIFY_TIMEOUT_S,
    )
    try:
        async with asyncio.timeout(VERIFY_TIMEOUT_S):
            try:
                # Inside the try: a connect that fails half-way (e.g. in STARTTLS)
                # may leave a transport behind.
                await client.connect()
                await _smtp_login(client, auth)
                await say_goodbye(client)
            finally:
                await close(client)
    except aiosmtplib.SMTPAuthenticationError as error:
        return _failure("The server refused the credentials", "EAUTH", secrets, error.message)
    except aiosmtplib.SMTPResponseException as error:
        return _failure(_describe(error), "EPROTOCOL", secrets, error.message)
    except (aiosmtplib.SMTPException, TimeoutError, OSError) as error:
        return _failure(_describe(error), _code(error), secrets)
    log.info("account.verified", protocol="smtp", host=host, port=port)
    return {"success": True}


async def _smtp_login(client: aiosmtplib.SMTP, auth: Mapping[str, Any]) -> None:
    user = auth.get("user")
    if not user:
        return
    if auth.get("accessToken"):
        await client.auth_xoauth2(str(user), str(auth["accessToken"]))
    elif auth.get("pass"):
        await client.login(str(user), str(auth["pass"]))


# ---------------------------------------------------------------------- results


def _secrets_of(auth: Mapping[str, Any]) -> list[str]:
    return [str(auth[key]) for key in ("pass", "accessToken") if auth.get(key)]


def _failure(message: str, code: str, secrets: list[str], response: str | None = None) -> Result:
    result: Result = {"success": False, "error": _scrub(message, secrets), "code": code}
    if response:
        result["responseText"] = _scrub(response, secrets)[:MAX_RESPONSE_TEXT]
    log.info("account.verify_failed", code=code)
    return result


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _code(error: BaseException) -> str:
    """A stable code in the style of Node.js network errors, which clients match on."""
    for cause in _chain(error):
        if isinstance(cause, ImapTlsError | ssl.SSLError):
            return "ETLS"
        if isinstance(cause, ImapTimeoutError | TimeoutError | aiosmtplib.SMTPTimeoutError):
            return "ETIMEDOUT"
        if isinstance(cause, ConnectionRefusedError):
            return "ECONNREFUSED"
        if isinstance(cause, socket.gaierror):
            return "ENOTFOUND"
    if isinstance(error, ImapConnectError | aiosmtplib.SMTPConnectError | OSError):
        return "ECONNECTION"
    return "EPROTOCOL"


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"No answer within {VERIFY_TIMEOUT_S:g} s"
    return str(error) or type(error).__name__
