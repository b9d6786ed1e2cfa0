"""Forwarding to an account's owner: the signed header, and two real nodes on loopback.

The node tests run two `create_app` instances under uvicorn on loopback
sockets over one SQLite store, each with its own `Services` whose connections
come from a fake source naming the accounts "owned" there, and a real
`LeaseStore` saying the same to the other node. A test-only route takes its
account through `OwnedAccount` and says which node served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope

from mailwire.api.app import create_app
from mailwire.api.forwarding import (
    FORWARDED_HEADER,
    MAX_CLOCK_SKEW_S,
    Forwarding,
    ForwardingKeys,
    ForwardingRefusedError,
    OwnedAccount,
    derive_key,
    request_target,
    sign,
    verify,
)
from mailwire.api.routing import MailwireRoute, operation
from mailwire.domain.tokens import Action, Group, Restrictions, Scope
from mailwire.net.listeners import bind_tcp
from mailwire.services.container import Services
from mailwire.services.tokens import TokenRequest
from mailwire.store.accounts import AccountValues
from mailwire.store.leases import LeaseStore
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import settings_for
from mailwire.workers.commands import CommandPool

SECRET = "forwarding-test-secret-1"
BIG = 5 * 1024 * 1024
BODY_LIMIT = 16 * 1024 * 1024
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def key() -> bytes:
    return derive_key(SECRET)


# ---------------------------------------------------------------------------- the header


def test_a_signed_header_verifies(key: bytes) -> None:
    value = sign(key, method="GET", target="/v1/a?x=1", node="n1", client="10.0.0.7", now=NOW)
    verified = verify([key], value, method="GET", target="/v1/a?x=1", now=NOW + 5)
    assert (verified.node, verified.client) == ("n1", "10.0.0.7")


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/v1/b?x=1"), ("GET", "/v1/a?x=2"), ("GET", "/v1/a"), ("DELETE", "/v1/a?x=1")],
)
def test_a_tampered_request_is_refused(key: bytes, method: str, target: str) -> None:
    value = sign(key, method="GET", target="/v1/a?x=1", node="n1", now=NOW)
    with pytest.raises(ForwardingRefusedError) as refused:
        verify([key], value, method=method, target=target, now=NOW)
    assert refused.value.status == 403


def test_tampered_fields_are_refused(key: bytes) -> None:
    value = sign(key, method="GET", target="/a", node="n1", client="10.0.0.7", now=NOW)
    for forged in (
        value.replace("node=n1", "node=n2"),
        value.replace("client=10.0.0.7", "client=10.0.0.8"),
        value.replace(f"ts={int(NOW)}", f"ts={int(NOW) + 1}"),
    ):
        with pytest.raises(ForwardingRefusedError) as refused:
            verify([key], forged, method="GET", target="/a", now=NOW)
        assert refused.value.status == 403


@pytest.mark.parametrize("age", [MAX_CLOCK_SKEW_S + 1, -(MAX_CLOCK_SKEW_S + 1), 3600])
def test_an_old_or_future_timestamp_is_refused(key: bytes, age: int) -> None:
    value = sign(key, method="GET", target="/a", node="n1", now=NOW - age)
    with pytest.raises(ForwardingRefusedError) as refused:
        verify([key], value, method="GET", target="/a", now=NOW)
    assert refused.value.status == 403
    at_limit = sign(key, method="GET", target="/a", node="n1", now=NOW - MAX_CLOCK_SKEW_S)
    verify([key], at_limit, method="GET", target="/a", now=NOW)


def test_a_header_under_another_key_is_refused(key: bytes) -> None:
    other = derive_key("another-secret-entirely")
    value = sign(other, method="GET", target="/a", node="n1", now=NOW)
    with pytest.raises(ForwardingRefusedError) as refused:
        verify([key], value, method="GET", target="/a", now=NOW)
    assert refused.value.status == 403
    # A previous secret still verifies during a rotation.
    verify([key, other], value, method="GET", target="/a", now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "v2;node=n1;ts=1;client=;mac=" + "0" * 64,
        "v1;node=n1;ts=1;client=;mac=" + "0" * 63,
        "v1;node=n 1;ts=1;client=;mac=" + "0" * 64,
        "v1;node=n1;ts=x;client=;mac=" + "0" * 64,
        "v1;node=n1;ts=1;client=1.2.3.999;mac=" + "0" * 64,
        "v1;node=n1;ts=1;client=;mac=" + "0" * 64 + ";extra=1",
        "v1;node=n1;ts=1;client=;mac=" + "0" * 64 + "x" * 600,
    ],
)
def test_a_malformed_header_is_a_400(key: bytes, value: str) -> None:
    with pytest.raises(ForwardingRefusedError) as refused:
        verify([key], value, method="GET", target="/a", now=NOW)
    assert refused.value.status == 400


def test_keys_differ_from_the_secret_and_per_secret() -> None:
    keys = ForwardingKeys.from_secrets([SECRET, "older-secret-value", SECRET])
    assert keys.signing == derive_key(SECRET) != derive_key("older-secret-value")
    assert len(keys.verifying) == 2
    assert SECRET.encode() not in keys.signing


def test_the_target_is_the_raw_path_and_query() -> None:
    scope = {"path": "/v1/a b", "raw_path": b"/v1/a%20b", "query_string": b"q=%2F"}
    assert request_target(scope) == "/v1/a%20b?q=%2F"
    assert request_target({"path": "/x", "query_string": b""}) == "/x"


# ---------------------------------------------------------------------------- two nodes


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class FakeSource:
    """Says which accounts have a command pool here (never used: the route only asks)."""

    local: set[str]

    def commands(self, account_id: str) -> CommandPool | None:
        return cast(CommandPool, object()) if account_id in self.local else None


def make_router(name: str, served: list[str]) -> APIRouter:
    router = APIRouter(route_class=MailwireRoute)

    @router.get("/test/{account}/who", openapi_extra=operation(Group.MESSAGE, Action.READ))
    async def who(account: OwnedAccount, request: Request) -> JSONResponse:
        served.append(account)
        client = request.client.host if request.client else None
        return JSONResponse(
            {"node": name, "account": account, "client": client, "query": request.url.query},
            headers={"X-Served-By": name},
        )

    @router.post(
        "/test/{account}/echo",
        openapi_extra=operation(Group.MESSAGE, Action.WRITE, body_limit=BODY_LIMIT),
    )
    async def echo(account: OwnedAccount, request: Request) -> StreamingResponse:
        served.append(account)

        async def chunks() -> AsyncIterator[bytes]:
            yield f"{name}\n".encode()
            async for chunk in request.stream():
                yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @router.get("/test/{account}/big", openapi_extra=operation(Group.MESSAGE, Action.READ))
    async def big(account: OwnedAccount) -> StreamingResponse:
        served.append(account)

        async def chunks() -> AsyncIterator[bytes]:
            for index in range(BIG // 65536):
                yield bytes([index % 251]) * 65536

        return StreamingResponse(chunks(), headers={"Content-Length": str(BIG)})

    @router.get("/test/{account}/broken", openapi_extra=operation(Group.MESSAGE, Action.READ))
    async def broken(account: OwnedAccount) -> StreamingResponse:
        served.append(account)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"x" * 65536
            raise RuntimeError("the mail server went away mid-download")

        return StreamingResponse(chunks())

    return router


@dataclass
class Node:
    name: str
    url: str
    app: FastAPI
    forwarding: Forwarding
    server: _Server
    task: asyncio.Task[None]
    served: list[str] = field(default_factory=list)


async def start_node(store: Store, name: str, local: set[str], keys: ForwardingKeys) -> Node:
    services = Services.build(store)
    services.connections.attach(FakeSource(local))
    app = create_app(services, body_limit=BODY_LIMIT)
    served: list[str] = []
    app.include_router(make_router(name, served))
    leases = LeaseStore(store.database)
    forwarding = Forwarding(node_id=name, keys=keys, owners=leases)
    app.state.forwarding = forwarding
    sock = bind_tcp("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(_serve(server, sock))
    while not server.started:
        assert not task.done(), "the node's server did not start"
        await asyncio.sleep(0.01)
    await leases.register(name, host="test", pid=os.getpid(), address=url)
    for account in sorted(local):
        await claim(store, name, account)
    return Node(name, url, app, forwarding, server, task, served)


async def _serve(server: _Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()


async def claim(store: Store, node: str, account: str) -> None:
    leases = LeaseStore(store.database)
    # Claim exactly this account: every other free one is leased to a placeholder first.
    await store.accounts.create_or_update(account, AccountValues(account, None, {}, 0), {})
    owned = await leases.claim(node, 1000)
    others = [other for other in owned if other != account]
    await leases.release(node, others)
    assert account in owned


async def stop_node(node: Node) -> None:
    node.server.should_exit = True
    await node.task
    await node.forwarding.aclose()


@dataclass
class Cluster:
    store: Store
    a: Node
    b: Node
    token: str
    keys: ForwardingKeys

    def client(self, node: Node, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=node.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    store = await open_store(settings_for(tmp_path / "data", secret=SECRET))
    keys = ForwardingKeys.from_secrets([SECRET])
    services = Services.build(store)
    request = TokenRequest(description="test", scopes=frozenset({Scope.ALL}))
    token = (await services.tokens.issue(request, allow_unrestricted=True)).token
    a = await start_node(store, "node-a", {"acct-a"}, keys)
    b = await start_node(store, "node-b", {"acct-b"}, keys)
    try:
        yield Cluster(store, a, b, token, keys)
    finally:
        await stop_node(a)
        await stop_node(b)
        await store.close()


async def test_a_request_for_an_account_owned_here_is_served_here(cluster: Cluster) -> None:
    async with cluster.client(cluster.a) as client:
        response = await client.get("/test/acct-a/who")
    assert response.status_code == 200, response.text
    assert response.json()["node"] == "node-a"
    assert cluster.a.served == ["acct-a"]
    assert cluster.b.served == []


async def test_a_request_to_the_non_owner_is_served_by_the_owner(cluster: Cluster) -> None:
    async with cluster.client(cluster.a) as client:
        response = await client.get("/test/acct-b/who", params={"q": "a b/ü", "n": "1"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "node": "node-b",
        "account": "acct-b",
        "client": "127.0.0.1",
        "query": "q=a+b%2F%C3%BC&n=1",
    }
    assert response.headers["x-served-by"] == "node-b"
    assert response.headers["x-request-id"]  # the forwarding node's own
    assert cluster.a.served == []
    assert cluster.b.served == ["acct-b"]


async def test_the_owner_checks_the_clients_token_itself(cluster: Cluster) -> None:
    async with cluster.client(cluster.a) as client:
        client.headers["Authorization"] = "Bearer " + "0" * 64
        response = await client.get("/test/acct-b/who")
    assert response.status_code == 401
    assert cluster.b.served == []


async def test_the_owner_sees_the_real_client_address(cluster: Cluster) -> None:
    # A token that only 127.0.0.2 may use: the owner, reached from 127.0.0.1, must still
    # see the client's own address (vouched for by the signed header).
    services = Services.build(cluster.store)
    only_there = Restrictions(addresses=(ipaddress.ip_network("127.0.0.2/32"),))
    request = TokenRequest(description="t", scopes=frozenset({Scope.ALL}), restrictions=only_there)
    token = (await services.tokens.issue(request, allow_unrestricted=True)).token
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with cluster.client(cluster.a, transport=transport) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        response = await client.get("/test/acct-b/who")
    assert response.status_code == 200, response.text
    assert response.json()["client"] == "127.0.0.2"


async def test_a_large_body_is_streamed_both_ways(cluster: Cluster) -> None:
    body = os.urandom(BIG)
    async with cluster.client(cluster.a) as client:
        response = await client.post("/test/acct-b/echo", content=body)
        download = await client.get("/test/acct-b/big")
    assert response.status_code == 200, response.text[:200]
    assert response.content == b"node-b\n" + body
    assert download.status_code == 200
    assert download.headers["content-length"] == str(BIG)
    expected = b"".join(bytes([i % 251]) * 65536 for i in range(BIG // 65536))
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(expected).digest()
    assert cluster.b.served == ["acct-b", "acct-b"]
    assert cluster.a.served == []


async def test_no_owner_is_a_503_with_retry_after(cluster: Cluster) -> None:
    await cluster.store.accounts.create_or_update(
        "acct-free", AccountValues("free", None, {}, 0), {}
    )
    async with cluster.client(cluster.a) as client:
        response = await client.get("/test/acct-free/who")
        unknown = await client.get("/test/no-such-account/who")
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["code"] == "AccountNotConnected"
    assert unknown.status_code == 404  # no such account at all: nothing to wait for
    assert unknown.json()["code"] == "AccountNotFound"
    assert cluster.a.served == []
    assert cluster.b.served == []


async def test_an_owner_that_is_down_is_a_503(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire")
    await stop_node(cluster.b)  # its lease and address stay, as after a crash
    async with cluster.client(cluster.a) as client:
        response = await client.get("/test/acct-b/who")
        upload = await client.post("/test/acct-b/echo", content=b"x" * 100_000)
    for answer in (response, upload):
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert answer.json()["code"] == "AccountNotConnected"
    assert "forwarding.owner_unreachable" in caplog.text
    assert cluster.token not in caplog.text


async def test_a_forged_forwarding_header_is_refused(cluster: Cluster) -> None:
    wrong = derive_key("not-the-service-secret")
    forged = sign(wrong, method="GET", target="/test/acct-b/who", node="node-a")
    async with cluster.client(cluster.b) as client:
        refused = await client.get("/test/acct-b/who", headers={FORWARDED_HEADER: forged})
        malformed = await client.get("/test/acct-b/who", headers={FORWARDED_HEADER: "v1;x"})
        # Signed for another path: not a key to this one.
        elsewhere = sign(cluster.keys.signing, method="GET", target="/v1/other", node="node-a")
        replayed = await client.get("/test/acct-b/who", headers={FORWARDED_HEADER: elsewhere})
    assert refused.status_code == 403
    assert malformed.status_code == 400
    assert replayed.status_code == 403
    assert cluster.b.served == []


async def test_a_forwarded_request_at_a_non_owner_is_not_forwarded_again(
    cluster: Cluster,
) -> None:
    genuine = sign(cluster.keys.signing, method="GET", target="/test/acct-b/who", node="node-b")
    async with cluster.client(cluster.a) as client:
        response = await client.get("/test/acct-b/who", headers={FORWARDED_HEADER: genuine})
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["code"] == "AccountNotConnected"
    assert cluster.a.served == []
    assert cluster.b.served == []


async def test_hop_by_hop_headers_are_not_forwarded(cluster: Cluster) -> None:
    seen: list[httpx.Headers] = []

    async def owner(scope: ASGIScope, receive: Receive, send: Send) -> None:
        seen.append(httpx.Headers([(k.decode(), v.decode()) for k, v in scope["headers"]]))
        response = JSONResponse(
            {"ok": True}, headers={"Connection": "close, X-Drop", "X-Drop": "1"}
        )
        await response(scope, receive, send)

    recording = Forwarding(
        node_id="node-a",
        keys=cluster.keys,
        owners=LeaseStore(cluster.store.database),
        transport=httpx.ASGITransport(app=owner),
    )
    cluster.a.app.state.forwarding = recording
    sent = {"Connection": "keep-alive, X-Private", "X-Private": "1", "TE": "trailers"}
    try:
        async with cluster.client(cluster.a) as client:
            response = await client.get("/test/acct-b/who", headers={**sent, "X-Custom": "kept"})
    finally:
        await recording.aclose()
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert "x-drop" not in response.headers
    (headers,) = seen
    assert headers["x-custom"] == "kept"
    assert headers["authorization"] == f"Bearer {cluster.token}"
    assert "x-private" not in headers
    assert "te" not in headers
    verify(
        cluster.keys.verifying,
        headers[FORWARDED_HEADER],
        method="GET",
        target="/test/acct-b/who",
    )


async def test_a_download_broken_at_the_owner_is_not_passed_off_as_complete(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire")
    async with cluster.client(cluster.a) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/test/acct-b/broken")
    assert cluster.b.served == ["acct-b"]
    assert "forwarding.stream_broken" in caplog.text
