"""SMTP gateway rows and passwords on SQLite and PostgreSQL: one transaction per change,
passwords only in the vault, counters that add up under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailwire.config import Settings
from mailwire.domain.gateways import GATEWAY_SCOPE, Gateway
from mailwire.store.gateways import KEEP_PASSWORD, GatewayValues
from mailwire.store.schema import metadata, secrets
from mailwire.store.store import Store, open_store

START = 1_700_000_000_000
PASSWORD = "planted-GwPass-5e1d"  # searched for in every table and file


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def store(settings: Settings, clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(settings, clock=clock)
    yield opened
    await opened.close()


def values(
    name: str = "Relay",
    host: str = "smtp.example.com",
    *,
    port: int = 465,
    secure: bool = True,
    user: str | None = "relay-user",
) -> GatewayValues:
    return GatewayValues(name=name, host=host, port=port, secure=secure, user=user)


def files_holding(directory: Path, needle: bytes) -> list[str]:
    return [p.name for p in directory.iterdir() if p.is_file() and needle in p.read_bytes()]


def values_of(gateway: Gateway) -> GatewayValues:
    return GatewayValues(**{f.name: getattr(gateway, f.name) for f in fields(GatewayValues)})


async def secret_rows(store: Store, gateway_id: str) -> list[str]:
    statement = sa.select(secrets.c.name).where(
        secrets.c.scope == GATEWAY_SCOPE, secrets.c.ref == gateway_id
    )
    async with store.database.read() as conn:
        return list((await conn.execute(statement)).scalars())


async def test_create_then_read_back(store: Store) -> None:
    assert await store.gateways.create_or_update("relay", values(), PASSWORD) == "new"

    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert values_of(gateway) == values()
    assert gateway.has_password
    assert (gateway.deliveries, gateway.last_use, gateway.last_error) == (0, None, None)
    assert gateway.created_at == gateway.updated_at == START
    login = await store.gateways.get_with_password("relay")
    assert login is not None
    assert (login.host, login.port, login.secure, login.user, login.password) == (
        "smtp.example.com",
        465,
        True,
        "relay-user",
        PASSWORD,
    )
    assert PASSWORD not in repr(login)


async def test_create_again_replaces_the_configuration_and_keeps_counters(
    store: Store, clock: Clock
) -> None:
    await store.gateways.create_or_update("relay", values(), PASSWORD)
    await store.gateways.record_delivery("relay", ok=True)
    clock.now += 1000

    other = values("Other", "10.0.0.5", port=587, secure=False, user=None)
    state = await store.gateways.create_or_update("relay", other, None)

    assert state == "existing"
    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert values_of(gateway) == other
    assert not gateway.has_password
    assert await secret_rows(store, "relay") == []
    assert (gateway.deliveries, gateway.created_at, gateway.updated_at) == (1, START, START + 1000)


async def test_create_again_may_keep_the_password(store: Store) -> None:
    await store.gateways.create_or_update("relay", values(), PASSWORD)
    await store.gateways.create_or_update("relay", values("Renamed"), KEEP_PASSWORD)

    login = await store.gateways.get_with_password("relay")
    assert login is not None
    assert login.password == PASSWORD


async def test_update_changes_only_what_is_named(store: Store, clock: Clock) -> None:
    await store.gateways.create_or_update("relay", values(), PASSWORD)
    clock.now += 5

    assert await store.gateways.update("relay", {"port": 2525, "user": None})

    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert values_of(gateway) == values(port=2525, user=None)
    assert gateway.updated_at == START + 5
    login = await store.gateways.get_with_password("relay")
    assert login is not None
    assert login.password == PASSWORD


async def test_update_sets_and_clears_the_password(store: Store) -> None:
    await store.gateways.create_or_update("relay", values(), None)

    await store.gateways.update("relay", {}, "new-secret")
    after_set = await store.gateways.get_with_password("relay")
    await store.gateways.update("relay", {}, None)
    after_clear = await store.gateways.get("relay")

    assert after_set is not None
    assert after_set.password == "new-secret"
    assert after_clear is not None
    assert not after_clear.has_password
    assert await secret_rows(store, "relay") == []


async def test_update_of_a_missing_gateway_writes_nothing(store: Store) -> None:
    assert not await store.gateways.update("missing", {"name": "x"}, PASSWORD)
    assert await secret_rows(store, "missing") == []
    with pytest.raises(ValueError, match="unknown gateway fields"):
        await store.gateways.update("missing", {"deliveries": 5})


async def test_delete_removes_row_and_password_together(store: Store) -> None:
    await store.gateways.create_or_update("relay", values(), PASSWORD)
    await store.gateways.create_or_update("keep", values(), "other-secret")

    assert await store.gateways.delete("relay")

    assert await store.gateways.get("relay") is None
    assert await store.gateways.get_with_password("relay") is None
    assert await secret_rows(store, "relay") == []
    assert await secret_rows(store, "keep") == ["pass"]
    assert not await store.gateways.delete("relay")


async def test_password_is_never_stored_in_clear(store: Store, settings: Settings) -> None:
    await store.gateways.create_or_update("relay", values(), PASSWORD)
    await store.gateways.update("relay", {"name": "Renamed"})

    async with store.database.read() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(sa.select(table))).all()
            assert PASSWORD not in repr(rows), table.name
    if store.database.is_sqlite:
        # The raw files too, WAL included: nothing in clear on disk.
        assert not files_holding(Path(settings.data_dir), PASSWORD.encode())


async def test_pages_in_creation_order(store: Store, clock: Clock) -> None:
    for number in range(5):
        clock.now += 1
        await store.gateways.create_or_update(f"gw-{number}", values(), None)

    first = await store.gateways.page(offset=0, limit=2)
    last = await store.gateways.page(offset=4, limit=2)

    assert first.total == last.total == 5
    assert [g.id for g in first.gateways] == ["gw-0", "gw-1"]
    assert [g.id for g in last.gateways] == ["gw-4"]


async def test_a_delivery_counts_and_clears_the_error(store: Store, clock: Clock) -> None:
    await store.gateways.create_or_update("relay", values(), None)
    clock.now += 10
    await store.gateways.record_delivery("relay", ok=False, error={"response": "421 busy"})
    clock.now += 10

    assert await store.gateways.record_delivery("relay", ok=True)

    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert (gateway.deliveries, gateway.last_use, gateway.last_error) == (1, START + 20, None)


async def test_a_failure_records_the_reference_shape_without_credentials(
    store: Store, clock: Clock
) -> None:
    await store.gateways.create_or_update("relay", values(), None)
    clock.now += 7
    error = {
        "response": "535 5.7.8 Authentication failed",
        "responseCode": 535,
        "code": "EAUTH",
        "command": "AUTH PLAIN AHJlbGF5LXVzZXIAcGxhbnRlZA==",
        "networkRouting": {"localAddress": "198.51.100.24", "name": "relay", "extra": "x"},
        "stack": "internal details",
    }

    assert await store.gateways.record_delivery("relay", ok=False, error=error)

    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert gateway.deliveries == 0
    assert gateway.last_use is None
    assert gateway.last_error == {
        "created": START + 7,
        "status": "error",
        "response": "535 5.7.8 Authentication failed",
        "responseCode": 535,
        "code": "EAUTH",
        "command": "AUTH PLAIN",
        "networkRouting": {"localAddress": "198.51.100.24", "name": "relay"},
    }


async def test_recording_for_a_missing_gateway_is_reported(store: Store) -> None:
    assert not await store.gateways.record_delivery("missing", ok=True)
    assert not await store.gateways.record_delivery("missing", ok=False, error=None)


async def test_concurrent_deliveries_from_two_stores_all_count(
    store: Store, settings: Settings
) -> None:
    await store.gateways.create_or_update("relay", values(), None)
    second = await open_store(settings)
    try:
        calls = [
            (store if number % 2 else second).gateways.record_delivery("relay", ok=True)
            for number in range(50)
        ]
        failures = [
            store.gateways.record_delivery("relay", ok=False, error={"code": "ETIMEDOUT"})
            for _ in range(7)
        ]
        results = await asyncio.gather(*calls, *failures)
    finally:
        await second.close()

    assert all(results)
    gateway = await store.gateways.get("relay")
    assert gateway is not None
    assert gateway.deliveries == 50
