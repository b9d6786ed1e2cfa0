"""Access token rows: insert, look up by id, list, delete, record use, count hits.

Only the SHA-256 of a token is stored (as its id), so a copy of the database
grants nothing. The rate counter is an upsert on a (token, window) row, which
holds across worker processes and nodes sharing one database.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mailwire.domain.tokens import (
    Action,
    Group,
    Permissions,
    RateLimit,
    Restrictions,
    Scope,
    TokenRecord,
)
from mailwire.store.database import Database, escape_like
from mailwire.store.schema import access_tokens, token_hits

#: Recording each use of a token costs a write; record at most this often per token.
TOUCH_INTERVAL_MS = 60_000


@dataclass(frozen=True, slots=True)
class TokenPage:
    total: int
    records: list[TokenRecord]


_BY_ID = access_tokens.select().where(
    access_tokens.c.id == sa.bindparam("token_id", type_=sa.String)
)


class TokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def insert(self, record: TokenRecord) -> None:
        async with self._db.write() as conn:
            await conn.execute(access_tokens.insert().values(**_to_row(record)))

    async def get(self, token_id: str) -> TokenRecord | None:
        # Every API request reads its token: one prebuilt statement, one hand-off.
        row = await self._db.run(
            lambda conn: conn.execute(_BY_ID, {"token_id": token_id}).first(), write=False
        )
        return None if row is None else _from_row(row._mapping)

    async def delete(self, token_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                access_tokens.delete().where(access_tokens.c.id == token_id)
            )
        return result.rowcount > 0

    async def list(
        self, *, account: str | None, query: str | None, offset: int, limit: int
    ) -> TokenPage:
        condition: sa.ColumnElement[bool] = sa.true()
        if account is not None:
            condition = sa.and_(condition, access_tokens.c.account == account)
        if query:
            pattern = "%" + escape_like(query) + "%"
            condition = sa.and_(
                condition,
                sa.or_(
                    access_tokens.c.description.ilike(pattern, escape="\\"),
                    access_tokens.c.account.ilike(pattern, escape="\\"),
                    access_tokens.c.id.like(escape_like(query.lower()) + "%", escape="\\"),
                ),
            )
        count = sa.select(sa.func.count()).select_from(access_tokens).where(condition)
        rows = (
            access_tokens.select()
            .where(condition)
            .order_by(access_tokens.c.created_at.desc(), access_tokens.c.id)
            .offset(offset)
            .limit(limit)
        )
        async with self._db.read() as conn:
            total = (await conn.execute(count)).scalar_one()
            records = [_from_row(row._mapping) for row in await conn.execute(rows)]
        return TokenPage(total=int(total), records=records)

    async def touch(self, record: TokenRecord, *, now_ms: int, address: str | None) -> None:
        """Remember when and from where the token was last used (throttled)."""
        fresh = record.last_used_at is not None and now_ms - record.last_used_at < TOUCH_INTERVAL_MS
        if fresh and record.last_used_ip == address:
            return
        async with self._db.write() as conn:
            await conn.execute(
                access_tokens.update()
                .where(access_tokens.c.id == record.id)
                .values(last_used_at=now_ms, last_used_ip=address)
            )

    async def hit(self, token_id: str, *, window_start: int) -> int:
        """Count one request in the window starting at `window_start`; return the count."""
        statement = (
            self._db.insert(token_hits)
            .values(token_id=token_id, window_start=window_start, hits=1)
            .on_conflict_do_update(
                index_elements=[token_hits.c.token_id, token_hits.c.window_start],
                set_={"hits": token_hits.c.hits + 1},
            )
            .returning(token_hits.c.hits)
        )
        async with self._db.write() as conn:
            hits = (await conn.execute(statement)).scalar_one()
            # Old windows are useless; drop them while we hold the row's lock anyway.
            await conn.execute(
                token_hits.delete().where(
                    token_hits.c.token_id == token_id, token_hits.c.window_start < window_start
                )
            )
        return int(hits)


def _to_row(record: TokenRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "account": record.account,
        "description": record.description,
        "scopes": sorted(scope.value for scope in record.scopes),
        "restrictions": _restrictions_json(record.restrictions),
        "permissions": _permissions_json(record.permissions),
        "metadata": record.metadata,
        "ip": record.ip,
        "remote_address": record.remote_address,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "last_used_ip": record.last_used_ip,
    }


def _from_row(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        account=row["account"],
        description=row["description"],
        scopes=frozenset(Scope(value) for value in row["scopes"]),
        restrictions=_restrictions_from(row["restrictions"]),
        permissions=_permissions_from(row["permissions"]),
        metadata=row["metadata"],
        ip=row["ip"],
        remote_address=row["remote_address"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        last_used_ip=row["last_used_ip"],
    )


def _restrictions_json(value: Restrictions | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "referrers": None if value.referrers is None else list(value.referrers),
        "addresses": None if value.addresses is None else [str(n) for n in value.addresses],
        "rate_limit": None
        if value.rate_limit is None
        else {
            "max_requests": value.rate_limit.max_requests,
            "window_seconds": value.rate_limit.window_seconds,
        },
    }


def _restrictions_from(data: dict[str, Any] | None) -> Restrictions | None:
    if data is None:
        return None
    rate = data.get("rate_limit")
    addresses = data.get("addresses")
    referrers = data.get("referrers")
    return Restrictions(
        referrers=None if referrers is None else tuple(referrers),
        addresses=None
        if addresses is None
        else tuple(ipaddress.ip_network(text) for text in addresses),
        rate_limit=None
        if rate is None
        else RateLimit(max_requests=rate["max_requests"], window_seconds=rate["window_seconds"]),
    )


def _permissions_json(value: Permissions | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "actions": None if value.actions is None else sorted(a.value for a in value.actions),
        "groups": None if value.groups is None else sorted(g.value for g in value.groups),
    }


def _permissions_from(data: dict[str, Any] | None) -> Permissions | None:
    if data is None:
        return None
    actions = data.get("actions")
    groups = data.get("groups")
    return Permissions(
        actions=None if actions is None else frozenset(Action(a) for a in actions),
        groups=None if groups is None else frozenset(Group(g) for g in groups),
    )
