"""The settings that shape webhooks, read once per use from the settings store.

`WebhookSettings.from_values` turns the stored `/v1/settings` values (the
reference's key names) into one typed value, applying the documented default
for every key that was never set. `SettingsCache` keeps the last read for a
short time: the relay and every delivery consult the settings, and a change
made through the API on any node must still take effect within about a second.

`AccountHooks` is what an account adds: its own target URL (an empty string
means "use the global one") and its own custom headers, applied last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: The reference's seeded defaults for the keys it seeds on first start.
DEFAULT_NOTIFY_TEXT_SIZE = 2 * 1024 * 1024
#: How long a settings read is reused (seconds).
SETTINGS_TTL_S = 1.0

Header = tuple[str, str]


class SettingsSource(Protocol):
    """The part of the settings store webhooks use (`Store.settings`)."""

    async def values(self) -> dict[str, Any]: ...

    async def service_secret(self) -> str: ...


def custom_headers(value: object) -> tuple[Header, ...]:
    """`[{key, value}, ...]` as (name, value) pairs; malformed entries are skipped."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    found: list[Header] = []
    for entry in value:
        if isinstance(entry, Mapping):
            key, val = entry.get("key"), entry.get("value")
            if isinstance(key, str) and key and isinstance(val, str):
                found.append((key, val))
    return tuple(found)


def _url(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _size(value: object, default: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return default
    return value


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    enabled: bool = False
    url: str | None = None
    events: frozenset[str] = frozenset()
    headers: tuple[Header, ...] = ()
    inbox_new_only: bool = False
    service_url: str | None = None
    notify_text: bool = True
    notify_text_size: int = DEFAULT_NOTIFY_TEXT_SIZE
    notify_web_safe_html: bool = False
    #: Header names as stored; matching is on lower-case names, so a mixed-case
    #: entry never matches (as the reference behaves for API-stored values).
    notify_headers: tuple[str, ...] = ()
    notify_attachments: bool = False
    notify_attachment_size: int | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> WebhookSettings:
        return cls(
            enabled=bool(values.get("webhooksEnabled", False)),
            url=_url(values.get("webhooks")),
            events=frozenset(_strings(values.get("webhookEvents"))),
            headers=custom_headers(values.get("webhooksCustomHeaders")),
            inbox_new_only=bool(values.get("inboxNewOnly", False)),
            service_url=_url(values.get("serviceUrl")),
            notify_text=bool(values.get("notifyText", True)),
            notify_text_size=_size(values.get("notifyTextSize"), DEFAULT_NOTIFY_TEXT_SIZE)
            or DEFAULT_NOTIFY_TEXT_SIZE,
            notify_web_safe_html=bool(values.get("notifyWebSafeHtml", False)),
            notify_headers=_strings(values.get("notifyHeaders")),
            notify_attachments=bool(values.get("notifyAttachments", False)),
            notify_attachment_size=_size(values.get("notifyAttachmentSize"), None),
        )

    def default_route_wants(self, event: str) -> bool:
        """Whether the default route sends `event` at all (`webhookEvents`, `"*"` = all)."""
        return "*" in self.events or event in self.events


@dataclass(frozen=True, slots=True)
class AccountHooks:
    """An account's own webhook URL and headers (from its settings)."""

    url: str | None = None
    headers: tuple[Header, ...] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AccountHooks:
        return cls(
            url=_url(settings.get("webhooks")),
            headers=custom_headers(settings.get("webhooksCustomHeaders")),
        )


class SettingsCache:
    """The webhook settings, read at most once per `ttl` seconds (reads share one fetch)."""

    def __init__(self, source: SettingsSource, *, ttl: float = SETTINGS_TTL_S) -> None:
        self._source = source
        self._ttl = ttl
        self._value: WebhookSettings | None = None
        self._secret: str | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> WebhookSettings:
        if self._value is not None and time.monotonic() - self._read_at < self._ttl:
            return self._value
        async with self._lock:
            if self._value is None or time.monotonic() - self._read_at >= self._ttl:
                self._value = WebhookSettings.from_values(await self._source.values())
                self._secret = None
                self._read_at = time.monotonic()
            return self._value

    async def secret(self) -> str:
        """The service secret (the signing key), refreshed with the settings; deliveries
        running at once share one read."""
        await self.get()
        if self._secret is not None:
            return self._secret
        async with self._lock:
            if self._secret is None:
                self._secret = await self._source.service_secret()
            return self._secret
