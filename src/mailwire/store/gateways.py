"""SMTP gateway rows and their passwords: create, read, list, change, delete, and the
delivery counters that the send path writes back.

Theory of operation
-------------------
A gateway is one row of `gateways` plus at most one encrypted row of `secrets`
(scope `GATEWAY_SCOPE`, ref = the gateway id, name `PASSWORD_NAME`). Both are
written in one transaction, as for accounts: a failure never leaves a gateway
with another configuration's password, nor a password without its gateway.
`SecretStore` opens transactions of its own, so the password is encrypted here
with the same keys and associated data and written on this transaction's
connection.

Reads for the API never decrypt: they only ask whether the secret row exists.
`get_with_password`, for the sender, reads the row and the ciphertext in one
statement, so a send racing an edit never pairs the new password with the old
host (which would hand the new credential to a server it was moved away from).

The counters are changed by single UPDATE statements (`deliveries =
deliveries + 1`), never read, changed and written back: concurrent deliveries
from several processes all count.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.gateways import (
    GATEWAY_SCOPE,
    PASSWORD_NAME,
    Gateway,
    GatewayLogin,
    delivery_error,
)
from mailwire.errors import DecryptionError
from mailwire.store.database import Database
from mailwire.store.keys import KeySource
from mailwire.store.schema import gateways as gateways_table
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.secrets import associated_data
from mailwire.types import Clock


class Unchanged(enum.Enum):
    """Marker for "leave the stored password as it is"."""

    KEEP = "keep"


KEEP_PASSWORD: Final = Unchanged.KEEP
#: A password change: the new password, None to remove it, or KEEP_PASSWORD.
PasswordChange = str | None | Literal[Unchanged.KEEP]


@dataclass(frozen=True, slots=True)
class GatewayValues:
    """A gateway's whole configuration (the password travels separately)."""

    name: str
    host: str
    port: int
    secure: bool
    user: str | None


#: Columns a caller may set: the fields of `GatewayValues`, also the keys of `update`.
EDITABLE: Final = frozenset(column.name for column in fields(GatewayValues))


@dataclass(frozen=True, slots=True)
class GatewayPage:
    total: int
    gateways: list[Gateway]


_ADDRESS = (secrets_table.c.scope == GATEWAY_SCOPE, secrets_table.c.name == PASSWORD_NAME)


def _password_of(gateway_id: Any) -> sa.ColumnElement[bool]:
    return sa.and_(*_ADDRESS, secrets_table.c.ref == gateway_id)


#: Whether the row's gateway has a stored password (no decryption needed).
_HAS_PASSWORD = (
    sa.exists()
    .where(_password_of(gateways_table.c.id))
    .correlate(gateways_table)
    .label("has_password")
)


