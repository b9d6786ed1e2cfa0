"""Message template rows: create, read, list, change, delete, flush an account's.

Two rules live in the creating transaction, so that concurrent requests keep
them: an account's template is written only while the account exists (its row
is locked, so a concurrent account deletion waits and then removes the new
template with the others), and no owner exceeds its quota of templates.
PostgreSQL serialises an account's creations on that lock; global templates
have no row to lock, so two creations at the same moment may overshoot the
global quota by one each (SQLite's single writer serialises everything).

`updated_at` grows strictly with every change, even two in one millisecond, so
(id, updated_at) names one version of a template (the renderer's cache key).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.templates import (
    MAX_TEMPLATES_PER_OWNER,
    MessageTemplate,
    TemplateContent,
    TemplateFormat,
    TemplateQuotaError,
)
from mailwire.store.database import Database
from mailwire.store.schema import accounts as accounts_table
from mailwire.store.schema import templates as templates_table
from mailwire.types import Clock, now_ms

#: Random bytes of a template id (16 URL-safe characters).
TEMPLATE_ID_BYTES = 12

_EDITABLE = ("name", "description", "format", "content")


@dataclass(frozen=True, slots=True)
class TemplatePage:
    total: int
    templates: list[MessageTemplate]


class TemplateStore:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = now_ms,
        quota: int = MAX_TEMPLATES_PER_OWNER,
    ) -> None:
        self._db = database
        self._clock = clock
        self._quota = quota

    async def create(
        self,
        *,
        account: str | None,
        name: str,
        description: str | None,
        format: TemplateFormat,
        content: TemplateContent,
    ) -> MessageTemplate | None:
        """Store a new template; None when `account` does not exist. Raises
        `TemplateQuotaError` when the owner already holds its quota."""
        now = self._clock()
        row: dict[str, Any] = {
            "id": secrets.token_urlsafe(TEMPLATE_ID_BYTES),
            "account": account,
            "name": name,
            "description": description,
            "format": format.value,
            "content": content.to_doc(),
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.write() as conn:
            if account is not None and not await _lock_account(conn, account):
                return None
            if await _count(conn, account) >= self._quota:
                owner = "this account" if account is not None else "the global space"
                raise TemplateQuotaError(
                    f"{owner.capitalize()} already holds {self._quota} templates, the most "
                    "allowed; delete some first",
                    key="account",
                )
            await conn.execute(templates_table.insert().values(**row))
        return _from_row(row)

    async def get(self, template_id: str) -> MessageTemplate | None:
        statement = templates_table.select().where(templates_table.c.id == template_id)
        async with self._db.read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _from_row(row._mapping)

    async def page(self, *, account: str | None, offset: int, limit: int) -> TemplatePage:
        """One owner's templates (an account's, or the global ones for None), newest first."""
        owner = _owned_by(account)
        count = sa.select(sa.func.count()).select_from(templates_table).where(owner)
        rows = (
            templates_table.select()
            .where(owner)
            .order_by(templates_table.c.created_at.desc(), templates_table.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with self._db.read() as conn:
            total = int((await conn.execute(count)).scalar_one())
            found = (await conn.execute(rows)).all()
        return TemplatePage(total=total, templates=[_from_row(row._mapping) for row in found])

    async def update(self, template_id: str, fields: Mapping[str, Any]) -> MessageTemplate | None:
        """Change the given fields (name, description, format, content: the whole
        content is replaced); None when the template does not exist."""
        values: dict[str, Any] = {key: fields[key] for key in _EDITABLE if key in fields}
        if "format" in values:
            values["format"] = TemplateFormat(values["format"]).value
        if "content" in values:
            values["content"] = values["content"].to_doc()
        now = sa.literal(self._clock(), sa.BigInteger)
        column = templates_table.c.updated_at
        statement = (
            templates_table.update()
            .where(templates_table.c.id == template_id)
            .values(**values, updated_at=sa.case((column >= now, column + 1), else_=now))
        )
        select = templates_table.select().where(templates_table.c.id == template_id)
        async with self._db.write() as conn:
            if (await conn.execute(statement)).rowcount == 0:
                return None
            row = (await conn.execute(select)).one()
        return _from_row(row._mapping)

    async def delete(self, template_id: str) -> MessageTemplate | None:
        """Remove a template; the removed template, or None when there was none."""
        select = templates_table.select().where(templates_table.c.id == template_id)
        async with self._db.write() as conn:
            row = (await conn.execute(select.with_for_update())).first()
            if row is None:
                return None
            await conn.execute(templates_table.delete().where(templates_table.c.id == template_id))
        return _from_row(row._mapping)

    async def flush(self, account: str) -> int:
        """Remove every template of `account`; how many were removed."""
        async with self._db.write() as conn:
            return await delete_account_templates(conn, account)


async def delete_account_templates(conn: AsyncConnection, account: str) -> int:
    """Remove every template of `account` inside the caller's transaction (for
    `AccountStore.delete`, so that an account's templates go with it)."""
    result = await conn.execute(
        templates_table.delete().where(templates_table.c.account == account)
    )
    return int(result.rowcount)


async def _lock_account(conn: AsyncConnection, account: str) -> bool:
    """Lock the account's row for this transaction; False when there is none."""
    statement = (
        sa.select(accounts_table.c.id).where(accounts_table.c.id == account).with_for_update()
    )
    return (await conn.execute(statement)).first() is not None


async def _count(conn: AsyncConnection, account: str | None) -> int:
    statement = sa.select(sa.func.count()).select_from(templates_table).where(_owned_by(account))
    return int((await conn.execute(statement)).scalar_one())


def _owned_by(account: str | None) -> sa.ColumnElement[bool]:
    if account is None:
        return templates_table.c.account.is_(None)
    return templates_table.c.account == account


def _from_row(row: Mapping[Any, Any]) -> MessageTemplate:
    return MessageTemplate(
        id=row["id"],
        account=row["account"],
        name=row["name"],
        description=row["description"],
        format=TemplateFormat(row["format"]),
        content=TemplateContent.from_doc(row["content"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )
