"""Searching one folder's index: the criteria the index can answer, in SQL.

Theory of operation. `IndexCriteria` holds what the `messages` table can decide
on its own: system flags, the sender's address or display name, the subject,
size, the receipt and Date-header days, UIDs, provider ids, the Message-ID,
Gmail labels and the mod-sequence. `IndexSearch.page` turns them into one
parameterised statement that filters, counts (a window count over the filtered
rows, taken before the page's own bounds) and returns one page, newest (highest
UID) first, by offset or by UID keyset like `IndexStore.message_page`.

When part of a search was answered by the mail server, the caller passes the
server's UIDs as `within`: the index then keeps the UIDs that also meet its own
criteria (in chunks, so a large server answer never exceeds a driver's bound
parameter limit), pages those in memory and reads the page's rows.

Matching rules, chosen to stay close to IMAP SEARCH (RFC 3501 section 6.4.4):
- text terms are case-insensitive substrings; both sides are lowered by the
  database, which folds ASCII only on SQLite, so callers send terms with other
  letters to the server instead;
- dates compare by day, UTC days, since the index keeps instants and not the
  zone they were written in: `since` takes the whole day given, `before` stops
  before it;
- `larger`/`smaller` are strict, as in IMAP;
- flags are found in the stored JSON list by their quoted, escaped text (the
  way `IndexStore.unseen_counts` does it), case-insensitively;
- a UID set may use `*` for the folder's highest UID (RFC 3501 section 9).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from mailwire.domain.messages import MessageRecord
from mailwire.store.database import Database, escape_like
from mailwire.store.index import _message
from mailwire.store.schema import messages

#: UIDs per `IN (...)` list: well below SQLite's 32766 and PostgreSQL's 32767 parameters.
UID_CHUNK = 5000
#: RFC 3501 section 9: seq-range = seq-number ":" seq-number, "*" the highest number.
_RANGE = re.compile(r"([0-9]+|\*)(?::([0-9]+|\*))?")


@dataclass(frozen=True, slots=True)
class IndexCriteria:
    """Criteria on one folder's index; unset fields do not constrain, set ones all must match.

    `flags` pairs a system flag (`\\Seen`) with whether the message must carry
    it. `uids` is an RFC 3501 sequence set of UIDs. `email_ids`, when given,
    keeps only those messages. `labels_has`/`labels_not` are Gmail labels as the
    server lists them.
    """

    flags: tuple[tuple[str, bool], ...] = ()
    from_: str | None = None
    subject: str | None = None
    larger: int | None = None
    smaller: int | None = None
    since: date | None = None
    before: date | None = None
    sent_since: date | None = None
    sent_before: date | None = None
    uids: str | None = None
    email_id: str | None = None
    thread_id: str | None = None
    email_ids: tuple[str, ...] | None = None
    message_id: str | None = None
    labels_has: tuple[str, ...] = ()
    labels_not: tuple[str, ...] = ()
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of matches, newest first, and how many messages match in all."""

    records: list[MessageRecord]
    total: int


