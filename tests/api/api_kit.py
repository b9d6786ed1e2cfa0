"""The API in process for tests: a token on a real store and an httpx client on the app."""

from __future__ import annotations

import httpx

from mailwire.api.app import create_app
from mailwire.domain.tokens import Permissions, Scope
from mailwire.services.container import Services
from mailwire.services.tokens import TokenRequest
from mailwire.store.store import Store

BODY_LIMIT = 256 * 1024


async def token_for(
    store: Store, account: str | None = None, permissions: Permissions | None = None
) -> str:
    """A fresh token with every scope (bound to `account` or limited by `permissions`)."""
    request = TokenRequest(
        description="test",
        scopes=frozenset({Scope.ALL}),
        account=account,
        permissions=permissions,
    )
    issued = await Services.build(store).tokens.issue(request, allow_unrestricted=True)
    return issued.token


def client_for(
    store: Store, token: str | None, services: Services | None = None
) -> httpx.AsyncClient:
    """A client of a new app on `store` (or on `services`), from a fixed loopback address."""
    app = create_app(services or Services.build(store), body_limit=BODY_LIMIT)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url="http://mailwire", headers=headers)
