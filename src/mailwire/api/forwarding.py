"""Requests for an account owned by another process are forwarded to its owner.

Theory of operation. Routes that need the mail server (bodies, attachments,
flags, moves, uploads, server-side search) take their account through
`OwnedAccount` instead of a plain path parameter. The dependency answers in
one of three ways:

- the account's worker runs here (`Services.connections.pool` has it): the
  route runs;
- another live process holds its lease (`LeaseStore.owner_of`): the whole
  request (method, path, query, headers but hop-by-hop ones, body) is sent to
  that process's internal listener (the `nodes.address` it registered), and
  its answer is streamed back. The route is cut short by raising
  `ShortCircuit`, whose response the handler installed by
  `install_forwarding` returns;
- nobody holds it, the owner cannot be reached, or the request was itself
  forwarded here: 503 `AccountNotConnected` with `Retry-After`. A forwarded
  request is never forwarded again, so two nodes that disagree about the
  owner for a moment cannot bounce a request between them.

The owner authenticates the request again with the client's own token; the
forwarding header grants nothing but the client address it vouches for.

Header. `X-Mailwire-Forwarded: v1;node=<id>;ts=<unix seconds>;client=<ip>;mac=<hex>`
where mac is HMAC-SHA256 over the method, the path with its query string as
sent, the timestamp, the node id and the client address. The key comes from
the service secret through scrypt with its own salt (`FORWARDING_KDF_SALT`),
so it shares nothing with the field-encryption keys and a weak secret is as
slow to guess from a captured header as from a ciphertext. The receiver
accepts a header within `MAX_CLOCK_SKEW_S` of its own clock, under the key of
the current secret or a previous one (a rolling restart after a rotation).
A header that does not verify is refused (400 malformed, 403 otherwise)
before any route runs; one that verifies restores the client's address, so
token address restrictions see the real client on the owner too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

import httpx
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from fastapi import Depends, FastAPI, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from mailwire.api.errors import error_response
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH
from mailwire.errors import MailwireError
from mailwire.logs import get_logger
from mailwire.services.container import Services
from mailwire.store.leases import Owner

log = get_logger(__name__)

FORWARDED_HEADER = "x-mailwire-forwarded"
HEADER_VERSION = "v1"
#: How far a forwarded request's timestamp may be from the receiver's clock (seconds).
MAX_CLOCK_SKEW_S = 60
#: Salt of the forwarding key's derivation; differs from the field-encryption salt.
FORWARDING_KDF_SALT = b"mailwire/node-forwarding/v1"
#: Connecting to the owner (seconds).
CONNECT_TIMEOUT_S = 5.0
#: Waiting for each chunk from the owner, or for it to take one (seconds). There
#: is no overall limit: a 50 MB attachment on a slow link may take minutes.
CHUNK_TIMEOUT_S = 60.0
#: What a 503 suggests as the wait before retrying (seconds): leases are claimed
#: within a supervisor round, expired ones once they run out.
RETRY_AFTER_S = 5
#: Connections kept to other nodes.
MAX_CONNECTIONS = 100
#: Longest header value looked at; a real one is about 150 characters.
MAX_HEADER_LENGTH = 512

#: Scope key set on a request that arrived forwarded (the sending node's id).
FORWARDED_KEY = "mailwire.forwarded_by"

#: RFC 9110 section 7.6.1 connection-specific fields, plus what the proxy sets itself.
#: `Expect: 100-continue` was answered by this node's server already; the client
#: that forwards (httpx) sends the body without waiting for a 100 anyway.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        FORWARDED_HEADER,
    }
)
_NODE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEADER = re.compile(
    r"^v1;node=(?P<node>[^;]{1,64});ts=(?P<ts>[0-9]{1,12});client=(?P<client>[0-9A-Fa-f.:]{0,45});"
    r"mac=(?P<mac>[0-9a-f]{64})$"
)
_MALFORMED = f"The {FORWARDED_HEADER} header is malformed"
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ShortCircuit(Exception):
    """Ends a route early with a ready response (the owner's, or a refusal).

    Deliberately outside the `MailwireError` tree: it is control flow, and the
    error table must never turn it into a status of its own.
    """

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response.status_code)


class ForwardingError(MailwireError):
    """The owner's answer broke off after it had started streaming."""

    code = "ForwardingFailed"


class OwnerDirectory(Protocol):
    """Who holds an account's lease: `LeaseStore` in production."""

    async def owner_of(self, account_id: str) -> Owner | None: ...


# ---------------------------------------------------------------------------- header


def derive_key(secret: str) -> bytes:
    """The forwarding HMAC key of one service secret (scrypt, tens of ms: once at start)."""
    if not secret:
        raise ValueError("the secret must not be empty")
    kdf = Scrypt(salt=FORWARDING_KDF_SALT, length=32, n=2**14, r=8, p=1)
    return kdf.derive(secret.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class ForwardingKeys:
    """The key that signs (current secret) and every key that verifies."""

    signing: bytes
    verifying: tuple[bytes, ...]

    @classmethod
    def from_secrets(cls, secrets: Sequence[str]) -> ForwardingKeys:
        """Current secret first, then previous ones."""
        if not secrets:
            raise ValueError("at least one secret is needed")
        keys = tuple(dict.fromkeys(derive_key(secret) for secret in secrets))
        return cls(signing=keys[0], verifying=keys)


class ForwardingRefusedError(MailwireError):
    """A forwarding header that does not verify: `status` is 400 (malformed) or 403."""

    code = "ForwardingRefused"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _mac(key: bytes, method: str, target: str, ts: int, node: str, client: str) -> str:
    message = "\n".join((HEADER_VERSION, method.upper(), target, str(ts), node, client))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    key: bytes, *, method: str, target: str, node: str, client: str = "", now: float | None = None
) -> str:
    """The `X-Mailwire-Forwarded` value for one request; `target` is path?query as sent."""
    if not _NODE_ID.fullmatch(node):
        raise ValueError("node ids are 1-64 characters of [A-Za-z0-9._-]")
    ts = int(time.time() if now is None else now)
    mac = _mac(key, method, target, ts, node, client)
    return f"{HEADER_VERSION};node={node};ts={ts};client={client};mac={mac}"


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A verified forwarding header: who sent the request and for which client."""

    node: str
    client: str


def verify(
    keys: Sequence[bytes], value: str, *, method: str, target: str, now: float | None = None
) -> Forwarded:
    """Check a header value; raises `ForwardingRefusedError` (400 malformed, 403 not genuine)."""
    match = _HEADER.fullmatch(value) if len(value) <= MAX_HEADER_LENGTH else None
    if match is None or not _NODE_ID.fullmatch(match["node"]):
        raise ForwardingRefusedError(400, _MALFORMED)
    client = match["client"]
    if client:
        try:
            ipaddress.ip_address(client)
        except ValueError:
            raise ForwardingRefusedError(400, _MALFORMED) from None
    ts = int(match["ts"])
    current = time.time() if now is None else now
    if abs(current - ts) > MAX_CLOCK_SKEW_S:
        raise ForwardingRefusedError(403, "The forwarded request is too old (or from the future)")
    presented = match["mac"]
    # Every key is tried, so the time taken does not say which one matched.
    valid = False
    for key in keys:
        expected = _mac(key, method, target, ts, match["node"], client)
        valid |= hmac.compare_digest(expected, presented)
    if not valid:
        raise ForwardingRefusedError(403, "The forwarded request's signature is not valid")
    return Forwarded(node=match["node"], client=client)


def request_target(scope: Scope) -> str:
    """The path and query exactly as the client sent them (what the MAC covers)."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = bytes(raw).decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{target}?{query}" if query else target


# ---------------------------------------------------------------------------- forwarding


class Forwarding:
    """This process's side of forwarding: its node id, keys, owner lookup and HTTP client."""

    def __init__(
        self,
        *,
        node_id: str,
        keys: ForwardingKeys,
        owners: OwnerDirectory,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.node_id = node_id
        self.keys = keys
        self.owners = owners
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                CHUNK_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S
            ),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            follow_redirects=False,
            trust_env=False,  # an HTTP_PROXY in the environment must not see these requests
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def forward(self, request: Request, account: str, owner: Owner) -> Response:
        """Send `request` to `owner` and stream its answer; a 503 if it cannot be reached."""
        assert owner.address is not None
        target = request_target(request.scope)
        client = request.client.host if request.client else ""
        headers = _forwarded_headers(request.headers.raw)
        headers.append(
            (
                FORWARDED_HEADER.encode(),
                sign(
                    self.keys.signing,
                    method=request.method,
                    target=target,
                    node=self.node_id,
                    client=_plain_ip(client),
                ).encode(),
            )
        )
        url = httpx.URL(owner.address).copy_with(raw_path=target.encode("latin-1"))
        content = None if request.method in _BODILESS_METHODS else request.stream()
        outgoing = self._client.build_request(request.method, url, headers=headers, content=content)
        try:
            upstream = await self._client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning(
                "forwarding.owner_unreachable",
                account=account,
                owner=owner.node,
                address=owner.address,
                error=type(exc).__name__,
            )
            return not_connected(
                "The account is served by another node, which cannot be reached right now"
            )
        log.debug("forwarding.forwarded", account=account, owner=owner.node)
        return StreamingResponse(
            _relay(upstream, account, owner),
            status_code=upstream.status_code,
            headers=dict(_response_headers(upstream.headers.raw)),
            background=BackgroundTask(upstream.aclose),
        )


async def _relay(upstream: httpx.Response, account: str, owner: Owner) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # The status line is gone already: aborting the connection is the only way left
        # to tell the client its body is incomplete.
        log.warning(
            "forwarding.stream_broken", account=account, owner=owner.node, error=type(exc).__name__
        )
        raise ForwardingError("The owner's answer broke off") from None
    finally:
        await upstream.aclose()


def _connection_tokens(raw: Sequence[tuple[bytes, bytes]]) -> set[str]:
    named = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named |= {part.strip().lower() for part in value.decode("latin-1").split(",")}
    return named


def _forwarded_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    dropped = _HOP_BY_HOP | _connection_tokens(raw)
    return [(name, value) for name, value in raw if name.decode("latin-1").lower() not in dropped]


def _response_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    # The owner's request id is dropped: this node's middleware adds the client's.
    dropped = _HOP_BY_HOP | _connection_tokens(raw) | {"x-request-id", "date", "server"}
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name.decode("latin-1").lower() not in dropped
    ]


def _plain_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""  # a Unix socket or a test client: no address to vouch for


def not_connected(message: str) -> Response:
    response = error_response(503, message, code="AccountNotConnected")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


# ---------------------------------------------------------------------------- FastAPI side


async def owned_account(
    request: Request,
    account: Annotated[
        str,
        Path(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH, description="The account's id"),
    ],
) -> str:
    """The account id, when its worker runs here; otherwise the request goes to its owner."""
    services: Services = request.app.state.services
    if services.connections.pool(account) is not None:
        return account
    if request.scope.get(FORWARDED_KEY) is not None:
        # Forwarded here, yet not ours either: ownership moved. Never pass it on.
        raise ShortCircuit(not_connected("The account moved to another node; retry the request"))
    forwarding: Forwarding | None = request.app.state.forwarding
    owner = None if forwarding is None else await forwarding.owners.owner_of(account)
    if forwarding is None or owner is None or owner.address is None:
        await services.accounts.require(account)  # an unknown account is a 404
        raise ShortCircuit(not_connected("The account has no connection yet; retry shortly"))
    if owner.node == forwarding.node_id:
        raise ShortCircuit(not_connected("The account is still connecting; retry shortly"))
    raise ShortCircuit(await forwarding.forward(request, account, owner))


#: Use instead of the plain `account` path parameter in routes that need the mail server.
OwnedAccount = Annotated[str, Depends(owned_account)]


