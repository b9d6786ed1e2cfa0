"""Bounces and complaints among new messages: `messageBounce` and `messageComplaint`.

The sync engine calls `report_events` with the messages it just added to a
folder. Reading every new message whole would double the cost of new mail, so
only the likely ones are read: a message whose structure carries a report part
(RFC 3464 delivery status, RFC 6533, RFC 5965 feedback report), or whose sender
is a mail system (MAILER-DAEMON, postmaster), or whose subject reads like a
delivery failure. Those are fetched (`BODY.PEEK[]`, the first
`MAX_REPORT_FETCH` bytes, leaving \\Seen alone) on the sync connection and
parsed (`protocols.mime.bounces`, `protocols.mime.complaints`); the parsing
runs in a worker thread.

A bounce raises `messageBounce` once it names the recipient, the action and the
original Message-ID (as the reference requires); a feedback report in the
Inbox that names an original recipient raises `messageComplaint`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.message_events import folder_event
from mailwire.domain.messages import MessageRecord, encode_message_id
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.arguments import SequenceSet
from mailwire.protocols.imap.responses import Fetch
from mailwire.protocols.mime.bounces import parse_bounce
from mailwire.protocols.mime.complaints import parse_complaint

#: Bytes of a candidate read at most (the parsers look at the first MiB).
MAX_REPORT_FETCH = 1024 * 1024
#: Candidates read per sync round at most (a flood of bounces is read over rounds).
MAX_CANDIDATES = 50
REPORT_PARTS = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "message/feedback-report"}
)
_DAEMONS = ("mailer-daemon", "mailer_daemon", "mail-daemon", "postmaster", "mdaemon")
_SUBJECT = re.compile(
    r"undeliver|delivery status notification|returned mail|mail delivery (?:failed|failure"
    r"|subsystem)|failure notice|delivery failure|non-?delivery|could not be delivered"
    r"|abuse report|complaint about message|feedback report",
    re.IGNORECASE,
)


def looks_like_report(record: MessageRecord) -> bool:
    """Whether the message is worth reading as a possible bounce or complaint."""
    for attachment in (record.structure or {}).get("attachments") or ():
        if isinstance(attachment, dict) and attachment.get("contentType") in REPORT_PARTS:
            return True
    sender = record.from_address or ""
    if sender.split("@", 1)[0].startswith(_DAEMONS):
        return True
    return bool(record.subject and _SUBJECT.search(record.subject[:500]))


async def report_events(
    conn: ImapConnection,
    account: str,
    mailbox: MailboxRecord,
    uid_validity: int,
    records: Sequence[MessageRecord],
) -> list[Event]:
    """The bounce and complaint events of `records` (messages of the selected folder)."""
    candidates = [record.uid for record in records if looks_like_report(record)]
    if not candidates:
        return []
    result = await conn.execute(
        commands.uid_fetch(
            SequenceSet.of(candidates[:MAX_CANDIDATES]), [f"BODY.PEEK[]<0.{MAX_REPORT_FETCH}>"]
        )
    )
    raws: list[tuple[int, bytes]] = []
    for event in result.untagged:
        if isinstance(event, Fetch) and event.uid is not None:
            section = event.section("BODY[]")
            if section is not None and section.data:
                raws.append((event.uid, section.data))
    if not raws:
        return []
    inbox = mailbox.path.upper() == "INBOX" or (mailbox.special_use or "") == "\\Inbox"
    return await asyncio.to_thread(_parse_all, raws, account, mailbox, uid_validity, inbox)


def _parse_all(
    raws: Sequence[tuple[int, bytes]],
    account: str,
    mailbox: MailboxRecord,
    uid_validity: int,
    inbox: bool,
) -> list[Event]:
    events = []
    for uid, raw in raws:
        message_id = encode_message_id(mailbox.id, uid_validity, uid)
        bounce = parse_bounce(raw)
        if bounce is not None:
            if bounce.event_ready:
                data = bounce.to_event_data(message_id)
                events.append(folder_event(account, EventName.MESSAGE_BOUNCE, mailbox, data))
            continue
        if inbox:
            complaint = parse_complaint(raw)
            if complaint is not None:
                data = complaint.to_event_data(message_id)
                events.append(folder_event(account, EventName.MESSAGE_COMPLAINT, mailbox, data))
    return events
