"""Transcript tests for the IMAP response parser: bytes in, events out.

Transcripts follow Dovecot's and Gmail's real output. Each is also fed byte
by byte and in random splits, which must yield the same events.
"""

from __future__ import annotations

import random
import socket
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.parser import NEED_DATA, Limits, ResponseParser
from mailwire.protocols.imap.responses import (
    Address,
    BodySection,
    Capability,
    Continuation,
    Disposition,
    Enabled,
    Envelope,
    ESearch,
    Event,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Greeting,
    ListMailbox,
    Multipart,
    Recent,
    ResponseCode,
    Search,
    SequenceSet,
    SinglePart,
    Status,
    Tagged,
    UnknownUntagged,
    UntaggedStatus,
    Vanished,
)
from mailwire.testing.dovecot import Dovecot, MailUser

GREETING = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+]"
    b" Dovecot ready.\r\n"
)


def drain(parser: ResponseParser) -> list[Event]:
    events: list[Event] = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def feed(chunks: list[bytes], limits: Limits | None = None) -> list[Event]:
    parser = ResponseParser(limits=limits or Limits())
    events: list[Event] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events.extend(drain(parser))
    return events


def parse(data: bytes) -> list[Event]:
    """Whole, byte by byte and in random splits: all must agree."""
    whole = feed([data])
    assert feed([data[i : i + 1] for i in range(len(data))]) == whole
    rng = random.Random(data)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(6, len(data) - 1)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert feed(pieces) == whole
    return whole


def one(response: bytes) -> Event:
    events = parse(GREETING + response)
    assert len(events) == 2, events
    return events[1]


# --------------------------------------------------------------------------- greeting, status


def test_greeting_with_capability_code() -> None:
    assert parse(GREETING) == [
        Greeting(
            "OK",
            ResponseCode(
                "CAPABILITY",
                b"IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+",
                items=(
                    "IMAP4REV1",
                    "SASL-IR",
                    "LOGIN-REFERRALS",
                    "ID",
                    "ENABLE",
                    "IDLE",
                    "LITERAL+",
                ),
            ),
            "Dovecot ready.",
        )
    ]


def test_preauth_and_bye_greetings() -> None:
    assert parse(b"* PREAUTH IMAP4rev1 server logged in as Smith\r\n") == [
        Greeting("PREAUTH", None, "IMAP4rev1 server logged in as Smith")
    ]
    assert parse(b"* BYE Too many connections\r\n") == [
        Greeting("BYE", None, "Too many connections")
    ]


def test_first_response_must_be_a_greeting() -> None:
    parser = ResponseParser()
    parser.receive_data(b"a1 OK done\r\n")
    with pytest.raises(ProtocolError, match="greeting"):
        parser.next_event()


def test_gmail_select_transcript() -> None:
    data = GREETING + (
        b"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing"
        b" $Phishing \\*)] Flags permitted.\r\n"
        b"* OK [UIDVALIDITY 3857529045] UIDs valid.\r\n"
        b"* 4 EXISTS\r\n"
        b"* 0 RECENT\r\n"
        b"* OK [UIDNEXT 5] Predicted next UID.\r\n"
        b"* OK [HIGHESTMODSEQ 1234567]\r\n"
        b"* OK [UNSEEN 2] First unseen.\r\n"
        b"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n"
        b"A142 OK [READ-WRITE] INBOX selected. (Success)\r\n"
    )
    events = parse(data)[1:]
    assert events == [
        Flags(
            (
                "\\Answered",
                "\\Flagged",
                "\\Draft",
                "\\Deleted",
                "\\Seen",
                "$NotPhishing",
                "$Phishing",
            )
        ),
        UntaggedStatus(
            "OK",
            ResponseCode(
                "PERMANENTFLAGS",
                b"(\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)",
                items=(
                    "\\Answered",
                    "\\Flagged",
                    "\\Draft",
                    "\\Deleted",
                    "\\Seen",
                    "$NotPhishing",
                    "$Phishing",
                    "\\*",
                ),
            ),
            "Flags permitted.",
        ),
        UntaggedStatus(
            "OK", ResponseCode("UIDVALIDITY", b"3857529045", number=3857529045), "UIDs valid."
        ),
        Exists(4),
        Recent(0),
        UntaggedStatus("OK", ResponseCode("UIDNEXT", b"5", number=5), "Predicted next UID."),
        UntaggedStatus("OK", ResponseCode("HIGHESTMODSEQ", b"1234567", number=1234567), ""),
        UntaggedStatus("OK", ResponseCode("UNSEEN", b"2", number=2), "First unseen."),
        UntaggedStatus(
            "OK",
            ResponseCode("NOMODSEQ"),
            "Sorry, this mailbox format doesn't support modsequences",
        ),
        Tagged("A142", "OK", ResponseCode("READ-WRITE"), "INBOX selected. (Success)"),
    ]


def test_tagged_codes_appenduid_copyuid_trycreate_alert() -> None:
    data = GREETING + (
        b"a1 OK [APPENDUID 38505 3955] APPEND completed\r\n"
        b"a2 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
        b"a3 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n"
        b"* OK [ALERT] System shutdown in 10 minutes\r\n"
        b"* OK [CLOSED] Previous mailbox closed.\r\n"
        b"a4 BAD Error in IMAP command: Unknown command.\r\n"
        b"* BYE [UNAVAILABLE] Server shutting down\r\n"
        b"a5 OK [READ-ONLY] EXAMINE completed\r\n"
    )
    assert parse(data)[1:] == [
        Tagged(
            "a1",
            "OK",
            ResponseCode(
                "APPENDUID",
                b"38505 3955",
                uidvalidity=38505,
                destination=SequenceSet(((3955, 3955),)),
            ),
            "APPEND completed",
        ),
        Tagged(
            "a2",
            "OK",
            ResponseCode(
                "COPYUID",
                b"38505 304,319:320 3956:3958",
                uidvalidity=38505,
                source=SequenceSet(((304, 304), (319, 320))),
                destination=SequenceSet(((3956, 3958),)),
            ),
            "Done",
        ),
        Tagged("a3", "NO", ResponseCode("TRYCREATE"), "Mailbox doesn't exist: Foo"),
        UntaggedStatus("OK", ResponseCode("ALERT"), "System shutdown in 10 minutes"),
        UntaggedStatus("OK", ResponseCode("CLOSED"), "Previous mailbox closed."),
        Tagged("a4", "BAD", None, "Error in IMAP command: Unknown command."),
        UntaggedStatus("BYE", ResponseCode("UNAVAILABLE"), "Server shutting down"),
        Tagged("a5", "OK", ResponseCode("READ-ONLY"), "EXAMINE completed"),
    ]


def test_unknown_code_kept_raw() -> None:
    assert one(b"* NO [WEBALERT https://x.example/a?b=c] Web login required\r\n") == UntaggedStatus(
        "NO", ResponseCode("WEBALERT", b"https://x.example/a?b=c"), "Web login required"
    )


def test_unterminated_code_is_text() -> None:
    assert one(b"* OK [ALERT no bracket\r\n") == UntaggedStatus("OK", None, "[ALERT no bracket")


def test_buffer_limit_on_receive() -> None:
    parser = ResponseParser(Limits(max_buffered=100))
    with pytest.raises(LimitExceededError) as info:
        parser.receive_data(b"* OK " + b"a" * 200)
    assert info.value.limit == "max_buffered"


def test_continuations() -> None:
    assert parse(GREETING + b"+ OK\r\n+ \r\n+\r\n+ dXNlcg==\r\n")[1:] == [
        Continuation("OK"),
        Continuation(""),
        Continuation(""),
        Continuation("dXNlcg=="),
    ]


# --------------------------------------------------------------------------- mailbox data


def test_capability_and_enabled() -> None:
    assert one(b"* CAPABILITY IMAP4rev1 IDLE CONDSTORE QRESYNC AUTH=PLAIN\r\n") == Capability(
        ("IMAP4REV1", "IDLE", "CONDSTORE", "QRESYNC", "AUTH=PLAIN")
    )
    assert one(b"* ENABLED CONDSTORE QRESYNC\r\n") == Enabled(("CONDSTORE", "QRESYNC"))
    assert one(b"* ENABLED\r\n") == Enabled(())


def test_list_and_lsub() -> None:
    data = GREETING + (
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
        b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n'
        b'* LIST (\\All \\HasNoChildren) "/" "[Gmail]/All Mail"\r\n'
        b'* LIST (\\Noselect) NIL ""\r\n'
        b'* LIST () "." {12}\r\nwith"quote\r\n\r\n'
        b'* LSUB () "." "&AMQ-pfel"\r\n'
        b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert parse(data)[1:] == [
        ListMailbox("LIST", ("\\HasNoChildren",), b"/", b"INBOX"),
        ListMailbox("LIST", ("\\HasChildren", "\\Noselect"), b"/", b"[Gmail]"),
        ListMailbox("LIST", ("\\All", "\\HasNoChildren"), b"/", b"[Gmail]/All Mail"),
        ListMailbox("LIST", ("\\Noselect",), None, b""),
        ListMailbox("LIST", (), b".", b'with"quote\r\n'),
        ListMailbox("LSUB", (), b".", b"&AMQ-pfel"),
        ListMailbox("LIST", ("\\Subscribed",), b"/", b"Foo", ((b"CHILDINFO", (b"SUBSCRIBED",)),)),
    ]


def test_list_quoted_escapes() -> None:
    assert one(b'* LIST () "\\\\" "a\\"b"\r\n') == ListMailbox("LIST", (), b"\\", b'a"b')


def test_status() -> None:
    event = one(
        b'* STATUS "Sent Items" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 1 UNSEEN 0'
        b" HIGHESTMODSEQ 7011231777 SIZE 123456)\r\n"
    )
    assert event == Status(
        b"Sent Items",
        (
            ("MESSAGES", 231),
            ("UIDNEXT", 44292),
            ("UIDVALIDITY", 1),
            ("UNSEEN", 0),
            ("HIGHESTMODSEQ", 7011231777),
            ("SIZE", 123456),
        ),
    )
    assert isinstance(event, Status)
    assert event.get("messages") == 231
    assert event.get("recent") is None


def test_search() -> None:
    assert one(b"* SEARCH 2 84 882\r\n") == Search((2, 84, 882))
    assert one(b"* SEARCH\r\n") == Search(())
    assert one(b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n") == Search(
        (2, 5, 6, 7, 11, 12, 18, 19, 20, 23), 917162500
    )


def test_esearch() -> None:
    assert one(b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n') == ESearch(
        "A282", False, min=2, count=3
    )
    assert one(b'* ESEARCH (TAG "A283") UID ALL 2,10:11,20:*\r\n') == ESearch(
        "A283", True, all=SequenceSet(((2, 2), (10, 11), (20, None)))
    )
    assert one(
        b'* ESEARCH (TAG "a") UID MIN 7 MAX 3800 COUNT 4 MODSEQ 12 PARTIAL (1:5 NIL)\r\n'
    ) == (
        ESearch(
            "a", True, min=7, max=3800, count=4, modseq=12, other=(("PARTIAL", (b"1:5", None)),)
        )
    )
    assert one(b"* ESEARCH\r\n") == ESearch(None, False)


def test_counters() -> None:
    events = parse(GREETING + b"* 23 EXISTS\r\n* 3 RECENT\r\n* 44 EXPUNGE\r\n")[1:]
    assert events == [Exists(23), Recent(3), Expunge(44)]


def test_vanished() -> None:
    assert one(b"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n") == Vanished(
        True, SequenceSet(((41, 41), (43, 116), (118, 118), (120, 211), (214, 540)))
    )
    assert one(b"* VANISHED 405,407,410,425\r\n") == Vanished(
        False, SequenceSet(((405, 405), (407, 407), (410, 410), (425, 425)))
    )


def test_unknown_untagged_kept_raw() -> None:
    assert one(b'* ID ("name" "Dovecot")\r\n') == UnknownUntagged("ID", None, b'("name" "Dovecot")')
    assert one(b"* 3 XSTUFF a b\r\n") == UnknownUntagged("XSTUFF", 3, b" a b")


def test_sequence_set() -> None:
    s = SequenceSet.parse(b"1:5,7,9:*,*:3,*")
    assert s.ranges == ((1, 5), (7, 7), (9, None), (3, None), (None, None))
    assert str(s) == "1:5,7,9:*,3:*,*"
    assert list(SequenceSet.parse(b"4:2,9").expand(10)) == [2, 3, 4, 9]
    for bad in (b"", b"0", b"1:", b"a", b"1,,2"):
        with pytest.raises(ProtocolError):
            SequenceSet.parse(bad)


# --------------------------------------------------------------------------- FETCH

DOVECOT_FETCH = (
    b"* 12 FETCH (UID 1234 FLAGS (\\Seen $Forwarded) MODSEQ (42) RFC822.SIZE 5000"
    b' INTERNALDATE "17-Jul-1996 02:44:25 -0700"'
    b' ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes"'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
    b' (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu"))'
    b' ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL'
    b' "<B27397-0100000@cac.washington.edu>")'
    b' BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23'
    b" NIL NIL NIL NIL)"
    b'("APPLICATION" "PDF" ("NAME" {9}\r\nfoo\r\n.pdf) "<960723163407.20117h@cac.washington.edu>"'
    b' "Compiled" "BASE64" 4554 NIL ("ATTACHMENT" ("FILENAME" "foo.pdf")) NIL NIL)'
    b' "MIXED" ("BOUNDARY" "b1") NIL NIL NIL))\r\n'
)

TERRY = Address(b"Terry Gray", None, b"gray", b"cac.washington.edu")


def test_dovecot_fetch_full() -> None:
    event = one(DOVECOT_FETCH)
    assert isinstance(event, Fetch)
    assert event.seq == 12
    assert event.uid == 1234
    assert event.flags == ("\\Seen", "$Forwarded")
    assert event.modseq == 42
    assert event.rfc822_size == 5000
    assert event.internaldate == datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7))
    )
    env = event.envelope
    assert env is not None
    assert env.date == b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"
    assert env.subject == b"IMAP4rev1 WG mtg summary and minutes"
    assert env.from_ == env.sender == env.reply_to == (TERRY,)
    assert env.to == (Address(None, None, b"imap", b"cac.washington.edu"),)
    assert env.cc == (
        Address(None, None, b"minutes", b"CNRI.Reston.VA.US"),
        Address(b"John Klensin", None, b"KLENSIN", b"MIT.EDU"),
    )
    assert env.bcc == ()
    assert env.in_reply_to is None
    assert env.message_id == b"<B27397-0100000@cac.washington.edu>"
    assert event.bodystructure == Multipart(
        (
            SinglePart("TEXT", "PLAIN", (("CHARSET", b"US-ASCII"),), None, None, "7BIT", 1152, 23),
            SinglePart(
                "APPLICATION",
                "PDF",
                (("NAME", b"foo\r\n.pdf"),),
                b"<960723163407.20117h@cac.washington.edu>",
                b"Compiled",
                "BASE64",
                4554,
                disposition=Disposition("ATTACHMENT", (("FILENAME", b"foo.pdf"),)),
            ),
        ),
        "MIXED",
        (("BOUNDARY", b"b1"),),
    )


def test_fetch_body_sections_with_literals() -> None:
    data = GREETING + (
        b"* 1 FETCH (UID 7 BODY[] {12}\r\nHello\r\nWorld)\r\n"
        b"* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {22}\r\nSubject: hi\r\nFrom: x\r\n"
        b" UID 8)\r\n"
        b'* 3 FETCH (BODY[1]<0> "abc" BINARY[2] ~{3}\r\n\x00\x01\x02'
        b" BODY[3] NIL BINARY.SIZE[2] 3)\r\n"
        b"a1 OK Fetch completed.\r\n"
    )
    events = parse(data)[1:]
    assert events[0] == Fetch(
        1, uid=7, sections=(BodySection("BODY", "", None, b"Hello\r\nWorld"),)
    )
    assert events[1] == Fetch(
        2,
        uid=8,
        sections=(
            BodySection(
                "BODY", "HEADER.FIELDS (SUBJECT FROM)", None, b"Subject: hi\r\nFrom: x\r\n"
            ),
        ),
    )
    third = events[2]
    assert isinstance(third, Fetch)
    assert third.sections == (
        BodySection("BODY", "1", 0, b"abc"),
        BodySection("BINARY", "2", None, b"\x00\x01\x02"),
        BodySection("BODY", "3", None, None),
    )
    assert third.section("BINARY[2]") == BodySection("BINARY", "2", None, b"\x00\x01\x02")
    assert third.section("BODY[9]") is None
    assert third.other == (("BINARY.SIZE[2]", b"3"),)
    assert events[3] == Tagged("a1", "OK", None, "Fetch completed.")


def test_gmail_fetch_extensions() -> None:
    event = one(
        b"* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334865"
        b' X-GM-LABELS (\\Inbox \\Sent Important "Muy Importante" {5}\r\na\r\nbc) UID 4'
        b" FLAGS () EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9) MODSEQ (12121231000)"
        b' INTERNALDATE " 1-Feb-2024 09:05:00 +0530")\r\n'
    )
    assert event == Fetch(
        1,
        uid=4,
        flags=(),
        modseq=12121231000,
        internaldate=datetime(2024, 2, 1, 9, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        x_gm_msgid=1278455344230334865,
        x_gm_thrid=1278455344230334865,
        x_gm_labels=(b"\\Inbox", b"\\Sent", b"Important", b"Muy Importante", b"a\r\nbc"),
        email_id="M6d99ac3275bb4e",
        thread_id="T64b478a75b7ea9",
    )


def test_fetch_threadid_nil_and_unknown_items() -> None:
    event = one(b'* 5 FETCH (THREADID NIL X-FUTURE (1 (2 "x")) PREVIEW {3}\r\nabc)\r\n')
    assert event == Fetch(5, other=(("X-FUTURE", (b"1", (b"2", b"x"))), ("PREVIEW", b"abc")))


def test_fetch_message_rfc822_bodystructure() -> None:
    event = one(
        b'* 9 FETCH (BODYSTRUCTURE ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 800'
        b' (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 300 10 NIL NIL NIL NIL)'
        b' 30 NIL ("INLINE" NIL) ("EN" "DE") "http://x" "ext1" (1 2)))\r\n'
    )
    assert isinstance(event, Fetch)
    body = event.bodystructure
    assert isinstance(body, SinglePart)
    assert (body.type, body.subtype, body.size, body.lines) == ("MESSAGE", "RFC822", 800, 30)
    assert body.envelope is not None
    assert body.envelope.subject == b"inner"
    assert body.envelope.from_ == ()
    assert body.body == SinglePart(
        "TEXT", "HTML", (("CHARSET", b"utf-8"),), None, None, "QUOTED-PRINTABLE", 300, 10
    )
    assert body.disposition == Disposition("INLINE", ())
    assert body.language == (b"EN", b"DE")
    assert body.location == b"http://x"
    assert body.extension == (b"ext1", (b"1", b"2"))


def test_fetch_nested_multipart_and_body() -> None:
    event = one(
        b'* 2 FETCH (BODY ((("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 1)("TEXT" "HTML" NIL NIL NIL'
        b' "7BIT" 20 2) "ALTERNATIVE")("IMAGE" "PNG" NIL "<id>" NIL "BASE64" 30) "RELATED"))\r\n'
    )
    assert isinstance(event, Fetch)
    assert event.bodystructure == Multipart(
        (
            Multipart(
                (
                    SinglePart("TEXT", "PLAIN", (), None, None, "7BIT", 10, 1),
                    SinglePart("TEXT", "HTML", (), None, None, "7BIT", 20, 2),
                ),
                "ALTERNATIVE",
            ),
            SinglePart("IMAGE", "PNG", (), b"<id>", None, "BASE64", 30),
        ),
        "RELATED",
    )


def test_fetch_edge_cases_read_like_the_common_shape() -> None:
    # Each item here is off the fast path's common shape (literal, escapes, an empty
    # address list, lower case, "NIL" quoted, a section with parens, BODYSTRUCTURE
    # before other items); the event must be what the plain spelling gives.
    event = one(
        b'* 3 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1) uid 9'
        b' ENVELOPE ("d" {6}\r\nsub\r\nj () (("a \\"b\\"" NIL "c" "d"))'
        b' NIL NIL NIL nil "NIL" "<m>") FLAGS (\\Seen NIL)'
        b' BODY[HEADER.FIELDS (A B)]<0> {4}\r\nA: 1 INTERNALDATE "02-jan-2026 10:00:00 -0130"'
        b" RFC822.SIZE 5)\r\n"
    )
    sender = (Address(b'a "b"', None, b"c", b"d"),)
    assert event == Fetch(
        3,
        uid=9,
        flags=("\\Seen", "NIL"),
        rfc822_size=5,
        internaldate=datetime(2026, 1, 2, 10, tzinfo=timezone(-timedelta(hours=1, minutes=30))),
        envelope=Envelope(b"d", b"sub\r\nj", (), sender, (), (), (), (), b"NIL", b"<m>"),
        bodystructure=SinglePart("TEXT", "PLAIN", (), None, None, "7BIT", 5, 1),
        sections=(BodySection("BODY", "HEADER.FIELDS (A B)", 0, b"A: 1"),),
    )


def test_fetch_common_shape_over_many_responses_shares_nothing_mutable() -> None:
    # The parser remembers repeated flags and address lists; equal input, equal events.
    line = (
        b'* %d FETCH (UID %d FLAGS (\\Seen) ENVELOPE ("d" "s" (("A" NIL "a" "x.org"))'
        b' NIL NIL NIL NIL NIL NIL "<m>") MODSEQ (%d))\r\n'
    )
    events = parse(GREETING + b"".join(line % (n, n, n) for n in range(1, 4)))[1:]
    sender = (Address(b"A", None, b"a", b"x.org"),)
    envelope = Envelope(b"d", b"s", sender, (), (), (), (), (), None, b"<m>")
    assert events == [
        Fetch(n, uid=n, flags=("\\Seen",), envelope=envelope, modseq=n) for n in range(1, 4)
    ]


def test_pipelined_in_one_chunk() -> None:
    data = GREETING + b"* 1 EXISTS\r\n* 1 FETCH (UID 1 BODY[] {2}\r\nhi)\r\na OK x\r\n"
    assert feed([data])[1:] == [
        Exists(1),
        Fetch(1, uid=1, sections=(BodySection("BODY", "", None, b"hi"),)),
        Tagged("a", "OK", None, "x"),
    ]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "line",
    [
        b"* 1 FETCH (UID)\r\n",
        b"* 1 FETCH (UID x)\r\n",
        b'* 1 FETCH (INTERNALDATE "31-Foo-1996 02:44:25 -0700")\r\n',
        b'* 1 FETCH (INTERNALDATE "31-Feb-1996 02:44:25 -0700")\r\n',
        b"* 1 FETCH (ENVELOPE (NIL))\r\n",
        b"* 1 FETCH (UID 1\r\n",
        b'* LIST () "/" "unterminated\r\n',
        b"* STATUS x (MESSAGES)\r\n",
        b"a1 MAYBE ok\r\n",
        b"* SEARCH 1 x\r\n",
        b"* VANISHED 1:x\r\n",
        b"* OK [UIDNEXT abc] x\r\n",
        b"* 1 FETCH (UID " + b"9" * 5000 + b")\r\n",
    ],
)
def test_malformed_raises_protocol_error_and_parser_stays_dead(line: bytes) -> None:
    parser = ResponseParser()
    parser.receive_data(GREETING + line)
    assert isinstance(parser.next_event(), Greeting)
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert len(str(info.value)) < 200
    with pytest.raises(ProtocolError, match="earlier error"):
        parser.next_event()
    with pytest.raises(ProtocolError, match="earlier error"):
        parser.receive_data(b"a OK\r\n")


