"""Header fields, encoded words, addresses and the charset fallbacks."""

from __future__ import annotations

import base64

import pytest

from mailwire.protocols.mime.charsets import codec_for, decode_text
from mailwire.protocols.mime.headers import (
    Address,
    decode_words,
    parse_addresses,
    parse_date,
    parse_fields,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
        ("=?UTF-8?B?Y2Fmw6k=?= and =?utf-8?b?Y3LDqG1l?=", "café and crème"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # blanks between adjacent words drop
        ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        ("=?utf-8?b?w6k=?=  x", "é  x"),
        ("=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "é"),  # a character split across two words
        ("=?iso-8859-1?q?caf=E9?= =?utf-8?q?=C3=A9?=", "caféé"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?utf-8*en?q?hi?=", "hi"),  # RFC 2231 language suffix
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
        ("=?utf-8?b?!!!?=", ""),
        ('"=?utf-8?q?quoted?="', '"quoted"'),
    ],
)
def test_decode_words(value: str, expected: str) -> None:
    assert decode_words(value) == expected


def test_iso_2022_jp_words_join_as_bytes() -> None:
    first = base64.b64encode("日本".encode("iso2022_jp")).decode()
    second = base64.b64encode("語".encode("iso2022_jp")).decode()
    assert decode_words(f"=?ISO-2022-JP?B?{first}?= =?ISO-2022-JP?B?{second}?=") == "日本語"


def test_fields_unfold_and_keep_order() -> None:
    headers = parse_fields(
        b"From: a@example.com\r\nSubject: one\r\n two\r\n\tthree\r\n continuation orphan\r\n"
        b"garbage line\r\nTo:\r\n b@example.com\r\nX-Empty:\r\n"
    )
    assert headers.fields == (
        ("from", "a@example.com"),
        ("subject", "one two\tthree continuation orphan"),
        ("to", "b@example.com"),
        ("x-empty", ""),
    )
    assert headers.get("SUBJECT") == "one two\tthree continuation orphan"
    assert headers.get("missing") is None
    assert list(headers) == list(headers.fields)


def test_leading_continuation_is_dropped() -> None:
    assert parse_fields(b" orphan\r\nSubject: x\r\n").fields == (("subject", "x"),)


def test_addresses() -> None:
    value = (
        '"Doe, Jane" <jane@example.com>, =?utf-8?q?J=C3=B6rg?= <j@example.de>, '
        "plain@example.org, undisclosed-recipients:;, <>"
    )
    assert parse_addresses(value) == (
        Address("jane@example.com", "Doe, Jane"),
        Address("j@example.de", "Jörg"),
        Address("plain@example.org"),
    )
    assert Address("a@b.c").as_dict() == {"address": "a@b.c"}
    assert Address("a@b.c", "A").as_dict() == {"name": "A", "address": "a@b.c"}
    assert parse_addresses(None) == ()


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("Tue, 03 Mar 2026 10:15:00 +0100", "2026-03-03T10:15:00+01:00"),
        ("3 Mar 2026 10:15 -0500", "2026-03-03T10:15:00-05:00"),
        ("not a date", None),
        ("Tue, 03 Mar 2026 10:15:00 -0000", None),  # "-0000": no zone known (RFC 5322 3.3)
        ("", None),
    ],
)
def test_dates(value: str, iso: str | None) -> None:
    parsed = parse_date(value)
    assert (parsed.isoformat() if parsed else None) == iso


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Grüße".encode(), "utf-8", "Grüße"),
        ("Grüße".encode(), None, "Grüße"),
        ("Grüße".encode(), "us-ascii", "Grüße"),  # lying label: UTF-8 wins
        ("“x” €".encode("cp1252"), "iso-8859-1", "“x” €"),  # read as its superset
        ("“x” €".encode("cp1252"), None, "“x” €"),
        (b"\x81\x8d", None, "\x81\x8d"),  # undefined in cp1252: Latin-1 maps every byte
        ("Привет".encode("koi8-r"), "KOI8-R", "Привет"),
        ("中文".encode("gb18030"), "gb2312", "中文"),
        ("한국어".encode("cp949"), "ks_c_5601-1987", "한국어"),
        (b"abc", "rot13", "abc"),  # not a text codec
        (b"abc", "base64", "abc"),
        (b"abc", '"utf-8"', "abc"),
    ],
)
def test_decode_text_ladder(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_text(data, charset) == expected


def test_codec_for() -> None:
    assert codec_for("UTF8") == "utf-8"
    assert codec_for("windows-1251") == "cp1251"
    assert codec_for("no-such-charset") is None
    assert codec_for(None) is None
    assert codec_for("\x00") is None
