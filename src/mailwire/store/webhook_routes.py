"""Custom webhook route rows: create, read, list, change, delete, and the counters
and error log that delivery and evaluation write back."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mailwire.domain.webhook_routes import (
    ERROR_LOG_SIZE,
    MAX_ERROR_TEXT,
    RouteError,
    WebhookRoute,
)
from mailwire.store.database import Database
from mailwire.store.schema import webhook_routes as routes_table
from mailwire.types import Clock, now_ms

#: Route fields a caller may set, by their column.
_EDITABLE = {
    "name": "name",
    "description": "description",
    "target_url": "target_url",
    "enabled": "enabled",
    "custom_headers": "custom_headers",
    "filter_fn": "filter_fn",
    "map_fn": "map_fn",
}


@dataclass(frozen=True, slots=True)
class RoutePage:
    total: int
    routes: list[WebhookRoute]


class WebhookRouteStore:
    def __init__(self, database: Database, *, clock: Clock = now_ms) -> None:
        self._db = database
        self._clock = clock

    async def create(self, fields: Mapping[str, Any]) -> WebhookRoute:
        now = self._clock()
        row = {column: fields.get(key) for key, column in _EDITABLE.items()}
        row.update(
            id=secrets.token_urlsafe(12),
            name=fields.get("name") or "",
            enabled=bool(fields.get("enabled", False)),
            custom_headers=_headers(fields.get("custom_headers") or ()),
            version=1,
            match_count=0,
            error=None,
            error_log=[],
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as conn:
            await conn.execute(routes_table.insert().values(**row))
        return _from_row(row)

    async def get(self, route_id: str) -> WebhookRoute | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(routes_table.select().where(routes_table.c.id == route_id))
            ).first()
        return None if row is None else _from_row(row._mapping)

    async def page(self, *, offset: int, limit: int) -> RoutePage:
        count = sa.select(sa.func.count()).select_from(routes_table)
        rows = (
            routes_table.select()
            .order_by(routes_table.c.created_at.desc(), routes_table.c.id)
            .offset(offset)
            .limit(limit)
        )
        async with self._db.read() as conn:
            total = int((await conn.execute(count)).scalar_one())
            found = (await conn.execute(rows)).all()
        return RoutePage(total=total, routes=[_from_row(row._mapping) for row in found])

    async def firing(self) -> list[WebhookRoute]:
        """Enabled routes with a target and a filter, the only ones evaluated."""
        statement = routes_table.select().where(
            routes_table.c.enabled.is_(True),
            routes_table.c.target_url.is_not(None),
            routes_table.c.filter_fn.is_not(None),
        )
        async with self._db.read() as conn:
            found = (await conn.execute(statement.order_by(routes_table.c.id))).all()
        return [route for route in map(_from_row, (r._mapping for r in found)) if route.can_fire]

    async def versions(self) -> tuple[int, int, int]:
        """(row count, sum of versions, newest update): changes whenever a route is
        created, edited or deleted, so a cache of the routes knows when to reload."""
        statement = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(routes_table.c.version), 0),
            sa.func.coalesce(sa.func.max(routes_table.c.updated_at), 0),
        )
        async with self._db.read() as conn:
            count, total, newest = (await conn.execute(statement)).one()
        return int(count), int(total), int(newest)

    async def update(self, route_id: str, fields: Mapping[str, Any]) -> WebhookRoute | None:
        values = {column: fields[key] for key, column in _EDITABLE.items() if key in fields}
        if "custom_headers" in values:
            values["custom_headers"] = _headers(values["custom_headers"] or ())
        if "name" in values and values["name"] is None:
            values["name"] = ""
        if "enabled" in values:
            values["enabled"] = bool(values["enabled"])
        statement = (
            routes_table.update()
            .where(routes_table.c.id == route_id)
            .values(**values, version=routes_table.c.version + 1, updated_at=self._clock())
        )
        async with self._db.write() as conn:
            if (await conn.execute(statement)).rowcount == 0:
                return None
        return await self.get(route_id)

    async def delete(self, route_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(routes_table.delete().where(routes_table.c.id == route_id))
        return result.rowcount > 0

    async def count_matches(self, counts: Mapping[str, int]) -> None:
        """Add to the routes' match counters (`tcount`)."""
        async with self._db.write() as conn:
            for route_id, added in counts.items():
                await conn.execute(
                    routes_table.update()
                    .where(routes_table.c.id == route_id)
                    .values(match_count=routes_table.c.match_count + added)
                )

    async def record_error(self, route_id: str, error: RouteError) -> None:
        """Set the route's error flag and prepend the error to its bounded log."""
        entry = _error_doc(error)
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    # Row lock: two failures recorded at once must both reach the log
                    # (PostgreSQL; SQLite's single writer serialises them anyway).
                    sa.select(routes_table.c.error_log)
                    .where(routes_table.c.id == route_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return
            log = [entry, *list(row.error_log or [])][:ERROR_LOG_SIZE]
            await conn.execute(
                routes_table.update()
                .where(routes_table.c.id == route_id)
                .values(error=entry, error_log=log)
            )

    async def clear_error(self, route_id: str) -> None:
        """A delivery succeeded: lower the error flag (the log stays)."""
        async with self._db.write() as conn:
            await conn.execute(
                routes_table.update()
                .where(routes_table.c.id == route_id, routes_table.c.error.is_not(None))
                .values(error=None)
            )


def _headers(headers: Any) -> list[list[str]]:
    return [[str(key), str(value)] for key, value in headers]


def _error_doc(error: RouteError) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": error.kind,
        "message": error.message[:MAX_ERROR_TEXT],
        "at": error.at,
    }
    if error.function is not None:
        doc["function"] = error.function
    return doc


def _error(doc: Any) -> RouteError | None:
    if not isinstance(doc, dict):
        return None
    return RouteError(
        kind=str(doc.get("kind", "")),
        message=str(doc.get("message", "")),
        at=int(doc.get("at", 0)),
        function=doc.get("function"),
    )


def _from_row(row: Mapping[Any, Any]) -> WebhookRoute:
    log = tuple(error for error in map(_error, row["error_log"] or []) if error is not None)
    return WebhookRoute(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        target_url=row["target_url"],
        enabled=bool(row["enabled"]),
        custom_headers=tuple((str(k), str(v)) for k, v in row["custom_headers"] or []),
        filter_fn=row["filter_fn"],
        map_fn=row["map_fn"],
        version=int(row["version"]),
        match_count=int(row["match_count"]),
        error=_error(row["error"]),
        error_log=log,
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )
