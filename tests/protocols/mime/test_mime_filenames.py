"""Safe file names and RFC 6266 Content-Disposition values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.protocols.mime.filenames import (
    DEFAULT_FILENAME,
    MAX_FILENAME_BYTES,
    content_disposition,
    safe_filename,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\evil.exe", "evil.exe"),
        ("a\x00b\x1fc\x7f.txt", "abc.txt"),
        ('what?<>:"|*.txt', "what.txt"),
        ("..", DEFAULT_FILENAME),
        ("", DEFAULT_FILENAME),
        (None, DEFAULT_FILENAME),
        ("   ", DEFAULT_FILENAME),
        (".hidden", "hidden"),
        ("trailing. . ", "trailing"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1.tar.gz", "_com1.tar.gz"),
        ("console.txt", "console.txt"),
        ("résumé.pdf", "résumé.pdf"),
        ("e\u0301.txt", "é.txt"),  # NFC
        ("tab\there.txt", "tabhere.txt"),
        ("two  spaces.txt", "two spaces.txt"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_names_keep_their_extension() -> None:
    name = safe_filename("ü" * 400 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert safe_filename("x" * 400).startswith("xxx")


@given(st.text(max_size=600))
def test_safe_filename_properties(name: str) -> None:
    safe = safe_filename(name)
    assert safe
    assert len(safe.encode("utf-8", "surrogatepass")) <= MAX_FILENAME_BYTES
    assert not re.search(r'[/\\\x00-\x1f\x7f<>:"|?*]', safe)
    assert not safe.startswith(".")
    assert safe == safe.strip()
    assert safe_filename(safe) == safe  # idempotent


def test_content_disposition_ascii() -> None:
    assert content_disposition("attachment", "report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition("inline", None) == 'inline; filename="attachment"'


def test_content_disposition_unicode_has_both_forms() -> None:
    value = content_disposition("attachment", "résumé 2026.pdf")
    assert value == (
        "attachment; filename=\"resume 2026.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf"
    )
    only_unicode = content_disposition("attachment", "日本語.txt")
    assert only_unicode.startswith("attachment; filename=\"attachment.txt\"; filename*=UTF-8''")


@given(st.text(max_size=300), st.sampled_from(["attachment", "inline"]))
def test_content_disposition_is_a_safe_header(name: str, kind: str) -> None:
    value = content_disposition(kind, name)  # type: ignore[arg-type]
    assert value.isascii()
    assert not re.search(r"[\x00-\x1f\x7f]", value)
    fallback = re.match(
        r'(attachment|inline); filename="([^"\\]*)"(; filename\*=UTF-8\'\'\S+)?$', value
    )
    assert fallback is not None
