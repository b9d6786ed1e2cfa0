"""Change events: the names the reference uses and the value every source produces.

An `Event` is what a worker, a service or the sync engine detected; the store
appends it to the outbox in the same transaction as the change it reports.
Envelope fields (`serviceUrl`, `date`, `eventId`) are added when the event is
delivered, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventName(StrEnum):
    MESSAGE_NEW = "messageNew"
    MESSAGE_DELETED = "messageDeleted"
    MESSAGE_UPDATED = "messageUpdated"
    MESSAGE_MISSING = "messageMissing"
    MESSAGE_SENT = "messageSent"
    MESSAGE_DELIVERY_ERROR = "messageDeliveryError"
    MESSAGE_FAILED = "messageFailed"
    MESSAGE_BOUNCE = "messageBounce"
    MESSAGE_COMPLAINT = "messageComplaint"
    MAILBOX_RESET = "mailboxReset"
    MAILBOX_DELETED = "mailboxDeleted"
    MAILBOX_NEW = "mailboxNew"
    AUTHENTICATION_ERROR = "authenticationError"
    AUTHENTICATION_SUCCESS = "authenticationSuccess"
    CONNECT_ERROR = "connectError"
    ACCOUNT_ADDED = "accountAdded"
    ACCOUNT_INITIALIZED = "accountInitialized"
    ACCOUNT_DELETED = "accountDeleted"
    TRACK_OPEN = "trackOpen"
    TRACK_CLICK = "trackClick"
    LIST_UNSUBSCRIBE = "listUnsubscribe"
    LIST_SUBSCRIBE = "listSubscribe"
    EXPORT_COMPLETED = "exportCompleted"
    EXPORT_FAILED = "exportFailed"


@dataclass(frozen=True, slots=True)
class Event:
    """One detected change of one account."""

    account: str
    event: EventName
    data: Mapping[str, Any] = field(default_factory=dict)
    #: Folder path and special use, for mailbox-bound events.
    path: str | None = None
    special_use: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the outbox."""

    seq: int
    event_id: str
    account: str
    event: EventName
    data: Mapping[str, Any]
    path: str | None
    special_use: str | None
    created_at: int
