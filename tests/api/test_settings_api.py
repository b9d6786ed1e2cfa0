"""`GET/POST /v1/settings` in process over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_kit import client_for, token_for

from mailwire.api.models.accounts import MAX_CUSTOM_HEADERS
from mailwire.config import Settings
from mailwire.domain.events import EventName
from mailwire.domain.settings import DEFAULTS, QUERY_KEYS, SECRET_KEYS
from mailwire.domain.tokens import Group, Permissions
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.schema import settings as settings_table
from mailwire.store.store import Store, open_store

#: Planted credentials: none may appear in an answer, a log line or the plain table.
URL_PASSWORD = "planted-UrlPass-31c9"
HEADER_VALUE = "Bearer planted-Header-77ab"
SECRETS = {
    "serviceSecret": "planted-ServiceSecret-0d4e",
    "openAiAPIKey": "planted-OpenAI-5b21",
    "smtpServerPassword": "planted-SmtpPass-a913",
    "imapProxyServerPassword": "planted-ImapPass-c0de",
}
PLANTED = (URL_PASSWORD, HEADER_VALUE.split()[1], *SECRETS.values())

Factory = Callable[..., Settings]


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, await token_for(store)) as opened:
        yield opened


async def read(client: httpx.AsyncClient, *keys: str) -> dict[str, Any]:
    response = await client.get("/v1/settings", params=dict.fromkeys(keys, "true"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def write(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    response = await client.post("/v1/settings", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"updated"}
    updated: list[str] = response.json()["updated"]
    return updated


async def refused(client: httpx.AsyncClient, body: Any, key: str) -> str:
    """POST `body`, expect the API's 400 naming `key`; returns the field's message."""
    response = await client.post("/v1/settings", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["statusCode"] == 400
    assert answer["error"] == "Bad Request"
    fields = {field["key"]: field["message"] for field in answer["fields"]}
    assert key in fields, answer
    return fields[key]


# ---------------------------------------------------------------- reading


async def test_only_the_asked_for_keys_are_answered(client: httpx.AsyncClient) -> None:
    assert await read(client) == {}
    assert await read(client, "notifyText", "webhookEvents") == {
        "notifyText": True,
        "webhookEvents": [],
    }
    response = await client.get("/v1/settings", params={"notifyText": "false", "webhooks": "1"})
    assert response.json() == {"webhooks": None}


async def test_every_key_reads_as_its_default(client: httpx.AsyncClient) -> None:
    answer = await read(client, *QUERY_KEYS)
    assert set(answer) == set(QUERY_KEYS)
    for key, value in DEFAULTS.items():
        if key in SECRET_KEYS:
            continue
        assert answer[key] == value, key
    assert answer["notifyTextSize"] == 2097152
    assert answer["webhooksEnabled"] is False
    # Secrets read as "set or not"; the signing secret exists from the first use on.
    assert answer["serviceSecret"] is True
    assert answer["openAiAPIKey"] is False
    assert answer["documentStorePassword"] is False


async def test_event_types_lists_every_event_name(client: httpx.AsyncClient) -> None:
    answer = await read(client, "eventTypes")
    assert answer["eventTypes"] == [name.value for name in EventName]
    assert len(answer["eventTypes"]) == 24


async def test_a_flag_that_is_not_a_boolean_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/settings", params={"notifyText": "perhaps"})
    assert response.status_code == 400
    assert response.json()["fields"][0]["key"] == "notifyText"


# ---------------------------------------------------------------- writing


async def test_post_changes_only_the_keys_sent(client: httpx.AsyncClient) -> None:
    assert await write(client, {"webhooksEnabled": True, "notifyTextSize": 4096}) == [
        "webhooksEnabled",
        "notifyTextSize",
    ]
    assert await write(client, {"webhookEvents": ["messageNew", "messageDeleted"]}) == [
        "webhookEvents"
    ]
    answer = await read(client, "webhooksEnabled", "notifyTextSize", "webhookEvents", "notifyText")
    assert answer == {
        "webhooksEnabled": True,
        "notifyTextSize": 4096,
        "webhookEvents": ["messageNew", "messageDeleted"],
        "notifyText": True,
    }
    assert await write(client, {}) == []


async def test_null_resets_and_empty_url_unsets(client: httpx.AsyncClient) -> None:
    await write(client, {"notifyText": False, "webhooks": "https://hooks.example/in"})
    await write(client, {"notifyText": None, "webhooks": ""})
    assert await read(client, "notifyText", "webhooks") == {"notifyText": True, "webhooks": None}


async def test_normalised_values(client: httpx.AsyncClient) -> None:
    await write(
        client,
        {
            "notifyHeaders": ["List-ID", "X-Mailer", "*"],
            "serviceUrl": "https://mail.example.com:8443/some/path?q=1",
            "webhookEvents": ["*"],
            "localAddresses": "192.0.2.10",
            "logs": {"all": True},
        },
    )
    answer = await read(client, "notifyHeaders", "serviceUrl", "webhookEvents", "localAddresses")
    assert answer["notifyHeaders"] == ["list-id", "x-mailer", "*"]
    assert answer["serviceUrl"] == "https://mail.example.com:8443"
    assert answer["webhookEvents"] == ["*"]
    assert answer["localAddresses"] == ["192.0.2.10"]
    assert (await read(client, "logs"))["logs"] == {"all": True, "maxLogLines": 10000}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"webhooks": "hooks.example/in"}, "webhooks"),
        ({"webhooks": "ftp://hooks.example/in"}, "webhooks"),
        ({"webhooks": "javascript:alert(1)"}, "webhooks"),
        ({"webhooks": "http://"}, "webhooks"),
        ({"webhooks": "http://:80/x"}, "webhooks"),
        ({"webhooks": "http://hooks.example:99999/"}, "webhooks"),
        ({"webhooks": "https://hooks.example/" + "a" * 2048}, "webhooks"),
        ({"webhooks": True}, "webhooks"),
        ({"serviceUrl": "file:///etc/passwd"}, "serviceUrl"),
        ({"proxyUrl": "gopher://proxy.example"}, "proxyUrl"),
        ({"webhookEvents": ["messageNew", "noSuchEvent"]}, "webhookEvents.1"),
        ({"webhookEvents": "messageNew"}, "webhookEvents"),
        ({"webhookEvents": ["messageNew"] * 30}, "webhookEvents"),
        (
            {"webhooksCustomHeaders": [{"key": "Bad Header", "value": "x"}]},
            "webhooksCustomHeaders.0.key",
        ),
        (
            {"webhooksCustomHeaders": [{"key": "X-A", "value": "a\r\nX-B: b"}]},
            "webhooksCustomHeaders.0.value",
        ),
        ({"webhooksCustomHeaders": [{"value": "x"}]}, "webhooksCustomHeaders.0.key"),
        (
            {"webhooksCustomHeaders": [{"key": "X-A", "value": "v" * 10241}]},
            "webhooksCustomHeaders.0.value",
        ),
        ({"webhooksCustomHeaders": [{"key": "X-A", "extra": 1}]}, "webhooksCustomHeaders.0.extra"),
        (
            {"webhooksCustomHeaders": [{"key": "X-A", "value": ""}] * (MAX_CUSTOM_HEADERS + 1)},
            "webhooksCustomHeaders",
        ),
        ({"notifyHeaders": ["Bad:Header"]}, "notifyHeaders.0"),
        ({"notifyHeaders": ["x" * 257]}, "notifyHeaders.0"),
        ({"noSuchSetting": True}, "noSuchSetting"),
        ({"notifyText": "sometimes"}, "notifyText"),
        ({"notifyTextSize": -1}, "notifyTextSize"),
        ({"notifyTextSize": 10**12}, "notifyTextSize"),
        ({"notifyAttachmentSize": 2 * 1024**3}, "notifyAttachmentSize"),
        ({"openAiTemperature": 2.5}, "openAiTemperature"),
        ({"smtpServerPort": 70000}, "smtpServerPort"),
        ({"smtpServerHost": "10.0.0.0/8"}, "smtpServerHost"),
        ({"localAddresses": ["not-an-ip"]}, "localAddresses.0"),
        ({"exportMaxConcurrent": 0}, "exportMaxConcurrent"),
        ({"outlookExportBatchSize": 21}, "outlookExportBatchSize"),
        ({"imapIndexer": "slow"}, "imapIndexer"),
        ({"locale": "xx"}, "locale"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"imapClientName": "Mailwire\r\nA1 LOGOUT"}, "imapClientName"),
        ({"scriptEnv": "[1, 2]"}, "scriptEnv"),
        ({"scriptEnv": "{not json"}, "scriptEnv"),
        ({"serviceSecret": ""}, "serviceSecret"),
        ({"smtpServerPassword": "p" * 1025}, "smtpServerPassword"),
        ({"logs": {"maxLogLines": -5}}, "logs.maxLogLines"),
    ],
)
async def test_invalid_values_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], key: str
) -> None:
    message = await refused(client, body, key)
    assert message
    # Nothing of a refused body is stored.
    assert await read(client, "webhooks", "webhookEvents") == {
        "webhooks": None,
        "webhookEvents": [],
    }


async def test_oversize_text_is_refused_with_the_api_error(client: httpx.AsyncClient) -> None:
    # Over the reference's 1 MiB limit, under the route's body limit.
    await refused(client, {"openAiPrompt": "p" * (1024 * 1024 + 1)}, "openAiPrompt")
    assert await write(client, {"openAiPrompt": "p" * (1024 * 1024)}) == ["openAiPrompt"]


async def test_a_body_that_is_not_an_object_is_refused(client: httpx.AsyncClient) -> None:
    await refused(client, ["webhooks"], "body")


# ---------------------------------------------------------------- credentials


async def test_credentials_are_never_shown_or_stored_in_clear(
    store: Store, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire")
    body = {
        "webhooks": f"https://hooks:{URL_PASSWORD}@hooks.example/in",
        "webhooksCustomHeaders": [{"key": "Authorization", "value": HEADER_VALUE}],
        **SECRETS,
    }
    assert set(await write(client, body)) == set(body)

    response = await client.get("/v1/settings", params=dict.fromkeys(QUERY_KEYS, "true"))
    answer = response.json()
    assert answer["webhooks"] == "https://hooks:******@hooks.example/in"
    assert answer["webhooksCustomHeaders"] == [{"key": "Authorization", "value": "******"}]
    for key in SECRETS:
        assert answer[key] is True
    async with store.database.read() as conn:
        plain = (await conn.execute(sa.select(settings_table))).all()
        vault = (await conn.execute(sa.select(secrets_table))).all()
    assert {row.key for row in plain}.isdisjoint(SECRET_KEYS)
    for planted in PLANTED:
        assert planted not in response.text
        assert planted not in caplog.text
        assert planted not in str(vault)
    for planted in SECRETS.values():
        assert planted not in str(plain)
    # ... while the delivery side reads the real values.
    assert await store.settings.service_secret() == SECRETS["serviceSecret"]
    values = await store.settings.values()
    assert values["webhooks"] == body["webhooks"]
    assert values["webhooksCustomHeaders"] == body["webhooksCustomHeaders"]
    assert SECRET_KEYS.isdisjoint(values)


async def test_masked_values_sent_back_keep_the_stored_ones(client: httpx.AsyncClient) -> None:
    await write(
        client,
        {
            "webhooks": f"https://hooks:{URL_PASSWORD}@hooks.example/in",
            "webhooksCustomHeaders": [{"key": "Authorization", "value": HEADER_VALUE}],
        },
    )
    shown = await read(client, "webhooks", "webhooksCustomHeaders")
    assert await write(client, shown) == []  # a round trip changes nothing

    # Adding a header while keeping the masked one keeps its value.
    headers = [*shown["webhooksCustomHeaders"], {"key": "X-Tenant", "value": "acme"}]
    assert await write(client, {"webhooksCustomHeaders": headers}) == ["webhooksCustomHeaders"]


async def test_masked_values_that_stand_for_nothing_are_refused(
    store: Store, client: httpx.AsyncClient
) -> None:
    await write(client, {"webhooks": f"https://hooks:{URL_PASSWORD}@hooks.example/in"})
    # The same mask on another host would send the old password elsewhere: refused.
    await refused(client, {"webhooks": "https://hooks:******@evil.example/in"}, "webhooks")
    masked_header = [{"key": "X-Other", "value": "******"}]
    await refused(client, {"webhooksCustomHeaders": masked_header}, "webhooksCustomHeaders")
    values = await store.settings.values()
    assert values["webhooks"] == f"https://hooks:{URL_PASSWORD}@hooks.example/in"
    assert values["webhooksCustomHeaders"] == []


# ---------------------------------------------------------------- access and workers


async def test_a_token_needs_the_admin_group(store: Store) -> None:
    async with client_for(store, None) as anonymous:
        assert (await anonymous.get("/v1/settings")).status_code == 401
        assert (await anonymous.post("/v1/settings", json={})).status_code == 401
    limited = await token_for(store, permissions=Permissions(groups=frozenset({Group.ACCOUNT})))
    async with client_for(store, limited) as client:
        assert (await client.get("/v1/settings", params={"notifyText": "1"})).status_code == 403
        response = await client.post("/v1/settings", json={"webhooksEnabled": True})
        assert response.status_code == 403
    assert (await store.settings.values())["webhooksEnabled"] is False


async def test_a_change_through_one_process_is_seen_by_another(make_settings: Factory) -> None:
    first = await open_store(make_settings())
    second = await open_store(make_settings())
    try:
        async with (
            client_for(first, await token_for(first)) as one,
            client_for(second, await token_for(second)) as other,
        ):
            assert await read(other, "webhooksEnabled") == {"webhooksEnabled": False}
            await write(one, {"webhooksEnabled": True, "webhookEvents": ["*"]})
            assert await read(other, "webhooksEnabled", "webhookEvents") == {
                "webhooksEnabled": True,
                "webhookEvents": ["*"],
            }
            assert (await second.settings.values())["webhookEvents"] == ["*"]
    finally:
        await first.close()
        await second.close()


async def test_openapi_documents_both_operations(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = spec["paths"]["/v1/settings"]
    assert operations["get"]["operationId"] == "getV1Settings"
    assert operations["post"]["operationId"] == "postV1Settings"
    flags = {parameter["name"] for parameter in operations["get"]["parameters"]}
    assert flags == {"eventTypes", *QUERY_KEYS}
    assert operations["get"]["x-ee-group"] == "admin"
    assert operations["post"]["x-ee-action"] == "write"
