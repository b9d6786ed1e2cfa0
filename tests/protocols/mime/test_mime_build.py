"""The builder: structure, encodings, limits, header injection, and build -> parse round trips."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.protocols.mime import build as build_module
from mailwire.protocols.mime.build import Attachment, Draft, build_message
from mailwire.protocols.mime.errors import HeaderInjectionError, MimeBuildError, MimeLimitError
from mailwire.protocols.mime.headers import Address
from mailwire.protocols.mime.parse import ParsedMessage, parse_message

ANN = Address("ann@example.com", "Ann Example")
BOB = Address("bob@example.org")


def parsed(draft: Draft) -> ParsedMessage:
    raw = build_message(draft)
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF or CR in the output"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    return parse_message(raw)


def shape(message: ParsedMessage) -> list[tuple[str, str]]:
    return [(part.part, part.content_type) for part in message.parts]


def test_text_only_is_a_single_part() -> None:
    message = parsed(Draft(from_=ANN, to=(BOB,), subject="Hi", text="Hello"))
    assert shape(message) == [("1", "text/plain")]
    assert message.parts[0].transfer_encoding == "7bit"
    assert message.text().plain == "Hello"


def test_text_and_html_are_alternatives() -> None:
    message = parsed(Draft(text="Hello", html="<p>Hello</p>"))
    assert shape(message) == [("1", "text/plain"), ("2", "text/html")]


def test_inline_images_make_html_related_and_files_make_it_mixed() -> None:
    draft = Draft(
        text="t",
        html='<img src="cid:logo@x">',
        attachments=(
            Attachment(b"png", "logo.png", "image/png", cid="logo@x"),
            Attachment(b"pdf", "a.pdf"),
        ),
    )
    message = parsed(draft)
    assert shape(message) == [
        ("1.1.1", "text/plain"),
        ("1.1.2", "text/html"),
        ("1.2", "image/png"),
        ("2", "application/pdf"),
    ]
    logo = message.part("1.2")
    assert logo is not None
    assert (logo.content_id, logo.disposition, logo.filename) == ("<logo@x>", "inline", "logo.png")
    assert b"multipart/related" in message.raw


def test_cid_without_html_is_a_plain_attachment() -> None:
    message = parsed(Draft(text="t", attachments=(Attachment(b"x", "x.png", cid="x@y"),)))
    assert shape(message) == [("1", "text/plain"), ("2", "image/png")]


def test_attachments_only_and_empty_draft() -> None:
    assert shape(parsed(Draft(attachments=(Attachment(b"x", "x.bin"),)))) == [
        ("1", "application/octet-stream")
    ]
    empty = parsed(Draft())
    assert shape(empty) == [("1", "text/plain")]
    assert empty.text().plain == ""


def test_non_ascii_text_goes_quoted_printable_and_headers_encoded_words() -> None:
    draft = Draft(
        from_=Address("joerg@example.de", "Jörg Müller"),
        subject="Grüße aus Köln",
        text="Grüße\n" + "x" * 1200,
        attachments=(Attachment(b"data", "résumé.pdf"),),
    )
    raw = build_message(draft)
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert b"Subject: =?UTF-8?B?" in head
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9.pdf" in raw
    message = parse_message(raw)
    assert message.subject == "Grüße aus Köln"
    assert message.addresses("from") == (Address("joerg@example.de", "Jörg Müller"),)
    assert message.parts[0].transfer_encoding == "quoted-printable"
    assert message.text().plain == "Grüße\r\n" + "x" * 1200
    assert message.attachments[0].filename == "résumé.pdf"


def test_long_ascii_subject_is_folded() -> None:
    subject = " ".join(f"word{i}" for i in range(60))
    raw = build_message(Draft(subject=subject))
    head = raw.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert parse_message(raw).subject == subject


def test_message_id_date_and_threading_fields() -> None:
    when = datetime(2026, 3, 3, 9, 15, tzinfo=UTC)
    message = parsed(
        Draft(
            from_=ANN,
            date=when,
            message_id="given@example.com",
            in_reply_to="<parent@example.com>",
            references=("<root@example.com>", "parent@example.com"),
        )
    )
    assert message.message_id == "<given@example.com>"
    assert message.date == when
    assert message.in_reply_to == "<parent@example.com>"
    assert message.references == ("<root@example.com>", "<parent@example.com>")
    generated = parsed(Draft(from_=ANN)).message_id or ""
    assert re.fullmatch(r"<[0-9a-f-]{36}@example\.com>", generated)
    assert (parsed(Draft()).message_id or "").endswith("@mailwire.invalid>")


def test_custom_headers() -> None:
    message = parsed(
        Draft(subject="built", headers=(("X-Campaign", "spring é"), ("Subject", "replaced")))
    )
    assert message.headers.text("x-campaign") == "spring é"
    assert message.headers.get_all("subject") == ["replaced"]
    with pytest.raises(MimeBuildError) as caught:
        build_message(Draft(headers=(("Content-Type", "text/html"),)))
    assert caught.value.key == "headers"


def test_bcc_can_be_left_out() -> None:
    draft = Draft(to=(BOB,), bcc=(ANN,))
    assert parse_message(build_message(draft)).addresses("bcc") == (ANN,)
    assert parse_message(build_message(draft, include_bcc=False)).addresses("bcc") == ()


@pytest.mark.parametrize(
    ("draft", "key"),
    [
        (Draft(subject="hi\r\nBcc: evil@example.com"), "subject"),
        (Draft(subject="hi\nthere"), "subject"),
        (Draft(headers=(("X-Ok", "a\rb"),)), "headers"),
        (Draft(headers=(("X-Bad\r\nBcc", "v"),)), "headers"),
        (Draft(to=(Address("bob@example.org", "Bob\r\nBcc: x@y"),)), "to"),
        (Draft(from_=Address("ann@example.com\r\nX: y")), "from"),
        (Draft(attachments=(Attachment(b"", "a\r\n.pdf"),)), "filename"),
        (Draft(attachments=(Attachment(b"", "a.pdf", "text/plain\r\nX: y"),)), "contentType"),
        (Draft(attachments=(Attachment(b"", "a.png", cid="a\n@b"),)), "cid"),
        (Draft(message_id="<a@b>\r\nX: y"), "messageId"),
        (Draft(in_reply_to="<a@b>\nX: y"), "inReplyTo"),
        (Draft(subject="nul\x00byte"), "subject"),
    ],
)
def test_header_injection_is_refused(draft: Draft, key: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        build_message(draft)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("draft", "key"),
    [
        (Draft(to=(Address("not an address"),)), "to"),
        (Draft(headers=(("Bad Name", "v"),)), "headers"),
        (Draft(headers=(("X:Colon", "v"),)), "headers"),
        (Draft(attachments=(Attachment(b"", "a", "nonsense"),)), "contentType"),
        (Draft(attachments=(Attachment(b"", "a", cid="<>"),)), "cid"),
        (Draft(message_id="two words@x"), "messageId"),
    ],
)
def test_invalid_fields_are_refused(draft: Draft, key: str) -> None:
    with pytest.raises(MimeBuildError) as caught:
        build_message(draft)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("draft", "limit"),
    [
        (Draft(subject="s" * (build_module.MAX_SUBJECT_CHARS + 1)), "MAX_SUBJECT_CHARS"),
        (Draft(text="t" * (build_module.MAX_BODY_CHARS + 1)), "MAX_BODY_CHARS"),
        (
            Draft(attachments=(Attachment(b"x"),) * (build_module.MAX_ATTACHMENTS + 1)),
            "MAX_ATTACHMENTS",
        ),
        (
            Draft(attachments=(Attachment(b"x" * (build_module.MAX_ATTACHMENT_BYTES + 1)),)),
            "MAX_ATTACHMENT_BYTES",
        ),
        (
            Draft(attachments=(Attachment(b"x" * build_module.MAX_ATTACHMENT_BYTES),) * 6),
            "MAX_MESSAGE_BYTES",
        ),
        (Draft(to=(BOB,) * (build_module.MAX_ADDRESSES + 1)), "MAX_ADDRESSES"),
        (
            Draft(headers=(("X-A", "v"),) * (build_module.MAX_CUSTOM_HEADERS + 1)),
            "MAX_CUSTOM_HEADERS",
        ),
        (
            Draft(headers=(("X-A", "v" * (build_module.MAX_HEADER_VALUE_CHARS + 1)),)),
            "MAX_HEADER_VALUE_CHARS",
        ),
        (Draft(attachments=(Attachment(b"", "f" * 257),)), "MAX_LABEL_CHARS"),
        (Draft(message_id="m" * 997 + "@x"), "MAX_MESSAGE_ID_CHARS"),
    ],
)
def test_limits(draft: Draft, limit: str) -> None:
    with pytest.raises(MimeLimitError) as caught:
        build_message(draft)
    assert caught.value.limit == limit


def test_attachment_from_base64() -> None:
    item = Attachment.from_base64("aGVs\r\nbG8=", filename="h.txt", content_type="text/plain")
    assert (item.content, item.filename, item.content_type) == (b"hello", "h.txt", "text/plain")
    with pytest.raises(MimeBuildError) as caught:
        Attachment.from_base64("not base64!")
    assert caught.value.key == "content"


# ------------------------------------------------------------------ round trips

no_surrogates = st.characters(blacklist_categories=("Cs",))
line_text = st.text(no_surrogates, max_size=200)
header_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=120
)
addresses = st.from_regex(
    r"[a-z0-9][a-z0-9._+-]{0,15}@[a-z0-9-]{1,15}\.(com|org|de)", fullmatch=True
)
mailboxes = st.builds(Address, addresses, st.none() | header_text)
attachments = st.builds(
    Attachment,
    st.binary(max_size=300),
    st.none() | header_text.filter(lambda name: len(name) <= 256),
    st.sampled_from([None, "application/pdf", "image/png", "application/octet-stream"]),
    st.sampled_from([None, "attachment", "inline"]),
    st.none() | st.from_regex(r"[a-z0-9.]{1,10}@[a-z]{1,8}", fullmatch=True),
)


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _name(address: Address) -> tuple[str | None, str]:
    return (" ".join((address.name or "").split()) or None, address.address)


@settings(max_examples=150, deadline=None)
@given(
    sender=mailboxes,
    to=st.lists(mailboxes, max_size=4),
    subject=header_text,
    text=st.none() | line_text,
    html=st.none() | line_text,
    files=st.lists(attachments, max_size=4),
    custom=header_text,
)
def test_build_then_parse_round_trips(
    sender: Address,
    to: list[Address],
    subject: str,
    text: str | None,
    html: str | None,
    files: list[Attachment],
    custom: str,
) -> None:
    draft = Draft(
        from_=sender,
        to=tuple(to),
        subject=subject,
        text=text,
        html=html,
        attachments=tuple(files),
        headers=(("X-Custom", custom),),
    )
    message = parsed(draft)
    assert [_name(a) for a in message.addresses("from")] == [_name(sender)]
    assert [_name(a) for a in message.addresses("to")] == [_name(a) for a in to]
    assert (message.subject or "").strip() == subject.strip()
    assert (message.headers.text("x-custom") or "").strip() == custom.strip()
    body = message.text()
    if text is not None:
        assert _lines(body.plain or "") == _lines(text)
    if html is not None:
        assert _lines(body.html or "") == _lines(html)
    related = [f for f in files if f.cid and html is not None]
    expected = related + [f for f in files if f not in related]
    found = [(p.filename, p.content_id, message.content(p)) for p in message.attachments]
    want = [
        ((f.filename or "").strip() or None, f"<{f.cid}>" if f.cid else None, f.content)
        for f in expected
    ]
    assert found == want
