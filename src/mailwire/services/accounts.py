"""Accounts as a use case: register, show, list, reconfigure, remove, and nudge the worker.

The service takes account documents in the API's own shape (camelCase, as
`POST /v1/account` accepts them, already validated by the caller) and splits
them in two: every password and token goes to the secret store, the rest is
stored as the account's `settings`. Nothing this service returns ever holds a
credential: `public_settings` removes them once more on the way out, in case a
credential ever reached `settings` some other way.

Times arrive and leave as epoch milliseconds; the API layer converts ISO dates.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from mailwire.domain.accounts import CREDENTIAL_FIELDS, Account, AccountState
from mailwire.domain.events import Event, EventName
from mailwire.errors import NotFoundError
from mailwire.logs import get_logger
from mailwire.store.account_logs import LogLine
from mailwire.store.accounts import AccountPage, AccountValues
from mailwire.store.store import Store
from mailwire.types import Clock, now_ms

log = get_logger(__name__)

#: Top-level keys kept in columns of their own rather than in `settings`.
_COLUMN_KEYS = frozenset({"account", "name", "email", "notifyFrom"})
#: Sections whose `auth` block may carry a password or an access token.
_AUTH_SECTIONS = ("imap", "smtp")
#: Length of generated account ids (hex characters) when the caller sends none.
GENERATED_ID_BYTES = 8

Document = Mapping[str, Any]


def not_found(account_id: str) -> NotFoundError:
    del account_id  # the id is the caller's own input; the message need not echo it
    return NotFoundError("No account has this id", code="AccountNotFound")


class AccountService:
    def __init__(self, store: Store, *, clock: Clock = now_ms) -> None:
        self._accounts = store.accounts
        self._logs = store.account_logs
        self._clock = clock

    async def create(self, document: Document) -> tuple[str, Literal["new", "existing"]]:
        """Register an account, or replace the configuration of the one with this id."""
        account_id = document.get("account") or secrets.token_hex(GENERATED_ID_BYTES)
        settings, credentials = split_credentials(document)
        values = AccountValues(
            name=str(document["name"]),
            email=document.get("email"),
            settings=settings,
            notify_from=_notify_from(document, self._clock()),
        )
        added = Event(
            account=account_id, event=EventName.ACCOUNT_ADDED, data={"account": account_id}
        )
        state = await self._accounts.create_or_update(
            account_id,
            values,
            {name: value for name, value in credentials.items() if value is not None},
            events_if_new=[added],
        )
        log.info("account.registered", account=account_id, state=state)
        return account_id, state

    async def get(self, account_id: str) -> Account:
        account = await self._accounts.get(account_id)
        if account is None:
            raise not_found(account_id)
        return account

    async def list(
        self, *, page: int, page_size: int, state: AccountState | None, query: str | None
    ) -> AccountPage:
        return await self._accounts.list(page=page, page_size=page_size, state=state, query=query)

    async def update(self, account_id: str, document: Document) -> Account:
        """Change the given fields; `imap`/`smtp`/`oauth2` objects replace the stored ones
        unless they set `partial: true`, in which case they are merged into them."""

        def change(current: Account) -> AccountValues:
            settings, _ = merge_update(current.settings, document)
            return AccountValues(
                name=str(document.get("name", current.name)),
                email=document.get("email", current.email),
                settings=settings,
                notify_from=int(document.get("notifyFrom") or current.notify_from),
            )

        # Credential changes depend on the document alone, not on what is stored.
        _, credentials = merge_update({}, document)
        updated = await self._accounts.update(account_id, change, credentials)
        if updated is None:
            raise not_found(account_id)
        log.info("account.updated", account=account_id, revision=updated.revision)
        return updated

    async def delete(self, account_id: str) -> None:
        gone = Event(
            account=account_id, event=EventName.ACCOUNT_DELETED, data={"account": account_id}
        )
        if not await self._accounts.delete(account_id, events=[gone]):
            raise not_found(account_id)
        log.info("account.deleted", account=account_id)

    async def reconnect(self, account_id: str) -> None:
        if not await self._accounts.request_reconnect(account_id):
            raise not_found(account_id)

    async def sync(self, account_id: str) -> None:
        if not await self._accounts.request_sync(account_id):
            raise not_found(account_id)

    async def flush(
        self, account_id: str, *, notify_from: int | None, imap_indexer: str | None
    ) -> None:
        moment = self._clock() if notify_from is None else notify_from
        if not await self._accounts.flush(
            account_id, notify_from=moment, imap_indexer=imap_indexer
        ):
            raise not_found(account_id)
        log.info("account.flushed", account=account_id)

    async def require(self, account_id: str) -> None:
        """Raise the API's 404 unless the account exists."""
        if not await self._accounts.exists(account_id):
            raise not_found(account_id)

    async def log_lines(self, account_id: str) -> AsyncIterator[LogLine]:
        """The account's stored protocol log, oldest first (404 for a missing account).
        Whatever is stored is returned, also after `logs` was switched off."""
        await self.require(account_id)
        return self._logs.stream(account_id)


