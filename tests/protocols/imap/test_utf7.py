"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.utf7 import decode_mailbox, encode_mailbox

# (text, modified UTF-7); the first is the example of RFC 3501 section 5.1.3.
EXAMPLES = [
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("&", b"&-"),
    ("Tom & Jerry", b"Tom &- Jerry"),
    ("INBOX", b"INBOX"),
    ("", b""),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("£", b"&AKM-"),
    ("é&ü", b"&AOk-&-&APw-"),
    ("\U0001f600", b"&2D3eAA-"),
    ("tab\there", b"tab&AAk-here"),
]


@pytest.mark.parametrize(("text", "encoded"), EXAMPLES)
def test_encode_examples(text: str, encoded: bytes) -> None:
    assert encode_mailbox(text) == encoded


@pytest.mark.parametrize(("text", "encoded"), EXAMPLES)
def test_decode_examples(text: str, encoded: bytes) -> None:
    assert decode_mailbox(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        b"&",  # unterminated shift
        b"abc&U,BTFw",  # unterminated shift
        b"&U/BTFw-",  # "/" is not in the modified alphabet
        b"&U=-",  # padding is not used
        b"&AGE-",  # "a" hidden in BASE64
        b"&ACA-",  # space hidden in BASE64
        b"&AKM-&AKM-",  # adjacent shifts: a minimal encoder writes &AKMAow-
        b"&AKN-",  # non-zero padding bits
        b"&AK-",  # 12 bits: not a whole UTF-16 unit
        b"&AKMA-",  # 6 leftover bits: non-minimal
        b"&2D0-",  # lone high surrogate
        b"&3gA-",  # lone low surrogate
        "caf\u00e9".encode(),  # 8-bit byte
        b"a\r\nb",  # control characters
        b"a\x00b",
    ],
)
def test_decode_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_mailbox(bad)


def test_merged_shift_is_accepted() -> None:
    assert decode_mailbox(b"&AKMAow-") == "££"


@given(st.text())
def test_round_trip(text: str) -> None:
    encoded = encode_mailbox(text)
    assert all(0x20 <= byte <= 0x7E for byte in encoded)
    assert decode_mailbox(encoded) == text


@given(st.binary(max_size=40) | st.text(alphabet="&-AKMOk2D3e+,/ a", max_size=16).map(str.encode))
def test_decoding_is_canonical(data: bytes) -> None:
    # Arbitrary bytes either decode to text that re-encodes to the same bytes,
    # or raise ProtocolError: strictness means the encoding is canonical.
    try:
        text = decode_mailbox(data)
    except ProtocolError:
        return
    assert encode_mailbox(text) == data
