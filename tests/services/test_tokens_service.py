"""The token service over a real store, with a clock the test controls."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwire.domain.tokens import (
    Action,
    Caller,
    Group,
    Operation,
    Permissions,
    RateLimit,
    Restrictions,
    Scope,
    token_id,
)
from mailwire.errors import (
    AccessDeniedError,
    AuthenticationError,
    InputError,
    NotFoundError,
    RateLimitedError,
)
from mailwire.services.tokens import TokenRequest, TokenService
from mailwire.store.store import open_store
from mailwire.testing.postgres import settings_for

START = 1_700_000_000_000
LOCAL = Caller(address=ipaddress.ip_address("127.0.0.1"))
READ_ALICE = Operation(Scope.API, Group.MESSAGE, Action.READ, account="alice")
ADMIN_READ = Operation(Scope.API, Group.ADMIN, Action.READ)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(tmp_path: Path, clock: Clock) -> AsyncIterator[TokenService]:
    store = await open_store(settings_for(tmp_path / "data"))
    yield TokenService(store, clock=clock)
    await store.close()


def bound(**fields: object) -> TokenRequest:
    values: dict[str, object] = {
        "description": "bound",
        "scopes": frozenset({Scope.API}),
        "account": "alice",
    }
    values.update(fields)
    return TokenRequest(**values)  # type: ignore[arg-type]


async def test_issued_token_is_random_hex_and_stored_only_as_its_hash(
    service: TokenService,
) -> None:
    first = await service.issue(bound())
    second = await service.issue(bound())
    assert first.token != second.token
    assert len(first.token) == 64
    int(first.token, 16)
    assert first.record.id == token_id(first.token)
    assert (await service.get(first.record.id)).id == first.record.id
    assert await service.authenticate(first.token, READ_ALICE, LOCAL)


@pytest.mark.parametrize(
    ("request_", "key"),
    [
        (bound(description="   "), "description"),
        (bound(description="x" * 1025), "description"),
        (bound(scopes=frozenset()), "scopes"),
        (bound(expires_at=START), "expires"),
        (bound(account=None), "permissions"),
        (bound(account=""), "account"),
    ],
)
async def test_issue_refuses_bad_requests(
    service: TokenService, request_: TokenRequest, key: str
) -> None:
    with pytest.raises(InputError) as caught:
        await service.issue(request_)
    assert caught.value.key == key
    assert (await service.list(account=None, query=None, page=0, page_size=10)).total == 0


async def test_only_the_operator_mints_unrestricted_instance_tokens(service: TokenService) -> None:
    root = await service.issue(bound(account=None), allow_unrestricted=True)
    assert await service.authenticate(root.token, ADMIN_READ, LOCAL)
    narrowed = await service.issue(
        bound(account=None, permissions=Permissions(actions=frozenset({Action.READ})))
    )
    with pytest.raises(AccessDeniedError):
        await service.authenticate(narrowed.token, ADMIN_READ, LOCAL)


@pytest.mark.parametrize("presented", [None, "", "not-hex", "A" * 64, "0" * 64])
async def test_missing_malformed_and_unknown_tokens_fail(
    service: TokenService, presented: str | None
) -> None:
    with pytest.raises(AuthenticationError):
        await service.authenticate(presented, READ_ALICE, LOCAL)


async def test_revocation_by_id_or_by_token_is_immediate(service: TokenService) -> None:
    by_id = await service.issue(bound())
    by_value = await service.issue(bound())
    assert await service.revoke(by_id.record.id)
    assert await service.revoke(by_value.token)
    assert not await service.revoke(by_value.token)
    for issued in (by_id, by_value):
        with pytest.raises(AuthenticationError):
            await service.authenticate(issued.token, READ_ALICE, LOCAL)
    with pytest.raises(NotFoundError):
        await service.get(by_id.record.id)


async def test_expiry(service: TokenService, clock: Clock) -> None:
    issued = await service.issue(bound(expires_at=START + 5000))
    await service.authenticate(issued.token, READ_ALICE, LOCAL)
    clock.now = START + 5000
    with pytest.raises(AuthenticationError, match="expired"):
        await service.authenticate(issued.token, READ_ALICE, LOCAL)


async def test_rate_limit_answers_with_time_to_wait_and_resets(
    service: TokenService, clock: Clock
) -> None:
    limited = await service.issue(
        bound(restrictions=Restrictions(rate_limit=RateLimit(max_requests=3, window_seconds=10)))
    )
    clock.now = START - START % 10_000 + 2_500  # 2.5 s into a window
    for _ in range(3):
        await service.authenticate(limited.token, READ_ALICE, LOCAL)
    with pytest.raises(RateLimitedError) as caught:
        await service.authenticate(limited.token, READ_ALICE, LOCAL)
    assert caught.value.retry_after == 8  # 7.5 s left, rounded up
    clock.now += 7_500  # the next window
    await service.authenticate(limited.token, READ_ALICE, LOCAL)


async def test_denied_requests_are_not_counted_against_the_limit(
    service: TokenService, clock: Clock
) -> None:
    limited = await service.issue(
        bound(restrictions=Restrictions(rate_limit=RateLimit(max_requests=1, window_seconds=60)))
    )
    other = Operation(Scope.API, Group.MESSAGE, Action.READ, account="bob")
    for _ in range(3):
        with pytest.raises(AccessDeniedError):
            await service.authenticate(limited.token, other, LOCAL)
    await service.authenticate(limited.token, READ_ALICE, LOCAL)


async def test_use_is_recorded(service: TokenService, clock: Clock) -> None:
    issued = await service.issue(bound())
    clock.now = START + 1234
    await service.authenticate(issued.token, READ_ALICE, LOCAL)
    seen = await service.get(issued.record.id)
    assert (seen.last_used_at, seen.last_used_ip) == (START + 1234, "127.0.0.1")
