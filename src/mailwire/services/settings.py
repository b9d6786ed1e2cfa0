"""Instance-wide settings as a use case: read some keys, change some keys.

Values arrive validated (the API models check types and limits). This layer
adds what needs the stored state: a masked credential sent back as it was read
is skipped as unchanged, any other value carrying the mask is refused (it would
overwrite a credential with asterisks), and `serviceUrl` is cut to its origin.
Logs name the keys that changed, never a value: several of them are credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mailwire.domain.settings import (
    EVENT_TYPES,
    HEADER_KEYS,
    QUERY_ONLY_DEFAULTS,
    SECRET_KEYS,
    SERVICE_SECRET,
    carries_mask,
    default,
    is_masked_echo,
    origin,
    restore_masked_headers,
    shown,
)
from mailwire.errors import InputError
from mailwire.logs import get_logger
from mailwire.store.store import Store

log = get_logger(__name__)

#: The `GET /v1/settings` flag that asks for the list of event names.
EVENT_TYPES_KEY = "eventTypes"


#: `_unmasked`'s answer for "the client sent back what it read".
_UNCHANGED: Any = object()


def _unmasked(key: str, sent: Any, stored: Any) -> Any:
    """The value to store for a `sent` value that carries the mask, `_UNCHANGED`, or
    an InputError when the mask stands for nothing stored."""
    if key in HEADER_KEYS:
        restored = restore_masked_headers(sent, stored)
        if restored is not None:
            return _UNCHANGED if restored == stored else restored
    elif is_masked_echo(key, sent, stored):
        return _UNCHANGED
    raise InputError(
        f'"{key}" holds a masked credential; send the real value or leave it out', key=key
    )


class SettingsService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def query(self, keys: Iterable[str]) -> dict[str, Any]:
        """The asked-for keys as the API shows them: secrets as set / not set,
        credentials inside URLs and header values masked."""
        wanted = list(dict.fromkeys(keys))
        answer: dict[str, Any] = {}
        settings = self._store.settings
        if SERVICE_SECRET in wanted:
            await settings.service_secret()  # it exists from the first use on; show that
        present = await settings.secrets_set() if SECRET_KEYS.intersection(wanted) else {}
        stored = await settings.stored(key for key in wanted if key not in SECRET_KEYS)
        for key in wanted:
            if key == EVENT_TYPES_KEY:
                answer[key] = list(EVENT_TYPES)
            elif key in SECRET_KEYS:
                answer[key] = present.get(key, False)
            elif key in QUERY_ONLY_DEFAULTS:
                answer[key] = default(key)
            else:
                answer[key] = shown(key, stored.get(key, default(key)))
        return answer

    async def update(self, changes: Mapping[str, Any]) -> list[str]:
        """Apply validated changes; returns the keys that were written."""
        settings = self._store.settings
        masked = [key for key, value in changes.items() if carries_mask(key, value)]
        stored = await settings.stored(masked) if masked else {}
        accepted: dict[str, Any] = {}
        for key, sent in changes.items():
            value = _unmasked(key, sent, stored.get(key)) if key in masked else sent
            if value is _UNCHANGED:
                continue  # the client sent back what it read: nothing changes
            accepted[key] = origin(value) if key == "serviceUrl" and value else value
        updated = await settings.update(accepted) if accepted else []
        if updated:
            log.info("settings.updated", keys=updated)
        return updated
