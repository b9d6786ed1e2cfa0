"""Messages in the index: their record, their opaque ids, and their API shape.

A message id names one message in one folder for one UIDVALIDITY (RFC 3501
section 2.3.1.1: a UID is only meaningful with its folder's UIDVALIDITY). It
packs the folder's index row id, the UIDVALIDITY and the UID into 12 bytes and
writes them in URL-safe base64, so it is opaque to clients, decodes without a
lookup, and never resolves to another message after a folder is recreated (new
row id) or renumbered (new UIDVALIDITY).
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_ID = struct.Struct(">III")
#: Length of an encoded message id.
MESSAGE_ID_LENGTH = 16

#: System flags whose presence the API reports as booleans (unseen is the inverse).
_FLAG_BOOLEANS = (("\\Flagged", "flagged"), ("\\Answered", "answered"), ("\\Draft", "draft"))


@dataclass(frozen=True, slots=True)
class MessageKey:
    mailbox_id: int
    uid_validity: int
    uid: int


def encode_message_id(mailbox_id: int, uid_validity: int, uid: int) -> str:
    return base64.urlsafe_b64encode(_ID.pack(mailbox_id, uid_validity, uid)).decode("ascii")


def decode_message_id(value: str) -> MessageKey | None:
    """The key inside a message id, or None if `value` is not one of ours."""
    if len(value) != MESSAGE_ID_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != _ID.size:
        return None
    return MessageKey(*_ID.unpack(raw))


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message of one folder, as indexed. Times are epoch milliseconds.

    `envelope` holds the decoded addresses in the API's shape (`from`, `sender`,
    `replyTo`, `to`, `cc`, `bcc`); `structure` the attachment list and text
    part ids derived from BODYSTRUCTURE.
    """

    mailbox_id: int
    uid: int
    flags: tuple[str, ...]
    size: int
    internal_date: int | None = None
    date: int | None = None
    subject: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    email_id: str | None = None
    thread_id: str | None = None
    modseq: int | None = None
    labels: tuple[str, ...] | None = None
    envelope: Mapping[str, Any] | None = None
    structure: Mapping[str, Any] | None = None

    @property
    def from_address(self) -> str | None:
        sender = (self.envelope or {}).get("from")
        if isinstance(sender, Mapping) and sender.get("address"):
            return str(sender["address"]).lower()[:512]
        return None


@dataclass(frozen=True, slots=True)
class FlagState:
    """What an incremental sync learns about a known message."""

    uid: int
    flags: tuple[str, ...]
    modseq: int | None = None
    labels: tuple[str, ...] | None = None


def message_summary(
    record: MessageRecord,
    *,
    uid_validity: int,
    path: str,
    special_use: str | None,
) -> dict[str, Any]:
    """The message in the shape of the reference's message details (`messageNew` data)."""
    message_id = encode_message_id(record.mailbox_id, uid_validity, record.uid)
    data: dict[str, Any] = {"id": message_id, "uid": record.uid, "path": path}
    if record.email_id:
        data["emailId"] = record.email_id
    if record.thread_id:
        data["threadId"] = record.thread_id
    # When the server received it (INTERNALDATE); the Date header only when that is unknown.
    received = record.internal_date if record.internal_date is not None else record.date
    if received is not None:
        data["date"] = iso_time(received)
    data["flags"] = list(record.flags)
    if record.labels is not None:
        data["labels"] = list(record.labels)
    data.update(flag_booleans(record.flags))
    data["size"] = record.size
    if record.subject is not None:
        data["subject"] = record.subject
    for key, value in (record.envelope or {}).items():
        if value:
            data[key] = value
    if record.message_id:
        data["messageId"] = record.message_id
    if record.in_reply_to:
        data["inReplyTo"] = record.in_reply_to
    structure = record.structure or {}
    if structure.get("attachments"):
        data["attachments"] = [
            {"id": f"{message_id}{attachment['part']}", **_without_part(attachment)}
            for attachment in structure["attachments"]
        ]
    data["text"] = {"id": message_id, "encodedSize": dict(structure.get("text") or {})}
    if special_use in ("\\Inbox", "\\Sent", "\\Junk", "\\Trash", "\\Drafts"):
        data["messageSpecialUse"] = special_use
    data["seemsLikeNew"] = special_use != "\\Sent" and "\\Seen" not in record.flags
    return data


def _without_part(attachment: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attachment.items() if key != "part"}


def flag_booleans(flags: Sequence[str]) -> dict[str, bool]:
    """`unseen`, `flagged`, `answered`, `draft`: each present only when true."""
    present = {flag.lower() for flag in flags}
    result = {} if "\\seen" in present else {"unseen": True}
    for flag, key in _FLAG_BOOLEANS:
        if flag.lower() in present:
            result[key] = True
    return result


def list_changes(before: Iterable[str], after: Iterable[str]) -> dict[str, list[str]] | None:
    """`{added?, deleted?, value}` between two flag or label lists, None if equal."""
    old, new = list(before), list(after)
    old_set, new_set = set(old), set(new)
    if old_set == new_set:
        return None
    change: dict[str, list[str]] = {}
    added = [item for item in new if item not in old_set]
    deleted = [item for item in old if item not in new_set]
    if added:
        change["added"] = added
    if deleted:
        change["deleted"] = deleted
    change["value"] = new
    return change


def iso_time(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC string with milliseconds (`...Z`)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
