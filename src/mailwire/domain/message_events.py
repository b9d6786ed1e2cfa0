"""The events of message changes (`messageNew`, `messageDeleted`, `messageUpdated`).

One builder per event, shared by the sync engine (changes found on the server)
and the API's own changes, so both announce a change in the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.messages import (
    FlagState,
    MessageRecord,
    encode_message_id,
    list_changes,
    message_summary,
)


def folder_event(
    account: str, name: EventName, mailbox: MailboxRecord, data: Mapping[str, object]
) -> Event:
    return Event(account, name, data, path=mailbox.path, special_use=mailbox.special_use)


def message_new(
    account: str, mailbox: MailboxRecord, uid_validity: int, record: MessageRecord
) -> Event:
    data = message_summary(
        record, uid_validity=uid_validity, path=mailbox.path, special_use=mailbox.special_use
    )
    return folder_event(account, EventName.MESSAGE_NEW, mailbox, data)


def message_deleted(account: str, mailbox: MailboxRecord, uid_validity: int, uid: int) -> Event:
    data = {"id": encode_message_id(mailbox.id, uid_validity, uid), "uid": uid}
    return folder_event(account, EventName.MESSAGE_DELETED, mailbox, data)


def message_updated(
    account: str,
    mailbox: MailboxRecord,
    uid_validity: int,
    before: Sequence[str],
    change: FlagState,
) -> Event | None:
    """The flag change of one message, or None when its flags did not change."""
    flags = list_changes(before, change.flags)
    if flags is None:
        return None
    data = {
        "id": encode_message_id(mailbox.id, uid_validity, change.uid),
        "uid": change.uid,
        "changes": {"flags": flags},
    }
    return folder_event(account, EventName.MESSAGE_UPDATED, mailbox, data)


@dataclass(frozen=True, slots=True)
class Announce:
    """How an index write builds the events of what it really changed.

    `new(record)` for each message added, `deleted(uid)` for each one removed,
    `updated(change, flags_before)` for each flag change; None (as the builder
    or as its result) means no event. See `store.index.IndexStore.apply`.
    """

    new: Callable[[MessageRecord], Event | None] | None = None
    deleted: Callable[[int], Event | None] | None = None
    updated: Callable[[FlagState, tuple[str, ...]], Event | None] | None = None