class IndexSearch:
    """Search reads of the message index; see the module docstring."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def page(
        self,
        mailbox_id: int,
        criteria: IndexCriteria,
        *,
        limit: int,
        offset: int = 0,
        below_uid: int | None = None,
        above_uid: int | None = None,
        within: Sequence[int] | None = None,
    ) -> SearchPage:
        """Up to `limit` matches, newest first, by `offset` or by keyset (as `message_page`)."""
        if within is not None:
            return await self._page_within(
                mailbox_id, criteria, within, limit, offset, below_uid, above_uid
            )
        where = conditions(mailbox_id, criteria)
        statement = messages.select().where(*where)
        if above_uid is not None:
            statement = statement.where(messages.c.uid > above_uid).order_by(messages.c.uid)
        else:
            if below_uid is not None:
                statement = statement.where(messages.c.uid < below_uid)
            statement = statement.order_by(messages.c.uid.desc()).offset(offset)
        # Two statements in one snapshot: the page walks the folder's primary key
        # newest first and stops after `limit` matches; the count reads no columns.
        # (A window count over the page query made the database copy every matching
        # row, JSON columns and all, before the first was returned.)
        count = sa.select(sa.func.count()).select_from(messages).where(*where)
        async with self._db.read() as conn:
            rows = (await conn.execute(statement.limit(limit))).all()
            total = int((await conn.execute(count)).scalar_one())
        records = [_message(row._mapping) for row in rows]
        return SearchPage(records[::-1] if above_uid is not None else records, total)

    async def matching_uids(
        self, mailbox_id: int, criteria: IndexCriteria, within: Sequence[int]
    ) -> list[int]:
        """The UIDs of `within` that are indexed and meet `criteria`, ascending."""
        found: list[int] = []
        wanted = sorted(set(within))
        async with self._db.read() as conn:
            for start in range(0, len(wanted), UID_CHUNK):
                chunk = wanted[start : start + UID_CHUNK]
                statement = sa.select(messages.c.uid).where(
                    *conditions(mailbox_id, criteria), messages.c.uid.in_(chunk)
                )
                found += [int(uid) for (uid,) in await conn.execute(statement)]
        return sorted(found)

    async def _page_within(
        self,
        mailbox_id: int,
        criteria: IndexCriteria,
        within: Sequence[int],
        limit: int,
        offset: int,
        below_uid: int | None,
        above_uid: int | None,
    ) -> SearchPage:
        newest_first = (await self.matching_uids(mailbox_id, criteria, within))[::-1]
        total = len(newest_first)
        if above_uid is not None:
            chosen = [uid for uid in newest_first if uid > above_uid][-limit:]
        else:
            if below_uid is not None:
                newest_first = [uid for uid in newest_first if uid < below_uid]
            chosen = newest_first[offset : offset + limit]
        statement = (
            messages.select()
            .where(messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(chosen))
            .order_by(messages.c.uid.desc())
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all() if chosen else []
        return SearchPage([_message(row._mapping) for row in rows], total)


def conditions(mailbox_id: int, criteria: IndexCriteria) -> list[sa.ColumnElement[bool]]:
    """The WHERE terms of a search (ANDed); every value is a bound parameter."""
    where: list[sa.ColumnElement[bool]] = [messages.c.mailbox_id == mailbox_id]
    if criteria.email_ids is not None:
        # An explicit list of messages: every other criterion is ignored (the API's rule).
        return [*where, messages.c.email_id.in_(list(criteria.email_ids))]
    flags_text = sa.func.lower(sa.cast(messages.c.flags, sa.Text))
    for flag, wanted in criteria.flags:
        present = flags_text.like(_json_token(flag.lower()), escape="\\")
        where.append(present if wanted else sa.not_(present))
    if criteria.from_ is not None:
        term = _contains(criteria.from_)
        name = messages.c.envelope[("from", "name")].as_string()
        # A plain LIKE over the envelope's JSON text first: both the sender's address
        # and name are in it (ASCII terms; others go to the server), so it rules out
        # nearly every row before the JSON of any is parsed.
        anywhere = sa.func.lower(sa.cast(messages.c.envelope, sa.Text))
        where.append(anywhere.like(term, escape="\\"))
        where.append(
            sa.or_(
                sa.func.lower(messages.c.from_address).like(term, escape="\\"),
                sa.func.lower(name).like(term, escape="\\"),
            )
        )
    if criteria.subject is not None:
        where.append(
            sa.func.lower(messages.c.subject).like(_contains(criteria.subject), escape="\\")
        )
    if criteria.larger is not None:
        where.append(messages.c.size > criteria.larger)
    if criteria.smaller is not None:
        where.append(messages.c.size < criteria.smaller)
    where += _days(messages.c.internal_date, criteria.since, criteria.before)
    where += _days(messages.c.date, criteria.sent_since, criteria.sent_before)
    if criteria.uids is not None:
        where.append(_uid_set(mailbox_id, criteria.uids))
    for column, value in (
        (messages.c.email_id, criteria.email_id),
        (messages.c.thread_id, criteria.thread_id),
        (messages.c.message_id, criteria.message_id),
    ):
        if value is not None:
            where.append(column == value)
    labels_text = sa.cast(messages.c.labels, sa.Text)
    for label in criteria.labels_has:
        where.append(labels_text.like(_json_token(label), escape="\\"))
    for label in criteria.labels_not:
        where.append(
            sa.or_(
                messages.c.labels.is_(None),
                sa.not_(labels_text.like(_json_token(label), escape="\\")),
            )
        )
    if criteria.modseq is not None:
        # RFC 7162 section 3.1.5: MODSEQ n matches mod-sequences of n and above.
        where.append(messages.c.modseq >= criteria.modseq)
    return where


def _contains(term: str) -> str:
    return "%" + escape_like(term.lower()) + "%"


def _json_token(value: str) -> str:
    """A LIKE pattern finding `value` as one string of a stored JSON list.

    Rows are written with Python's JSON encoder (ASCII only), so the value's own
    encoding is the text to look for.
    """
    return "%" + escape_like(json.dumps(value)) + "%"


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _days(
    column: sa.ColumnElement[Any], since: date | None, before: date | None
) -> list[sa.ColumnElement[bool]]:
    terms: list[sa.ColumnElement[bool]] = []
    if since is not None:
        terms.append(column >= _day_start(since))
    if before is not None:
        terms.append(column < _day_start(before))
    return terms


def parse_sequence_set(text: str) -> list[tuple[int | None, int | None]]:
    """`1,4:7,9:*` as ranges; None stands for `*`. ValueError when it is not a set."""
    ranges: list[tuple[int | None, int | None]] = []
    for part in text.split(","):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise ValueError(f"not a sequence set: {text!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        ranges.append((None if first == "*" else int(first), None if last == "*" else int(last)))
    return ranges


def _uid_set(mailbox_id: int, text: str) -> sa.ColumnElement[bool]:
    uid = messages.c.uid
    highest = (
        sa.select(sa.func.max(messages.c.uid))
        .where(messages.c.mailbox_id == mailbox_id)
        .scalar_subquery()
    )
    singles: list[int] = []
    terms: list[sa.ColumnElement[bool]] = []
    for first, last in parse_sequence_set(text):
        if first is not None and last is not None:
            low, high = min(first, last), max(first, last)
            if low == high:
                singles.append(low)
            else:
                terms.append(uid.between(low, high))
        elif first is None and last is None:
            terms.append(uid == highest)
        else:
            # n:* is every UID from n up, or the highest one when n is above it.
            bound = first if first is not None else last
            terms.append(sa.or_(uid >= bound, uid == highest))
    for start in range(0, len(singles), UID_CHUNK):
        terms.append(uid.in_(singles[start : start + UID_CHUNK]))
    return sa.or_(*terms)