class ForwardedRequestMiddleware:
    """Checks `X-Mailwire-Forwarded` before any route runs (see the module docstring)."""

    def __init__(self, app: ASGIApp, forwarding: Callable[[Scope], Forwarding | None]) -> None:
        self.app = app
        self._forwarding = forwarding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers", ()) if k == FORWARDED_HEADER.encode()]
        if not values:
            await self.app(scope, receive, send)
            return
        forwarding = self._forwarding(scope)
        try:
            if forwarding is None or len(values) != 1:
                raise ForwardingRefusedError(403, "This node does not accept forwarded requests")
            verified = verify(
                forwarding.keys.verifying,
                values[0].decode("latin-1"),
                method=scope["method"],
                target=request_target(scope),
            )
        except ForwardingRefusedError as refused:
            log.warning("forwarding.refused", status=refused.status, reason=str(refused))
            await error_response(refused.status, str(refused))(scope, receive, send)
            return
        scope = dict(scope)
        scope[FORWARDED_KEY] = verified.node
        if verified.client:
            scope["client"] = (verified.client, 0)
        await self.app(scope, receive, send)


def install_forwarding(app: FastAPI) -> None:
    """The middleware and the `ShortCircuit` handler; the runtime sets `app.state.forwarding`."""
    app.state.forwarding = None

    async def short_circuit(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ShortCircuit)
        return exc.response

    app.add_exception_handler(ShortCircuit, short_circuit)
    app.add_middleware(
        ForwardedRequestMiddleware,
        forwarding=lambda scope: getattr(scope["app"].state, "forwarding", None),
    )