# --------------------------------------------------------------------------- limits


def pump(parser: ResponseParser, chunk: bytes, times: int, fed: list[int]) -> None:
    """Feed `chunk` up to `times` times, recording sizes, expecting no event."""
    for _ in range(times):
        assert parser.next_event() is NEED_DATA
        parser.receive_data(chunk)
        fed.append(len(chunk))


def test_endless_line_hits_line_limit_without_growing() -> None:
    parser = ResponseParser(Limits(max_line_length=10_000))
    parser.receive_data(GREETING)
    assert isinstance(parser.next_event(), Greeting)
    fed: list[int] = []
    with pytest.raises(LimitExceededError) as info:
        pump(parser, b"x" * 4096, 1000, fed)
    assert info.value.limit == "max_line_length"
    assert sum(fed) <= 10_000 + 2 * 4096  # refused as soon as the limit was crossed


def test_default_line_limit_applies_to_endless_line() -> None:
    limits = Limits()
    parser = ResponseParser(limits)
    chunk = b"y" * (1 << 20)
    fed: list[int] = []
    with pytest.raises(LimitExceededError) as info:
        pump(parser, chunk, limits.max_line_length // len(chunk) + 2, fed)
    assert info.value.limit == "max_line_length"
    assert sum(fed) <= limits.max_line_length + 2 * len(chunk)


def test_huge_literal_announcement_refused_at_once() -> None:
    parser = ResponseParser()
    parser.receive_data(GREETING + b"* 1 FETCH (BODY[] {10000000000}\r\n")
    parser.next_event()
    with pytest.raises(LimitExceededError) as info:
        parser.next_event()
    assert info.value.limit == "max_literal_size"


def test_many_literals_hit_buffer_limit() -> None:
    parser = ResponseParser(Limits(max_literal_size=1000, max_buffered=5000))
    parser.receive_data(GREETING)
    parser.next_event()
    parser.receive_data(b"* 1 FETCH (X-A {900}\r\n")
    fed: list[int] = []
    with pytest.raises(LimitExceededError) as info:
        pump(parser, b"z" * 900 + b" X-B {900}\r\n", 100, fed)
    assert info.value.limit == "max_buffered"
    assert sum(fed) <= 5000


def test_deep_nesting() -> None:
    parser = ResponseParser()
    parser.receive_data(GREETING + b"* 1 FETCH (X " + b"(" * 10_000 + b")" * 10_000 + b")\r\n")
    parser.next_event()
    with pytest.raises(LimitExceededError) as info:
        parser.next_event()
    assert info.value.limit == "max_nesting_depth"


def test_million_item_list() -> None:
    parser = ResponseParser()
    parser.receive_data(GREETING + b"* FLAGS (" + b"a " * 1_000_000 + b"b)\r\n")
    parser.next_event()
    with pytest.raises(LimitExceededError) as info:
        parser.next_event()
    assert info.value.limit == "max_list_items"


TEN = Limits(max_list_items=10)


@pytest.mark.parametrize(
    ("line", "limits", "limit"),
    [
        (b"* 1 FETCH (FLAGS (%s))\r\n" % b" ".join([b"a"] * 11), TEN, "max_list_items"),
        (
            b"* 1 FETCH (ENVELOPE (NIL NIL (%s) NIL NIL NIL NIL NIL NIL NIL))\r\n"
            % b"".join([b'(NIL NIL "a" "b")'] * 11),
            TEN,
            "max_list_items",
        ),
        (
            b'* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL NIL NIL))\r\n',
            Limits(max_nesting_depth=3),
            "max_nesting_depth",
        ),
        (b"* 1 FETCH (%s)\r\n" % b" ".join([b"UID 1"] * 6), TEN, "max_list_items"),
        (
            b'* 1 FETCH (BODYSTRUCTURE ("A" "B" ("C" ("D")) NIL NIL "E" 1))\r\n',
            Limits(max_nesting_depth=3),
            "max_nesting_depth",
        ),
    ],
)
def test_limits_hold_on_common_fetch_items(line: bytes, limits: Limits, limit: str) -> None:
    parser = ResponseParser(limits)
    parser.receive_data(GREETING + line)
    parser.next_event()
    with pytest.raises(LimitExceededError) as info:
        parser.next_event()
    assert info.value.limit == limit


def test_limits_within_bounds_pass() -> None:
    limits = Limits(max_nesting_depth=3, max_list_items=4, max_line_length=60, max_literal_size=5)
    events = feed([b"* OK hi\r\n", b"* 1 FETCH (X ((1 2 3)) BODY[] {5}\r\n12345)\r\n"], limits)
    assert events[1] == Fetch(
        1,
        sections=(BodySection("BODY", "", None, b"12345"),),
        other=(("X", ((b"1", b"2", b"3"),)),),
    )


# --------------------------------------------------------------------------- real Dovecot

MIME_MESSAGE = (
    b"From: Ann Example <ann@example.org>\r\n"
    b"To: bob@example.net, Carol <carol@example.com>\r\n"
    b"Subject: parser check\r\n"
    b"Message-ID: <parser-check@example.org>\r\n"
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"hello\r\n"
    b"--b1\r\n"
    b'Content-Type: application/octet-stream; name="x.bin"\r\n'
    b'Content-Disposition: attachment; filename="x.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAEC\r\n"
    b"--b1--\r\n"
)


class Session:
    """A plain socket to Dovecot feeding `ResponseParser` in small reads."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.parser = ResponseParser()

    def read_until(self, done: type[Event] | str) -> list[Event]:
        events: list[Event] = []
        while True:
            while (event := self.parser.next_event()) is not NEED_DATA:
                events.append(event)
                if (isinstance(done, str) and isinstance(event, Tagged) and event.tag == done) or (
                    isinstance(done, type) and isinstance(event, done)
                ):
                    return events
            data = self.sock.recv(37)  # small reads: responses arrive split anywhere
            assert data, "Dovecot closed the connection"
            self.parser.receive_data(data)

    def command(self, tag: str, line: str) -> list[Event]:
        self.sock.sendall(f"{tag} {line}\r\n".encode())
        events = self.read_until(tag)
        last = events[-1]
        assert isinstance(last, Tagged)
        assert last.status == "OK", last
        return events


def test_real_dovecot_session(dovecot: Dovecot, dovecot_user: MailUser) -> None:
    folder = f"Parser{uuid.uuid4().hex[:8]}"
    dovecot.deliver(
        dovecot_user.name,
        MIME_MESSAGE,
        folder=folder,
        flags="S",
        internaldate=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    session = Session(dovecot.host, dovecot.imap_port)
    try:
        greeting = session.read_until(Greeting)
        assert isinstance(greeting[0], Greeting)
        session.command("a1", f'LOGIN "{dovecot_user.name}" "{dovecot_user.password}"')
        assert Enabled(("CONDSTORE",)) in session.command("a2", "ENABLE CONDSTORE")
        listed = session.command("a3", 'LIST "" "*"')
        assert any(isinstance(e, ListMailbox) and e.name == folder.encode() for e in listed)
        selected = session.command("a4", f"SELECT {folder}")
        assert Exists(1) in selected
        codes = [e.code.name for e in selected if isinstance(e, UntaggedStatus) and e.code]
        assert {"UIDVALIDITY", "UIDNEXT", "PERMANENTFLAGS", "HIGHESTMODSEQ"} <= set(codes)
        fetched = session.command(
            "a5",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ ENVELOPE BODYSTRUCTURE"
            " BODY.PEEK[])",
        )
        fetch = fetched[0]
        assert isinstance(fetch, Fetch)
        assert fetch.uid == 1
        assert fetch.flags is not None
        assert "\\Seen" in fetch.flags
        assert fetch.rfc822_size == len(MIME_MESSAGE)
        assert fetch.internaldate == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
        assert fetch.modseq is not None
        assert fetch.envelope is not None
        assert fetch.envelope.subject == b"parser check"
        assert fetch.envelope.from_ == (Address(b"Ann Example", None, b"ann", b"example.org"),)
        assert len(fetch.envelope.to) == 2
        assert fetch.envelope.message_id == b"<parser-check@example.org>"
        body = fetch.bodystructure
        assert isinstance(body, Multipart)
        assert body.subtype == "MIXED"
        assert [(p.type, p.subtype) for p in body.parts if isinstance(p, SinglePart)] == [
            ("TEXT", "PLAIN"),
            ("APPLICATION", "OCTET-STREAM"),
        ]
        assert body.parts[1].disposition == Disposition("ATTACHMENT", (("FILENAME", b"x.bin"),))
        assert fetch.section("BODY[]") == BodySection("BODY", "", None, MIME_MESSAGE)
        status = session.command("a6", f"STATUS {folder} (MESSAGES UIDNEXT UNSEEN)")
        assert Status(folder.encode(), (("MESSAGES", 1), ("UIDNEXT", 2), ("UNSEEN", 0))) in status
        assert Search((1,)) in session.command("a7", "UID SEARCH ALL")
        session.sock.sendall(b"a8 LOGOUT\r\n")
        bye = session.read_until("a8")
        assert isinstance(bye[0], UntaggedStatus)
        assert bye[0].status == "BYE"
    finally:
        session.sock.close()


def test_a_flag_keyword_named_nil_is_a_flag_not_nil() -> None:
    parser = ResponseParser()
    parser.receive_data(b"* OK ready\r\n* 1 FETCH (FLAGS (\\Seen NIL))\r\n")
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    assert isinstance(events[1], Fetch)
    assert events[1].flags == ("\\Seen", "NIL")