def _notify_from(document: Document, now: int) -> int:
    value = document.get("notifyFrom")
    return now if value is None else int(value)


def split_credentials(document: Document) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The document without column keys and credentials, and the credentials it names.

    Every credential field of a section present in the document is listed (None
    when absent), so a replaced section drops the old password.
    """
    settings = {key: value for key, value in document.items() if key not in _COLUMN_KEYS}
    credentials: dict[str, str | None] = {}
    for section in _AUTH_SECTIONS:
        block = settings.get(section)
        if section not in settings:
            continue
        if not isinstance(block, Mapping):
            credentials.update(_cleared(section))
            continue
        cleaned = dict(block)
        credentials.update(_cleared(section))
        auth = cleaned.get("auth")
        if isinstance(auth, Mapping):
            auth = dict(auth)
            for key in ("pass", "accessToken"):
                value = auth.pop(key, None)
                if value:
                    credentials[f"{section}.{key}"] = str(value)
            cleaned["auth"] = auth
        cleaned.pop("partial", None)
        settings[section] = cleaned
    if "oauth2" in settings:
        credentials.update(_cleared("oauth2"))
        oauth2 = settings["oauth2"]
        if isinstance(oauth2, Mapping):
            cleaned = {k: v for k, v in oauth2.items() if k != "partial"}
            for key in ("accessToken", "refreshToken"):
                value = cleaned.pop(key, None)
                if value:
                    credentials[f"oauth2.{key}"] = str(value)
            settings["oauth2"] = cleaned
    return settings, credentials


def merge_update(
    stored: Mapping[str, Any], document: Document
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """New settings after a `PUT /v1/account/{account}`, and the credential changes."""
    incoming, credentials = split_credentials(document)
    merged = dict(stored)
    for key, value in incoming.items():
        section = document.get(key)
        if isinstance(section, Mapping) and section.get("partial"):
            merged[key] = _merge_section(stored.get(key), value)
            # A partial section changes only the credentials it names.
            prefix = f"{key}."
            credentials = {
                name: secret
                for name, secret in credentials.items()
                if not name.startswith(prefix) or secret is not None
            }
        else:
            merged[key] = value
    return merged, credentials


def _merge_section(before: object, after: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(before) if isinstance(before, Mapping) else {}
    for key, value in after.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


def _cleared(section: str) -> dict[str, str | None]:
    return {name: None for name in CREDENTIAL_FIELDS if name.startswith(f"{section}.")}


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of stored settings that is safe to show: no password or token anywhere."""
    shown = dict(settings)
    for section in (*_AUTH_SECTIONS, "oauth2"):
        block = shown.get(section)
        if not isinstance(block, Mapping):
            continue
        block = {k: v for k, v in block.items() if k not in ("accessToken", "refreshToken")}
        auth = block.get("auth")
        if isinstance(auth, Mapping):
            block["auth"] = {k: v for k, v in auth.items() if k not in ("pass", "accessToken")}
        shown[section] = block
    return shown
