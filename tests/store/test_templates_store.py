"""Template rows on a real database (SQLite, and PostgreSQL when configured): round trip,
owners and listing, the quota, versions that always grow, flush and the account hook."""

from __future__ import annotations

import re

import pytest

from mailwire.domain.templates import TemplateContent, TemplateFormat, TemplateQuotaError
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store
from mailwire.store.templates import TemplateStore, delete_account_templates

CONTENT = TemplateContent(subject="Hi {{params.name}}", html="<p>{{params.name}}</p>")


async def add_account(store: Store, account: str) -> None:
    values = AccountValues(name=account.title(), email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update(account, values, {})


async def create(
    templates: TemplateStore, account: str | None, name: str = "T", **fields: object
) -> str:
    created = await templates.create(
        account=account,
        name=name,
        description=fields.get("description"),  # type: ignore[arg-type]
        format=fields.get("format", TemplateFormat.HTML),  # type: ignore[arg-type]
        content=fields.get("content", CONTENT),  # type: ignore[arg-type]
    )
    assert created is not None
    return created.id


async def test_round_trip_keeps_every_field(store: Store) -> None:
    await add_account(store, "ann")
    content = TemplateContent(subject="s", text="t", html="<b>h</b>", preview_text=" p ")
    created = await store.templates.create(
        account="ann",
        name="Receipt",
        description="after payment",
        format=TemplateFormat.MARKDOWN,
        content=content,
    )
    assert created is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", created.id)
    loaded = await store.templates.get(created.id)
    assert loaded == created
    assert loaded.content == content
    assert loaded.format is TemplateFormat.MARKDOWN
    assert loaded.created_at == loaded.updated_at


async def test_ids_are_unique_and_unknown_ids_are_none(store: Store) -> None:
    ids = {await create(store.templates, None) for _ in range(20)}
    assert len(ids) == 20
    assert await store.templates.get("nope") is None
    assert await store.templates.update("nope", {"name": "x"}) is None
    assert await store.templates.delete("nope") is None


async def test_missing_account_is_refused_and_nothing_is_written(store: Store) -> None:
    created = await store.templates.create(
        account="ghost", name="T", description=None, format=TemplateFormat.HTML, content=CONTENT
    )
    assert created is None
    assert (await store.templates.page(account="ghost", offset=0, limit=10)).total == 0


async def test_listing_is_per_owner_newest_first_and_paged(store: Store) -> None:
    ticks = iter(range(1_000, 2_000))
    templates = TemplateStore(store.database, clock=lambda: next(ticks))
    await add_account(store, "ann")
    await add_account(store, "bob")
    ann = [await create(templates, "ann", f"a{n}") for n in range(5)]
    await create(templates, "bob")
    global_id = await create(templates, None)

    first = await templates.page(account="ann", offset=0, limit=2)
    assert first.total == 5
    assert [t.id for t in first.templates] == [ann[4], ann[3]]
    last = await templates.page(account="ann", offset=4, limit=2)
    assert [t.id for t in last.templates] == [ann[0]]
    everything = await templates.page(account="ann", offset=0, limit=100)
    assert {t.account for t in everything.templates} == {"ann"}  # no global ones

    shared = await templates.page(account=None, offset=0, limit=100)
    assert [t.id for t in shared.templates] == [global_id]


async def test_update_changes_given_fields_and_replaces_content_whole(store: Store) -> None:
    template_id = await create(store.templates, None, description="d")
    new_content = TemplateContent(text="only text")
    updated = await store.templates.update(
        template_id, {"name": "Renamed", "content": new_content, "format": "markdown"}
    )
    assert updated is not None
    assert updated.name == "Renamed"
    assert updated.description == "d"  # not sent, kept
    assert updated.content == new_content  # subject and html are gone
    assert updated.format is TemplateFormat.MARKDOWN
    cleared = await store.templates.update(template_id, {"description": None})
    assert cleared is not None
    assert cleared.description is None


async def test_versions_grow_even_within_one_millisecond(store: Store) -> None:
    frozen = TemplateStore(store.database, clock=lambda: 5_000)
    template_id = await create(frozen, None)
    seen = [5_000]
    for n in range(3):
        updated = await frozen.update(template_id, {"name": f"v{n}"})
        assert updated is not None
        seen.append(updated.updated_at)
    assert seen == [5_000, 5_001, 5_002, 5_003]
    later = TemplateStore(store.database, clock=lambda: 9_000)
    updated = await later.update(template_id, {"name": "later"})
    assert updated is not None
    assert updated.updated_at == 9_000
    assert updated.created_at == 5_000


async def test_quota_is_per_owner(store: Store) -> None:
    await add_account(store, "ann")
    await add_account(store, "bob")
    limited = TemplateStore(store.database, quota=2)
    for _ in range(2):
        await create(limited, "ann")
        await create(limited, None)
    with pytest.raises(TemplateQuotaError, match="2 templates"):
        await create(limited, "ann")
    with pytest.raises(TemplateQuotaError) as refused:
        await create(limited, None)
    assert refused.value.key == "account"
    await create(limited, "bob")  # another owner still has room
    assert (await limited.page(account="ann", offset=0, limit=10)).total == 2
    one = (await limited.page(account="ann", offset=0, limit=1)).templates[0]
    assert await limited.delete(one.id) is not None
    await create(limited, "ann")  # room again after a deletion


async def test_delete_returns_what_was_removed(store: Store) -> None:
    await add_account(store, "ann")
    template_id = await create(store.templates, "ann", "gone")
    removed = await store.templates.delete(template_id)
    assert removed is not None
    assert (removed.account, removed.name) == ("ann", "gone")
    assert await store.templates.get(template_id) is None
    assert await store.templates.delete(template_id) is None


async def test_flush_and_the_account_hook_touch_one_account_only(store: Store) -> None:
    for account in ("ann", "bob"):
        await add_account(store, account)
    for _ in range(3):
        await create(store.templates, "ann")
    kept = [await create(store.templates, "bob"), await create(store.templates, None)]
    assert await store.templates.flush("ann") == 3
    assert await store.templates.flush("ann") == 0
    assert [await store.templates.get(t) is not None for t in kept] == [True, True]

    await create(store.templates, "bob")
    async with store.database.write() as conn:
        assert await delete_account_templates(conn, "bob") == 2
    assert await store.templates.get(kept[0]) is None
    assert await store.templates.get(kept[1]) is not None  # global stays
