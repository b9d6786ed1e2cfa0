"""Property tests: the parser never raises, on random bytes or on damaged corpus messages."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwire.protocols.mime.parse import ParsedMessage, parse_message
from mailwire.testing.corpus import corpus

RAWS = [item.raw for item in corpus() if len(item.raw) < 20_000]

#: Fragments that steer random input into MIME's corners.
PIECES = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--b",
    b"--b--",
    b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Type: text/plain; charset=",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Disposition: attachment; ",
    b"filename*0*=utf-8''%E6",
    b"; filename*1*=%97",
    b"=?utf-8?b?",
    b"?=",
    b"=?x?q?=ZZ",
    b"=\r\n",
    b"=C3",
    b"\x00",
    b"\xff",
    b" ",
    b"\t",
    b":",
    b";",
    b'"',
    b"message/rfc822",
    b"multipart/digest",
    b"iso-2022-jp",
    b"\x1b$B",
    b"Subject: ",
    b"From: a@b\r\n",
]


def exercise(parsed: ParsedMessage) -> None:
    """Everything a reader does with a parsed message, which must not raise either."""
    parsed.text()
    parsed.text(max_bytes=7)
    for part in parsed.parts:
        parsed.content(part)
        parsed.part_text(part)
    for name in ("from", "to", "cc", "reply-to"):
        parsed.addresses(name)
    _ = (parsed.subject, parsed.date, parsed.message_id, parsed.references, parsed.in_reply_to)
    parsed.headers.as_dict()


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    exercise(parse_message(raw))


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=8), max_size=80).map(b"".join))
def test_mime_shaped_noise(raw: bytes) -> None:
    exercise(parse_message(raw))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(RAWS)))
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(PIECES) | st.binary(min_size=1, max_size=6))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[at:]
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_messages(raw: bytes) -> None:
    exercise(parse_message(raw))


@settings(max_examples=50)
@given(st.sampled_from(RAWS), st.integers(0, 100_000))
def test_every_prefix_of_a_message(raw: bytes, cut: int) -> None:
    exercise(parse_message(raw[: cut % (len(raw) + 1)]))
