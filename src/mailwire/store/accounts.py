"""Account rows and their credentials: create, read, list, update, delete, and nudge workers.

Theory of operation
-------------------
An account is one row of `accounts` plus up to six encrypted rows of `secrets`
(scope `CREDENTIAL_SCOPE`, ref = the account id). Both are written in the same
transaction, so a failure never leaves an account without its credentials or
credentials of an account that does not exist. `SecretStore` opens its own
transactions, so this module encrypts with the same keys and associated data
itself (`_write_credentials`) instead of calling it from inside a transaction;
reads go through `SecretStore.get` as usual.

Columns split between two writers: the API (through this store) writes the
configuration — name, email, kind, settings, notify_from — and the counters
`revision` and `sync_seq`; the account worker writes `state`, `last_error`,
`sync_time`, `initialized`, `owner` and `lease_expires`. This store touches a
worker column only when the configuration changes under the worker's feet: new
IMAP settings put the account back into its initial state with no error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.accounts import (
    CREDENTIAL_FIELDS,
    CREDENTIAL_SCOPE,
    Account,
    AccountKind,
    AccountState,
    initial_state,
    kind_of,
)
from mailwire.domain.events import Event
from mailwire.store.database import Database, escape_like
from mailwire.store.keys import KeySource
from mailwire.store.outbox import append_events
from mailwire.store.schema import accounts, mailboxes
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.secrets import SecretStore, associated_data
from mailwire.store.send_queue import delete_account_sends
from mailwire.store.templates import delete_account_templates
from mailwire.types import Clock

#: Longest search text for `list(query=...)`; longer would match nothing anyway.
MAX_QUERY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class AccountValues:
    """The configuration a caller sets on an account (settings hold no secret)."""

    name: str
    email: str | None
    settings: Mapping[str, Any]
    notify_from: int


@dataclass(frozen=True, slots=True)
class AccountPage:
    total: int
    accounts: list[Account]


#: Credential changes: field name -> new value, or None to remove it.
CredentialChanges = Mapping[str, str | None]


class AccountStore:
    def __init__(
        self, database: Database, secrets: SecretStore, keys: KeySource, *, clock: Clock
    ) -> None:
        self._db = database
        self._secrets = secrets
        self._keys = keys
        self._clock = clock

    async def create_or_update(
        self,
        account_id: str,
        values: AccountValues,
        credentials: Mapping[str, str],
        *,
        events_if_new: Sequence[Event] = (),
    ) -> Literal["new", "existing"]:
        """Register an account, or replace the configuration of an existing one.

        `credentials` is the complete set: fields it does not name are removed.
        `events_if_new` are appended only when the account did not exist.
        """
        _check_fields(credentials)
        now = self._clock()
        changes: dict[str, str | None] = dict.fromkeys(CREDENTIAL_FIELDS)
        changes.update(credentials)
        async with self._db.write() as conn:
            inserted = await conn.execute(
                self._db.insert(accounts)
                .values(_new_row(account_id, values, now))
                .on_conflict_do_nothing(index_elements=[accounts.c.id])
                .returning(accounts.c.id)
            )
            if inserted.first() is not None:
                await append_events(conn, events_if_new, now=now)
                result: Literal["new", "existing"] = "new"
            else:
                current = await _locked(conn, account_id)
                assert current is not None  # the insert just conflicted on it
                await _apply(conn, current, values, now, new_login=True)
                result = "existing"
            await self._write_credentials(conn, account_id, changes, now)
        return result

    async def update(
        self,
        account_id: str,
        change: Callable[[Account], AccountValues],
        credentials: CredentialChanges | None = None,
    ) -> Account | None:
        """Apply `change` to the current account under a row lock; None if it is missing.

        `change` receives the stored account and returns its new configuration, so
        concurrent updates never overwrite each other with stale settings.
        """
        changes = dict(credentials or {})
        _check_fields(changes)
        now = self._clock()
        async with self._db.write() as conn:
            current = await _locked(conn, account_id)
            if current is None:
                return None
            await _apply(conn, current, change(current), now, new_login=_new_login(changes))
            await self._write_credentials(conn, account_id, changes, now)
            return await _locked(conn, account_id)

    async def get(self, account_id: str) -> Account | None:
        async with self._db.read() as conn:
            row = (await conn.execute(accounts.select().where(accounts.c.id == account_id))).first()
        return None if row is None else account_from_row(row._mapping)

    async def config_signature(self) -> tuple[int, int, int]:
        """(row count, sum of revisions, sum of creation times): changes whenever an
        account is created, deleted or reconfigured (every configuration change bumps
        `revision`), so a cache of account settings knows when to drop its entries."""
        statement = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(accounts.c.revision), 0),
            sa.func.coalesce(sa.func.sum(accounts.c.created_at), 0),
        )
        async with self._db.read() as conn:
            count, revisions, created = (await conn.execute(statement)).one()
        return int(count), int(revisions), int(created)

    async def exists(self, account_id: str) -> bool:
        statement = sa.select(accounts.c.id).where(accounts.c.id == account_id)
        async with self._db.read() as conn:
            return (await conn.execute(statement)).first() is not None

    async def list(
        self,
        *,
        page: int,
        page_size: int,
        state: AccountState | None = None,
        query: str | None = None,
    ) -> AccountPage:
        """One page of accounts, oldest first; `query` matches id, name or email
        (case-insensitive substring)."""
        condition: sa.ColumnElement[bool] = sa.true()
        if state is not None:
            condition = sa.and_(condition, accounts.c.state == state.value)
        if query:
            pattern = "%" + escape_like(query[:MAX_QUERY_LENGTH].lower()) + "%"
            condition = sa.and_(
                condition,
                sa.or_(
                    *(
                        sa.func.lower(column).like(pattern, escape="\\")
                        for column in (accounts.c.id, accounts.c.name, accounts.c.email)
                    )
                ),
            )
        count = sa.select(sa.func.count()).select_from(accounts).where(condition)
        rows = (
            accounts.select()
            .where(condition)
            .order_by(accounts.c.created_at, accounts.c.id)
            .offset(page * page_size)
            .limit(page_size)
        )
        async with self._db.read() as conn:
            total = (await conn.execute(count)).scalar_one()
            found = [account_from_row(row._mapping) for row in await conn.execute(rows)]
        return AccountPage(total=int(total), accounts=found)

    async def delete(self, account_id: str, *, events: Iterable[Event] = ()) -> bool:
        """Delete the account, its index, logs, credentials, templates and queued
        messages; False if it was missing."""
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(accounts.delete().where(accounts.c.id == account_id))
            if result.rowcount == 0:
                return False
            await conn.execute(
                secrets_table.delete().where(
                    secrets_table.c.scope == CREDENTIAL_SCOPE, secrets_table.c.ref == account_id
                )
            )
            await delete_account_templates(conn, account_id)
            await delete_account_sends(conn, account_id)
            await append_events(conn, events, now=now)
        return True

    async def request_reconnect(self, account_id: str) -> bool:
        """Ask the owning worker to drop and reopen its connections."""
        return await self._bump(account_id, revision=accounts.c.revision + 1)

    async def request_sync(self, account_id: str) -> bool:
        """Ask the owning worker to sync now."""
        return await self._bump(account_id, sync_seq=accounts.c.sync_seq + 1)

    async def flush(
        self, account_id: str, *, notify_from: int, imap_indexer: str | None = None
    ) -> bool:
        """Forget the account's index (folders and messages) so that it is rebuilt;
        events for messages older than `notify_from` are not sent again."""
        now = self._clock()
        async with self._db.write() as conn:
            current = await _locked(conn, account_id)
            if current is None:
                return False
            values: dict[str, Any] = {
                "notify_from": notify_from,
                "revision": accounts.c.revision + 1,
                "updated_at": now,
            }
            if imap_indexer is not None:
                values["settings"] = {**current.settings, "imapIndexer": imap_indexer}
            await conn.execute(mailboxes.delete().where(mailboxes.c.account == account_id))
            await conn.execute(accounts.update().where(accounts.c.id == account_id).values(values))
        return True

    async def credentials(self, account_id: str) -> dict[str, str]:
        """The account's stored credentials, decrypted, by field name (one read)."""
        return await self._secrets.get_many(CREDENTIAL_SCOPE, account_id, CREDENTIAL_FIELDS)

    async def _bump(self, account_id: str, **values: Any) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(updated_at=self._clock(), **values)
            )
        return result.rowcount > 0

    async def _write_credentials(
        self, conn: AsyncConnection, account_id: str, changes: CredentialChanges, now: int
    ) -> None:
        keyring = self._keys.for_writing()
        address = (secrets_table.c.scope == CREDENTIAL_SCOPE, secrets_table.c.ref == account_id)
        for name, value in changes.items():
            if value is None:
                await conn.execute(
                    secrets_table.delete().where(*address, secrets_table.c.name == name)
                )
                continue
            row = {
                "key_id": keyring.current_key_id,
                "value": keyring.encrypt(
                    value, aad=associated_data(CREDENTIAL_SCOPE, account_id, name)
                ),
                "updated_at": now,
            }
            await conn.execute(
                self._db.insert(secrets_table)
                .values(scope=CREDENTIAL_SCOPE, ref=account_id, name=name, **row)
                .on_conflict_do_update(
                    index_elements=[
                        secrets_table.c.scope,
                        secrets_table.c.ref,
                        secrets_table.c.name,
                    ],
                    set_=row,
                )
            )


