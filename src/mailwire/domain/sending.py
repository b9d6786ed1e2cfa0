"""Outgoing messages: the queue entry, its states, and the events a send raises.

A submitted message is built once (`services.submit`) and stored whole with its
SMTP envelope; a `submit` job delivers it (`services.sending`). The entry's
state says where it is:

    queued  --(an attempt starts)-->  sending  --> sent
       ^                                 |     --> failed      (permanent error, or
       +---- (a temporary failure) ------+                      no attempt left)
    queued / sending --(DELETE /outbox)--> cancelled

Events (payloads as the reference's `messageSent`, `messageDeliveryError`,
`messageFailed`) are built here from the entry and what the server answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailwire.domain.events import Event, EventName
from mailwire.domain.messages import iso_time

#: Delivery attempts of a submitted message unless it asks otherwise (the reference's).
DEFAULT_DELIVERY_ATTEMPTS = 10
#: Most delivery attempts a submit may ask for.
MAX_DELIVERY_ATTEMPTS = 100
#: The job queue of sends.
SUBMIT_QUEUE = "submit"
#: Finished entries are kept this long (ms) so that a repeated Idempotency-Key
#: gets the first answer back; then they are pruned.
KEEP_FINISHED_MS = 24 * 3600 * 1000
#: How far ahead `sendAt` may schedule a message (ms): a year.
MAX_SCHEDULE_AHEAD_MS = 366 * 24 * 3600 * 1000


class SendState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States in which an entry still waits for delivery (listed by `GET /v1/outbox`).
PENDING_STATES = (SendState.QUEUED, SendState.SENDING)


@dataclass(frozen=True, slots=True)
class Envelope:
    """SMTP envelope: MAIL FROM and RCPT TO addresses."""

    sender: str
    recipients: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.sender, "to": list(self.recipients)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Envelope:
        return cls(str(value.get("from") or ""), tuple(str(r) for r in value.get("to") or ()))


@dataclass(frozen=True, slots=True)
class NewSend:
    """A message to queue: built bytes, envelope and delivery options."""

    queue_id: str
    account: str
    message_id: str
    subject: str | None
    envelope: Envelope
    raw: bytes
    send_at: int
    max_attempts: int = DEFAULT_DELIVERY_ATTEMPTS
    gateway: str | None = None
    #: copy (bool | None), sentMailPath, dsn: how the send and the Sent copy go.
    options: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedSend:
    """A stored queue entry."""

    queue_id: str
    account: str
    message_id: str
    subject: str | None
    envelope: Envelope
    gateway: str | None
    options: Mapping[str, Any]
    idempotency_key: str | None
    request_hash: str | None
    answer: Mapping[str, Any] | None
    state: SendState
    progress: Mapping[str, Any] | None
    max_attempts: int
    send_at: int
    created_at: int
    updated_at: int
    finished_at: int | None


@dataclass(frozen=True, slots=True)
class SmtpAnswer:
    """What the server said to a delivery: the final reply of a success, or the
    failing command's reply."""

    response: str
    code: int | None = None
    command: str | None = None


def message_sent(entry: QueuedSend, answer: SmtpAnswer) -> Event:
    return Event(
        entry.account,
        EventName.MESSAGE_SENT,
        {
            "messageId": entry.message_id,
            "response": answer.response,
            "queueId": entry.queue_id,
            "envelope": entry.envelope.as_dict(),
            "networkRouting": None,
        },
    )


def delivery_error(
    entry: QueuedSend,
    error: str,
    *,
    answer: SmtpAnswer | None,
    error_code: str | None,
    attempts_made: int,
    next_attempt: int | None,
) -> Event:
    """`messageDeliveryError` for one failed attempt; `next_attempt` None: the last."""
    data: dict[str, Any] = {
        "queueId": entry.queue_id,
        "envelope": entry.envelope.as_dict(),
        "messageId": entry.message_id,
        "error": error,
        "networkRouting": None,
        "job": {
            "id": entry.queue_id,
            "attemptsMade": attempts_made,
            "attempts": entry.max_attempts,
            "nextAttempt": False if next_attempt is None else iso_time(next_attempt),
        },
    }
    if error_code is not None:
        data["errorCode"] = error_code
    if answer is not None:
        data["smtpResponse"] = answer.response
        if answer.code is not None:
            data["smtpResponseCode"] = answer.code
        if answer.command is not None:
            data["smtpCommand"] = answer.command
    return Event(entry.account, EventName.MESSAGE_DELIVERY_ERROR, data)


def message_failed(entry: QueuedSend, error: str) -> Event:
    first_line = error.splitlines()[0] if error else "delivery failed"
    return Event(
        entry.account,
        EventName.MESSAGE_FAILED,
        {
            "messageId": entry.message_id,
            "queueId": entry.queue_id,
            "error": first_line,
            "networkRouting": None,
        },
    )


def recipients_of(*groups: Sequence[str]) -> tuple[str, ...]:
    """Every address once, in order, compared without case."""
    seen: set[str] = set()
    found: list[str] = []
    for group in groups:
        for address in group:
            if address.lower() not in seen:
                seen.add(address.lower())
                found.append(address)
    return tuple(found)
