"""Folder and message list reads from the index: resolution, pages, cursors, counters."""

from __future__ import annotations

import pytest

from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, SyncState
from mailwire.domain.messages import MessageRecord
from mailwire.errors import InputError, NotFoundError
from mailwire.services.messages import Cursor, MessageService
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store


async def _account(store: Store, account: str) -> dict[str, int]:
    values = AccountValues(name=account, email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update(account, values, {})
    listed = [
        ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name"),
        ListedMailbox(MailboxInfo("Sent Items", "/", ("\\Sent",)), "\\Sent", "extension"),
        ListedMailbox(MailboxInfo("Projects/2026", "/", ()), None, None),
    ]
    folders = await store.index.save_listing(account, listed)
    ids = {folder.path: folder.id for folder in folders}
    for folder_id in ids.values():
        await store.index.apply(account, folder_id, state=SyncState(7, 1, None, 0))
    return ids


def _records(folder: int, uids: range) -> list[MessageRecord]:
    return [
        MessageRecord(
            mailbox_id=folder,
            uid=uid,
            flags=("\\Seen",) if uid % 3 == 0 else (),
            size=1000 + uid,
            internal_date=1_700_000_000_000 + uid * 60_000,
            subject=f"note {uid}",
            envelope={"from": {"name": "Ann", "address": "ann@example.com"}},
            structure={"text": {"plain": 10}, "attachments": []},
        )
        for uid in uids
    ]


async def test_folders_are_named_by_path_inbox_or_special_use(store: Store) -> None:
    ids = await _account(store, "acc")
    service = MessageService(store)

    assert (await service.folder("acc", "inbox")).id == ids["INBOX"]
    assert (await service.folder("acc", "\\sent")).id == ids["Sent Items"]
    assert (await service.folder("acc", "Projects/2026")).id == ids["Projects/2026"]
    with pytest.raises(NotFoundError) as missing:
        await service.folder("acc", "Nowhere")
    assert missing.value.code == "MailboxNotFound"
    with pytest.raises(NotFoundError) as unknown:
        await service.folder("ghost", "INBOX")
    assert unknown.value.code == "AccountNotFound"


async def test_folder_list_with_counters(store: Store) -> None:
    ids = await _account(store, "acc")
    await store.index.apply(
        "acc",
        ids["INBOX"],
        added=_records(ids["INBOX"], range(1, 7)),
        state=SyncState(7, 7, None, 6),
    )

    listed = {
        entry["path"]: entry for entry in await MessageService(store).folders("acc", counters=True)
    }

    assert listed["INBOX"]["status"] == {"messages": 6, "unseen": 4}
    assert listed["INBOX"]["uidNext"] == 7
    assert listed["Sent Items"]["specialUse"] == "\\Sent"
    assert listed["Sent Items"]["specialUseSource"] == "extension"
    assert listed["Projects/2026"]["parentPath"] == "Projects"
    assert listed["Projects/2026"]["name"] == "2026"
    assert "status" not in (await MessageService(store).folders("acc"))[0]


async def test_pages_by_number_and_walk_by_cursor_while_mail_arrives(store: Store) -> None:
    ids = await _account(store, "acc")
    inbox = ids["INBOX"]
    await store.index.apply("acc", inbox, added=_records(inbox, range(1, 11)))
    service = MessageService(store)

    first = await service.list_messages("acc", path="INBOX", page_size=4)
    third = await service.list_messages("acc", path="INBOX", page=2, page_size=4)
    assert (first["total"], first["pages"], first["page"]) == (10, 3, 0)
    assert [m["uid"] for m in first["messages"]] == [10, 9, 8, 7]
    assert first["prevPageCursor"] is None
    assert [m["uid"] for m in third["messages"]] == [2, 1]
    assert third["nextPageCursor"] is None
    entry = first["messages"][0]
    assert entry["subject"] == "note 10"
    assert entry["path"] == "INBOX"
    assert entry["messageSpecialUse"] == "\\Inbox"
    assert entry["date"] == "2023-11-14T22:23:20.000Z"
    assert "seemsLikeNew" not in entry

    # Two messages arrive before the client asks for page two: it neither
    # repeats 7 nor skips 6.
    await store.index.apply("acc", inbox, added=_records(inbox, range(11, 13)))
    second = await service.list_messages(
        "acc", path=None, page_size=4, cursor=first["nextPageCursor"]
    )
    assert [m["uid"] for m in second["messages"]] == [6, 5, 4, 3]
    assert second["page"] == 1
    back = await service.list_messages(
        "acc", path=None, page_size=4, cursor=second["prevPageCursor"]
    )
    assert [m["uid"] for m in back["messages"]] == [10, 9, 8, 7]
    assert back["page"] == 0
    assert back["prevPageCursor"] is not None  # 11 and 12 are newer now


async def test_cursors_are_checked(store: Store) -> None:
    ids = await _account(store, "acc")
    other = await _account(store, "other")
    await store.index.apply("acc", ids["INBOX"], added=_records(ids["INBOX"], range(1, 4)))
    service = MessageService(store)
    theirs = Cursor(other["INBOX"], 7, 3, "next", 1).encode()
    renumbered = Cursor(ids["INBOX"], 8, 3, "next", 1).encode()

    for bad in ("garbage", "mw_AAAA", theirs, renumbered, "mw_" + "A" * 5000):
        with pytest.raises(InputError) as refused:
            await service.list_messages("acc", path="INBOX", cursor=bad)
        assert refused.value.key == "cursor"
    with pytest.raises(InputError):
        await service.list_messages("acc", path="INBOX", page_size=1001)