def _check_fields(credentials: Mapping[str, object]) -> None:
    unknown = set(credentials) - set(CREDENTIAL_FIELDS)
    if unknown:
        # A programming error, not user input: the service builds these names.
        raise ValueError(f"unknown credential fields: {sorted(unknown)}")


def _new_row(account_id: str, values: AccountValues, now: int) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": values.name,
        "email": values.email,
        "kind": kind_of(values.settings).value,
        "settings": dict(values.settings),
        "state": initial_state(values.settings).value,
        "last_error": None,
        "notify_from": values.notify_from,
        "created_at": now,
        "updated_at": now,
        "sync_time": None,
        "initialized": False,
        "revision": 0,
        "sync_seq": 0,
        "owner": None,
        "lease_expires": None,
    }


async def _locked(conn: AsyncConnection, account_id: str) -> Account | None:
    # FOR UPDATE serialises read-modify-write on PostgreSQL; SQLite's writer
    # transactions are already exclusive (BEGIN IMMEDIATE) and ignore the clause.
    statement = accounts.select().where(accounts.c.id == account_id).with_for_update()
    row = (await conn.execute(statement)).first()
    return None if row is None else account_from_row(row._mapping)


async def _apply(
    conn: AsyncConnection, current: Account, values: AccountValues, now: int, *, new_login: bool
) -> None:
    """Write new configuration. New IMAP settings or new login credentials reset the
    worker's state: an old `authenticationError` says nothing about a new password."""
    row: dict[str, Any] = {
        "name": values.name,
        "email": values.email,
        "kind": kind_of(values.settings).value,
        "settings": dict(values.settings),
        "notify_from": values.notify_from,
        "updated_at": now,
        "revision": accounts.c.revision + 1,
    }
    if new_login or _imap_changed(current.settings, values.settings):
        row["state"] = initial_state(values.settings).value
        row["last_error"] = None
    await conn.execute(accounts.update().where(accounts.c.id == current.id).values(row))


def _new_login(changes: CredentialChanges) -> bool:
    return any(
        value is not None and not name.startswith("smtp.") for name, value in changes.items()
    )


def _imap_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return before.get("imap") != after.get("imap")


def account_from_row(row: sa.RowMapping) -> Account:
    """An `Account` from an `accounts` row."""
    return Account(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        kind=AccountKind(row["kind"]),
        settings=row["settings"],
        state=AccountState(row["state"]),
        last_error=row["last_error"],
        notify_from=int(row["notify_from"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        sync_time=None if row["sync_time"] is None else int(row["sync_time"]),
        initialized=bool(row["initialized"]),
        revision=int(row["revision"]),
        sync_seq=int(row["sync_seq"]),
        owner=row["owner"],
        lease_expires=None if row["lease_expires"] is None else int(row["lease_expires"]),
    )
