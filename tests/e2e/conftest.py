"""End-to-end fixtures: a real `mailwire serve` process on a loopback port.

`server` is one process for the whole session, shared by every e2e test that
only adds its own tokens (tests never assume the token table is otherwise
empty; they compare counts before and after). Tests that stop, signal or
reconfigure a server start their own through `start_server` (or, for a module,
`server_factory`); a test may stop it itself, teardown stops whatever still runs.

`register_account` registers an account over `POST /v1/account` on any running
server: account-bound tokens may only be issued for an account that exists.

`seed_token` writes a token straight into the server's store through the
token service, as the operator's CLI does. It exists because the API (by
design) refuses to mint an instance-wide token without `permissions`, and the
CLI has no restriction flags: without it, no token that can reach an existing
endpoint could carry address, referrer or rate-limit restrictions.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailwire.config import Settings
from mailwire.domain.tokens import Restrictions, Scope
from mailwire.services.container import Services
from mailwire.services.tokens import TokenRequest
from mailwire.store.store import open_store
from mailwire.testing.server import MailwireServer

HTTP_TIMEOUT_S = 15.0

IssueToken = Callable[..., dict[str, Any]]
SeedToken = Callable[..., str]
StartServer = Callable[..., MailwireServer]
RegisterAccount = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwireServer]:
    """The shared server (SQLite in a private data dir) and its CLI-issued root token."""
    with running_server(tmp_path_factory.mktemp("e2e-shared") / "data") as running:
        yield running


@pytest.fixture(scope="session")
def api(server: MailwireServer) -> Iterator[httpx.Client]:
    """A client that sends the root token in the Authorization header."""
    with httpx.Client(
        base_url=server.url, headers=bearer(server.token), timeout=HTTP_TIMEOUT_S
    ) as client:
        yield client


@pytest.fixture(scope="session")
def anon(server: MailwireServer) -> Iterator[httpx.Client]:
    """A client that sends no credentials unless a test adds them."""
    with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT_S) as client:
        yield client


@pytest.fixture(scope="session")
def issue(api: httpx.Client) -> IssueToken:
    """`issue(**body)`: POST /v1/tokens as root; asserts 200 and returns `{token, id}`."""

    def issue_token(**body: Any) -> dict[str, Any]:
        response = api.post("/v1/tokens", json=body)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()
        return created

    return issue_token


@pytest.fixture(scope="session")
def register_account() -> RegisterAccount:
    """`register_account(server, account, **fields)`: POST /v1/account as `server`'s root.

    Without `fields` the account is send-only (no `imap` section), so the server
    never tries to connect it anywhere; pass `imap=...` (and `name=...`) for a
    mailbox it should sync. Asserts 200 and returns the state, `new` or `existing`.
    """

    def register(server: MailwireServer, account: str, **fields: Any) -> str:
        body = {"account": account, "name": account, **fields}
        response = httpx.post(
            f"{server.url}/v1/account",
            json=body,
            headers=bearer(server.token),
            timeout=HTTP_TIMEOUT_S,
        )
        assert response.status_code == 200, response.text
        created: dict[str, str] = response.json()
        assert created["account"] == account, created
        assert created["state"] in {"new", "existing"}, created
        return created["state"]

    return register


@pytest.fixture(scope="session")
def token_total(api: httpx.Client) -> Callable[[], int]:
    """How many tokens the shared server holds right now."""

    def total() -> int:
        response = api.get("/v1/tokens", params={"pageSize": 1})
        assert response.status_code == 200, response.text
        count: int = response.json()["total"]
        return count

    return total


@pytest.fixture(scope="session")
def seed_token(server: MailwireServer) -> SeedToken:
    """`seed_token(restrictions=..., scopes=...)`: an instance-wide token written to the
    shared server's store (see the module docstring); returns the token."""

    def seed(
        *, restrictions: Restrictions | None = None, scopes: frozenset[Scope] | None = None
    ) -> str:
        request = TokenRequest(
            description="seeded by the e2e suite",
            scopes=scopes or frozenset({Scope.API}),
            restrictions=restrictions,
        )
        return asyncio.run(_seed(server.data_dir, request))

    return seed


async def _seed(data_dir: Path, request: TokenRequest) -> str:
    # Every store setting is given explicitly so that no MAILWIRE_* variable of
    # the person running the tests can point this at another database.
    settings = Settings(
        data_dir=data_dir, database_url=None, database_schema=None, secret=None, previous_secrets=()
    )
    store = await open_store(settings)
    try:
        services = Services.build(store)
        issued = await services.tokens.issue(request, allow_unrestricted=True)
    finally:
        await store.close()
    return issued.token


def running_server(
    data_dir: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> MailwireServer:
    """A server to use in a `with` block: started on entry, stopped (SIGTERM) on exit."""
    return MailwireServer(data_dir, env=env or {}, args=args)


@pytest.fixture(scope="session")
def server_factory() -> Callable[..., AbstractContextManager[MailwireServer]]:
    """`running_server` for module-scoped fixtures of test files."""
    return running_server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """`start_server(env=..., args=...)`: a private server for this test, stopped at teardown."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(
            *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
        ) -> MailwireServer:
            data_dir = tmp_path / f"data{next(numbers)}"
            return stack.enter_context(running_server(data_dir, env=env, args=args))

        yield start
