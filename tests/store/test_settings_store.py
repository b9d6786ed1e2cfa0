"""The settings store on SQLite and PostgreSQL: defaults, partial updates, secrets kept
encrypted, and changes seen at once by another store on the same database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from mailwire.config import Settings
from mailwire.domain.settings import DEFAULTS, SECRET_KEYS, SECRET_REF, SECRET_SCOPE
from mailwire.errors import InputError
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.schema import settings as settings_table
from mailwire.store.store import Store, open_store

Factory = Callable[..., Settings]

PLANTED = "planted-OpenAI-Key-7f3a"  # searched for in the raw tables


async def raw_settings(store: Store) -> dict[str, object]:
    async with store.database.read() as conn:
        rows = await conn.execute(sa.select(settings_table.c.key, settings_table.c.value))
        return {row.key: row.value for row in rows}


async def test_unset_keys_read_as_their_defaults(store: Store) -> None:
    values = await store.settings.values()
    assert values == {key: value for key, value in DEFAULTS.items() if key not in SECRET_KEYS}
    assert values["notifyText"] is True
    assert values["notifyTextSize"] == 2097152
    assert values["webhookEvents"] == []
    assert values["webhooksEnabled"] is False
    assert values["scriptEnv"] == "{}"
    assert await raw_settings(store) == {}


async def test_defaults_are_not_shared_between_reads(store: Store) -> None:
    first = await store.settings.values()
    first["webhookEvents"].append("messageNew")
    assert (await store.settings.values())["webhookEvents"] == []


async def test_update_is_partial_and_none_resets(store: Store) -> None:
    updated = await store.settings.update(
        {"webhooksEnabled": True, "webhookEvents": ["messageNew"], "notifyTextSize": 1024}
    )
    assert updated == ["webhooksEnabled", "webhookEvents", "notifyTextSize"]
    await store.settings.update({"notifyTextSize": 0, "notifyText": False})
    values = await store.settings.values()
    assert values["webhooksEnabled"] is True
    assert values["webhookEvents"] == ["messageNew"]
    assert values["notifyTextSize"] == 0
    assert values["notifyText"] is False

    await store.settings.update({"notifyText": None, "webhookEvents": None})
    values = await store.settings.values()
    assert values["notifyText"] is True
    assert values["webhookEvents"] == []
    assert set(await raw_settings(store)) == {"webhooksEnabled", "notifyTextSize"}
    assert await store.settings.get("notifyTextSize") == 0


async def test_unknown_keys_are_refused(store: Store) -> None:
    with pytest.raises(InputError) as refused:
        await store.settings.update({"webhooksEnabled": True, "noSuchSetting": 1})
    assert refused.value.key == "noSuchSetting"
    assert await raw_settings(store) == {}


async def test_secret_keys_live_encrypted_in_the_vault_only(store: Store) -> None:
    await store.settings.update({"openAiAPIKey": PLANTED, "webhooksEnabled": True})
    assert "openAiAPIKey" not in await store.settings.values()
    assert await store.settings.secret("openAiAPIKey") == PLANTED
    raw = await raw_settings(store)
    assert set(raw) == {"webhooksEnabled"}
    async with store.database.read() as conn:
        vault = (await conn.execute(sa.select(secrets_table))).mappings().all()
    ours = [row for row in vault if row["scope"] == SECRET_SCOPE and row["ref"] == SECRET_REF]
    assert [row["name"] for row in ours] == ["openAiAPIKey"]
    assert all(PLANTED not in str(dict(row)) for row in vault)

    flags = await store.settings.secrets_set()
    assert flags["openAiAPIKey"] is True
    assert flags["smtpServerPassword"] is False
    await store.settings.update({"openAiAPIKey": None})
    assert await store.settings.secret("openAiAPIKey") is None
    assert (await store.settings.secrets_set())["openAiAPIKey"] is False


async def test_service_secret_is_seeded_once_and_can_be_set(store: Store) -> None:
    first = await store.settings.service_secret()
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert await store.settings.service_secret() == first
    assert "serviceSecret" not in await raw_settings(store)

    await store.settings.update({"serviceSecret": "chosen-by-the-operator"})
    assert await store.settings.service_secret() == "chosen-by-the-operator"


async def test_two_nodes_seeding_together_agree(make_settings: Factory) -> None:
    first = await open_store(make_settings())
    second = await open_store(make_settings())
    try:
        secrets = await asyncio.gather(
            *(node.settings.service_secret() for node in (first, second, first, second))
        )
        assert len(set(secrets)) == 1
    finally:
        await first.close()
        await second.close()


async def test_a_change_is_seen_at_once_by_another_process(make_settings: Factory) -> None:
    # Two stores on one database stand for two worker processes (or nodes).
    writer = await open_store(make_settings())
    reader = await open_store(make_settings())
    try:
        assert (await reader.settings.values())["webhooksEnabled"] is False
        await writer.settings.update({"webhooksEnabled": True, "webhooks": "https://a.example"})
        seen = await reader.settings.values()
        assert seen["webhooksEnabled"] is True
        assert seen["webhooks"] == "https://a.example"
        await reader.settings.update({"webhooksEnabled": False})
        assert (await writer.settings.values())["webhooksEnabled"] is False
        await writer.settings.update({"serviceSecret": "rotated-secret-value"})
        assert await reader.settings.service_secret() == "rotated-secret-value"
    finally:
        await writer.close()
        await reader.close()
