"""Our part numbers against Dovecot's: BODYSTRUCTURE via `describe_structure`, and BODY[n].

A few corpus messages are appended to the real Dovecot; the attachments and
text sizes `describe_structure` derives from its BODYSTRUCTURE must carry the
same IMAP part numbers, content types and encoded sizes as the parser's, and
`BODY.PEEK[n]` must return exactly the bytes the parser spans for part n.

One known difference: when an embedded message ends with its own multipart's
close delimiter and the enclosing delimiter follows on the next line (no blank
line between), Dovecot counts the line break after the inner close delimiter
into the embedded message; RFC 2046 section 5.1.1 gives that line break to the
enclosing delimiter, and so does the parser. `forwarded_rfc822` has that shape.
And where a multipart's boundary never occurs (`wrong_boundary`), Dovecot
reports one empty text part "1"; the parser reads the whole body as that part,
so the text is not lost: same number, different size.
"""

from __future__ import annotations

import imaplib
import secrets
from collections.abc import AsyncIterator

import pytest

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.messages import describe_structure
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.commands import SequenceSet
from mailwire.protocols.imap.responses import Fetch
from mailwire.protocols.mime.parse import parse_message
from mailwire.testing.corpus import corpus, message
from mailwire.testing.dovecot import Dovecot, MailUser

#: Every corpus message Dovecot can store, in corpus order: message i has UID i + 1.
CHECKED = tuple(item.name for item in corpus() if item.storable)


@pytest.fixture(scope="module")
def stored(dovecot: Dovecot) -> MailUser:
    """One user per module, its INBOX holding the `CHECKED` messages in order (UIDs 1..n)."""
    user = dovecot.add_user(f"mime-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        client.login(user.name, user.password)
        for name in CHECKED:
            status, _ = client.append("INBOX", None, None, message(name).raw)
            assert status == "OK", name
    finally:
        client.logout()
    return user


@pytest.fixture
async def mailbox(dovecot: Dovecot, stored: MailUser) -> AsyncIterator[ImapConnection]:
    conn = await ImapConnection.open(
        dovecot.host, dovecot.imap_port, security="none", command_timeout=10
    )
    await conn.login(stored.name, stored.password)
    await conn.execute(commands.examine("INBOX"))
    yield conn
    await conn.logout()


async def _fetch(conn: ImapConnection, items: list[str]) -> list[Fetch]:
    result = await conn.execute(commands.uid_fetch(SequenceSet.span(1), items))
    fetched = [event for event in result.untagged if isinstance(event, Fetch)]
    return sorted(fetched, key=lambda event: event.uid or 0)


async def test_part_numbers_types_and_sizes_match_bodystructure(mailbox: ImapConnection) -> None:
    fetched = await _fetch(mailbox, ["UID", "BODYSTRUCTURE"])
    assert len(fetched) == len(CHECKED)
    for name, fetch in zip(CHECKED, fetched, strict=True):
        assert fetch.bodystructure is not None
        imap = describe_structure(fetch.bodystructure)
        parsed = parse_message(message(name).raw)
        ours = [(a.part, a.content_type, _size(name, a.encoded_size)) for a in parsed.attachments]
        theirs = [(a["part"], a["contentType"], a["encodedSize"]) for a in imap["attachments"]]
        assert ours == theirs, name
        sizes = parsed.text().encoded_size
        if name == "wrong_boundary":  # see the module docstring
            assert imap["text"] == {"plain": 0}
            assert sizes == {"plain": len(message(name).raw.partition(b"\r\n\r\n")[2])}
        else:
            assert sizes == imap["text"], name


def _size(name: str, size: int) -> int:
    return size + 2 if name == "forwarded_rfc822" else size  # see the module docstring


@pytest.mark.parametrize("name", ["related_cid", "nested_mixed", "rfc2231_filenames", "digest"])
async def test_part_bytes_equal_body_sections(mailbox: ImapConnection, name: str) -> None:
    uid = CHECKED.index(name) + 1
    parsed = parse_message(message(name).raw)
    items = [f"BODY.PEEK[{part.part}]" for part in parsed.parts]
    result = await mailbox.execute(commands.uid_fetch(SequenceSet.span(uid, uid), items))
    (fetch,) = [event for event in result.untagged if isinstance(event, Fetch)]
    served = {section.section: section.data for section in fetch.sections}
    assert served == {part.part: parsed.encoded(part) for part in parsed.parts}


async def test_embedded_message_differs_only_by_the_shared_line_break(
    mailbox: ImapConnection,
) -> None:
    uid = CHECKED.index("forwarded_rfc822") + 1
    parsed = parse_message(message("forwarded_rfc822").raw)
    result = await mailbox.execute(commands.uid_fetch(SequenceSet.span(uid, uid), ["BODY.PEEK[2]"]))
    (fetch,) = [event for event in result.untagged if isinstance(event, Fetch)]
    (section,) = fetch.sections
    embedded = parsed.part("2")
    assert embedded is not None
    assert section.data == parsed.encoded(embedded) + b"\r\n"


async def test_dovecot_stores_every_message_byte_for_byte(mailbox: ImapConnection) -> None:
    fetched = await _fetch(mailbox, ["UID", "BODY.PEEK[]"])
    assert [fetch.sections[0].data for fetch in fetched] == [message(n).raw for n in CHECKED]
