"""FETCH responses to index records: addresses, dates, structure, references."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailwire.backends.imap.messages import _header_date, fetch_items, record_from_fetch
from mailwire.domain.messages import MessageRecord
from mailwire.protocols.imap.parser import NEED_DATA, ResponseParser
from mailwire.protocols.imap.responses import Fetch

REFERENCES = b"References: <root@example.com>\r\n <parent@x>\r\n\r\n"
REPORT = (
    b'* 1 FETCH (UID 7 FLAGS (\\Seen $Work) RFC822.SIZE 31037 INTERNALDATE "18-Oct-2026 02:40:00'
    b' +0000" MODSEQ (5) ENVELOPE ("Tue, 3 Nov 2026 10:00:00 +0100" "=?utf-8?q?R=C3=A9sum=C3=A9?="'
    b' (("=?iso-8859-1?q?Jos=E9?=" NIL "jose" "example.com")) (("Sender" NIL "s" "example.com"))'
    b' NIL ((NIL NIL "team" NIL)("Alice" NIL "alice" "example.com")(NIL NIL NIL NIL))'
    b' NIL NIL "<parent@example.com>" "<m0@example.com>")'
    b' BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 1 NIL NIL NIL NIL)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 40 2 NIL NIL NIL NIL)'
    b'("image" "png" ("name" "logo.png") "<logo@x>" NIL "base64" 300 NIL ("inline" NIL) NIL NIL)'
    b'("application" "pdf" NIL NIL NIL "base64" 30639 NIL ("attachment" ("filename" "r.pdf"))'
    b' NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)'
    b" BODY[HEADER.FIELDS (REFERENCES)] {%d}\r\n%s)\r\n" % (len(REFERENCES), REFERENCES)
)


def fetched(line: bytes) -> Fetch:
    parser = ResponseParser()
    parser.receive_data(b"* OK ready\r\n" + line)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    found = [event for event in events if isinstance(event, Fetch)]
    assert len(found) == 1
    return found[0]


def record(line: bytes = REPORT) -> MessageRecord:
    result = record_from_fetch(3, fetched(line))
    assert result is not None
    return result


def test_a_fetch_becomes_a_record_with_decoded_headers() -> None:
    got = record()
    assert (got.mailbox_id, got.uid, got.size, got.modseq) == (3, 7, 31037, 5)
    assert got.flags == ("\\Seen", "$Work")
    assert got.subject == "Résumé"
    assert got.internal_date == int(datetime(2026, 10, 18, 2, 40, tzinfo=UTC).timestamp() * 1000)
    assert got.date == int(datetime(2026, 11, 3, 9, 0, tzinfo=UTC).timestamp() * 1000)
    assert got.message_id == "<m0@example.com>"
    assert got.in_reply_to == "<parent@example.com>"
    assert got.references == "<root@example.com> <parent@x>"
    assert got.from_address == "jose@example.com"


def test_addresses_take_the_api_shape_and_skip_group_markers() -> None:
    envelope = record().envelope
    assert envelope == {
        "from": {"name": "José", "address": "jose@example.com"},
        "sender": {"name": "Sender", "address": "s@example.com"},
        # The group "team:" start and end markers (NIL host) are not addresses.
        "to": [{"name": "Alice", "address": "alice@example.com"}],
    }


def test_remembered_addresses_never_leak_between_messages() -> None:
    first = record()
    other = record(REPORT.replace(b'"Alice" NIL "alice"', b'"Bob" NIL "bob"'))
    assert first.envelope is not None
    assert other.envelope is not None
    assert first.envelope["to"] == [{"name": "Alice", "address": "alice@example.com"}]
    assert other.envelope["to"] == [{"name": "Bob", "address": "bob@example.com"}]
    again = record()
    assert again.envelope == first.envelope


def test_structure_lists_text_parts_and_attachments_with_part_numbers() -> None:
    assert record().structure == {
        "text": {"plain": 13, "html": 40},
        "attachments": [
            {
                "part": "3",
                "contentType": "image/png",
                "encodedSize": 300,
                "embedded": True,
                "inline": True,
                "filename": "logo.png",
                "contentId": "<logo@x>",
            },
            {
                "part": "4",
                "contentType": "application/pdf",
                "encodedSize": 30639,
                "embedded": False,
                "inline": False,
                "filename": "r.pdf",
            },
        ],
    }


def test_a_fetch_without_uid_is_not_a_record() -> None:
    assert record_from_fetch(1, fetched(b"* 1 FETCH (FLAGS (\\Seen))\r\n")) is None


def test_fetch_items_follow_the_capabilities() -> None:
    plain = fetch_items(frozenset())
    assert "MODSEQ" not in plain
    assert "EMAILID" not in plain
    assert "MODSEQ" in fetch_items(frozenset({"CONDSTORE"}))
    assert {"EMAILID", "THREADID"} <= set(fetch_items(frozenset({"OBJECTID"})))
    assert "X-GM-LABELS" in fetch_items(frozenset({"X-GM-EXT-1"}))


def _reference_date(raw: bytes) -> int | None:
    """What the standard library makes of a Date header (the slow path's answer)."""
    try:
        parsed = email.utils.parsedate_to_datetime(raw.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None
    return None if parsed.tzinfo is None else int(parsed.timestamp() * 1000)


@st.composite
def date_headers(draw: st.DrawFn) -> bytes:
    weekday = draw(st.sampled_from(["", "Mon, ", "tue,", "Sun, "]))
    month = draw(st.sampled_from(["Jan", "feb", "MAR", "Dec", "Foo"]))
    day, year = draw(st.integers(0, 32)), draw(st.integers(1900, 2200))
    hh, mm, ss = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    seconds = draw(st.sampled_from([f":{ss:02d}", ""]))
    zone = draw(
        st.sampled_from(["+0000", "-0000", "+0130", "-1200", "+1400", "-0099", "GMT", "EST"])
    )
    padding = draw(st.sampled_from(["", " ", "\t"]))
    text = f"{padding}{weekday}{day} {month} {year} {hh:02d}:{mm:02d}{seconds} {zone}{padding}"
    return text.encode()


@given(date_headers())
def test_the_date_fast_path_agrees_with_the_standard_library(raw: bytes) -> None:
    assert _header_date(raw) == _reference_date(raw)


def test_dates_without_a_zone_or_unreadable_are_none() -> None:
    assert _header_date(b"Tue, 3 Nov 2026 10:00:00 -0000") is None
    assert _header_date(b"yesterday") is None
    assert _header_date(b"") is None
    assert _header_date(None) is None
    assert _header_date(b"Sat, 31 Feb 2026 10:00:00 +0000") is None


def test_rfc2231_continued_filenames_are_joined_and_decoded() -> None:
    # As Dovecot lists them: each continuation is its own BODYSTRUCTURE parameter.
    line = (
        b'* 1 FETCH (UID 9 BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
        b' 2 1 NIL NIL NIL NIL)("application" "pdf" NIL NIL NIL "base64" 10 NIL ("attachment"'
        b' ("filename*0*" "utf-8\'\'Jahresbericht%20f%C3%BCr%20" "filename*1*" "2026%E2%80%93Q1"'
        b' "filename*2" ".pdf")) NIL NIL)("image" "png" ("name" "=?utf-8?q?Gr=C3=BC=C3=9Fe?=.png")'
        b' NIL NIL "base64" 4 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)'
        b" ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    )
    structure = record(line).structure
    assert structure is not None
    names = [attachment.get("filename") for attachment in structure["attachments"]]
    assert names == ["Jahresbericht für 2026\u2013Q1.pdf", "Grüße.png"]
