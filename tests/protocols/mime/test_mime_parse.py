"""The parser against the corpus (every expected fact), the text limit and the named limits."""

from __future__ import annotations

import pytest

from mailwire.protocols.mime.headers import MAX_HEADER_BYTES, MAX_HEADER_FIELDS
from mailwire.protocols.mime.parse import MAX_DEPTH, MAX_PARTS, parse_message
from mailwire.testing.corpus import CorpusMessage, corpus, message

CORPUS = {item.name: item for item in corpus()}


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_message_parses_to_its_facts(name: str) -> None:
    expected: CorpusMessage = CORPUS[name]
    parsed = parse_message(expected.raw)
    assert parsed.subject == expected.subject
    if expected.from_ is not None:
        sender = parsed.addresses("from")[0]
        assert (sender.name, sender.address) == expected.from_
    text = parsed.text()
    assert (text.plain, text.html) == (expected.plain, expected.html)
    assert (text.plain_part, text.html_part) == (expected.plain_part, expected.html_part)
    assert text.has_more is False
    got = [
        (a.part, a.content_type, a.filename, a.content_id, a.disposition, parsed.content(a))
        for a in parsed.attachments
    ]
    want = [
        (a.part, a.content_type, a.filename, a.content_id, a.disposition, a.content)
        for a in expected.attachments
    ]
    assert got == want
    assert bool(parsed.defects) is (name in {"unclosed_boundary", "wrong_boundary"})


def test_corpus_is_deterministic_and_crlf_only() -> None:
    again = [item.raw for item in corpus.__wrapped__()]
    assert again == [item.raw for item in corpus()]
    for item in corpus():
        assert b"\n" not in item.raw.replace(b"\r\n", b""), item.name


def test_huge_headers_are_all_kept() -> None:
    expected = message("huge_headers")
    parsed = parse_message(expected.raw)
    assert len(parsed.addresses("to")) == int(expected.extra["to_count"])
    assert len(parsed.headers.get_all("received")) == int(expected.extra["received_count"])
    assert len(parsed.headers.get("x-long") or "") == int(expected.extra["x_long_length"])


def test_raw_eight_bit_header_in_a_legacy_charset() -> None:
    parsed = parse_message(message("eight_bit_headers").raw)
    assert parsed.headers.get("x-legacy") == message("eight_bit_headers").extra["x-legacy"]


def test_headers_shape_and_message_ids() -> None:
    raw = (
        b"Message-ID: <a@example.com>\r\nIn-Reply-To: <b@example.com> (comment)\r\n"
        b"References: <c@example.com>\r\n <b@example.com>\r\nSubject: =?utf-8?q?x?=\r\n"
        b"X-Twice: 1\r\nx-twice: 2\r\nDate: Tue, 03 Mar 2026 10:15:00 +0100\r\n\r\nbody"
    )
    parsed = parse_message(raw)
    headers = parsed.headers.as_dict()
    assert headers["x-twice"] == ["1", "2"]
    assert headers["subject"] == ["=?utf-8?q?x?="]  # values as sent; decoding is explicit
    assert headers["references"] == ["<c@example.com> <b@example.com>"]
    assert parsed.message_id == "<a@example.com>"
    assert parsed.in_reply_to == "<b@example.com>"
    assert parsed.references == ("<c@example.com>", "<b@example.com>")
    assert parsed.date is not None
    assert parsed.date.isoformat() == "2026-03-03T10:15:00+01:00"


def test_max_bytes_cuts_on_a_character_boundary() -> None:
    parsed = parse_message(message("alternative_qp_base64").raw)
    text = parsed.text(max_bytes=4)
    assert text.plain == "Caf"  # "é" takes two octets and would cross the limit
    assert text.html == "<htm"
    assert text.has_more is True
    whole = parsed.text(max_bytes=10_000)
    assert whole.has_more is False
    plain_body = b"Caf=C3=A9 au lait, s'il vous pla=C3=AEt. This line is long enough that it is="
    assert whole.encoded_size["plain"] == len(plain_body) + len(b"\r\n wrapped with a soft break.")


def _nested(depth: int) -> bytes:
    head = b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    inner = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--b%d--\r\n" % (depth, depth)
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + inner + closing


def test_nesting_within_the_limit_is_followed() -> None:
    parsed = parse_message(_nested(MAX_DEPTH - 1))
    assert parsed.text().plain == "deep text"
    assert parsed.plain_part is not None
    assert parsed.plain_part.part == ".".join(["1"] * MAX_DEPTH)


def test_nesting_past_the_limit_becomes_one_leaf() -> None:
    parsed = parse_message(_nested(MAX_DEPTH + 20))
    assert any(f"deeper than {MAX_DEPTH}" in defect for defect in parsed.defects)
    (leaf,) = parsed.parts
    assert leaf.content_type == "multipart/mixed"
    assert leaf.part == ".".join(["1"] * MAX_DEPTH)


def test_parts_past_the_limit_are_not_listed() -> None:
    body = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % i for i in range(1500))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body + b"--b--\r\n"
    parsed = parse_message(raw)
    assert len(parsed.parts) == MAX_PARTS
    assert parsed.parts[-1].part == str(MAX_PARTS)
    assert any(str(MAX_PARTS) in defect for defect in parsed.defects)


def test_header_block_is_read_up_to_its_limit() -> None:
    line = b"X-Filler: " + b"y" * 1000 + b"\r\n"
    count = MAX_HEADER_BYTES // len(line) + 10
    raw = b"Subject: first\r\n" + line * count + b"Subject: late\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.headers.truncated
    assert parsed.subject == "first"
    assert parsed.headers.get_all("subject") == ["first"]
    assert parsed.text().plain == "body"  # the body is still found after the long block
    assert parsed.defects


def test_header_fields_past_their_limit_are_dropped() -> None:
    raw = b"".join(b"X-N: %d\r\n" % i for i in range(MAX_HEADER_FIELDS + 5)) + b"\r\nbody"
    parsed = parse_message(raw)
    assert len(parsed.headers.fields) == MAX_HEADER_FIELDS
    assert parsed.headers.truncated


def test_one_gigantic_header_line() -> None:
    raw = b"Subject: " + b"s" * 300_000 + b"\r\nFrom: a@example.com\r\n\r\nhi"
    parsed = parse_message(raw)
    assert len(parsed.subject or "") == 300_000
    assert parsed.addresses("from")[0].address == "a@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n",
        b"no colon here",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\nbody',
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n",
        b'Content-Type: text/plain; charset="\xff\xfe"\r\n\r\n\xff\xfe',
        b"Content-Type: text/plain; charset=base64\r\n\r\nabc",
        b"Content-Type: ;;;==\r\nContent-Disposition: attachment; filename*=bad''%ZZ\r\n\r\nx",
        b"Content-Type: text/plain; name*0*=x-unknown''%E9\r\n\r\nx",
        b"\x00\x00: \x00\r\n\r\n\x00",
    ],
)
def test_degenerate_input_parses(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.parts  # the message always has at least its own body as a part
    for part in parsed.parts:
        parsed.content(part)
        parsed.part_text(part)
    parsed.text(max_bytes=3)


def test_part_lookup_by_number() -> None:
    parsed = parse_message(message("related_cid").raw)
    found = parsed.part("1.2")
    assert found is not None
    assert found.content_id == "<logo@example.com>"
    assert parsed.part("9") is None
