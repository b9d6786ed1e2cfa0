"""The folder listing of an account: LIST, subscription state, names, special use.

With LIST-EXTENDED (RFC 5258, part of IMAP4rev2) one `LIST "" "*" RETURN
(SUBSCRIBED SPECIAL-USE)` brings everything; otherwise LIST and LSUB are
combined. Names arrive in modified UTF-7 (RFC 3501 section 5.1.3) unless
UTF-8 was enabled (RFC 6855); both are decoded to text here.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, assign_special_uses
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.responses import ListMailbox
from mailwire.protocols.imap.utf7 import decode_mailbox

#: Most folders one account may have in the index (a listing beyond is cut, logged).
MAX_MAILBOXES = 10_000


async def list_mailboxes(conn: ImapConnection) -> list[MailboxInfo]:
    """Every folder the server lists, with subscription state."""
    extended = "LIST-EXTENDED" in conn.capabilities or "IMAP4REV2" in conn.enabled
    if extended:
        returns = ["SUBSCRIBED"]
        if "SPECIAL-USE" in conn.capabilities:
            returns.append("SPECIAL-USE")
        result = await conn.execute(commands.list_("", "*", return_options=returns))
        entries = [event for event in result.untagged if isinstance(event, ListMailbox)]
        subscribed = {entry.name for entry in entries if _has(entry.attributes, "\\Subscribed")}
    else:
        result = await conn.execute(commands.list_("", "*"))
        entries = [event for event in result.untagged if isinstance(event, ListMailbox)]
        lsub = await conn.execute(commands.lsub("", "*"))
        subscribed = {event.name for event in lsub.untagged if isinstance(event, ListMailbox)}
    utf8 = "UTF8=ACCEPT" in conn.enabled
    found: dict[str, MailboxInfo] = {}
    for entry in entries[:MAX_MAILBOXES]:
        path = decode_name(entry.name, utf8=utf8)
        if path.upper() == "INBOX":
            path = "INBOX"
        found[path] = MailboxInfo(
            path=path,
            delimiter=entry.delimiter.decode("ascii", "replace") if entry.delimiter else None,
            flags=tuple(entry.attributes),
            subscribed=entry.name in subscribed or path == "INBOX",
        )
    return list(found.values())


def decode_name(raw: bytes, *, utf8: bool) -> str:
    """A listed name as text: UTF-8 when enabled or not ASCII, else modified UTF-7."""
    if utf8 or not raw.isascii():
        return raw.decode("utf-8", "replace")
    try:
        return decode_mailbox(raw)
    except (ProtocolError, ValueError):
        return raw.decode("ascii", "replace")


def with_special_uses(
    mailboxes: Sequence[MailboxInfo], user_paths: dict[str, str]
) -> list[ListedMailbox]:
    uses = assign_special_uses(mailboxes, user_paths)
    return [ListedMailbox(mailbox, *uses[mailbox.path]) for mailbox in mailboxes]


def _has(attributes: Sequence[str], name: str) -> bool:
    return any(attribute.lower() == name.lower() for attribute in attributes)
