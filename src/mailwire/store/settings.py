"""Instance-wide settings: plain keys in the `settings` table, secret keys in the vault.

Every read goes to the database (the table holds a few dozen small rows), so a
change made through any node or worker process is seen by the next read in every
other one: there is no in-process cache to go stale. Secret keys
(`domain.settings.SECRET_KEYS`) are stored encrypted in the `secrets` table under
("settings", "global", key) and never appear in `values()`.

`serviceSecret` is seeded on first use with insert-if-absent, so two nodes that
start together on an empty database end up signing with the same secret.
"""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from mailwire.domain.settings import (
    DEFAULTS,
    SECRET_KEYS,
    SECRET_REF,
    SECRET_SCOPE,
    SERVICE_SECRET,
    SERVICE_SECRET_BYTES,
    default,
)
from mailwire.errors import InputError, StoreError
from mailwire.store.database import Database
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.schema import settings as settings_table
from mailwire.store.secrets import SecretStore
from mailwire.types import Clock


class SettingsStore:
    def __init__(self, database: Database, secrets: SecretStore, *, clock: Clock) -> None:
        self._db = database
        self._secrets = secrets
        self._clock = clock

    async def values(self) -> dict[str, Any]:
        """Every non-secret key: the stored value, else the default."""
        merged = {key: default(key) for key in DEFAULTS if key not in SECRET_KEYS}
        stored = await self.stored()
        merged.update({key: value for key, value in stored.items() if key in merged})
        return merged

    async def stored(self, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """Only the non-secret keys that were set (all of them, or those in `keys`)."""
        statement = sa.select(settings_table.c.key, settings_table.c.value)
        if keys is not None:
            statement = statement.where(settings_table.c.key.in_(list(keys)))
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        return {key: value for key, value in rows if key not in SECRET_KEYS}

    async def get(self, key: str) -> Any:
        """One non-secret key's value (its default when unset)."""
        if key in SECRET_KEYS:
            raise StoreError(f"{key} is a secret setting; use secret()")
        return (await self.stored([key])).get(key, default(key))

    async def update(self, changes: Mapping[str, Any]) -> list[str]:
        """Set the given keys, in one transaction for the plain ones; a `None` value
        removes the key (it reads as its default again). Returns the keys written.
        Values must already be valid (the API models check them); a key that is not
        a setting is refused."""
        unknown = [key for key in changes if key not in DEFAULTS]
        if unknown:
            raise InputError(f"{unknown[0]!r} is not a setting", key=unknown[0])
        plain = {key: value for key, value in changes.items() if key not in SECRET_KEYS}
        now = self._clock()
        if plain:
            async with self._db.write() as conn:
                removed = [key for key, value in plain.items() if value is None]
                if removed:
                    await conn.execute(
                        settings_table.delete().where(settings_table.c.key.in_(removed))
                    )
                for key, value in plain.items():
                    if value is None:
                        continue
                    row = {"value": value, "updated_at": now}
                    insert = self._db.insert(settings_table).values(key=key, **row)
                    await conn.execute(
                        insert.on_conflict_do_update(
                            index_elements=[settings_table.c.key], set_=row
                        )
                    )
        for key, value in changes.items():
            if key not in SECRET_KEYS:
                continue
            if value is None:
                await self._secrets.delete(SECRET_SCOPE, SECRET_REF, key)
            else:
                await self._secrets.put(SECRET_SCOPE, SECRET_REF, key, str(value))
        return list(changes)

    async def secret(self, key: str) -> str | None:
        """A secret key's clear value, or None when unset (`serviceSecret`: see below)."""
        if key not in SECRET_KEYS:
            raise StoreError(f"{key} is not a secret setting")
        return await self._secrets.get(SECRET_SCOPE, SECRET_REF, key)

    async def secrets_set(self) -> dict[str, bool]:
        """For each secret key, whether a value is stored (without decrypting any)."""
        statement = sa.select(secrets_table.c.name).where(
            secrets_table.c.scope == SECRET_SCOPE,
            secrets_table.c.ref == SECRET_REF,
            secrets_table.c.name.in_(sorted(SECRET_KEYS)),
        )
        async with self._db.read() as conn:
            present = set((await conn.execute(statement)).scalars())
        return {key: key in present for key in SECRET_KEYS}

    async def service_secret(self) -> str:
        """The webhook signing key: the stored one, or a new random one (32 hex digits)
        stored with insert-if-absent, so that concurrent first calls agree."""
        current = await self.secret(SERVICE_SECRET)
        if current is not None:
            return current
        fresh = random_secrets.token_hex(SERVICE_SECRET_BYTES)
        await self._secrets.put(SECRET_SCOPE, SECRET_REF, SERVICE_SECRET, fresh, replace=False)
        winner = await self.secret(SERVICE_SECRET)
        if winner is None:  # deleted between the two statements: use what we made
            await self._secrets.put(SECRET_SCOPE, SECRET_REF, SERVICE_SECRET, fresh)
            return fresh
        return winner
