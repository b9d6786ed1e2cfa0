"""The secrets vault: every credential Mailwire keeps, encrypted field by field.

Owners address their secrets by (scope, ref, name), e.g. ("account", "alice",
"imap.pass"). The same triple is bound into the ciphertext as associated data.
Values are encrypted under the keyring's current key; rows written under older
keys stay readable until `rotate()` rewrites them.

Rotation theory: a row is rewritten with a compare-and-swap on its old
ciphertext, so a concurrent `put` from a running server is never overwritten
with stale data; rows that such a server still writes under an older key are
picked up by the next pass. Readers keep working throughout because the
keyring holds both the new and the previous keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from mailwire.errors import DecryptionError
from mailwire.store.cipher import Keyring
from mailwire.store.database import Database
from mailwire.store.keys import KeySource
from mailwire.store.schema import secrets
from mailwire.types import Clock

#: Rows rewritten per transaction during rotation (short transactions keep writers moving).
ROTATION_BATCH = 200
#: Passes over the table before rotation gives up on rows that keep changing.
ROTATION_MAX_PASSES = 5


def associated_data(scope: str, ref: str, name: str) -> bytes:
    # Length-prefixed so that ("a:b", "c") and ("a", "b:c") cannot collide.
    parts = (scope, ref, name)
    return b"secret\0" + b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)


@dataclass(slots=True)
class RotationReport:
    """How many rows moved off each old key id, and how many could not be read."""

    rewritten: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


class SecretStore:
    def __init__(self, database: Database, keys: KeySource, *, now: Clock) -> None:
        self._db = database
        self._keys = keys
        self._now = now

    async def put(
        self, scope: str, ref: str, name: str, value: str, *, replace: bool = True
    ) -> bool:
        """Store a secret; with `replace=False` keep an existing one. True if written."""
        keyring = self._keys.for_writing()
        row = {
            "key_id": keyring.current_key_id,
            "value": keyring.encrypt(value, aad=associated_data(scope, ref, name)),
            "updated_at": self._now(),
        }
        insert = self._db.insert(secrets).values(scope=scope, ref=ref, name=name, **row)
        keys = [secrets.c.scope, secrets.c.ref, secrets.c.name]
        statement = (
            insert.on_conflict_do_update(index_elements=keys, set_=row)
            if replace
            else insert.on_conflict_do_nothing(index_elements=keys)
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return result.rowcount > 0

    async def get(self, scope: str, ref: str, name: str) -> str | None:
        async with self._db.read() as conn:
            value = (
                await conn.execute(sa.select(secrets.c.value).where(*_address(scope, ref, name)))
            ).scalar_one_or_none()
        if value is None:
            return None
        return self._decrypt(value, associated_data(scope, ref, name))

    async def get_many(self, scope: str, ref: str, names: Sequence[str]) -> dict[str, str]:
        """Several secrets of one owner in one read: name -> clear value, for those set."""
        statement = sa.select(secrets.c.name, secrets.c.value).where(
            secrets.c.scope == scope, secrets.c.ref == ref, secrets.c.name.in_(list(names))
        )
        rows = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        return {
            str(name): self._decrypt(value, associated_data(scope, ref, str(name)))
            for name, value in rows
        }

    async def delete(self, scope: str, ref: str, name: str | None = None) -> int:
        """Delete one secret, or all of an owner's secrets when `name` is None."""
        condition = [secrets.c.scope == scope, secrets.c.ref == ref]
        if name is not None:
            condition.append(secrets.c.name == name)
        async with self._db.write() as conn:
            result = await conn.execute(secrets.delete().where(*condition))
        return result.rowcount

    async def count_by_key(self) -> dict[str, int]:
        statement = sa.select(secrets.c.key_id, sa.func.count()).group_by(secrets.c.key_id)
        async with self._db.read() as conn:
            return {key_id: int(n) for key_id, n in await conn.execute(statement)}

    async def rotate(self) -> RotationReport:
        """Re-encrypt every row not under the current key (see the module docstring)."""
        report = RotationReport()
        for _ in range(ROTATION_MAX_PASSES):
            keyring = self._keys.for_writing()
            moved = await self._rotate_pass(keyring, report)
            if moved == 0:
                break
        return report

    async def _rotate_pass(self, keyring: Keyring, report: RotationReport) -> int:
        moved = 0
        after: tuple[str, str, str] = ("", "", "")
        while True:
            batch = await self._stale_batch(keyring.current_key_id, after)
            if not batch:
                return moved
            after = batch[-1][:3]
            async with self._db.write() as conn:
                for scope, ref, name, old_key, old_value in batch:
                    aad = associated_data(scope, ref, name)
                    try:
                        plain = keyring.decrypt(old_value, aad=aad)
                    except DecryptionError:
                        report.unreadable += 1
                        continue
                    result = await conn.execute(
                        secrets.update()
                        .where(*_address(scope, ref, name), secrets.c.value == old_value)
                        .values(
                            key_id=keyring.current_key_id,
                            value=keyring.encrypt(plain, aad=aad),
                            updated_at=self._now(),
                        )
                    )
                    if result.rowcount:
                        report.rewritten[old_key] += 1
                        moved += 1

    async def _stale_batch(
        self, current: str, after: tuple[str, str, str]
    ) -> list[tuple[str, str, str, str, str]]:
        key = sa.tuple_(secrets.c.scope, secrets.c.ref, secrets.c.name)
        statement = (
            sa.select(
                secrets.c.scope, secrets.c.ref, secrets.c.name, secrets.c.key_id, secrets.c.value
            )
            .where(secrets.c.key_id != current, key > sa.tuple_(*after))
            .order_by(secrets.c.scope, secrets.c.ref, secrets.c.name)
            .limit(ROTATION_BATCH)
        )
        async with self._db.read() as conn:
            return [tuple(row) for row in await conn.execute(statement)]

    def _decrypt(self, value: str, aad: bytes) -> str:
        keyring = self._keys.current()
        try:
            return keyring.decrypt(value, aad=aad)
        except DecryptionError:
            # A key written by another process after a rotation: reload once and retry.
            refreshed = self._keys.reload_if_changed()
            if refreshed is None:
                raise
            return refreshed.decrypt(value, aad=aad)


def _address(scope: str, ref: str, name: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (secrets.c.scope == scope, secrets.c.ref == ref, secrets.c.name == name)
