"""Reading the message index: pages by offset and by UID keyset, counts, single messages."""

from __future__ import annotations

from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo
from mailwire.domain.message_events import Announce
from mailwire.domain.messages import FlagState, MessageRecord
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store


async def _folder(store: Store, account: str = "acc") -> int:
    values = AccountValues(name=account, email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update(account, values, {})
    listed = [ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name")]
    (inbox,) = await store.index.save_listing(account, listed)
    return inbox.id


def _record(mailbox_id: int, uid: int, **fields: object) -> MessageRecord:
    base: dict[str, object] = {
        "mailbox_id": mailbox_id,
        "uid": uid,
        "flags": ("\\Seen",) if uid % 2 else (),
        "size": 100 + uid,
        "subject": f"message {uid}",
        "envelope": {"from": {"name": "Ann", "address": "ann@example.com"}},
        "structure": {"text": {"plain": 5}, "attachments": []},
    }
    base.update(fields)
    return MessageRecord(**base)  # type: ignore[arg-type]


async def test_pages_are_newest_first_by_offset_and_by_keyset(store: Store) -> None:
    inbox = await _folder(store)
    await store.index.apply("acc", inbox, added=[_record(inbox, uid) for uid in range(1, 8)])

    first = await store.index.message_page(inbox, limit=3)
    second = await store.index.message_page(inbox, limit=3, offset=3)
    after = await store.index.message_page(inbox, limit=3, below_uid=first[-1].uid)
    before = await store.index.message_page(inbox, limit=3, above_uid=after[0].uid)

    assert [r.uid for r in first] == [7, 6, 5]
    assert [r.uid for r in second] == [4, 3, 2]
    assert [r.uid for r in after] == [4, 3, 2]
    assert [r.uid for r in before] == [7, 6, 5]
    assert await store.index.message_count(inbox) == 7


async def test_keyset_pages_neither_repeat_nor_skip_while_mail_arrives(store: Store) -> None:
    inbox = await _folder(store)
    await store.index.apply("acc", inbox, added=[_record(inbox, uid) for uid in range(1, 7)])
    first = await store.index.message_page(inbox, limit=2)
    # New mail arrives and an old message goes while the client reads page one.
    await store.index.apply("acc", inbox, added=[_record(inbox, 7), _record(inbox, 8)])
    await store.index.apply("acc", inbox, removed=[3])

    seen = [r.uid for r in first]
    cursor = first[-1].uid
    while page := await store.index.message_page(inbox, limit=2, below_uid=cursor):
        seen += [r.uid for r in page]
        cursor = page[-1].uid

    assert seen == [6, 5, 4, 2, 1]


async def test_a_message_reads_back_as_it_was_indexed(store: Store) -> None:
    inbox = await _folder(store)
    record = _record(
        inbox,
        42,
        flags=("\\Flagged", "$Work"),
        labels=("Important",),
        internal_date=1_700_000_000_000,
        date=1_699_999_999_000,
        message_id="<m@example.com>",
        in_reply_to="<p@example.com>",
        references="<r@example.com> <p@example.com>",
        email_id="e1",
        thread_id="t1",
        modseq=9,
        subject="Grüße",
    )
    await store.index.apply("acc", inbox, added=[record])

    assert await store.index.message(inbox, 42) == record
    assert await store.index.message(inbox, 43) is None
    assert await store.index.message_page(inbox, limit=5, below_uid=1) == []


async def test_unseen_counts_per_folder(store: Store) -> None:
    inbox = await _folder(store)
    await store.index.apply(
        "acc",
        inbox,
        added=[
            _record(inbox, 1, flags=("\\Seen",)),
            _record(inbox, 2, flags=()),
            _record(inbox, 3, flags=("\\Flagged", "$Seen_not")),
            _record(inbox, 4, flags=("\\Flagged", "\\Seen")),
        ],
    )
    assert await store.index.unseen_counts("acc") == {inbox: 2}
    await store.index.apply("acc", inbox, updated=[FlagState(2, ("\\Seen",))])
    assert await store.index.unseen_counts("acc") == {inbox: 1}
    assert await store.index.unseen_counts("nobody") == {}


async def test_a_flag_change_applied_twice_is_announced_once(store: Store) -> None:
    # The sync engine and an API request both record the same change: the second
    # finds the stored flags already equal and builds no event.
    inbox = await _folder(store)
    await store.index.apply("acc", inbox, added=[_record(inbox, 2, flags=())])
    built: list[tuple[int, tuple[str, ...]]] = []

    def announce(change: FlagState, before: tuple[str, ...]) -> Event:
        built.append((change.uid, before))
        return Event("acc", EventName.MESSAGE_UPDATED, {"uid": change.uid})

    for _ in range(2):
        await store.index.apply(
            "acc", inbox, updated=[FlagState(2, ("\\Seen",))], announce=Announce(updated=announce)
        )

    assert built == [(2, ())]
    updates = [e for e in await store.outbox.read_after(0) if e.event == EventName.MESSAGE_UPDATED]
    assert len(updates) == 1
    assert (await store.index.message(inbox, 2)).flags == ("\\Seen",)  # type: ignore[union-attr]


async def test_additions_and_removals_recorded_twice_are_announced_once(store: Store) -> None:
    # An API move records the copy's arrival and the original's removal at once;
    # the sync engine then finds the same changes on the server.
    inbox = await _folder(store)
    await store.index.apply("acc", inbox, added=[_record(inbox, 1)])
    announce = Announce(
        new=lambda record: Event("acc", EventName.MESSAGE_NEW, {"uid": record.uid}),
        deleted=lambda uid: Event("acc", EventName.MESSAGE_DELETED, {"uid": uid}),
    )
    for _ in range(2):
        await store.index.apply(
            "acc", inbox, added=[_record(inbox, 5)], removed=[1], announce=announce
        )

    names = [e.event for e in await store.outbox.read_after(0)]
    assert names.count(EventName.MESSAGE_NEW) == 1
    assert names.count(EventName.MESSAGE_DELETED) == 1
    assert [r.uid for r in await store.index.message_page(inbox, limit=10)] == [5]
