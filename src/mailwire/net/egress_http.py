"""Sending a checked request: `post` dials the pinned address of a `Target`.

`mailwire.net.egress` re-exports this; import from there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from mailwire.net.egress_policy import EgressFailed, EgressRefused, FailureKind, Target
from mailwire.net.tls import client_context

#: The response body is read up to this many bytes and discarded: the receiver's
#: answer only matters through its status. (A body read to its end lets a plain-http
#: connection be reused; one cut short closes it.)
MAX_RESPONSE_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: the status (3xx included: redirects are not followed), the
    seconds from sending to the end of the bounded body read, and a redirect's Location."""

    status: int
    elapsed: float
    location: str | None = None


def new_client(*, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client fit for `post`, to share between calls: no proxies from the
    environment (they would dial the name, not the pinned address), no redirects,
    certificates checked against the system store unless `verify` is given."""
    return httpx.AsyncClient(
        verify=verify if verify is not None else client_context(),
        trust_env=False,
        follow_redirects=False,
    )


async def post(
    target: Target,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 (the agreed interface; asyncio.timeout inside)
    client: httpx.AsyncClient | None = None,
    max_body: int = MAX_RESPONSE_BODY,
) -> Response:
    """POST `body` to the pinned address of `target`, within `timeout` seconds in all.

    The caller's headers are sent except Host and the framing headers, which
    are ours. With a shared `client` (see `new_client`), plain-http
    connections are pooled by pinned address; https connections to a host
    name are closed after each request, because httpx pools by address and a
    connection whose certificate was checked for one name must not carry a
    request for another name on the same address. Raises `EgressFailed` for
    timeouts, connection, TLS and protocol errors, `EgressRefused` when the
    request cannot be formed (an invalid header).
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if client is None:
        async with new_client() as own:
            return await _post(own, target, body, headers, timeout, max_body)
    return await _post(client, target, body, headers, timeout, max_body)


_OURS = ("host", "content-length", "transfer-encoding", "connection")


async def _post(
    client: httpx.AsyncClient,
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 (the agreed interface; asyncio.timeout inside)
    max_body: int,
) -> Response:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            request = _request(client, target, body, headers, timeout)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                await _drain(response, max_body)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise EgressFailed(
            f"{target.url}: no answer within {timeout:g} s", kind="timeout"
        ) from None
    except httpx.ConnectError as exc:
        kind: FailureKind = "tls" if _caused_by_tls(exc) else "connect"
        raise EgressFailed(f"{target.url}: cannot connect ({exc})", kind=kind) from None
    except (httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        raise EgressRefused(f"{target.url}: the request cannot be sent ({exc})") from None
    except httpx.HTTPError as exc:
        raise EgressFailed(f"{target.url}: {exc}", kind="protocol") from None
    location = response.headers.get("location") if response.is_redirect else None
    return Response(response.status_code, time.monotonic() - started, location)


def _request(
    client: httpx.AsyncClient,
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> httpx.Request:
    """Build the request for the pinned address; Host, SNI and certificate use the name."""
    sent = httpx.Headers({k: v for k, v in headers.items() if k.lower() not in _OURS})
    sent["Host"] = target.host_header
    extensions: dict[str, str] = {}
    if target.scheme == "https" and target.is_name:
        extensions["sni_hostname"] = target.host
        sent["Connection"] = "close"
    request = client.build_request(
        "POST",
        target.pinned_url,
        content=body,
        headers=sent,
        extensions=extensions,
        timeout=httpx.Timeout(timeout),
    )
    # Belt and braces: whatever the path holds, the URL dialled names the pinned address.
    if (request.url.host, request.url.port) != (str(target.address), target.port):
        raise EgressRefused(f"{target.url}: the request would not go to {target.address}")
    return request


async def _drain(response: httpx.Response, limit: int) -> None:
    """Read and drop the body up to `limit` bytes (raw: no decompression to inflate)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= limit:
            break


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is httpx -> httpcore -> ssl; bounded all the same
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
