"""Synchronising one folder into the index.

Theory of operation
-------------------
A folder's index is valid for one UIDVALIDITY (RFC 3501 section 2.3.1.1).
SELECT reports the server's UIDVALIDITY, UIDNEXT, EXISTS and, with CONDSTORE,
HIGHESTMODSEQ (RFC 7162 section 3.1.2). Then:

- *Initial index* (the folder has no stored UIDVALIDITY): `UID SEARCH ALL`,
  then `UID FETCH` of the full record in batches of `FETCH_BATCH` UIDs,
  ascending. Each batch is written while the next one is fetched, so the
  server's and the database's time hide behind parsing. UIDs already in the
  index (an initial run cut short by a crash) are skipped, and the folder's
  UIDVALIDITY is stored only by the last write: until then a restart resumes
  the initial index instead of treating its messages as new. Messages whose
  INTERNALDATE is before the account's `notifyFrom` are indexed silently;
  later ones raise `messageNew`. With the account's `syncFrom`, the search is
  `UID SEARCH SINCE <the day before>` and older messages are not indexed at
  all (new arrivals later are indexed whatever their date).
- *UIDVALIDITY changed*: the folder's messages are dropped with a
  `mailboxReset` event and the folder is indexed again, silently.
- *Incremental*: nothing to do when UIDNEXT, EXISTS and HIGHESTMODSEQ match
  what is stored (the stored count is the server's EXISTS, which is what the
  index holds unless `syncFrom` left old messages out). Otherwise new
  messages are `UID FETCH <highest known+1>:*` (each raises `messageNew`);
  flag changes and expunges come from
  `UID FETCH 1:<highest known> (UID FLAGS) (CHANGEDSINCE m VANISHED)` with
  QRESYNC (RFC 7162 section 3.2.6), the same without VANISHED plus a UID
  SEARCH for expunges with CONDSTORE, or a full `UID FETCH (UID FLAGS)` diff
  without either. Every step's index writes and events share one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailwire.backends.imap.connection import CommandResult, ImapConnection
from mailwire.backends.imap.messages import fetch_items, record_from_fetch
from mailwire.backends.imap.reports import report_events
from mailwire.domain.accounts import Account
from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import ListedMailbox, MailboxRecord, SyncState
from mailwire.domain.message_events import (
    Announce,
    folder_event,
    message_deleted,
    message_new,
    message_updated,
)
from mailwire.domain.messages import (
    FlagState,
    MessageRecord,
)
from mailwire.logs import get_logger
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.arguments import SequenceSet
from mailwire.protocols.imap.responses import (
    ESearch,
    Exists,
    Fetch,
    Search,
    UntaggedStatus,
    Vanished,
)

log = get_logger(__name__)

#: UIDs per UID FETCH of the initial index: large enough to amortise round trips,
#: small enough that one batch's responses stay a few MB in memory.
FETCH_BATCH = 1000
#: Month names of IMAP dates (RFC 3501 section 9, date-month), whatever the locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Index(Protocol):
    """What the sync needs of the index (implemented by `mailwire.store.index`)."""

    async def mailboxes(self, account: str) -> list[MailboxRecord]: ...

    async def save_listing(
        self,
        account: str,
        listed: Sequence[ListedMailbox],
        *,
        removed: Sequence[str] = (),
        events: Sequence[Event] = (),
    ) -> list[MailboxRecord]: ...

    async def reset_mailbox(
        self, mailbox_id: int, *, uid_validity: int | None, events: Sequence[Event] = ()
    ) -> None: ...

    async def known_flags(self, mailbox_id: int) -> dict[int, tuple[str, ...]]: ...

    async def apply(
        self,
        account: str,
        mailbox_id: int,
        *,
        added: Sequence[MessageRecord] = (),
        removed: Sequence[int] = (),
        updated: Sequence[FlagState] = (),
        state: SyncState | None = None,
        events: Sequence[Event] = (),
        announce: Announce | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Selected:
    """What SELECT reported (RFC 3501 section 6.3.1, RFC 7162 section 3.1.2)."""

    uid_validity: int
    uid_next: int | None
    exists: int
    highest_modseq: int | None

    @property
    def state(self) -> SyncState:
        return SyncState(self.uid_validity, self.uid_next, self.highest_modseq, self.exists)


def selected_from(result: CommandResult) -> Selected:
    uid_validity = uid_next = modseq = None
    exists = 0
    for event in result.untagged:
        if isinstance(event, Exists):
            exists = event.count
        elif isinstance(event, UntaggedStatus) and event.code is not None:
            name, number = event.code.name.upper(), event.code.number
            if name == "UIDVALIDITY":
                uid_validity = number
            elif name == "UIDNEXT":
                uid_next = number
            elif name == "HIGHESTMODSEQ":
                modseq = number
    code = result.tagged.code
    if code is not None and code.name.upper() == "HIGHESTMODSEQ":
        modseq = code.number
    # A server without UIDVALIDITY breaks RFC 3501; 0 still keeps ids distinct from ours.
    return Selected(uid_validity or 0, uid_next, exists, modseq)


@dataclass(frozen=True, slots=True)
class Synced:
    """The outcome of one folder's sync: events raised and the folder's record now."""

    events: int
    mailbox: MailboxRecord


def _with_state(mailbox: MailboxRecord, selected: Selected) -> MailboxRecord:
    """The record as `IndexStore.apply` left it, without reading it back."""
    return dataclasses.replace(
        mailbox,
        uid_validity=selected.uid_validity,
        uid_next=selected.uid_next,
        highest_modseq=selected.highest_modseq,
        messages=selected.exists,
    )


class FolderSync:
    """Synchronises folders of one account over one connection."""

    def __init__(self, account: Account, conn: ImapConnection, index: Index) -> None:
        self.account = account
        self.conn = conn
        self.index = index
        self.items = fetch_items(conn.capabilities)
        self.condstore = bool({"CONDSTORE", "QRESYNC"} & conn.capabilities)
        self.qresync = "QRESYNC" in conn.enabled

    async def select(self, mailbox: MailboxRecord) -> Selected:
        result = await self.conn.execute(commands.select(mailbox.path, condstore=self.condstore))
        return selected_from(result)

    async def sync(self, mailbox: MailboxRecord, *, announce_new_folder: bool = False) -> Synced:
        """SELECT and bring the folder's index up to date."""
        selected = await self.select(mailbox)
        return await self.sync_selected(mailbox, selected, announce_new_folder=announce_new_folder)

    async def sync_selected(
        self, mailbox: MailboxRecord, selected: Selected, *, announce_new_folder: bool = False
    ) -> Synced:
        if mailbox.uid_validity is None:
            events = [self._mailbox_new(mailbox, selected)] if announce_new_folder else []
            return await self._initial(mailbox, selected, announce=True, events=events)
        if mailbox.uid_validity != selected.uid_validity:
            reset = self._mailbox_reset(mailbox, selected)
            await self.index.reset_mailbox(mailbox.id, uid_validity=None, events=[reset])
            return await self._initial(mailbox, selected, announce=False, events=[], counted=1)
        return await self._incremental(mailbox, selected)

    # ------------------------------------------------------------------ initial

    async def _initial(
        self,
        mailbox: MailboxRecord,
        selected: Selected,
        *,
        announce: bool,
        events: list[Event],
        counted: int = 0,
    ) -> Synced:
        known = await self.index.known_flags(mailbox.id)
        uids = [uid for uid in await self._all_uids(selected) if uid not in known]
        count = counted + len(events)
        announced: list[MessageRecord] = []
        pending: asyncio.Task[None] | None = None
        try:
            for start in range(0, len(uids), FETCH_BATCH):
                batch = uids[start : start + FETCH_BATCH]
                records = await self._fetch_records(mailbox, SequenceSet.of(batch))
                if self.account.sync_from is not None:
                    records = [record for record in records if self._after_sync_from(record)]
                fresh = [r for r in records if announce and self._after_notify_from(r)]
                announced.extend(fresh)
                new_events = [
                    self._message_new(mailbox, selected.uid_validity, record) for record in fresh
                ]
                count += len(new_events)
                if pending is not None:
                    await pending
                pending = asyncio.create_task(
                    self.index.apply(self.account.id, mailbox.id, added=records, events=new_events)
                )
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
        await self.index.apply(self.account.id, mailbox.id, state=selected.state, events=events)
        if announce:
            await self._reports(mailbox, selected.uid_validity, announced)
        return Synced(count, _with_state(mailbox, selected))

    async def _all_uids(self, selected: Selected) -> list[int]:
        if selected.exists == 0:
            return []
        criteria: list[commands.Arg] = [commands.Atom("ALL")]
        if self.account.sync_from is not None:
            # SINCE compares dates only, in the server's zone (RFC 3501 6.4.4): a day
            # early, then each record's INTERNALDATE decides.
            day = time.gmtime(self.account.sync_from // 1000 - 86_400)
            since = f"{day.tm_mday}-{_MONTHS[day.tm_mon - 1]}-{day.tm_year}"
            criteria = [commands.Atom("SINCE"), commands.Atom(since)]
        result = await self.conn.execute(commands.uid_search(criteria))
        return sorted(set(_searched_uids(result)))

    def _after_notify_from(self, record: MessageRecord) -> bool:
        when = record.internal_date if record.internal_date is not None else record.date
        return when is None or when >= self.account.notify_from

    def _after_sync_from(self, record: MessageRecord) -> bool:
        when = record.internal_date if record.internal_date is not None else record.date
        return when is None or self.account.sync_from is None or when >= self.account.sync_from

    # ------------------------------------------------------------------ incremental

    async def _incremental(self, mailbox: MailboxRecord, selected: Selected) -> Synced:
        # The stored count stands in for the index here: this check runs on every
        # wake-up of the watched folder, and reading every UID for it would not do.
        if self._unchanged(mailbox, selected):
            return Synced(0, mailbox)
        known = await self.index.known_flags(mailbox.id)
        highest = max(known, default=0)
        added = await self._fetch_new(mailbox, highest, selected)
        removed, updated = await self._changes(mailbox, known, highest, selected)
        validity, account = selected.uid_validity, self.account.id
        # Checked against the index inside the write: a change an API request
        # recorded first (a flag it set, a message it moved) is not announced again.
        announce = Announce(
            new=lambda record: message_new(account, mailbox, validity, record),
            deleted=lambda uid: message_deleted(account, mailbox, validity, uid),
            updated=lambda change, before: message_updated(
                account, mailbox, validity, before, change
            ),
        )
        await self.index.apply(
            self.account.id,
            mailbox.id,
            added=added,
            removed=removed,
            updated=updated,
            state=selected.state,
            announce=announce,
        )
        # The same messages `announce` raised messageNew for (new to the index).
        await self._reports(mailbox, validity, added)
        return Synced(len(added) + len(removed) + len(updated), _with_state(mailbox, selected))

    async def _reports(
        self, mailbox: MailboxRecord, uid_validity: int, records: Sequence[MessageRecord]
    ) -> None:
        """Raise `messageBounce`/`messageComplaint` for the new messages that are such
        reports (`backends.imap.reports`), after their `messageNew`."""
        found = await report_events(self.conn, self.account.id, mailbox, uid_validity, records)
        if found:
            await self.index.apply(self.account.id, mailbox.id, events=found)

    def _unchanged(self, mailbox: MailboxRecord, selected: Selected) -> bool:
        return (
            selected.uid_next is not None
            and selected.uid_next == mailbox.uid_next
            and selected.exists == mailbox.messages
            and (
                selected.highest_modseq is None or selected.highest_modseq == mailbox.highest_modseq
            )
        )

    async def _fetch_new(
        self, mailbox: MailboxRecord, highest: int, selected: Selected
    ) -> list[MessageRecord]:
        if selected.exists == 0 or (
            selected.uid_next is not None and selected.uid_next <= highest + 1
        ):
            return []
        records = await self._fetch_records(mailbox, SequenceSet.span(highest + 1))
        # "n:*" includes the last message even when its UID is below n (RFC 3501 6.4.8).
        return [record for record in records if record.uid > highest]

    async def _changes(
        self,
        mailbox: MailboxRecord,
        known: dict[int, tuple[str, ...]],
        highest: int,
        selected: Selected,
    ) -> tuple[list[int], list[FlagState]]:
        if not known:
            return [], []
        span = SequenceSet.span(1, highest)
        since = mailbox.highest_modseq if self.condstore else None
        if since is not None and selected.highest_modseq is not None:
            result = await self.conn.execute(
                commands.uid_fetch(
                    span, ["UID", "FLAGS"], changed_since=since, vanished=self.qresync
                )
            )
            updated = _flag_states(result, known)
            if self.qresync:
                gone = {
                    uid
                    for event in result.untagged
                    if isinstance(event, Vanished)
                    for uid in event.uids.expand(highest)
                    if uid in known
                }
            else:
                gone = set(known) - set(await self._uids_in(span, selected))
            return sorted(gone), updated
        result = await self.conn.execute(commands.uid_fetch(span, ["UID", "FLAGS"]))
        present = {event.uid for event in result.untagged if isinstance(event, Fetch)}
        return sorted(uid for uid in known if uid not in present), _flag_states(result, known)

    async def _uids_in(self, span: SequenceSet, selected: Selected) -> list[int]:
        if selected.exists == 0:
            return []
        result = await self.conn.execute(commands.uid_search([commands.Atom("UID"), span]))
        return _searched_uids(result)

    # ------------------------------------------------------------------ fetching

    async def _fetch_records(
        self, mailbox: MailboxRecord, uids: SequenceSet
    ) -> list[MessageRecord]:
        result = await self.conn.execute(commands.uid_fetch(uids, self.items))
        records = []
        for event in result.untagged:
            if isinstance(event, Fetch) and event.envelope is not None:
                record = record_from_fetch(mailbox.id, event)
                if record is not None:
                    records.append(record)
        return records

    # ------------------------------------------------------------------ events

    def _event(self, name: EventName, mailbox: MailboxRecord, data: Mapping[str, object]) -> Event:
        return folder_event(self.account.id, name, mailbox, data)

    def _message_new(
        self, mailbox: MailboxRecord, uid_validity: int, record: MessageRecord
    ) -> Event:
        return message_new(self.account.id, mailbox, uid_validity, record)

    def _message_deleted(self, mailbox: MailboxRecord, uid_validity: int, uid: int) -> Event:
        return message_deleted(self.account.id, mailbox, uid_validity, uid)

    def _mailbox_new(self, mailbox: MailboxRecord, selected: Selected) -> Event:
        data = {
            "path": mailbox.path,
            "name": mailbox.name,
            "specialUse": mailbox.special_use or False,
            "uidValidity": str(selected.uid_validity),
        }
        return self._event(EventName.MAILBOX_NEW, mailbox, data)

    def _mailbox_reset(self, mailbox: MailboxRecord, selected: Selected) -> Event:
        data = {
            "path": mailbox.path,
            "name": mailbox.name,
            "specialUse": mailbox.special_use or False,
            "uidValidity": str(selected.uid_validity),
            "reason": "uidValidityChange",
            "prevUidValidity": str(mailbox.uid_validity),
        }
        return self._event(EventName.MAILBOX_RESET, mailbox, data)


def _searched_uids(result: CommandResult) -> list[int]:
    """The UIDs a UID SEARCH returned, as SEARCH (RFC 3501) or ESEARCH ALL (RFC 4731)."""
    found: list[int] = []
    for event in result.untagged:
        if isinstance(event, Search):
            found.extend(event.numbers)
        elif isinstance(event, ESearch) and event.all is not None:
            found.extend(event.all.expand(0))
    return found


def _flag_states(result: CommandResult, known: dict[int, tuple[str, ...]]) -> list[FlagState]:
    states = []
    for event in result.untagged:
        if (
            isinstance(event, Fetch)
            and event.uid is not None
            and event.flags is not None
            and event.uid in known
            and set(event.flags) != set(known[event.uid])
        ):
            states.append(FlagState(event.uid, tuple(event.flags), event.modseq))
    return states


ReadyCallback = Callable[[], Awaitable[None]]
