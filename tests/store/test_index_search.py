"""Searching the message index: each criterion, paging, counts, and server UIDs to intersect."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo
from mailwire.domain.messages import MessageRecord
from mailwire.store.accounts import AccountValues
from mailwire.store.index_search import IndexCriteria, parse_sequence_set
from mailwire.store.store import Store

DAY_MS = 86_400_000


def _ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


async def _folders(store: Store) -> tuple[int, int]:
    values = AccountValues(name="acc", email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update("acc", values, {})
    listed = [
        ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name"),
        ListedMailbox(MailboxInfo("Other", "/", ()), None, None),
    ]
    inbox, other = await store.index.save_listing("acc", listed)
    return inbox.id, other.id


def _record(folder: int, uid: int, **fields: object) -> MessageRecord:
    base: dict[str, object] = {
        "mailbox_id": folder,
        "uid": uid,
        "flags": (),
        "size": 1000,
        "subject": f"plain {uid}",
        "internal_date": _ms(2024, 1, 10, 12),
        "date": _ms(2024, 1, 10, 12),
        "envelope": {"from": {"name": "Nobody", "address": "nobody@example.net"}},
    }
    base.update(fields)
    return MessageRecord(**base)  # type: ignore[arg-type]


@pytest.fixture
async def folders(store: Store) -> tuple[int, int]:
    inbox, other = await _folders(store)
    records = [
        _record(inbox, 1, flags=("\\Seen",), size=500),
        _record(inbox, 2, flags=("\\Seen", "\\Flagged"), size=1500),
        _record(inbox, 3, flags=("\\Answered", "$Work_100%")),
        _record(inbox, 4, flags=("\\Draft", "\\Deleted")),
        _record(
            inbox,
            5,
            subject="Quarterly REPORT_2024 100%",
            envelope={"from": {"name": "Ann Example", "address": "ann@example.com"}},
        ),
        _record(inbox, 6, internal_date=_ms(2024, 1, 11, 0), date=_ms(2024, 1, 9, 23, 59)),
        _record(inbox, 7, internal_date=_ms(2024, 1, 11, 23, 59), date=None),
        _record(inbox, 8, email_id="e8", thread_id="t1", message_id="<m8@example.com>"),
        _record(inbox, 9, email_id="e9", thread_id="t1", labels=("\\Important", "Work")),
        _record(inbox, 10, labels=("Work 2",), modseq=50),
        _record(inbox, 11, envelope={}, modseq=70),
    ]
    await store.index.apply("acc", inbox, added=records)
    await store.index.apply("acc", other, added=[_record(other, 5, flags=("\\Seen",))])
    return inbox, other


async def _uids(store: Store, folder: int, criteria: IndexCriteria) -> list[int]:
    page = await store.search.page(folder, criteria, limit=100)
    assert page.total == len(page.records)
    return [record.uid for record in page.records]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (IndexCriteria(flags=(("\\Seen", True),)), [2, 1]),
        (IndexCriteria(flags=(("\\Seen", False), ("\\Flagged", False))), list(range(11, 2, -1))),
        (IndexCriteria(flags=(("\\Flagged", True),)), [2]),
        (IndexCriteria(flags=(("\\Answered", True),)), [3]),
        (IndexCriteria(flags=(("\\Draft", True), ("\\Deleted", True))), [4]),
        (IndexCriteria(flags=(("\\seen", True),)), [2, 1]),  # flag names are case-insensitive
        (IndexCriteria(from_="ANN@example"), [5]),
        (IndexCriteria(from_="ann example"), [5]),
        (IndexCriteria(from_="example.net"), [10, 9, 8, 7, 6, 4, 3, 2, 1]),
        (IndexCriteria(from_="%"), []),  # LIKE wildcards are literal
        (IndexCriteria(subject="report_2024 100%"), [5]),
        (IndexCriteria(subject="report_"), [5]),
        (IndexCriteria(subject="plain 1"), [11, 10, 1]),
        (IndexCriteria(larger=1000), [2]),
        (IndexCriteria(smaller=1000), [1]),
        (IndexCriteria(larger=499, smaller=1001), [*range(11, 2, -1), 1]),
        (IndexCriteria(since=date(2024, 1, 11)), [7, 6]),
        (IndexCriteria(before=date(2024, 1, 11)), [11, 10, 9, 8, 5, 4, 3, 2, 1]),
        (IndexCriteria(since=date(2024, 1, 11), before=date(2024, 1, 12)), [7, 6]),
        (IndexCriteria(sent_before=date(2024, 1, 10)), [6]),
        (IndexCriteria(sent_since=date(2024, 1, 10)), [11, 10, 9, 8, 5, 4, 3, 2, 1]),
        (IndexCriteria(uids="1,3:4,10:*"), [11, 10, 4, 3, 1]),
        (IndexCriteria(uids="4:2"), [4, 3, 2]),
        (IndexCriteria(uids="*"), [11]),
        (IndexCriteria(uids="99:*"), [11]),  # n:* above the highest UID is the highest one
        (IndexCriteria(email_id="e8"), [8]),
        (IndexCriteria(thread_id="t1"), [9, 8]),
        (IndexCriteria(email_ids=("e9", "e8", "nope"), subject="nothing"), [9, 8]),
        (IndexCriteria(message_id="<m8@example.com>"), [8]),
        (IndexCriteria(message_id="m8@example.com"), []),
        (IndexCriteria(labels_has=("Work",)), [9]),
        (IndexCriteria(labels_has=("\\Important",)), [9]),
        (IndexCriteria(labels_not=("Work",), uids="8:11"), [11, 10, 8]),
        (IndexCriteria(modseq=50), [11, 10]),
        (IndexCriteria(flags=(("\\Seen", True),), larger=600, subject="plain"), [2]),
    ],
)
async def test_each_criterion(
    store: Store, folders: tuple[int, int], criteria: IndexCriteria, expected: list[int]
) -> None:
    inbox, _ = folders
    assert await _uids(store, inbox, criteria) == expected


async def test_a_search_stays_in_its_folder(store: Store, folders: tuple[int, int]) -> None:
    inbox, other = folders
    assert await _uids(store, other, IndexCriteria()) == [5]
    assert await _uids(store, other, IndexCriteria(from_="ann")) == []
    assert len(await _uids(store, inbox, IndexCriteria())) == 11


async def test_pages_by_offset_and_keyset_count_every_match(
    store: Store, folders: tuple[int, int]
) -> None:
    inbox, _ = folders
    unseen = IndexCriteria(flags=(("\\Seen", False),))

    first = await store.search.page(inbox, unseen, limit=4)
    second = await store.search.page(inbox, unseen, limit=4, offset=4)
    after = await store.search.page(inbox, unseen, limit=4, below_uid=first.records[-1].uid)
    before = await store.search.page(inbox, unseen, limit=4, above_uid=after.records[0].uid)
    past = await store.search.page(inbox, unseen, limit=4, offset=40)

    assert [r.uid for r in first.records] == [11, 10, 9, 8]
    assert [r.uid for r in second.records] == [7, 6, 5, 4]
    assert [r.uid for r in after.records] == [7, 6, 5, 4]
    assert [r.uid for r in before.records] == [11, 10, 9, 8]
    assert (first.total, second.total, after.total, before.total) == (9, 9, 9, 9)
    assert (past.records, past.total) == ([], 9)
    assert first.records[0].envelope == {}
    assert second.records[2].subject == "Quarterly REPORT_2024 100%"


async def test_server_uids_are_intersected_with_the_index(
    store: Store, folders: tuple[int, int]
) -> None:
    inbox, _ = folders
    # The server found 2, 3, 5 and 404 (not indexed yet); the index adds "unseen".
    unseen = IndexCriteria(flags=(("\\Seen", False),))
    found = await store.search.page(inbox, unseen, limit=10, within=[404, 5, 3, 2])
    paged = await store.search.page(inbox, IndexCriteria(), limit=1, offset=1, within=[1, 2, 3])
    keyset = await store.search.page(inbox, IndexCriteria(), limit=5, above_uid=1, within=[1, 2, 3])
    empty = await store.search.page(inbox, unseen, limit=10, within=[])

    assert ([r.uid for r in found.records], found.total) == ([5, 3], 2)
    assert ([r.uid for r in paged.records], paged.total) == ([2], 3)
    assert [r.uid for r in keyset.records] == [3, 2]
    assert (empty.records, empty.total) == ([], 0)


async def test_large_server_answers_are_read_in_chunks(store: Store) -> None:
    inbox, _ = await _folders(store)
    await store.index.apply("acc", inbox, added=[_record(inbox, uid) for uid in range(1, 12_001)])
    within = range(1, 20_001, 2)  # 10,000 UIDs, half of them unknown to the index

    page = await store.search.page(inbox, IndexCriteria(), limit=3, within=within)
    uids = await store.search.page(inbox, IndexCriteria(uids="1:*"), limit=3)

    assert ([r.uid for r in page.records], page.total) == ([11_999, 11_997, 11_995], 6000)
    assert uids.total == 12_000


def test_sequence_sets_parse_with_stars() -> None:
    assert parse_sequence_set("1,3:5,7:*,*") == [(1, 1), (3, 5), (7, None), (None, None)]
    with pytest.raises(ValueError, match="not a sequence set"):
        parse_sequence_set("1,,2")