class GatewayStore:
    def __init__(self, database: Database, keys: KeySource, *, clock: Clock) -> None:
        self._db = database
        self._keys = keys
        self._clock = clock

    async def create_or_update(
        self, gateway_id: str, values: GatewayValues, password: PasswordChange
    ) -> Literal["new", "existing"]:
        """Register a gateway, or replace the configuration of an existing one (its
        counters stay)."""
        now = self._clock()
        row = asdict(values)
        async with self._db.write() as conn:
            inserted = await conn.execute(
                self._db.insert(gateways_table)
                .values(
                    id=gateway_id,
                    **row,
                    deliveries=0,
                    last_use=None,
                    last_error=None,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[gateways_table.c.id])
                .returning(gateways_table.c.id)
            )
            state: Literal["new", "existing"] = "new"
            if inserted.first() is None:
                state = "existing"
                await conn.execute(
                    gateways_table.update()
                    .where(gateways_table.c.id == gateway_id)
                    .values(**row, updated_at=now)
                )
            await self._write_password(conn, gateway_id, password, now)
        return state

    async def update(
        self, gateway_id: str, changes: Mapping[str, Any], password: PasswordChange = KEEP_PASSWORD
    ) -> bool:
        """Change the fields named in `changes` (keys of `EDITABLE`) and the password;
        False when there is no such gateway."""
        unknown = set(changes) - EDITABLE
        if unknown:
            # A programming error, not user input: the service names these fields.
            raise ValueError(f"unknown gateway fields: {sorted(unknown)}")
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(
                gateways_table.update()
                .where(gateways_table.c.id == gateway_id)
                .values(**changes, updated_at=now)
            )
            if result.rowcount == 0:
                return False
            await self._write_password(conn, gateway_id, password, now)
        return True

    async def get(self, gateway_id: str) -> Gateway | None:
        statement = sa.select(gateways_table, _HAS_PASSWORD).where(
            gateways_table.c.id == gateway_id
        )
        async with self._db.read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _from_row(row._mapping)

    async def page(self, *, offset: int, limit: int) -> GatewayPage:
        count = sa.select(sa.func.count()).select_from(gateways_table)
        rows = (
            sa.select(gateways_table, _HAS_PASSWORD)
            .order_by(gateways_table.c.created_at, gateways_table.c.id)
            .offset(offset)
            .limit(limit)
        )
        async with self._db.read() as conn:
            total = int((await conn.execute(count)).scalar_one())
            found = (await conn.execute(rows)).all()
        return GatewayPage(total=total, gateways=[_from_row(row._mapping) for row in found])

    async def delete(self, gateway_id: str) -> bool:
        """Delete the gateway and its password together; False if it was missing."""
        async with self._db.write() as conn:
            result = await conn.execute(
                gateways_table.delete().where(gateways_table.c.id == gateway_id)
            )
            if result.rowcount == 0:
                return False
            await conn.execute(
                secrets_table.delete().where(
                    secrets_table.c.scope == GATEWAY_SCOPE, secrets_table.c.ref == gateway_id
                )
            )
        return True

    async def get_with_password(self, gateway_id: str) -> GatewayLogin | None:
        """The connection settings and the decrypted password, for the sender."""
        statement = (
            sa.select(
                gateways_table.c.host,
                gateways_table.c.port,
                gateways_table.c.secure,
                gateways_table.c.user,
                secrets_table.c.value,
            )
            .select_from(gateways_table.outerjoin(secrets_table, _password_of(gateways_table.c.id)))
            .where(gateways_table.c.id == gateway_id)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        password = None if row.value is None else self._decrypt(gateway_id, row.value)
        return GatewayLogin(
            id=gateway_id,
            host=row.host,
            port=int(row.port),
            secure=bool(row.secure),
            user=row.user,
            password=password,
        )

    async def record_delivery(
        self, gateway_id: str, *, ok: bool, error: Mapping[str, Any] | None = None
    ) -> bool:
        """Count a delivery through the gateway (`ok`: one more delivery, `lastUse`
        now, error cleared) or record a failed one (`lastError` from `error`).
        False when the gateway no longer exists."""
        now = self._clock()
        values: dict[str, Any]
        if ok:
            values = {
                "deliveries": gateways_table.c.deliveries + 1,
                "last_use": now,
                "last_error": sa.null(),
            }
        else:
            values = {"last_error": delivery_error(error, at=now)}
        async with self._db.write() as conn:
            result = await conn.execute(
                gateways_table.update().where(gateways_table.c.id == gateway_id).values(values)
            )
        return result.rowcount > 0

    async def _write_password(
        self, conn: AsyncConnection, gateway_id: str, password: PasswordChange, now: int
    ) -> None:
        if password is KEEP_PASSWORD:
            return
        if password is None:
            await conn.execute(secrets_table.delete().where(_password_of(gateway_id)))
            return
        keyring = self._keys.for_writing()
        row = {
            "key_id": keyring.current_key_id,
            "value": keyring.encrypt(
                password, aad=associated_data(GATEWAY_SCOPE, gateway_id, PASSWORD_NAME)
            ),
            "updated_at": now,
        }
        await conn.execute(
            self._db.insert(secrets_table)
            .values(scope=GATEWAY_SCOPE, ref=gateway_id, name=PASSWORD_NAME, **row)
            .on_conflict_do_update(
                index_elements=[secrets_table.c.scope, secrets_table.c.ref, secrets_table.c.name],
                set_=row,
            )
        )

    def _decrypt(self, gateway_id: str, value: str) -> str:
        aad = associated_data(GATEWAY_SCOPE, gateway_id, PASSWORD_NAME)
        try:
            return self._keys.current().decrypt(value, aad=aad)
        except DecryptionError:
            # Written under a key another process added by rotating: reload once.
            refreshed = self._keys.reload_if_changed()
            if refreshed is None:
                raise
            return refreshed.decrypt(value, aad=aad)


def _from_row(row: Mapping[Any, Any]) -> Gateway:
    last_error = row["last_error"]
    return Gateway(
        id=row["id"],
        name=row["name"],
        host=row["host"],
        port=int(row["port"]),
        secure=bool(row["secure"]),
        user=row["user"],
        has_password=bool(row["has_password"]),
        deliveries=int(row["deliveries"]),
        last_use=None if row["last_use"] is None else int(row["last_use"]),
        last_error=last_error if isinstance(last_error, dict) else None,
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )
